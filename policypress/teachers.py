"""Train SB3 teachers from an env spec and convert their deployed actor into a `Policy`.

Only the deployed actor is converted: the Q-network for DQN; features + policy MLP + action
net for PPO/A2C; the actor for SAC/TD3. Value heads and critics are not part of the policy.
"""

from __future__ import annotations

import copy
import logging
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

from policypress.envs import make_env
from policypress.evaluate import eval_seeds, policy_returns, random_returns
from policypress.io import write_json
from policypress.latency import export_onnx
from policypress.policy import ActionHead, Policy, Preprocess

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


class ProgressLog(BaseCallback):
    """One log line per tenth of training: steps, speed, mean return of recent episodes.

    Plain lines rather than a progress bar, because Snakemake sends the output to a log file.
    """

    def __init__(self, total_timesteps: int, parts: int = 10):
        super().__init__()
        self.every = max(1, total_timesteps // parts)
        self.total = total_timesteps
        self.started = time.time()
        self.next_report = self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_report:
            self.next_report += self.every
            episodes = [info["r"] for info in self.model.ep_info_buffer]
            recent = f"{np.mean(episodes):.1f}" if episodes else "n/a"
            log.info("%d/%d steps (%.0f%%), %.0f steps/s, mean return of the last %d episodes: %s",
                     self.num_timesteps, self.total, 100 * self.num_timesteps / self.total,
                     self.num_timesteps / (time.time() - self.started), len(episodes), recent)
        return True


def train_teacher(env_spec: dict, profile: str, seed: int, out_dir: str | Path) -> dict:
    """Train, convert and evaluate one teacher; write model.zip, policy/ and teacher.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # jobs run in parallel; one thread each also keeps results repeatable
    set_random_seed(seed)
    teacher = env_spec["teacher"]
    venv = make_vec_env(lambda: make_env(env_spec), n_envs=teacher.get("n_envs", 1), seed=seed)
    if teacher.get("normalize", False):
        venv = VecNormalize(venv, gamma=teacher["hyperparameters"].get("gamma", 0.99))
    algo = ALGORITHMS[teacher["algo"]]
    model = algo(teacher["policy"], venv, seed=seed, device="cpu", verbose=0,
                 **sb3_kwargs(teacher["hyperparameters"]))
    if model.observation_space.shape != venv.observation_space.shape:  # SB3 transposed channels-last images
        raise ConversionError(f"{env_spec['name']}: image observations {venv.observation_space.shape} must be "
                              "channels-first (AtariPreprocessing + FrameStackObservation give (4, 84, 84))")
    started = time.time()
    model.learn(total_timesteps=teacher["timesteps"][profile], callback=ProgressLog(teacher["timesteps"][profile]))
    train_seconds = time.time() - started
    tmp_zip = out_dir / ".model.tmp.zip"
    model.save(tmp_zip)
    tmp_zip.replace(out_dir / "model.zip")

    policy = to_policy(model, venv if isinstance(venv, VecNormalize) else None)
    policy.metadata.update({"env": env_spec["name"], "seed": seed, "algo": teacher["algo"]})
    seeds = eval_seeds(env_spec, profile)
    info = {
        "env": env_spec["name"],
        "seed": seed,
        "profile": profile,
        "algo": teacher["algo"],
        "timesteps": teacher["timesteps"][profile],
        "train_seconds": round(train_seconds, 1),
        "eval_seeds": seeds,
        "eval_returns": policy_returns(policy, env_spec, seeds),
        "random_returns": random_returns(env_spec, seeds),
        "versions": {"stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__,
                     "gymnasium": gym.__version__, "python": platform.python_version()},
    }
    policy.save(out_dir / "policy")
    export_onnx(policy, out_dir / "policy.onnx")  # timed beside every student of this teacher
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
