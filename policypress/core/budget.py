"""The compression budget and the counted resources through which methods spend it.

Each resource is charged *before* it is used, and a charge that would go over the limit is
refused with `BudgetExceeded`: the counters never exceed the budget, and a method that asks
for too much is stopped at that point.
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from policypress.core.policy import Policy, resolve_device


@dataclasses.dataclass(frozen=True)
class Budget:
    env_steps: int
    teacher_queries: int
    gradient_updates: int

    @classmethod
    def from_spec(cls, env_spec: dict, profile: str) -> Budget:
        return cls(**env_spec["budget"][profile])


class BudgetExceeded(RuntimeError):
    """A method asked for more of a resource than the env's budget allows."""


class UncountedUse(RuntimeError):
    """A method used a resource around the task's counters (policypress.core.guard)."""


class Meter:
    """Counts the use of each budgeted resource and refuses charges past the limit.

    A refused charge is remembered: a method that catches `BudgetExceeded` (or `UncountedUse`)
    and returns a policy anyway is still recorded as over budget (or as using uncounted resources).
    """

    def __init__(self, budget: Budget):
        self.budget = budget
        self.used = {field.name: 0 for field in dataclasses.fields(Budget)}
        self.exceeded: str | None = None
        self.uncounted: str | None = None
        self.charged_optimizers: weakref.WeakSet[torch.optim.Optimizer] = weakref.WeakSet()

    def charge(self, resource: str, amount: int = 1, route: str | None = None) -> None:
        """Charge `amount` of `resource`; `route` says how it was spent, in the refusal's message."""
        if amount < 0:
            raise ValueError(f"cannot charge a negative amount of {resource}")
        limit = getattr(self.budget, resource)
        if self.used[resource] + amount > limit:
            self.exceeded = self.exceeded or (
                f"budget exceeded: {resource} would reach {self.used[resource] + amount} > limit {limit}"
                + (f" ({route})" if route else "")
            )
            raise BudgetExceeded(self.exceeded)
        self.used[resource] += amount

    def refuse(self, reason: str) -> None:
        """Refuse a use of a resource around the counters (and remember it)."""
        self.uncounted = self.uncounted or f"uncounted use: {reason}"
        raise UncountedUse(f"uncounted use: {reason}")

    def remaining(self, resource: str) -> int:
        return getattr(self.budget, resource) - self.used[resource]


class CountedEnv(gym.Wrapper):
    """Charges one env step per `step`; resets are free, but the evaluation seeds are held out.

    The inner env (reachable through `.unwrapped` or `.env`) refuses a step that does not come
    through this wrapper, and a held-out seed however it is reset. Steps that the spec's wrappers
    take inside a reset (Atari's no-ops) are part of the reset: free, as they always were."""

    def __init__(self, env: gym.Env, meter: Meter, held_out_from: int):
        super().__init__(env)
        self._meter = meter
        self._counting = False
        base = env.unwrapped
        base_step, base_reset = base.step, base.reset

        def step(action: Any):
            if not self._counting:
                meter.refuse("stepped a task env around its counter (through .unwrapped or .env); "
                             "step the env task.make_env() returned")
            return base_step(action)

        def reset(*, seed: int | None = None, options: dict | None = None):
            if seed is not None and seed >= held_out_from:
                raise ValueError(f"seed {seed} is held out for evaluation (use seeds below {held_out_from})")
            return base_reset(seed=seed, options=options)

        base.step, base.reset = step, reset  # on the instance: every path to the env meets them

    def step(self, action: Any):
        self._meter.charge("env_steps")
        with self._through_counter():
            return self.env.step(action)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        with self._through_counter():
            return self.env.reset(seed=seed, options=options)

    @contextlib.contextmanager
    def _through_counter(self) -> Iterator[None]:
        self._counting = True
        try:
            yield
        finally:
            self._counting = False


class TeacherOracle:
    """The teacher's raw outputs (Q-values, logits or actions) for a batch of observations.

    Charges one teacher query per observation. This is the only sanctioned way to run the
    teacher: `task.teacher` is for reading its weights and architecture.
    """

    def __init__(self, teacher: Policy, meter: Meter, device: str = "cpu"):
        self._teacher = teacher.clone().eval()
        self._meter = meter
        self._device_request = device  # resolved on the first query: in the method's process, after the fork
        self._device: torch.device | None = None

    @torch.no_grad()
    def __call__(self, observations: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The outputs, on the task's device."""
        if self._device is None:
            self._device = resolve_device(self._device_request)
            self._teacher.to(self._device)
        batch = observations if isinstance(observations, torch.Tensor) else torch.as_tensor(np.asarray(observations))
        if batch.shape == self._teacher.obs_shape:
            batch = batch[None]
        self._meter.charge("teacher_queries", batch.shape[0])
        return self._teacher(batch.to(self._device))


class NoOracle:
    """A during-training run's oracle: it holds no teacher, and every query is refused (and recorded)."""

    def __init__(self, meter: Meter):
        self._meter = meter

    def __call__(self, observations: np.ndarray | torch.Tensor) -> torch.Tensor:
        self._meter.charge("teacher_queries")  # the limit is 0: the first query is refused
        raise BudgetExceeded("unreachable: a during-training run has no teacher queries")


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
# The fastest implementation of each, unless a method asks otherwise: one fused kernel for all
# parameters where PyTorch has one (on the CPU too), else one multi-tensor (foreach) call. The
# per-parameter loop PyTorch defaults to on the CPU costs several times the arithmetic for the
# small networks compressed here (benchmarks/pipeline_cost.py).
FAST = {"adam": {"fused": True}, "adamw": {"fused": True}, "sgd": {"fused": True}, "rmsprop": {"foreach": True}}


def charge_steps(optimizer: torch.optim.Optimizer, meter: Meter) -> torch.optim.Optimizer:
    """`optimizer`, each of whose steps is charged one gradient update before it runs."""
    optimizer.register_step_pre_hook(lambda *_: meter.charge("gradient_updates"))
    meter.charged_optimizers.add(optimizer)  # so that the guard's global step hook does not charge it again
    return optimizer


def optimizer_factory(meter: Meter) -> Callable[..., torch.optim.Optimizer]:
    """`make_optimizer(params, name="adam", **kwargs)`: a torch optimizer whose steps are charged."""

    def make_optimizer(params: Iterable, name: str = "adam", **kwargs: Any) -> torch.optim.Optimizer:
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r} (known: {sorted(OPTIMIZERS)})")
        return charge_steps(OPTIMIZERS[name](params, **{**FAST[name], **kwargs}), meter)

    return make_optimizer
