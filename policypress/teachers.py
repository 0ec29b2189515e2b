"""Train SB3 teachers from an env spec and convert their deployed actor into a `Policy`.

Only the deployed actor is converted: the Q-network for DQN; features + policy MLP + action
net for PPO/A2C; the actor for SAC/TD3. Value heads and critics are not part of the policy.
"""

from __future__ import annotations

import copy
import logging
import math
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from policypress.core.envs import make_env
from policypress.core.io import write_json
from policypress.core.policy import ActionHead, Policy, Preprocess
from policypress.measure.evaluate import VALIDATION_SEED_OFFSET, eval_seeds, policy_returns, random_returns
from policypress.measure.onnx_export import export_onnx

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3}
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
log = logging.getLogger("policypress.teachers")


class ConversionError(ValueError):
    """The SB3 model uses a feature the policy format cannot express."""


def linear_schedule(initial: float):
    """rl-baselines3-zoo's `lin_<x>`: decays linearly from x to 0 over training."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    return schedule


def sb3_kwargs(hyperparameters: dict) -> dict:
    """Turn the YAML hyperparameters into SB3 keyword arguments (schedules, activation names)."""
    kwargs = {}
    for key, value in hyperparameters.items():
        if isinstance(value, str) and value.startswith("lin_"):
            value = linear_schedule(float(value.removeprefix("lin_")))
        kwargs[key] = value
    policy_kwargs = dict(kwargs.get("policy_kwargs", {}))
    if "activation_fn" in policy_kwargs:
        policy_kwargs["activation_fn"] = ACTIVATIONS[policy_kwargs["activation_fn"]]
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    return kwargs


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
        self.check_every = total // count if count else None
        self.seeds = [VALIDATION_SEED_OFFSET + i for i in range(episodes)]
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
        if self.check_every and self.num_timesteps >= self.next_check and self.num_timesteps < self.total:
            self.next_check += self.check_every
            self.checkpoint()
        return True

    def checkpoint(self) -> None:
        policy = to_policy(self.model, self.model.get_vec_normalize_env())
        if self.check_every is None:  # no selection: the final model is the teacher
            self.best = (math.nan, policy)
            self.model.save(self.zip_path)
            return
        score = float(np.mean(policy_returns(policy, self.env_spec, self.seeds)))
        self.history.append({"step": self.num_timesteps, "validation_return": score})
        log.info("checkpoint at %d steps: validation return %.1f", self.num_timesteps, score)
        if self.best is None or score > self.best[0]:
            self.best = (score, policy)
            self.model.save(self.zip_path)


def train_teacher(env_spec: dict, profile: str, seed: int, out_dir: str | Path, device: str = "auto") -> dict:
    """Train, convert and evaluate one teacher; write model.zip, policy/, policy.onnx and teacher.json.

    `device` is SB3's ("auto": a GPU when present); the converted policy is always on the CPU.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # jobs run in parallel; one thread each also keeps results repeatable
    set_random_seed(seed)
    teacher = env_spec["teacher"]
    venv = make_vec_env(lambda: make_env(env_spec, teacher_training=True), n_envs=teacher.get("n_envs", 1), seed=seed)
    if teacher.get("normalize", False):
        venv = VecNormalize(venv, gamma=teacher["hyperparameters"].get("gamma", 0.99))
    algo = ALGORITHMS[teacher["algo"]]
    model = algo(teacher["policy"], venv, seed=seed, device=device, verbose=0,
                 **sb3_kwargs(teacher["hyperparameters"]))
    if model.observation_space.shape != venv.observation_space.shape:  # SB3 transposed channels-last images
        raise ConversionError(f"{env_spec['name']}: image observations {venv.observation_space.shape} must be "
                              "channels-first (AtariPreprocessing + FrameStackObservation give (4, 84, 84))")
    selection = teacher.get("checkpoints", {"count": 0, "episodes": 1})
    steps = teacher["timesteps"][profile]
    monitor = TrainingMonitor(steps, env_spec, selection["count"], selection["episodes"], out_dir / ".model.tmp.zip")
    started = time.time()
    model.learn(total_timesteps=steps, callback=monitor)
    train_seconds = time.time() - started
    monitor.checkpoint()  # the final model is a candidate too
    (out_dir / ".model.tmp.zip").replace(out_dir / "model.zip")

    validation_return, policy = monitor.best
    policy.metadata.update({"env": env_spec["name"], "seed": seed, "algo": teacher["algo"]})
    seeds = eval_seeds(env_spec, profile)
    info = {
        "env": env_spec["name"],
        "seed": seed,
        "profile": profile,
        "algo": teacher["algo"],
        "timesteps": steps,
        "train_seconds": round(train_seconds, 1),
        "device": str(model.device),
        "checkpoints": monitor.history,
        "validation_return": None if math.isnan(validation_return) else validation_return,
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


# -- conversion -----------------------------------------------------------------------------

def _extractor_layers(extractor: nn.Module) -> list[nn.Module]:
    if isinstance(extractor, FlattenExtractor):
        return [nn.Flatten()]
    if isinstance(extractor, NatureCNN):
        return [*extractor.cnn, *extractor.linear]
    raise ConversionError(f"features extractor {type(extractor).__name__} is not supported")


def _preprocess(model: BaseAlgorithm, vec_normalize: VecNormalize | None) -> Preprocess:
    space = model.observation_space
    if not isinstance(space, gym.spaces.Box):
        raise ConversionError(f"observation space {space} is not supported (Box only)")
    scale = 1.0 / 255.0 if is_image_space(space) and model.policy.normalize_images else None
    normalize = None
    if vec_normalize is not None and vec_normalize.norm_obs:
        normalize = {"clip": float(vec_normalize.clip_obs), "epsilon": float(vec_normalize.epsilon)}
    preprocess = Preprocess(space.shape, normalize, scale)
    if normalize is not None:
        preprocess.mean.copy_(torch.as_tensor(vec_normalize.obs_rms.mean, dtype=torch.float32))
        preprocess.var.copy_(torch.as_tensor(vec_normalize.obs_rms.var, dtype=torch.float32))
    return preprocess


def _actor_layers(model: BaseAlgorithm) -> tuple[list[nn.Module], str, str]:
    """The actor's layers in order, its output kind and its action-head kind."""
    policy = model.policy
    discrete = isinstance(model.action_space, gym.spaces.Discrete)
    if isinstance(model, DQN):
        return [*_extractor_layers(policy.q_net.features_extractor), *policy.q_net.q_net], "q_values", "argmax"
    if isinstance(model, (PPO, A2C)):
        if policy.squash_output or getattr(policy, "use_sde", False):
            raise ConversionError("gSDE / squashed PPO policies are not supported")
        layers = [*_extractor_layers(policy.pi_features_extractor), *policy.mlp_extractor.policy_net,
                  policy.action_net]
        return layers, ("logits" if discrete else "action"), ("argmax" if discrete else "clip")
    if isinstance(model, SAC):
        if policy.actor.use_sde:
            raise ConversionError("gSDE SAC actors are not supported")
        actor = policy.actor
        return [*_extractor_layers(actor.features_extractor), *actor.latent_pi, actor.mu, nn.Tanh()], \
            "action", "rescale"
    if isinstance(model, TD3):
        actor = policy.actor  # its mu already ends with Tanh
        return [*_extractor_layers(actor.features_extractor), *actor.mu], "action", "rescale"
    raise ConversionError(f"algorithm {type(model).__name__} is not supported")


def to_policy(model: BaseAlgorithm, vec_normalize: VecNormalize | None = None) -> Policy:
    """Convert the deployed actor of an SB3 model into a `Policy` with identical actions."""
    layers, output, head_kind = _actor_layers(model)
    space = model.action_space
    if not isinstance(space, (gym.spaces.Discrete, gym.spaces.Box)):
        raise ConversionError(f"action space {space} is not supported (Discrete or Box only)")
    action_dim = int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape))
    head = ActionHead(head_kind, action_dim)
    if head_kind != "argmax":
        head.low.copy_(torch.as_tensor(space.low, dtype=torch.float32))
        head.high.copy_(torch.as_tensor(space.high, dtype=torch.float32))
    net = nn.Sequential(*(copy.deepcopy(layer) for layer in layers)).cpu().float()
    return Policy(_preprocess(model, vec_normalize), net, head, output)
