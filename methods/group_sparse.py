"""group_sparse: dynamic structured pruning with a neuron-importance group-sparse regularizer
(Su, Li, Xu, Kang, Niyato, Xie, IEEE Trans. Vehicular Technology 2024; arXiv:2402.05146).

Algorithm (the formulas are in the code below):
1. Warm start from the teacher. Train with the distillation loss plus
   R = λ Σ_j ‖g_j‖₂ / (Î_j + ε): g_j a hidden unit's incoming weights and bias, Î_j its
   importance (running mean of mean|a_j| · ‖outgoing weights‖) relative to its layer.
   Distillation (KL at τ = 0.01 on Q-values, τ = 1 on logits, MSE on continuous actions)
   spends env steps, teacher queries and updates. The paper's own setting, the regularizer and
   threshold during RL training from scratch, is `group_sparse_rl` (the during-training track).
2. A dynamic threshold rises between 10% and 70% of the updates: units whose relative group
   norm falls below it are switched off by binary masks that never switch back on; the
   threshold rises at least as fast as needed for the size to follow the Zhu-Gupta cubic from
   the teacher's size to the level's ceiling (it may go below the ceiling).
3. Train the masked network for the remaining updates, then slice the surviving units into a
   dense smaller network.

Deviations from the paper, and why:
- The paper's regularizer formula, importance measure and threshold rule are not public; the
  ones above are the reference's reconstruction (../shared/reference/methods.md, marked [I]).
- The paper trains the agent with the regularizer during RL training (that is `group_sparse_rl`);
  this post-training variant starts from the teacher's weights and distils, as the benchmark's
  other post-training methods do. An earlier RL-loss variant warm-started from the converged
  teacher collapsed it even without pruning (quick CartPole, seed 0: TD fine-tuning with the zoo's
  learning rate took the return from 500 to about 10 within 3,000 updates), so it is gone.
- The threshold is tied to the level's ceiling so that every level gets a network at or
  below its size; the paper's threshold was free and found its own sparsity.
"""

from __future__ import annotations

import torch
from torch import nn

from policypress.compress.architecture import hidden_layers, layer_outputs, require_one_unit_fits, weighted_layers
from policypress.compress.distillation import DISTILL_HYPERPARAMETERS, DistillConfig, distill
from policypress.compress.slicing import Alive, all_alive, neuron_masks, sliced
from policypress.compress.structured import units_to_keep
from policypress.core.params import params
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

GROUP_SPARSE_HYPERPARAMETERS = {
    **DISTILL_HYPERPARAMETERS,
    "penalty": 1e-4,  # λ
    "importance_epsilon": 0.1,  # ε in w_j = 1 / (Î_j + ε)
    "importance_decay": 0.9,  # of the running mean of the importance
    "mask_every": 50,  # updates between threshold rises
    "prune_start": 0.1,  # of the updates
    "prune_end": 0.7,
    "norm_floor": 0.1,  # the threshold's final floor, relative to the layer's mean group norm
}

INFO = MethodInfo(
    name="group_sparse",
    summary="Neuron-importance group-lasso training with a rising threshold that removes whole neurons/filters.",
    citation="Su, Li, Xu, Kang, Niyato, Xie. Compressing Deep Reinforcement Learning Networks with a Dynamic "
             "Structured Pruning Method for Autonomous Driving. IEEE Trans. Vehicular Technology, 2024 "
             "(arXiv:2402.05146).",
    hyperparameters=dict(GROUP_SPARSE_HYPERPARAMETERS),
    deviations="Regularizer, importance and threshold reconstructed (not public); warm start from the teacher with "
               "the distillation loss (the paper's RL-training setting is group_sparse_rl); the threshold follows a "
               "cubic size schedule to the ceiling.",
)


def compress(task: Task) -> Policy:
    require_one_unit_fits(task.teacher, task.max_params)  # its result is sliced: fail before spending
    student = task.teacher.clone()
    pruning = DynamicGroupPruning(task, student)
    distill(task, student, DistillConfig.from_hyperparameters(task.hyperparameters, student.output),
            regularizer=pruning.regularizer, after_update=pruning.after_update)
    if pruning.progress < 1.0:  # a budget too small to reach the schedule's end still ends at the ceiling
        pruning.prune(1.0)
    return sliced(student, pruning.alive)


# The formulas of steps 1 and 2 (the reference's reconstruction; the paper's are not public):
# - A group is a hidden unit's incoming weights and bias (a Linear row, a Conv2d filter), ‖g_j‖₂.
# - Importance I_j is a running mean over minibatches of mean|a_j| · ‖W_out[:, j]‖₂ (the unit's
#   mean activation times the norm of the weights that read it).
# - The penalty R = λ Σ_layers Σ_alive j w_j ‖g_j‖₂ with w_j = 1 / (Î_j + ε), Î_j = I_j divided
#   by the mean importance of the layer's alive units: less important units are pushed harder
#   towards zero. It is added to the training loss until pruning ends.
# - Every `mask_every` updates between `prune_start` and `prune_end` (fractions of the updates),
#   the dynamic threshold rises: units whose group norm, relative to their layer's mean, is
#   below `norm_floor` × progress are switched off, and so are the units of lowest relative
#   norm until the network's size follows the Zhu-Gupta cubic from the teacher's size to the
#   level's ceiling. Masks only ever switch off; masked units' weights stay zero.


