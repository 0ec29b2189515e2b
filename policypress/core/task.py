"""What a method's `compress(task)` receives: everything it may use, and nothing else."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from policypress.core.budget import Budget, Meter, TeacherOracle, charge_steps
from policypress.core.policy import Policy, resolve_device


@dataclasses.dataclass
class Task:
    """One compression job: a teacher, a level, a seed and the counted resources.

    - `teacher`: a copy of the teacher `Policy`, sealed: read its weights, run it via `oracle` (its
      network refuses to run); `teacher.clone()` is an unsealed copy to start a student from. None
      for a during-training method, which trains from random weights and gets no teacher query.
    - `make_env()`: a new environment whose steps are charged to the budget.
    - `oracle(obs_batch)`: the teacher's raw outputs, one teacher query per observation.
    - `make_optimizer(params, name="adam", **kw)`: a torch optimizer whose steps are charged;
      `charge_updates(optimizer)` charges the steps of one made elsewhere (e.g. SB3's own).
    - `level`: the ceiling on the student's nonzero parameters, as a fraction of the teacher's;
      `max_params` is that ceiling as a count.
    - `hyperparameters`: the method's declared defaults with the config's overrides.
    - `seed` and `rng`: seed every source of randomness from these (torch is seeded already).
      Seeds for `make_env().reset` must stay below the evaluation seeds (1e6 and up).
    - `budget` (the limits) and `remaining(resource)`: plan the spending with these.
    - `log`: a logger whose lines go to the job's log file; `scratch`: a private folder.
    - `teacher_training`: how the teacher was trained, the env spec's `teacher` section (`algo`,
      `policy`, `hyperparameters`): what a during-training method trains with.
    - `validate(policy)`: a during-training run's checkpoint selection, as the teacher's: the mean return
      on the validation episodes, free, at most as many times as the teacher had checkpoints;
      None for a post-training method, whose evaluations are charged env steps.
    - `teacher_cost`: for a during-training run, the env steps and updates the teacher's training
      spent (its budget is this plus the compression budget), so that it can plan SB3's schedules.
    - `device`: where training may run (the config's `device`; `auto` takes a GPU when present);
      the oracle answers there. `distill` and the during-training loop (SB3) train there, and hand
      the student back on the CPU; the policy a method returns is moved to the CPU in any case.
    """

    teacher: Policy | None
    make_env: Callable[[], gym.Env]
    oracle: TeacherOracle | Callable[[np.ndarray], torch.Tensor]
    make_optimizer: Callable[..., torch.optim.Optimizer]
    level: float
    max_params: int
    hyperparameters: dict
    seed: int
    rng: np.random.Generator
    budget: Budget
    log: logging.Logger
    scratch: Path
    teacher_training: dict
    _meter: Meter = dataclasses.field(repr=False)  # the harness's; methods only read `remaining`
    device_request: str = "cpu"
    validate: Callable[[Policy], float] | None = None
    teacher_cost: dict | None = None  # a during-training run's: what the teacher's training spent

    @property
    def device(self) -> torch.device:
        return resolve_device(self.device_request)

    def charge_updates(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """`optimizer`, each of whose steps is now charged one gradient update."""
        return charge_steps(optimizer, self._meter)

    def remaining(self, resource: str) -> int:
        """What is left of `env_steps`, `teacher_queries` or `gradient_updates`."""
        return self._meter.remaining(resource)
