"""lrp_prune: LRP-based structured pruning, each round followed by policy distillation
(Xu, Luan, Gu, Zhao, Chen, ISORC 2022; Luan, Gu, Xu, Zhao, Chen, Concurrency Computat. Pract.
Exper. 2023).

Algorithm (policypress/compress/structured.py has the rounds; the LRP rules are below):
1. The teacher plays (its actions come from the oracle) and its states are labelled.
2. Each round, on the latest `score_states` labelled states, relevance is propagated from the
   chosen action's output (|Q| or |logit| of the argmax action; |a| of every dimension for
   continuous actions) back through the current network: the ε-rule in Linear layers, z⁺ in
   Conv2d layers, passed through activations. A unit's score is the sum over states (and
   spatial positions) of its |relevance|, divided by its layer's total.
3. The lowest-scoring units of all layers are removed until the round's parameter target is
   met (a geometric path from the teacher's size to the level's ceiling over `prune_rounds`
   rounds), the layer and its successor are sliced, and the smaller dense network is
   fine-tuned by Rusu et al. distillation (KL at τ = 0.01 on Q-values) from the teacher.
The result is a dense network at or under the level's ceiling.

Deviations from the papers, and why (the recipe is modelled on Yeom et al.'s "Pruning by
Explaining", which the papers very likely follow; their LRP rule and pruning rates are not
stated):
- Hidden neurons of Linear layers are pruned as well as conv filters, so that MLP policies
  (every classic-control teacher) can be pruned; the papers state only filters.
- The number of rounds and the size of each are fixed by `prune_rounds` and the level's
  ceiling, not by a tolerance on the return: every level needs a network at its size, and
  the budget pays for a fixed number of rounds.
- Distillation data is a DAgger-style teacher/student mix (policypress/compress/distillation.py), not
  teacher play alone; scores use the latest of those states.
- LRP is this project's own ~40-line implementation (tested for conservation), not zennit:
  zennit imports torchvision, whose PyPI wheel does not load with the pinned CPU torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from policypress.compress.architecture import hidden_layers, layer_outputs
from policypress.compress.structured import STRUCTURED_HYPERPARAMETERS, prune_iteratively
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

INFO = MethodInfo(
    name="lrp_prune",
    summary="Iterative removal of the least relevant neurons/filters (LRP), each round followed by distillation.",
    citation="Xu, Luan, Gu, Zhao, Chen. LRP-based Policy Pruning and Distillation of Reinforcement Learning Agents "
             "for Embedded Systems. ISORC 2022 (doi:10.1109/ISORC52572.2022.9812837); Luan, Gu, Xu, Zhao, Chen. "
             "Concurrency and Computation: Practice and Experience 35(19):e7351, 2023 (doi:10.1002/cpe.7351).",
    hyperparameters={**STRUCTURED_HYPERPARAMETERS, "lrp_epsilon": 1e-9},
    deviations="Neurons of Linear layers pruned as well as filters; rounds and their sizes follow the level's "
               "ceiling (geometric path) rather than a return tolerance; DAgger-style distillation data; own LRP "
               "implementation (zennit needs torchvision, which does not load with the pinned CPU torch).",
)


def compress(task: Task) -> Policy:
    epsilon = task.hyperparameters["lrp_epsilon"]
    return prune_iteratively(task, lambda policy, obs: unit_scores(policy, obs, epsilon))


# Layer-wise Relevance Propagation (Bach et al. 2015) of a policy's output to its hidden units.
#
# Rules (Montavon et al. 2019, "Layer-wise relevance propagation: an overview"):
# - Linear: the ε-rule, R_i = a_i Σ_j w_ij R_j / (z_j + ε sign(z_j)), z_j = Σ_i a_i w_ij + b_j.
# - Conv2d: the z⁺-rule (ε-rule with only the positive weights and no bias), as Yeom et al.'s
#   "Pruning by Explaining" uses for convolutions; its inputs are pixels or ReLU outputs, ≥ 0.
# - ReLU, Tanh and Flatten pass relevance through unchanged (Flatten reshapes it).
# Each rule is computed with the gradient trick (R_in = a ⊙ ∂(z·s)/∂a with s = R_out / z),
# which is exact for these layers. Without biases and with ε → 0, every layer conserves the
# relevance: the input's and each hidden layer's relevances sum to the explained output.

WEIGHTED = (nn.Linear, nn.Conv2d)


def _stabilized(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    return z + epsilon * torch.where(z >= 0, 1.0, -1.0)


def _relevance_through(layer: nn.Module, a: torch.Tensor, relevance: torch.Tensor, epsilon: float) -> torch.Tensor:
    """The relevance of `layer`'s input `a`, given its output's relevance."""
    if isinstance(layer, nn.Flatten):
        return relevance.reshape(a.shape)
    if not isinstance(layer, WEIGHTED):
        return relevance  # activations pass relevance through
    a = a.detach().requires_grad_(True)
    if isinstance(layer, nn.Conv2d):  # z⁺-rule
        z = nn.functional.conv2d(a, layer.weight.clamp(min=0), None, layer.stride, layer.padding)
    else:
        z = layer(a)
    s = (relevance / _stabilized(z, epsilon)).detach()
    (gradient,) = torch.autograd.grad((z * s).sum(), a)
    return (a * gradient).detach()


def unit_relevances(net: nn.Sequential, x: torch.Tensor, start: Callable[[torch.Tensor], torch.Tensor],
                    epsilon: float = 1e-9) -> dict[int, torch.Tensor]:
    """Per-sample relevance of every unit of every Linear/Conv2d layer's output, and of the input.

    `start(net(x))` is the relevance where propagation starts, shaped like the output (for
    example the chosen action's Q-value, zeros elsewhere). Returns {layer index: relevance of
    that layer's output} for the weighted layers, plus {-1: relevance of the input}.
    """
    outputs = layer_outputs(net, x)
    inputs = [x, *outputs[:-1]]
    relevances: dict[int, torch.Tensor] = {}
    relevance = start(outputs[-1]).detach()
    for index in reversed(range(len(net))):
        if isinstance(net[index], WEIGHTED):
            relevances[index] = relevance
        relevance = _relevance_through(net[index], inputs[index], relevance, epsilon)
    relevances[-1] = relevance
    return relevances


def chosen_output_relevance(out: torch.Tensor, discrete: bool) -> torch.Tensor:
    """Where to start: the chosen action's Q-value or logit for discrete policies, every action
    dimension for continuous ones; as magnitudes, so that the ranking does not depend on signs."""
    if not discrete:
        return out.abs()
    chosen = out.argmax(dim=1, keepdim=True)
    return torch.zeros_like(out).scatter(1, chosen, out.gather(1, chosen).abs())


def unit_scores(policy: Policy, obs: torch.Tensor, epsilon: float) -> dict[int, torch.Tensor]:
    """Per hidden unit, the sum of |relevance| over the states, as a fraction of its layer's total."""
    with torch.no_grad():
        x = policy.preprocess(obs)
    relevances = unit_relevances(policy.net, x, lambda out: chosen_output_relevance(out, policy.is_discrete), epsilon)
    scores = {}
    for index in hidden_layers(policy):
        magnitude = relevances[index].abs()
        per_unit = magnitude.sum(dim=(0, 2, 3)) if magnitude.dim() == 4 else magnitude.sum(dim=0)
        scores[index] = per_unit / per_unit.sum().clamp_min(torch.finfo(per_unit.dtype).tiny)
    return scores
