"""Policy distillation (Rusu et al. 2016) through the counted resources; shared by methods.

The student learns the teacher's outputs on states from a DAgger-style mix of teacher and
student play: in round r, each step follows the teacher's action with probability
0.5**r and the student's otherwise, so the data covers the states the student will visit.
Every state is labelled by one teacher query; the labels fill a FIFO buffer that minibatch
updates sample from.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from policypress.policy import Policy
from policypress.task import Task

SEED_RANGE = 1_000_000  # env seeds for methods stay below every evaluation seed


@dataclasses.dataclass
class DistillConfig:
    rounds: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "rmsprop"
    temperature: float = 0.01
    buffer_size: int = 100_000
    budget_fraction: float = 1.0  # share of each remaining budget this call may spend

    @classmethod
    def from_hyperparameters(cls, hp: dict, output: str) -> DistillConfig:
        """Pick this config's fields from a method's hyperparameters; the temperature by output kind."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"temperature"}
        temperature = hp["temperature_logits"] if output == "logits" else hp["temperature_q_values"]
        return cls(temperature=temperature, **{k: v for k, v in hp.items() if k in fields})


# The distillation hyperparameters every distilling method declares (and may override).
DISTILL_HYPERPARAMETERS = {
    "rounds": 10,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "optimizer": "rmsprop",
    "temperature_q_values": 0.01,  # Rusu et al. / PoPS: sharpen the teacher's Q-values
    "temperature_logits": 1.0,  # policy logits are already a distribution's parameters
    "buffer_size": 100_000,
}


def distillation_loss(student_out: torch.Tensor, teacher_out: torch.Tensor, output: str,
                      temperature: float) -> torch.Tensor:
    """KL(softmax(teacher/τ) ‖ softmax(student)) for Q-values and logits; MSE for continuous actions."""
    if output == "action":
        return F.mse_loss(student_out, teacher_out)
    target = F.softmax(teacher_out / temperature, dim=-1)
    return F.kl_div(F.log_softmax(student_out, dim=-1), target, reduction="batchmean")


class LabelledStates:
    """FIFO buffer of (observation, teacher output) pairs."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.obs: list[np.ndarray] = []
        self.labels: list[torch.Tensor] = []

    def add(self, obs: np.ndarray, label: torch.Tensor) -> None:
        self.obs.append(obs)
        self.labels.append(label)
        if len(self.obs) > self.capacity:
            del self.obs[0], self.labels[0]

    def __len__(self) -> int:
        return len(self.obs)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        index = rng.integers(0, len(self.obs), size=batch_size)
        return (torch.as_tensor(np.stack([self.obs[i] for i in index])),
                torch.stack([self.labels[i] for i in index]))


class Collector:
    """Plays the counted env with a teacher/student mix and labels each state with the oracle."""

    def __init__(self, task: Task):
        self.task = task
        self.env = task.make_env()
        self.obs, _ = self.env.reset(seed=int(task.rng.integers(SEED_RANGE)))

    @torch.no_grad()
    def collect(self, student: Policy, steps: int, teacher_prob: float, buffer: LabelledStates) -> None:
        for _ in range(steps):
            label = self.task.oracle(self.obs)[0]
            follow_teacher = self.task.rng.random() < teacher_prob
            out = label[None] if follow_teacher else student(torch.as_tensor(self.obs[None]))
            action = student.head(out)[0].numpy()
            buffer.add(self.obs, label)
            self.obs, _, terminated, truncated, _ = self.env.step(action)
            if terminated or truncated:
                self.obs, _ = self.env.reset()


def distill(task: Task, student: Policy, config: DistillConfig) -> Policy:
    """Train `student` to match the teacher within `config.budget_fraction` of the remaining budget.

    Masked weights stay zero: the masks are re-applied after every update.
    """
    fraction = config.budget_fraction
    states = int(min(task.remaining("env_steps"), task.remaining("teacher_queries")) * fraction)
    updates = int(task.remaining("gradient_updates") * fraction)
    rounds = max(1, min(config.rounds, states, updates))
    if states == 0 or updates == 0:
        task.log.warning("no budget left to distill: returning the student unchanged")
        return student
    optimizer = task.make_optimizer(student.parameters(), config.optimizer, lr=config.learning_rate)
    buffer = LabelledStates(config.buffer_size)
    collector = Collector(task)
    student.train()
    for round_index in range(rounds):
        # Split states and updates evenly; the first rounds take the remainders.
        collector.collect(student, states // rounds + (round_index < states % rounds), 0.5**round_index, buffer)
        losses = []
        for _ in range(updates // rounds + (round_index < updates % rounds)):
            obs, labels = buffer.sample(config.batch_size, task.rng)
            loss = distillation_loss(student(obs), labels, student.output, config.temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            student.apply_masks()
            losses.append(loss.item())
        task.log.info("distill round %d/%d: %d states, loss %.5f", round_index + 1, rounds, len(buffer),
                      float(np.mean(losses)) if losses else float("nan"))
    student.eval()
    return student
