"""group_sparse_rl: Su et al.'s dynamic structured pruning as the paper runs it, during the RL
training itself (Su, Li, Xu, Kang, Niyato, Xie, IEEE Trans. Vehicular Technology 2024;
arXiv:2402.05146). `group_sparse` is the post-training variant (distillation from the teacher).

Algorithm:
1. Stable-baselines3's own algorithm with the teacher's hyperparameters (DQN, PPO or SAC) trains
   from random weights on the during-training budget (policypress/compress/rl_training.py).
2. The neuron-importance group-sparse regularizer of `group_sparse` (its formulas:
   R = λ Σ_j ‖g_j‖₂ / (Î_j + ε), g_j a hidden unit's incoming weights and bias, Î_j its relative
   importance) acts on the deployed actor: its gradient is added to the actor's gradients before
   every optimizer step, which is adding R to SB3's loss. The importance is refreshed every
   `importance_every` actor updates on recent observations (replay or rollout).
3. The dynamic threshold: every `mask_every` actor updates between `prune_start` and `prune_end`
   of training, units whose group norm relative to their layer's mean is below `norm_floor` ×
   (progress - prune_start) / (prune_end - prune_start) are switched off for good by binary masks
   (each layer keeps its strongest unit). Nothing ties the threshold to a size: the method stops
   where the regularizer has pushed the network, so it runs once per seed and the leaderboard counts it at
   every level its size fits.
4. The rest of training runs under the masks; the surviving units are sliced into a dense,
   smaller network. As for the teacher, the result is the best of the spec's checkpoints (and the
   end) on the validation episodes, each sliced to its surviving units.

Engagement (policy metadata): the fraction of hidden units removed.

Deviations from the paper, and why:
- The regularizer, importance and threshold rule are the reference's reconstruction
  (../shared/reference/methods.md, marked [I]); the paper's formulas are not public.
- The regularizer's gradient is added after SB3 clips the loss's gradients (so it is not clipped).
- Only the deployed actor is regularized and pruned; critics stay dense (not deployed), except
  where they share the actor's features (SB3's CNN policies), which are pruned with it.
- Numerics, not a deviation: where the teacher trains with centred RMSprop (MinAtar's DQN), the run
  uses `CenteredRMSprop`, PyTorch's update with the gradient's variance clamped at zero before its
  square root (its docstring says why).
"""

from pathlib import Path

import torch

from policypress.compress.architecture import hidden_widths
from policypress.compress.rl_training import deployed, observations, train_agent
from policypress.compress.slicing import all_alive, neuron_masks, sliced
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo, load_method
from policypress.core.task import Task

group_sparse = load_method("group_sparse", [str(Path(__file__).parent)]).module  # its formulas


