"""Layer-wise Relevance Propagation (Bach et al. 2015) of a policy's output to its hidden units.

Rules (Montavon et al. 2019, "Layer-wise relevance propagation: an overview"):
- Linear: the ε-rule, R_i = a_i Σ_j w_ij R_j / (z_j + ε sign(z_j)), z_j = Σ_i a_i w_ij + b_j.
- Conv2d: the z⁺-rule (ε-rule with only the positive weights and no bias), as Yeom et al.'s
  "Pruning by Explaining" uses for convolutions; its inputs are pixels or ReLU outputs, ≥ 0.
- ReLU, Tanh and Flatten pass relevance through unchanged (Flatten reshapes it).
Each rule is computed with the gradient trick (R_in = a ⊙ ∂(z·s)/∂a with s = R_out / z),
which is exact for these layers. Without biases and with ε → 0, every layer conserves the
relevance: the input's and each hidden layer's relevances sum to the explained output.

Written here rather than taken from zennit because zennit imports torchvision at import time,
and torchvision's PyPI wheel does not load against the CPU build of torch this project pins.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from policypress.architecture import hidden_layers, layer_outputs
from policypress.policy import Policy

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
