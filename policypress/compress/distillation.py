"""Policy distillation (Rusu et al. 2016) through the counted resources; shared by methods.

The student learns the teacher's outputs on states from a DAgger-style mix of teacher and
student play: in round r, each step follows the teacher's action with probability
0.5**r and the student's otherwise, so the data covers the states the student will visit.
Every state is labelled by one teacher query; the labels fill a FIFO buffer that minibatch
updates sample from. The counted env is played as `PARALLEL_ENVS` envs side by side, so the
teacher and the student run on batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from policypress.core.policy import Policy
from policypress.core.task import Task

SEED_RANGE = 500_000  # env seeds for methods stay below the teachers' validation and evaluation seeds
# Envs a collector plays side by side: enough that a batched policy call costs little per env
# step, few enough that each env's trajectory spans whole episodes within a round of a small budget.
PARALLEL_ENVS = 8


# The distillation hyperparameters every distilling method declares (and may override).
DISTILL_HYPERPARAMETERS = {
    "rounds": 10,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "optimizer": "rmsprop",  # Rusu et al. (and PoPS) use RMSProp
    "temperature_q_values": 0.01,  # Rusu et al. / PoPS: sharpen the teacher's Q-values
    "temperature_logits": 1.0,  # policy logits are already a distribution's parameters
    "buffer_size": 100_000,
}


@dataclasses.dataclass
class DistillConfig:
    rounds: int
    batch_size: int
    learning_rate: float
    optimizer: str
    temperature: float
    buffer_size: int
    budget_fraction: float = 1.0  # share of each remaining budget this call may spend

    @classmethod
    def from_hyperparameters(cls, hp: dict, output: str, budget_fraction: float = 1.0) -> DistillConfig:
        """Pick this config's fields from a method's hyperparameters; the temperature by output kind."""
        temperature = hp["temperature_logits"] if output == "logits" else hp["temperature_q_values"]
        fields = {f.name for f in dataclasses.fields(cls)} - {"temperature", "budget_fraction"}
        return cls(temperature=temperature, budget_fraction=budget_fraction, **{k: hp[k] for k in fields})


def distillation_loss(student_out: torch.Tensor, teacher_out: torch.Tensor, output: str,
                      temperature: float) -> torch.Tensor:
    """KL(softmax(teacher/τ) ‖ softmax(student)) for Q-values and logits; MSE for continuous actions."""
    if output == "action":
        return F.mse_loss(student_out, teacher_out)
    target = F.softmax(teacher_out / temperature, dim=-1)
    return F.kl_div(F.log_softmax(student_out, dim=-1), target, reduction="batchmean")


class LabelledStates:
    """FIFO ring buffer of (observation, teacher output) pairs, allocated on the first add."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.size = 0
        self.next = 0
        self.obs: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def add(self, obs: np.ndarray, labels: torch.Tensor) -> None:
        """Add a batch: observations (batch × obs shape) and their labels (batch × outputs)."""
        obs = torch.as_tensor(obs)
        if self.obs is None:
            self.obs = torch.zeros((self.capacity, *obs.shape[1:]), dtype=obs.dtype)
            self.labels = torch.zeros((self.capacity, *labels.shape[1:]), dtype=labels.dtype)
        index = (self.next + torch.arange(len(obs))) % self.capacity
        self.obs[index] = obs
        self.labels[index] = labels
        self.next = (self.next + len(obs)) % self.capacity
        self.size = min(self.size + len(obs), self.capacity)

    def __len__(self) -> int:
        return self.size

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.from_numpy(rng.integers(0, self.size, size=batch_size))
        return self.obs[index], self.labels[index]

    def batches(self, batch_size: int, count: int, rng: np.random.Generator):
        """`count` minibatches, as `sample` draws them, with every index drawn at once."""
        for index in torch.from_numpy(rng.integers(0, self.size, size=(count, batch_size))):
            yield self.obs[index], self.labels[index]

    def observations(self) -> torch.Tensor:
        """A copy of every stored observation (later adds overwrite the buffer once it is full)."""
        return self.obs[:self.size].clone()