class CenteredRMSprop(torch.optim.RMSprop):
    """PyTorch's centred RMSprop (no momentum, no weight decay), with the gradient's variance
    E[g²] - E[g]² clamped at zero before its square root.

    Exact arithmetic never makes that variance negative; float rounding does once a gradient stays
    the same step after step, and PyTorch then takes the square root of a negative number: NaN, which
    spreads through the network. The regularizer's gradient is such a gradient on a dead unit (no
    loss gradient reaches it): at commit 8cebef2 the Space Invaders runs of this method were NaN
    before their first checkpoint. Where the variance is not negative, each step is PyTorch's, bit
    for bit (tests/test_during_training.py)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            if not group["centered"] or group["momentum"] or group["weight_decay"] or group["maximize"]:
                raise ValueError("CenteredRMSprop: only centered=True, without momentum, weight decay or maximize")
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:  # as PyTorch's RMSprop initialises it
                    state["step"] = torch.zeros(())
                    state["square_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["grad_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] += 1
                grad, square_avg, grad_avg = param.grad, state["square_avg"], state["grad_avg"]
                square_avg.mul_(group["alpha"]).addcmul_(grad, grad, value=1 - group["alpha"])
                grad_avg.lerp_(grad, 1 - group["alpha"])
                variance = square_avg.addcmul(grad_avg, grad_avg, value=-1).clamp_(min=0)
                param.addcdiv_(grad, variance.sqrt_().add_(group["eps"]), value=-group["lr"])


def optimizer_overrides(task: Task) -> dict:
    """`CenteredRMSprop` in place of the teacher's optimizer where that is PyTorch's centred RMSprop."""
    policy_kwargs = task.teacher_training["hyperparameters"].get("policy_kwargs", {})
    centered = policy_kwargs.get("optimizer_kwargs", {}).get("centered", False)
    if policy_kwargs.get("optimizer_class") == "RMSprop" and centered:
        return {"policy_kwargs": {"optimizer_class": CenteredRMSprop}}
    return {}

INFO = MethodInfo(
    name="group_sparse_rl",
    summary="Neuron-importance group-lasso and a rising threshold during RL training from scratch; the size is "
            "the method's own.",
    citation=group_sparse.INFO.citation,
    hyperparameters={"penalty": 1e-3, "importance_epsilon": 0.1, "importance_decay": 0.9, "importance_every": 10,
                     "importance_batch": 256, "mask_every": 100, "prune_start": 0.2, "prune_end": 0.8,
                     "norm_floor": 0.5},
    track="during-training",
    uses_level=False,
    teacher_algos=("dqn", "ppo", "sac"),
    teacher_algos_reason="tested with DQN, PPO and SAC teachers",
    deviations="Regularizer, importance and threshold reconstructed (not public); the regularizer's gradient is not "
               "clipped; only the deployed actor is regularized and pruned.",
)


class GroupSparseTraining:
    """The regularizer (before each actor update) and the threshold (after it) of one run."""

    def __init__(self, task: Task):
        self.task, self.hp = task, task.hyperparameters
        self.model = None
        self.alive = None
        self.importance: dict[int, torch.Tensor] = {}
        self.updates = 0

    def start(self, model, live: Policy) -> None:  # on the device SB3 trains on, as the masks it makes
        self.model, self.alive = model, {index: keep.to(live.device) for index, keep in all_alive(live).items()}

    def cpu_alive(self) -> dict:
        return {index: keep.cpu() for index, keep in self.alive.items()}

    def before_update(self, live: Policy) -> None:
        if self.updates % self.hp["importance_every"] == 0:
            obs = observations(self.model, self.hp["importance_batch"], self.task.rng)
            with torch.no_grad():
                activations, outgoing = group_sparse.mean_activations(live, obs), group_sparse.outgoing_norms(live)
            decay = self.hp["importance_decay"]
            for index, activation in activations.items():
                measured = activation * outgoing[index]
                self.importance[index] = decay * self.importance.get(index, measured) + (1 - decay) * measured
        penalty = group_sparse.group_lasso_penalty(group_sparse.group_norms(live), self.importance, self.alive,
                                                   self.hp["penalty"], self.hp["importance_epsilon"])
        weights = [p for p in live.net.parameters() if p.grad is not None]
        for weight, grad in zip(weights, torch.autograd.grad(penalty, weights, allow_unused=True), strict=True):
            if grad is not None:
                weight.grad.add_(grad)

    @torch.no_grad()
    def after_update(self, live: Policy, progress: float) -> None:
        self.updates += 1
        start, end = self.hp["prune_start"], self.hp["prune_end"]
        if not start <= progress <= end or self.updates % self.hp["mask_every"]:
            return
        threshold = self.hp["norm_floor"] * (progress - start) / (end - start)
        for index, norm in group_sparse.group_norms(live).items():
            keep = self.alive[index]
            relative = torch.where(keep, norm / norm[keep].mean().clamp_min(1e-12), -torch.inf)
            survivors = keep & (relative >= threshold)
            if not survivors.any():  # a layer keeps its strongest unit
                survivors[relative.argmax()] = True
            self.alive[index] = survivors
        live.masks = neuron_masks(live, self.alive)


def compress(task: Task) -> Policy:
    run = GroupSparseTraining(task)
    model, live, guard = train_agent(task, after_update=run.after_update, before_update=run.before_update,
                                     on_start=run.start, finish=lambda policy: sliced(policy, run.cpu_alive()),
                                     **optimizer_overrides(task))
    policy = guard.result(sliced(deployed(model, live), run.cpu_alive()))  # the best checkpoint, as the teacher's
    units = sum(len(keep) for keep in run.alive.values())
    removed = units - sum(hidden_widths(policy))  # of the chosen checkpoint
    task.log.info("removed %d of %d hidden units; widths %s", removed, units, hidden_widths(policy))
    policy.metadata["engagement"] = {"group_sparse_removed_units": removed / units}
    return policy
