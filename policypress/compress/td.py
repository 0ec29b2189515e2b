"""DQN's own RL loss on a `Policy`, through the counted resources, for methods that keep training
a DQN teacher's network with the teacher's algorithm instead of distilling it.

It follows stable-baselines3's `DQN.train`: the Huber loss between Q(s, a) and
r + γ (1 - terminated) max_a' Q_target(s', a'), minibatches from a replay buffer, Adam at the
teacher's learning rate, gradients clipped to norm `max_grad_norm`, and a hard target update
every `target_update_interval` env steps, all with the teacher's hyperparameters (SB3's
defaults where its spec sets none). The network is already trained, so it acts ε-greedily at
the teacher's final ε from the start, on the reward the teacher learned from (the spec's
`train_wrappers`, e.g. Atari's reward clipping, wrap the counted env). Env steps and updates
are spent at the budget's ratio: as in SB3, updates come in bursts every `train_freq` env
steps (as many as are due by then), so the target, synchronised between env steps, holds
still during a burst. No teacher query is made.

Not SB3's DQN itself: its `train()` builds the loss inside, so neither a regularizer nor the
re-application of masks after each update could be added, and its optimizer would not be the
counted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from policypress.compress.distillation import SEED_RANGE
from policypress.core.envs import apply_wrappers
from policypress.core.policy import Policy
from policypress.core.task import Task

SB3_DQN_DEFAULTS = {"learning_rate": 1e-4, "batch_size": 32, "gamma": 0.99, "target_update_interval": 10_000,
                    "train_freq": 4, "exploration_final_eps": 0.05, "max_grad_norm": 10.0}


@dataclasses.dataclass(frozen=True)
class DQNSettings:
    learning_rate: float
    batch_size: int
    gamma: float
    target_update_interval: int
    train_freq: int
    exploration_final_eps: float
    max_grad_norm: float

    @classmethod
    def of_teacher(cls, teacher_training: dict, **overrides) -> DQNSettings:
        """The teacher's DQN hyperparameters (the env spec's `teacher` section), with a method's overrides."""
        if teacher_training["algo"] != "dqn":
            raise ValueError(f"the teacher was trained with {teacher_training['algo']!r}, not DQN")
        hp = {**SB3_DQN_DEFAULTS, **teacher_training.get("hyperparameters", {}), **overrides}
        return cls(**{field.name: type(SB3_DQN_DEFAULTS[field.name])(hp[field.name])
                      for field in dataclasses.fields(cls)})


def td_loss(student: Policy, target: Policy, batch: tuple[torch.Tensor, ...], gamma: float) -> torch.Tensor:
    """Huber loss between Q(s, a) and the one-step target r + γ (1 - terminated) max_a' Q_target(s', a')."""
    obs, actions, rewards, next_obs, terminated = batch
    with torch.no_grad():
        targets = rewards + gamma * (1.0 - terminated) * target(next_obs).max(dim=1).values
    chosen = student(obs).gather(1, actions[:, None]).squeeze(1)
    return F.smooth_l1_loss(chosen, targets)


