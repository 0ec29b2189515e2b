"""The during-training track's loop: stable-baselines3's own algorithm, with the teacher's
hyperparameters, trained from random weights inside a run's budget.

Everything SB3 does is charged: its environments are the task's counted ones (with the spec's
training wrappers, as the teacher had), and every step of every optimizer the model holds
(DQN's, PPO's, SAC's actor, critic and entropy ones) is charged one gradient update. Learning
stops before the budget would be overdrawn: before an env step when fewer than one step per env
is left, and before a training round that would need more updates than remain (a round's size
is the largest one seen so far). A method shapes the deployed actor through `after_update`,
called after every step of the actor's optimizer with the policy *view* of the live actor (its
layers are SB3's own modules) and the training progress: masks set on that view are applied
after every actor update. The trained actor is converted exactly as teachers are, and chosen as
the teacher's is: at the spec's `count` checkpoints, evenly spaced over training, the last at its
end, the actor (if it fits the level's ceiling) is played on the validation episodes
(`task.validate`, free and capped, as the teacher's), and the best one is the result, the later
one on ties (it has trained longer and is, for a pruning method, the sparser one). SB3's schedules
(exploration, learning rate) span the env steps the update budget affords at the teacher's
update-to-data ratio, as the teacher's spanned its training.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from policypress.compress.distillation import SEED_RANGE
from policypress.core.envs import apply_wrappers
from policypress.core.params import params
from policypress.core.policy import Policy
from policypress.core.sb3 import actor_optimizer, build_model, optimizer_steps_per_round, to_policy
from policypress.core.task import Task

AfterUpdate = Callable[[Policy, float], None]  # (live actor view, progress 0..1)


def optimizers_of(model: BaseAlgorithm) -> list[torch.optim.Optimizer]:
    """Every optimizer the model holds, wherever SB3 keeps it (the model, its policy, or a sub-network)."""
    found = {}
    for owner in (model, *model.policy.modules()):
        for value in vars(owner).values():
            if isinstance(value, torch.optim.Optimizer):
                found[id(value)] = value
    return list(found.values())


class BudgetGuard(BaseCallback):
    """Stops `learn` before the budget runs out, logs progress every tenth of it, and keeps the best
    checkpoint (`best`: its validation return and policy; `history`: every checkpoint's)."""

    def __init__(self, task: Task, total_steps: int, total_updates: int, live: Policy,
                 finish: Callable[[Policy], Policy]):
        super().__init__()
        self.task, self.total_steps, self.total_updates = task, total_steps, total_updates
        self.live, self.finish = live, finish
        self.budget_steps = task.remaining("env_steps")  # total_steps (planned) may be fewer
        self.round = 0  # the most updates one training round takes: predicted, then the most seen
        self.mark = 0
        self.next_report = total_steps // 10
        # `count` checkpoints at evenly spaced progress (training may end on either budget), the last at
        # the end (`result`): count - 1 while training, counted as integers (1/10 does not add up to 1).
        self.count = task.teacher_training.get("checkpoints", {"count": 0})["count"] if task.validate else 0
        self.checked = 0
        self.best: tuple[float, Policy] | None = None
        self.history: list[dict] = []

    def checkpoint(self, policy: Policy | None = None) -> None:
        """Validate `policy` (by default the actor now, finished) if it fits the level's ceiling; keep it if it
        is the best so far."""
        if not self.count:  # no selection (no checkpoints in the spec): the final actor is the result
            return
        policy = policy if policy is not None else self.finish(deployed(self.model, self.live))
        if params(policy)[1] > self.task.max_params:
            return
        score = self.task.validate(policy)
        self.history.append({"step": self.num_timesteps, "validation_return": score})
        self.task.log.info("checkpoint at %d env steps: validation return %.1f", self.num_timesteps, score)
        if self.best is None or score >= self.best[0]:  # the later on ties, as the teacher's
            self.best = (score, policy)

    def result(self, final: Policy) -> Policy:
        """The best validated checkpoint, the final actor (`final`, finished) a candidate too."""
        self.checkpoint(final)
        if self.best is None:
            return final
        score, policy = self.best
        policy.metadata.update(validation_return=score, checkpoints=self.history)
        return policy

    def spent_updates(self) -> int:
        return self.total_updates - self.task.remaining("gradient_updates")

    def spent_steps(self) -> int:
        return self.budget_steps - self.task.remaining("env_steps")

    def progress(self) -> float:
        """How far training is, by whichever runs out first: the planned env steps or the updates."""
        return min(1.0, max(self.spent_steps() / max(1, self.total_steps),
                            self.spent_updates() / max(1, self.total_updates)))

    def _on_training_start(self) -> None:  # the first round is guarded too, by what the hyperparameters say
        self.round = optimizer_steps_per_round(self.model) * int(self.task.hyperparameters.get("networks", 1))

    def _on_rollout_start(self) -> None:  # right after the previous training round
        self.round = max(self.round, self.spent_updates() - self.mark)
        self.mark = self.spent_updates()

    def _on_step(self) -> bool:
        if self.checked < self.count - 1 and self.progress() >= (self.checked + 1) / self.count:
            self.checked += 1
            self.checkpoint()
        if self.num_timesteps >= self.next_report:
            self.next_report += max(1, self.total_steps // 10)
            episodes = [info["r"] for info in self.model.ep_info_buffer]
            self.task.log.info("%d/%d env steps, %d/%d updates, mean return of the last %d episodes: %s",
                               self.spent_steps(), self.total_steps,
                               self.spent_updates(), self.total_updates, len(episodes),
                               f"{sum(episodes) / len(episodes):.1f}" if episodes else "n/a")
        return (self.task.remaining("env_steps") >= self.model.n_envs
                and self.task.remaining("gradient_updates") >= self.round)


def train_agent(task: Task, after_update: AfterUpdate | None = None, algo: type[BaseAlgorithm] | None = None,
                on_start: Callable[[BaseAlgorithm, Policy], None] | None = None,
                before_update: Callable[[Policy], None] | None = None,
                finish: Callable[[Policy], Policy] = lambda policy: policy,
                **overrides) -> tuple[BaseAlgorithm, Policy, BudgetGuard]:
    """Train the teacher's algorithm (or its subclass `algo`) from random weights on the whole remaining
    budget; `overrides` replace hyperparameters (e.g. `policy_kwargs={"net_arch": [16, 16]}`);
    `on_start(model, live)` runs once the model is built, before it learns; `before_update(live)`
    runs before every step of the actor's optimizer, its gradients computed (e.g. to add a
    regularizer's gradient: the same as adding the regularizer to SB3's loss); `finish(policy)` turns
    a checkpoint into what the method would return (e.g. slices away removed units).
    Returns the model, the live actor view (masks included) and the guard (`progress()`, and
    `result(final)`: the best checkpoint, the method's final policy included)."""
    spec = task.teacher_training
    wrappers = spec.get("train_wrappers", [])
    seed = int(task.rng.integers(SEED_RANGE))  # not the teacher's seed: its own initialisation and episodes
    model = build_model(spec, lambda: apply_wrappers(task.make_env(), wrappers), seed, str(task.device), algo,
                        **overrides)
    for optimizer in optimizers_of(model):
        task.charge_updates(optimizer)
    live = to_policy(model, live=True)
    total_steps, total_updates = task.remaining("env_steps"), task.remaining("gradient_updates")
    cost = task.teacher_cost or {}
    if cost.get("env_steps") and cost.get("gradient_updates"):  # the steps the updates afford at the teacher's ratio
        networks = int(task.hyperparameters.get("networks", 1))
        affordable = total_updates * cost["env_steps"] // (networks * cost["gradient_updates"])
        total_steps = max(cost["env_steps"], min(total_steps, affordable))
    guard = BudgetGuard(task, total_steps, total_updates, live, finish)

    def after_actor_step(*_) -> None:
        if after_update is not None:
            after_update(live, guard.progress())
        live.apply_masks()

    actor_optimizer(model).register_step_post_hook(after_actor_step)
    if before_update is not None:
        actor_optimizer(model).register_step_pre_hook(lambda *_: before_update(live))
    if on_start is not None:
        on_start(model, live)
    # learn() counts in steps of all envs together; the guard stops it at the budget.
    model.learn(total_timesteps=total_steps - total_steps % model.n_envs, callback=guard)
    task.log.info("trained %d env steps and %d updates (%.0f%% of the plan)",
                  guard.spent_steps(), guard.spent_updates(), 100 * guard.progress())
    return model, live, guard


def deployed(model: BaseAlgorithm, live: Policy) -> Policy:
    """The actor as it is now, as a CPU `Policy`, exactly as a teacher is converted, with the live masks."""
    policy = to_policy(model, model.get_vec_normalize_env())
    policy.masks = {name: mask.cpu() for name, mask in live.masks.items()}
    policy.apply_masks()
    return policy



def observations(model: BaseAlgorithm, count: int, rng) -> torch.Tensor:
    """`count` observations the agent has seen lately, as its networks see them (normalized where the
    env is): from the replay buffer, or from the current rollout of an on-policy algorithm."""
    replay = getattr(model, "replay_buffer", None)
    if replay is not None:
        return replay.sample(count, env=model.get_vec_normalize_env()).observations
    rollout = model.rollout_buffer  # (steps, envs, *obs), flattened to (steps × envs, *obs) while PPO trains
    stored = (rollout.observations if rollout.full else rollout.observations[: rollout.pos])
    stored = stored.reshape(-1, *model.observation_space.shape)
    return torch.as_tensor(stored[rng.integers(0, len(stored), size=count)], device=model.device)