class Collector:
    """Plays `PARALLEL_ENVS` counted envs side by side with a teacher/student mix, and labels
    each state with the oracle: one oracle call and at most one student call per step of the
    batch, instead of one of each per env step. Every env step and every teacher query is still
    charged, one each."""

    def __init__(self, task: Task, parallel: int = PARALLEL_ENVS):
        self.task = task
        self.envs = [task.make_env() for _ in range(parallel)]
        self.obs = np.stack([env.reset(seed=int(task.rng.integers(SEED_RANGE)))[0] for env in self.envs])
        self.episode_returns = np.zeros(parallel)

    @torch.no_grad()
    def collect(self, student: Policy, steps: int, teacher_prob: float, buffer: LabelledStates) -> list[float]:
        """Play `steps` env steps in all (the last batch may use only some envs); return the returns
        of the episodes that ended meanwhile. Each step follows the teacher with `teacher_prob`."""
        finished = []
        while steps > 0:
            playing = min(steps, len(self.envs))
            obs = self.obs[:playing]
            labels = self.task.oracle(obs).to(student.device)
            student_acts = self.task.rng.random(playing) >= teacher_prob
            out = labels.clone()
            if student_acts.any():
                out[student_acts] = student(torch.as_tensor(obs[student_acts], device=student.device)).to(out.dtype)
            actions = student.head(out).cpu().numpy()
            buffer.add(obs, labels.cpu())
            for i, env in enumerate(self.envs[:playing]):
                self.obs[i], reward, terminated, truncated, _ = env.step(actions[i])
                self.episode_returns[i] += float(reward)
                if terminated or truncated:
                    finished.append(float(self.episode_returns[i]))
                    self.obs[i], _ = env.reset()
                    self.episode_returns[i] = 0.0
            steps -= playing
        return finished


def distill(task: Task, student: Policy, config: DistillConfig, buffer: LabelledStates | None = None,
            regularizer: Callable[[Policy, torch.Tensor], torch.Tensor] | None = None,
            after_update: Callable[[int, int], None] | None = None) -> Policy:
    """Train `student` to match the teacher within `config.budget_fraction` of the remaining budget.

    Trains on `task.device` (without hooks) and returns the student on the CPU. Masked weights stay zero: the
    masks are re-applied after every update. Optional hooks for
    methods that prune while distilling: `buffer` keeps the labelled states across calls,
    `regularizer(student, obs)` is added to each minibatch's loss, and
    `after_update(update, updates)` runs after each update (1-based) of the `updates` planned.
    """
    fraction = config.budget_fraction
    states = int(min(task.remaining("env_steps"), task.remaining("teacher_queries")) * fraction)
    updates = int(task.remaining("gradient_updates") * fraction)
    rounds = max(1, min(config.rounds, max(states, 1), updates))
    buffer = LabelledStates(config.buffer_size) if buffer is None else buffer
    if updates == 0 or (states == 0 and len(buffer) == 0):
        task.log.warning("no budget left to distill: returning the student unchanged")
        return student
    # The buffer stays on the CPU; each minibatch goes to the device. Hooks are a method's own code,
    # written against CPU tensors and not yet checked on a GPU: with hooks, training stays on the CPU.
    device = student.to(task.device if regularizer is None and after_update is None else "cpu").device
    optimizer = task.make_optimizer(student.parameters(), config.optimizer, lr=config.learning_rate)
    collector = Collector(task)
    student.train()
    done = 0
    for round_index in range(rounds):
        # Split states and updates evenly; the first rounds take the remainders.
        collector.collect(student, states // rounds + (round_index < states % rounds), 0.5**round_index, buffer)
        round_updates = updates // rounds + (round_index < updates % rounds)
        loss_sum = torch.zeros((), device=device)  # summed without a per-update .item(): read once per round
        for obs, labels in buffer.batches(config.batch_size, round_updates, task.rng):
            obs, labels = obs.to(device), labels.to(device)
            loss = distillation_loss(student(obs), labels, student.output, config.temperature)
            if regularizer is not None:
                loss = loss + regularizer(student, obs)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            student.apply_masks()
            loss_sum += loss.detach()
            done += 1
            if after_update is not None:
                after_update(done, updates)
        task.log.info("distill round %d/%d: %d states, loss %.5f", round_index + 1, rounds, len(buffer),
                      loss_sum.item() / round_updates if round_updates else float("nan"))
    student.eval()
    return student.cpu()