class Transitions:
    """FIFO replay buffer of (obs, action, reward, next obs, terminated), allocated on the first add."""

    def __init__(self, capacity: int):
        self.capacity, self.size, self.next = capacity, 0, 0
        self.arrays: list[np.ndarray] | None = None

    def add(self, *transition) -> None:
        values = [np.asarray(value) for value in transition]
        if self.arrays is None:
            self.arrays = [np.zeros((self.capacity, *v.shape), dtype=v.dtype) for v in values]
        for array, value in zip(self.arrays, values, strict=True):
            array[self.next] = value
        self.next = (self.next + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def __len__(self) -> int:
        return self.size

    def sample(self, batch_size: int, rng: np.random.Generator, device: torch.device | str = "cpu"
               ) -> tuple[torch.Tensor, ...]:
        index = rng.integers(0, self.size, size=batch_size)
        obs, actions, rewards, next_obs, terminated = (array[index] for array in self.arrays)
        return (torch.as_tensor(obs, device=device), torch.as_tensor(actions, dtype=torch.int64, device=device),
                torch.as_tensor(rewards, dtype=torch.float32, device=device), torch.as_tensor(next_obs, device=device),
                torch.as_tensor(terminated, dtype=torch.float32, device=device))


def play_and_update(task: Task, act: Callable[[np.ndarray], np.ndarray], settings: DQNSettings, buffer_size: int,
                    steps: int, slots: int, update: Callable[[tuple[torch.Tensor, ...], int, int], None],
                    device: torch.device | str = "cpu") -> None:
    """Play `steps` env steps ε-greedily with `act` (observation -> action) into a replay buffer, and call
    `update(batch, slot, env_step)` `slots` times, in bursts every `train_freq` steps of as many
    as are due at an even rate (once the replay holds a batch), with the batch on `device`. Logs
    the return of the last episodes every tenth of the steps."""
    # The reward the teacher's Q-values were trained on (e.g. Atari's clipped reward); steps still count.
    env = apply_wrappers(task.make_env(), task.teacher_training.get("train_wrappers", []))
    obs, _ = env.reset(seed=int(task.rng.integers(SEED_RANGE)))
    replay = Transitions(buffer_size)
    done, episode_return, returns = 0, 0.0, []
    for step in range(1, steps + 1):
        if task.rng.random() < settings.exploration_final_eps:  # seeded: the space's own sampler is not
            action = np.int64(task.rng.integers(env.action_space.n))
        else:
            action = act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(obs, action, reward, next_obs, terminated)
        episode_return += float(reward)
        obs = next_obs
        if terminated or truncated:
            returns.append(episode_return)
            obs, episode_return = env.reset()[0], 0.0
        burst = step % settings.train_freq == 0 or step == steps
        while burst and done < step * slots // steps and len(replay) >= settings.batch_size:
            done += 1
            update(replay.sample(settings.batch_size, task.rng, device), done, step)
        if step % max(1, steps // 10) == 0:
            task.log.info("TD step %d/%d: %d updates, mean return of the last 10 episodes %.1f", step, steps, done,
                          float(np.mean(returns[-10:])) if returns else float("nan"))


def td_step(student: Policy, target: Policy, batch: tuple[torch.Tensor, ...], optimizer: torch.optim.Optimizer,
            settings: DQNSettings, regularizer: Callable[[Policy, torch.Tensor], torch.Tensor] | None = None) -> float:
    """One update of `student` towards `target`'s TD targets; masks are re-applied after it. Returns the TD loss."""
    loss = td_loss(student, target, batch, settings.gamma)
    total = loss + regularizer(student, batch[0]) if regularizer is not None else loss
    optimizer.zero_grad()
    total.backward()
    weights = dict(student.net.named_parameters())
    for name, mask in student.masks.items():  # masked weights take no part in the clipping norm
        weights[name].grad.mul_(mask)
    torch.nn.utils.clip_grad_norm_(student.parameters(), settings.max_grad_norm)
    optimizer.step()
    student.apply_masks()
    return loss.item()


def train_td(task: Task, student: Policy, settings: DQNSettings, buffer_size: int,
             regularizer: Callable[[Policy, torch.Tensor], torch.Tensor] | None = None,
             after_update: Callable[[int, int], None] | None = None) -> Policy:
    """Train `student` with DQN's loss on the whole remaining env-step and update budget; the
    target network is synchronised every `target_update_interval` env steps.

    The hooks are `distill`'s: `regularizer(student, obs)` is added to each minibatch's loss and
    `after_update(update, updates)` runs after each update; masks are re-applied after each update.
    Trains on `task.device` (without hooks) and returns the student on the CPU.
    """
    updates = task.remaining("gradient_updates")
    if task.remaining("env_steps") == 0 or updates == 0:
        task.log.warning("no budget left for TD training: returning the student unchanged")
        return student
    # Hooks are a method's own code, not yet checked on a GPU: with hooks, training stays on the CPU.
    target = student.to(task.device if regularizer is None and after_update is None else "cpu").clone()
    optimizer = task.make_optimizer(student.parameters(), "adam", lr=settings.learning_rate)
    synced = 0

    def update(batch: tuple[torch.Tensor, ...], slot: int, step: int) -> None:
        nonlocal synced
        if step // settings.target_update_interval > synced:
            synced = step // settings.target_update_interval
            target.load_state_dict(student.state_dict())
        td_step(student, target, batch, optimizer, settings, regularizer)
        if after_update is not None:
            after_update(slot, updates)

    student.train()
    play_and_update(task, student.act, settings, buffer_size, task.remaining("env_steps"), updates, update,
                    student.device)
    student.eval()
    return student.cpu()
