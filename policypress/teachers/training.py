"""Train SB3 teachers from an env spec, keep the best checkpoint as a `Policy`, and record what
training cost (env steps and gradient updates: the during-training track's budget builds on it).
"""

from __future__ import annotations

import logging
import math
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from stable_baselines3.common.callbacks import BaseCallback

from policypress.core.envs import Validator, make_env
from policypress.core.io import write_json
from policypress.core.policy import Policy
from policypress.core.sb3 import build_model, count_optimizer_steps, to_policy
from policypress.measure.evaluate import eval_seeds, policy_returns, random_returns
from policypress.measure.onnx_export import export_onnx

log = logging.getLogger("policypress.teachers")


class TrainingMonitor(BaseCallback):
    """Logs progress every tenth of training and keeps the best checkpoint.

    Progress is plain log lines rather than a bar, because Snakemake sends the output to a
    log file. Checkpoint selection (as rl-baselines3-zoo publishes its best model): at
    `count` evenly spaced points, the last at the end, the current actor is converted and played
    on validation seeds (VALIDATION_SEED_OFFSET + i: neither training nor held-out
    evaluation seeds); the best one becomes the teacher. With count 0, the final model is.
    """

    def __init__(self, total: int, env_spec: dict, count: int, episodes: int, zip_path: Path):
        super().__init__()
        self.total, self.env_spec, self.zip_path = total, env_spec, zip_path
        self.report_every = max(1, total // 10)
        self.check_every, self.count = (total // count if count else None), count
        self.validate = Validator(env_spec, episodes, count)  # the last checkpoint is the end
        self.started = time.time()
        self.next_report, self.next_check = self.report_every, self.check_every
        self.history: list[dict] = []
        self.best: tuple[float, Policy] | None = None

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_report:
            self.next_report += self.report_every
            episodes = [info["r"] for info in self.model.ep_info_buffer]
            recent = f"{np.mean(episodes):.1f}" if episodes else "n/a"
            log.info("%d/%d steps (%.0f%%), %.0f steps/s, mean return of the last %d episodes: %s",
                     self.num_timesteps, self.total, 100 * self.num_timesteps / self.total,
                     self.num_timesteps / (time.time() - self.started), len(episodes), recent)
        if (self.check_every and self.num_timesteps >= self.next_check and self.num_timesteps < self.total
                and len(self.history) < self.count - 1):  # count - 1 while training, the last at the end
            self.next_check += self.check_every
            self.checkpoint()
        return True

    def checkpoint(self) -> None:
        policy = to_policy(self.model, self.model.get_vec_normalize_env())
        if self.check_every is None:  # no selection: the final model is the teacher
            self.best = (math.nan, policy)
            self.model.save(self.zip_path)
            return
        score = self.validate(policy)
        self.history.append({"step": self.num_timesteps, "validation_return": score})
        log.info("checkpoint at %d steps: validation return %.1f", self.num_timesteps, score)
        if self.best is None or score >= self.best[0]:  # the later on ties: it has trained longer
            self.best = (score, policy)
            self.model.save(self.zip_path)


def floor_check(teacher: dict, validation_return: float, env: str, seed: int) -> dict:
    """The spec's floor and whether the teacher's validation return reaches it (logged when it does not)."""
    if "floor" not in teacher or math.isnan(validation_return):
        return {}
    floor = teacher["floor"]["return"]
    if validation_return < floor:
        log.warning("teacher %s/%d is below its floor: validation return %.1f < %g (%s)", env, seed,
                    validation_return, floor, teacher["floor"]["source"])
    return {"floor": floor, "meets_floor": bool(validation_return >= floor)}


def train_teacher(env_spec: dict, profile: str, seed: int, out_dir: str | Path, device: str = "auto") -> dict:
    """Train, convert and evaluate one teacher; write model.zip, policy/, policy.onnx and teacher.json.

    `device` is SB3's ("auto": a GPU when present); the converted policy is always on the CPU.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # jobs run in parallel; one thread each also keeps results repeatable
    teacher = env_spec["teacher"]
    model = build_model(teacher, lambda: make_env(env_spec, teacher_training=True), seed, device)
    selection = teacher.get("checkpoints", {"count": 0, "episodes": 1})
    steps = teacher["timesteps"][profile]
    monitor = TrainingMonitor(steps, env_spec, selection["count"], selection["episodes"], out_dir / ".model.tmp.zip")
    started = time.time()
    with count_optimizer_steps() as updates:
        model.learn(total_timesteps=steps, callback=monitor)
    train_seconds = time.time() - started
    monitor.checkpoint()  # the final model is a candidate too
    (out_dir / ".model.tmp.zip").replace(out_dir / "model.zip")

    validation_return, policy = monitor.best
    return write_teacher(out_dir, policy, env_spec, profile, seed, {
        "algo": teacher["algo"],
        "timesteps": steps,
        "train_seconds": round(train_seconds, 1),
        # What training spent (checkpoint selection's validation episodes are not training): the
        # during-training track gets this plus the compression budget.
        "training_cost": {"env_steps": int(model.num_timesteps), "gradient_updates": updates.count},
        "device": str(model.device),
        "checkpoints": monitor.history,
        "validation_return": None if math.isnan(validation_return) else validation_return,
        **floor_check(teacher, validation_return, env_spec["name"], seed),
    })


def write_teacher(out_dir: Path, policy: Policy, env_spec: dict, profile: str, seed: int, info: dict) -> dict:
    """Evaluate a teacher on the profile's held-out seeds and write policy/, policy.onnx and teacher.json
    (with `info`): the teacher folder every later rule reads, whether trained here or imported."""
    policy.metadata.update({"env": env_spec["name"], "seed": seed, "algo": info["algo"]})
    seeds = eval_seeds(env_spec, profile)
    info = {
        "env": env_spec["name"],
        "seed": seed,
        "profile": profile,
        **info,
        "eval_seeds": seeds,
        "eval_returns": policy_returns(policy, env_spec, seeds),
        "random_returns": random_returns(env_spec, seeds),
        "versions": {"stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__,
                     "gymnasium": gym.__version__, "python": platform.python_version()},
    }
    policy.save(out_dir / "policy")
    export_onnx(policy, out_dir / "policy.onnx")  # the deployable teacher
    write_json(out_dir / "teacher.json", info)  # written last: its presence marks a finished teacher
    return info