def group_norms(policy: Policy) -> dict[int, torch.Tensor]:
    """‖incoming weights and bias‖₂ of every hidden unit, differentiable."""
    norms = {}
    for index in hidden_layers(policy):
        layer = policy.net[index]
        group = layer.weight.flatten(1)
        if layer.bias is not None:
            group = torch.cat([group, layer.bias[:, None]], dim=1)
        norms[index] = group.norm(dim=1)
    return norms


def outgoing_norms(policy: Policy) -> dict[int, torch.Tensor]:
    """‖weights that read unit j‖₂ in the next weighted layer (through a Flatten, the unit's
    block of columns: Flatten orders a (C, H, W) map channel by channel)."""
    weighted = weighted_layers(policy)
    norms = {}
    for index, width in hidden_layers(policy).items():
        reader = policy.net[next(i for i in weighted if i > index)].weight
        norms[index] = reader.reshape(reader.shape[0], width, -1).transpose(0, 1).flatten(1).norm(dim=1)
    return norms


def mean_activations(policy: Policy, obs: torch.Tensor) -> dict[int, torch.Tensor]:
    """Mean |activation| of every hidden unit over the batch (and spatial positions)."""
    with torch.no_grad():
        outputs = layer_outputs(policy.net, policy.preprocess(obs))
    means = {}
    for index in hidden_layers(policy):
        after = index + 1 if isinstance(policy.net[index + 1], (nn.ReLU, nn.Tanh)) else index
        activation = outputs[after].abs()
        means[index] = activation.mean(dim=(0, 2, 3)) if activation.dim() == 4 else activation.mean(dim=0)
    return means


def group_lasso_penalty(norms: dict[int, torch.Tensor], importance: dict[int, torch.Tensor], alive: Alive,
                        strength: float, epsilon: float) -> torch.Tensor:
    """λ Σ_layers Σ_alive j ‖g_j‖ / (Î_j + ε), Î_j = I_j / mean of the layer's alive I."""
    total = torch.zeros(())
    for index, norm in norms.items():
        keep = alive[index]
        relative = importance[index][keep] / importance[index][keep].mean().clamp_min(1e-12)
        total = total + (norm[keep] / (relative + epsilon)).sum()
    return strength * total


class DynamicGroupPruning:
    """The regularizer and the mask schedule of one run, as hooks for `distill`."""

    def __init__(self, task: Task, student: Policy):
        self.task, self.hp, self.student = task, task.hyperparameters, student
        self.alive = all_alive(student)
        self.importance: dict[int, torch.Tensor] = {}  # from the first minibatch on
        self.start_size = params(student)[0]
        self.penalising = True
        self.progress = 0.0  # of the threshold's schedule

    def regularizer(self, student: Policy, obs: torch.Tensor) -> torch.Tensor:
        if not self.penalising:
            return torch.zeros(())
        with torch.no_grad():
            activations, outgoing = mean_activations(student, obs), outgoing_norms(student)
            decay = self.hp["importance_decay"]
            for index, activation in activations.items():
                measured = activation * outgoing[index]
                previous = self.importance.get(index, measured)
                self.importance[index] = decay * previous + (1 - decay) * measured
        return group_lasso_penalty(group_norms(student), self.importance, self.alive, self.hp["penalty"],
                                   self.hp["importance_epsilon"])

    def after_update(self, update: int, updates: int) -> None:
        start, end = int(self.hp["prune_start"] * updates), max(1, int(self.hp["prune_end"] * updates))
        self.penalising = update < end
        if start <= update <= end and (update % self.hp["mask_every"] == 0 or update == end):
            self.prune((update - start) / max(1, end - start))

    @torch.no_grad()
    def prune(self, progress: float) -> None:
        """Raise the threshold to `progress` (0 to 1) of its schedule and switch units off."""
        self.progress = progress
        ceiling = self.task.max_params
        target = int(ceiling + (self.start_size - ceiling) * (1.0 - progress) ** 3)
        relative = {}
        for index, norm in group_norms(self.student).items():
            keep = self.alive[index]
            relative[index] = torch.where(keep, norm / norm[keep].mean().clamp_min(1e-12), -torch.inf)
        keep = units_to_keep(self.student, relative, target)
        for index in keep:
            keep[index] &= self.alive[index] & (relative[index] >= self.hp["norm_floor"] * progress)
            if not keep[index].any():  # a layer keeps its strongest unit
                keep[index][relative[index].argmax()] = True
        if any((keep[index] != self.alive[index]).any() for index in keep):
            self.task.log.info("threshold at %.2f of its schedule: widths %s (target %d parameters)", progress,
                               [int(k.sum()) for k in keep.values()], target)
        self.alive = keep
        self.student.masks = neuron_masks(self.student, keep)
        self.student.apply_masks()
