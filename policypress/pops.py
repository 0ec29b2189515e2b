"""PoPS, policy pruning and shrinking (Livne & Cohen 2020), on the counted resources.

One PoPS iteration:
1. IPP, iterative policy pruning: the frozen teacher plays and labels its states; the student
   is distilled on them (KL at τ = 0.01 on Q-values) while layer-wise magnitude masks follow
   the Zhu-Gupta ramp towards `final_sparsity`. Up to `evaluations` times per phase, evenly
   spaced over its updates and as many as its env steps pay for, the student plays
   `eval_episodes` episodes: a score below the lower bound pauses the ramp until it recovers;
   the sparsest student scoring at least the objective is the best sparse model. IPP stops
   when the score stays below the bound, or the sparsity stays unchanged, for `patience`
   evaluations, or when its share of the budget is spent.
2. Shrinking: the best sparse model's per-layer redundancy gives new dense widths
   (`policypress.shrinking`), never larger than the current network.
3. Re-distillation: the new dense network is trained from scratch on teacher data, stopping
   early after `patience` evaluations at or above the objective.
Iterations repeat until the size changes by less than `size_tolerance` (a fraction of the
teacher's size) or `iterations` are done. The result must fit the level's ceiling: if it does
not, it is shrunk uniformly to the ceiling; whatever budget is left fine-tunes the result.

Thresholds are relative to the teacher's return R, measured on the teacher's own episodes
while it collects data: objective = R - (1 - objective_fraction)|R|, lower bound =
R - (1 - lower_bound_fraction)|R| (95% and 50% of R for positive returns).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from policypress.architecture import hidden_widths, resized, uniformly_shrunk
from policypress.distillation import (
    DISTILL_HYPERPARAMETERS,
    SEED_RANGE,
    Collector,
    DistillConfig,
    LabelledStates,
    distill,
    distillation_loss,
)
from policypress.metrics import params
from policypress.policy import Policy
from policypress.pruning import (
    GatedStep,
    ceiling_weights,
    layerwise_magnitude_masks,
    polynomial_sparsity,
    weight_count,
    weight_layers,
)
from policypress.shrinking import kept_counts, shrunk_widths
from policypress.task import Task

POPS_HYPERPARAMETERS = {
    **DISTILL_HYPERPARAMETERS,
    "objective_fraction": 0.95,
    "lower_bound_fraction": 0.5,
    "final_sparsity": 0.99,  # per layer, as in the authors' CartPole and LunarLander configs
    "ramp_fraction": 0.8,  # the ramp ends after this share of an IPP phase's updates
    "mask_every": 10,  # updates between mask updates (the authors' CartPole/LunarLander value)
    "evaluations": 10,  # per phase at most, evenly spaced; fewer when the phase's env steps cannot pay
    "eval_episodes": 2,
    "patience": 5,
    "iterations": 3,
    "size_tolerance": 0.0005,  # of the teacher's size: the authors' 0.05 percentage points
    "min_width": 3,
    "teacher_data_fraction": 0.5,  # of a phase's env steps; the rest pays for evaluations
}


@dataclasses.dataclass
class Phase:
    """A slice of the budget, fixed when the phase starts."""

    env_steps: int
    queries: int
    updates: int

    @classmethod
    def share(cls, task: Task, fraction: float) -> Phase:
        return cls(int(task.remaining("env_steps") * fraction), int(task.remaining("teacher_queries") * fraction),
                   int(task.remaining("gradient_updates") * fraction))


class Evaluator:
    """Plays the student in the counted env; evaluation episodes are charged as env steps."""

    def __init__(self, task: Task, episodes: int):
        self.task, self.episodes = task, episodes
        self.env = task.make_env()
        self.max_steps = self.env.spec.max_episode_steps or 1000

    def affordable(self, env_step_limit: int) -> bool:
        return self.episodes * self.max_steps <= min(env_step_limit, self.task.remaining("env_steps"))

    def interval(self, env_steps: int, updates: int) -> int | None:
        """Updates between evaluations: as many as `env_steps` pay for, at most `count`."""
        count = min(self.task.hyperparameters["evaluations"], env_steps // (self.episodes * self.max_steps))
        return max(1, updates // count) if count > 0 and updates > 0 else None

    @torch.no_grad()
    def score(self, policy: Policy) -> float:
        returns = []
        for _ in range(self.episodes):
            obs, _ = self.env.reset(seed=int(self.task.rng.integers(SEED_RANGE)))
            total, done, steps = 0.0, False, 0
            while not done:
                obs, reward, terminated, truncated, _ = self.env.step(policy.act(obs))
                total += float(reward)
                steps += 1
                done = terminated or truncated or steps >= self.max_steps
            returns.append(total)
        return float(np.mean(returns))


@dataclasses.dataclass
class Thresholds:
    objective: float
    lower_bound: float

    @classmethod
    def relative_to(cls, reference: float, hp: dict) -> Thresholds:
        return cls(reference - (1 - hp["objective_fraction"]) * abs(reference),
                   reference - (1 - hp["lower_bound_fraction"]) * abs(reference))


class PoPS:
    """The state shared by the phases of one PoPS run: task, hyperparameters, evaluator."""

    def __init__(self, task: Task):
        self.task, self.hp = task, task.hyperparameters
        self.config = DistillConfig.from_hyperparameters(self.hp, task.teacher.output)
        self.evaluator = Evaluator(task, self.hp["eval_episodes"])
        self.collector = Collector(task)
        self.thresholds: Thresholds | None = None

    def teacher_data(self, phase: Phase) -> LabelledStates:
        """The teacher plays (ε = 0, as the authors' CartPole code) and labels its states."""
        buffer = LabelledStates(self.config.buffer_size)
        steps = min(int(phase.env_steps * self.hp["teacher_data_fraction"]), phase.queries)
        returns = self.collector.collect(self.task.teacher, steps, 1.0, buffer)
        while self.thresholds is None and not returns:  # the thresholds need one whole teacher episode
            returns = self.collector.collect(self.task.teacher, 1, 1.0, buffer)
        if self.thresholds is None:
            self.thresholds = Thresholds.relative_to(float(np.mean(returns)), self.hp)
            self.task.log.info("teacher return %.1f: objective %.1f, lower bound %.1f", np.mean(returns),
                               self.thresholds.objective, self.thresholds.lower_bound)
        return buffer

    def train(self, student: Policy, buffer: LabelledStates, optimizer: torch.optim.Optimizer) -> None:
        obs, labels = buffer.sample(self.config.batch_size, self.task.rng)
        loss = distillation_loss(student(obs), labels, student.output, self.config.temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        student.apply_masks()

    def evaluate(self, student: Policy, phase_env_steps: int) -> float | None:
        if not self.evaluator.affordable(phase_env_steps):
            return None
        student.eval()
        score = self.evaluator.score(student)
        student.train()
        return score

    def ipp(self, student: Policy, phase: Phase, final_sparsity: float) -> Policy:
        """Prune `student` by distillation; return the sparsest model that met the objective
        (the unpruned student if none did)."""
        env_limit = self.task.remaining("env_steps") - phase.env_steps
        buffer = self.teacher_data(phase)
        interval = self.evaluator.interval(self.task.remaining("env_steps") - env_limit, phase.updates)
        if interval is None or len(buffer) == 0:
            self.task.log.warning("IPP skipped: its share of the budget pays for no evaluation or no teacher data")
            return student
        optimizer = self.task.make_optimizer(student.parameters(), self.config.optimizer, lr=self.config.learning_rate)
        gate = GatedStep(self.thresholds.lower_bound)
        ramp_end = max(1, int(phase.updates * self.hp["ramp_fraction"]))
        best, best_sparsity, sparsity, unchanged, last_sparsity = student.clone(), 0.0, 0.0, 0, -1.0
        student.train()
        for update in range(phase.updates):
            if update % self.hp["mask_every"] == 0:
                sparsity = polynomial_sparsity(gate.step, final_sparsity, 0, ramp_end)
                student.masks = layerwise_magnitude_masks(student, sparsity)
                student.apply_masks()
            self.train(student, buffer, optimizer)
            gate.advance()
            if (update + 1) % interval:
                continue
            score = self.evaluate(student, self.task.remaining("env_steps") - env_limit)
            if score is None:
                continue
            gate.evaluated(score)
            self.task.log.info("IPP update %d: sparsity %.3f, score %.1f%s", update + 1, sparsity, score,
                               " (ramp paused)" if gate.paused else "")
            if score >= self.thresholds.objective and sparsity > best_sparsity:
                best, best_sparsity = student.clone(), sparsity
            unchanged = unchanged + 1 if sparsity == last_sparsity else 0
            last_sparsity = sparsity
            if gate.below_streak >= self.hp["patience"] or unchanged >= self.hp["patience"]:
                break
        student.eval()
        return best

    def fit(self, student: Policy, phase: Phase) -> Policy:
        """Re-distil a dense network; stop early after `patience` evaluations at the objective."""
        env_limit = self.task.remaining("env_steps") - phase.env_steps
        buffer = self.teacher_data(phase)
        if len(buffer) == 0:
            return student
        interval = self.evaluator.interval(self.task.remaining("env_steps") - env_limit, phase.updates)
        optimizer = self.task.make_optimizer(student.parameters(), self.config.optimizer, lr=self.config.learning_rate)
        successes = 0
        student.train()
        for update in range(phase.updates):
            self.train(student, buffer, optimizer)
            if interval and (update + 1) % interval == 0:
                score = self.evaluate(student, self.task.remaining("env_steps") - env_limit)
                successes += score is not None and score >= self.thresholds.objective
                if successes >= self.hp["patience"]:
                    break
        student.eval()
        return student

    def shrink(self, current: Policy, best: Policy, max_size: int) -> Policy:
        initial = {name: int(torch.count_nonzero(layer.weight)) for name, layer in weight_layers(current).items()}
        widths = shrunk_widths(current, kept_counts(best, initial), max_size, self.hp["min_width"])
        self.task.log.info("shrinking %s -> %s", hidden_widths(current), widths)
        return resized(current, widths)

    def fit_to_ceiling(self, policy: Policy) -> Policy:
        """The result must fit the level's ceiling; the budget left fine-tunes it."""
        if params(policy)[0] > self.task.max_params:  # the result is dense: its total must fit
            self.task.log.info("above the ceiling: shrinking uniformly to %d parameters", self.task.max_params)
            policy = uniformly_shrunk(policy, self.task.max_params)
        return distill(self.task, policy, self.config)


def ceiling_sparsity(policy: Policy, max_params: int) -> float:
    """The layer-wise sparsity at which the masked `policy` fits `max_params` (biases kept; one
    weight per layer of margin for the per-layer rounding)."""
    margin = len(weight_layers(policy))
    return min(1.0, max(0.0, 1.0 - (ceiling_weights(policy, max_params) - margin) / weight_count(policy)))


def run_pops(task: Task) -> Policy:
    """Iterate IPP, shrinking and re-distillation (the module docstring)."""
    pops = PoPS(task)
    hp = pops.hp
    current, teacher_size = task.teacher.clone(), params(task.teacher)[0]
    for iteration in range(hp["iterations"]):
        share = 1.0 / (2 * (hp["iterations"] - iteration) + 1)  # the last share is the final fine-tuning
        best = pops.ipp(current.clone(), Phase.share(task, share), hp["final_sparsity"])
        size = params(current)[0]
        shrunk = pops.shrink(current, best, size)
        if (size - params(shrunk)[0]) / teacher_size < hp["size_tolerance"]:
            task.log.info("iteration %d: the size changed by less than the tolerance; stopping", iteration + 1)
            break
        current = pops.fit(shrunk, Phase.share(task, 1.0 / (2 * (hp["iterations"] - iteration))))
        task.log.info("iteration %d: %d parameters", iteration + 1, params(current)[0])
    return pops.fit_to_ceiling(current)


def run_ipp_only(task: Task) -> Policy:
    """Ablation: IPP alone, its ramp ending at the level's ceiling; no shrinking."""
    pops = PoPS(task)
    student = task.teacher.clone()
    target = ceiling_sparsity(student, task.max_params)
    if target >= 1.0:
        raise ValueError(f"the biases alone exceed the ceiling of {task.max_params} parameters")
    pruned = pops.ipp(student, Phase.share(task, 0.5), target)
    if params(pruned)[1] > task.max_params:  # the sparsest model that met the objective is above the ceiling
        pruned.masks = layerwise_magnitude_masks(pruned, target)
        pruned.apply_masks()
    return distill(task, pruned, pops.config)  # the rest of the budget fine-tunes it under its mask


def run_shrink_once(task: Task) -> Policy:
    """Ablation: one IPP to the level's sparsity, one shrink to the level's size, one re-distillation."""
    pops = PoPS(task)
    current = task.teacher.clone()
    best = pops.ipp(current.clone(), Phase.share(task, 0.4), ceiling_sparsity(current, task.max_params))
    shrunk = pops.shrink(current, best, min(params(current)[0], task.max_params))
    return pops.fit_to_ceiling(pops.fit(shrunk, Phase.share(task, 0.8)))

