"""The budget's runtime side: what a method's process cannot do without the task counting it.

The harness runs `compress(task)` inside `enforced(meter)`. There:
- **the teacher** a method receives (`task.teacher`) shows its weights, but running its network
  raises: the teacher runs through `task.oracle`, one charged query per observation. A copy
  (`clone()`) is the method's own student, free to run and to train.
- **environments** come from `task.make_env()`, whose steps are charged. Creating a gymnasium
  environment any other way (`gymnasium.make`, `make_vec`, an env class from the registry) raises,
  and so does stepping a task env's inner env around its counter (`.unwrapped`, `.env`) or
  resetting it with a held-out seed. Wrappers are free: they step the env they wrap.
- **every optimizer step** is charged one gradient update, whoever made the optimizer (PyTorch's
  global optimizer step hook).
- **every gradient pass** (`torch.autograd.backward`, which `Tensor.backward` calls, and
  `torch.autograd.grad`) is observed. Parameters written by hand, without an optimizer, need
  gradients, and this is where they show: after the run, `overuse` calls a run invalid whose
  passes exceed what its counted updates explain (PASSES_PER_UPDATE each, plus ANALYSIS_PASSES).
A method that catches the error does not escape it: the meter keeps the first refusal.

What the process cannot observe (a simulator written by hand, a teacher's weights copied into a
new network and run unchanged, learning without gradients, a pass through a function bound
before the run) is for review: the README's submission rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from policypress.core.budget import Meter
from policypress.core.policy import SEAL, Policy

# A counted update explains up to two gradient passes: its loss's, and a regularizer's gradient
# taken separately (group_sparse_rl's). A run may take ANALYSIS_PASSES more for analysis that
# updates nothing: LRP's relevance (a pass per layer and scoring round), tracing a network's
# dependencies before slicing it. Every shipped method stays below this (its runs in the smoke DAG
# and tests/test_families.py are valid).
PASSES_PER_UPDATE = 2
ANALYSIS_PASSES = 100

TEACHER_FORWARD = "ran task.teacher's network: it is for reading weights; run the teacher through " \
                  "task.oracle(observations), one charged query each (to start from its weights, clone it)"


def seal(policy: Policy, meter: Meter) -> Policy:
    """`policy` (the task's teacher), whose network refuses to run; its action head stays usable
    (it maps outputs to actions) and `clone()` gives an unsealed copy."""

    def refuse(*_: Any) -> None:
        meter.refuse(TEACHER_FORWARD)

    setattr(refuse, SEAL, True)
    for module in (policy, *policy.net.modules()):
        module.register_forward_pre_hook(refuse)
    return policy


class Observed:
    """What the process did while `enforced` ran: gradient passes and optimizer steps, however made."""

    def __init__(self) -> None:
        self.gradient_passes = 0
        self.optimizer_steps = 0

    def overuse(self, used: dict) -> str | None:
        """The reason a run's observed use exceeds its counted use, or None."""
        explained = PASSES_PER_UPDATE * used["gradient_updates"] + ANALYSIS_PASSES
        if self.gradient_passes > explained:
            return (f"{self.gradient_passes} gradient passes, but {used['gradient_updates']} counted gradient "
                    f"updates explain at most {explained} (parameters updated without a counted optimizer step)")
        return None

    def as_dict(self) -> dict:
        return {"gradient_passes": self.gradient_passes, "optimizer_steps": self.optimizer_steps}


ENVS = (gym.Env, gym.vector.VectorEnv)  # every gymnasium environment, single or vectorized, is one of these
WRAPPERS = (gym.Wrapper, gym.vector.VectorWrapper)
_permitted_envs = 0  # > 0 while task.make_env() (or the free validation) builds an environment
_enforcing: Meter | None = None  # the meter of the run under way


def _new_env(cls: type, *_args: Any, **_kwargs: Any) -> gym.Env:
    """gymnasium.Env.__new__ while the guard is installed: a run may create an env only through the task
    (wrappers are free: they step the env they wrap)."""
    if _enforcing is not None and _permitted_envs == 0 and not issubclass(cls, WRAPPERS):
        hint = " (to play several at once, step several task envs side by side)" \
            if issubclass(cls, gym.vector.VectorEnv) else ""
        _enforcing.refuse(f"created an environment ({cls.__name__}) outside task.make_env(), whose steps are "
                          f"charged{hint}")
    return object.__new__(cls)


@contextlib.contextmanager
def env_creation() -> Iterator[None]:
    """Within this block an environment may be created: `task.make_env()` and validation use it."""
    global _permitted_envs
    _permitted_envs += 1
    try:
        yield
    finally:
        _permitted_envs -= 1


def permitted(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` (which creates environments), run inside `env_creation()`."""

    def run_permitted(*args: Any, **kwargs: Any) -> Any:
        with env_creation():
            return function(*args, **kwargs)

    return run_permitted


@contextlib.contextmanager
def enforced(meter: Meter) -> Iterator[Observed]:
    """Within this block (a method's run), the rules of the module docstring hold; on leaving it
    they lapse."""
    global _enforcing
    observed = Observed()

    def charge_foreign(optimizer: torch.optim.Optimizer, *_: Any) -> None:
        observed.optimizer_steps += 1
        if optimizer not in meter.charged_optimizers:
            meter.charge("gradient_updates", route="a step of an optimizer not made by task.make_optimizer")

    def counted(gradients: Callable[..., Any]) -> Callable[..., Any]:
        def counted_gradients(*args: Any, **kwargs: Any) -> Any:
            observed.gradient_passes += 1
            return gradients(*args, **kwargs)

        return counted_gradients

    backward, grad = torch.autograd.backward, torch.autograd.grad
    # Left in place after the run (removing a __new__ again leaves CPython's slot calling
    # object.__new__ with the constructor's arguments, which it refuses); outside a run it does nothing.
    for base in ENVS:
        base.__new__ = staticmethod(_new_env)
    _enforcing = meter
    handle = register_optimizer_step_pre_hook(charge_foreign)
    torch.autograd.backward, torch.autograd.grad = counted(backward), counted(grad)
    try:
        yield observed
    finally:
        torch.autograd.backward, torch.autograd.grad = backward, grad
        handle.remove()
        _enforcing = None
