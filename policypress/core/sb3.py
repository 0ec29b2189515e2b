"""stable-baselines3 models and the policy format: the algorithms by name, the spec's hyperparameters
as SB3 arguments, and the conversion of a model's deployed actor into a `Policy`.

Only the deployed actor is converted: the Q-network for DQN; features + policy MLP + action
net for PPO/A2C; the actor for SAC/TD3. Value heads and critics are not part of the policy.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from policypress.core.policy import ActionHead, Policy, Preprocess

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3}
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
OPTIMIZERS = {"Adam": torch.optim.Adam, "RMSprop": torch.optim.RMSprop}


class MinAtarCNN(BaseFeaturesExtractor):
    """Young & Tian (2019)'s DQN torso for MinAtar's C x 10 x 10 grids: one 3 x 3 convolution with 16
    filters (stride 1, no padding) and a 128-unit layer, both ReLU. With `net_arch: []` SB3's Q-network
    adds only the output layer, as in the paper."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128, filters: int = 16):
        super().__init__(observation_space, features_dim)
        channels, height, width = observation_space.shape
        self.cnn = nn.Sequential(nn.Conv2d(channels, filters, kernel_size=3, stride=1), nn.ReLU(), nn.Flatten())
        self.linear = nn.Sequential(nn.Linear(filters * (height - 2) * (width - 2), features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


FEATURES_EXTRACTORS = {"MinAtarCNN": MinAtarCNN}


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
    for key, classes in (("activation_fn", ACTIVATIONS), ("optimizer_class", OPTIMIZERS),
                         ("features_extractor_class", FEATURES_EXTRACTORS)):
        if key in policy_kwargs:
            policy_kwargs[key] = classes[policy_kwargs[key]]
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    return kwargs


def build_model(teacher: dict, env_fn: Callable[[], gym.Env], seed: int, device: str = "cpu",
                algo: type[BaseAlgorithm] | None = None, **overrides) -> BaseAlgorithm:
    """The SB3 model an env spec's `teacher` section describes, untrained, on `env_fn`'s environments
    (`n_envs` of them, VecNormalize'd when the spec says `normalize`), seeded with `seed`.
    `algo` replaces the algorithm's class by a subclass; `overrides` replace hyperparameters
    (`policy_kwargs` entries are merged)."""
    set_random_seed(seed)
    venv = make_vec_env(env_fn, n_envs=teacher.get("n_envs", 1), seed=seed)
    if teacher.get("normalize", False):
        venv = VecNormalize(venv, gamma=teacher["hyperparameters"].get("gamma", 0.99))
    kwargs = sb3_kwargs(teacher["hyperparameters"])
    if "policy_kwargs" in overrides:
        overrides["policy_kwargs"] = {**kwargs.get("policy_kwargs", {}), **overrides["policy_kwargs"]}
    model = (algo or ALGORITHMS[teacher["algo"]])(teacher["policy"], venv, seed=seed, device=device, verbose=0,
                                                 **{**kwargs, **overrides})
    if model.observation_space.shape != venv.observation_space.shape:  # SB3 transposed channels-last images
        raise ConversionError(f"image observations {venv.observation_space.shape} must be channels-first "
                              "(AtariPreprocessing + FrameStackObservation give (4, 84, 84))")
    return model


class StepCount:
    count = 0


@contextlib.contextmanager
def count_optimizer_steps() -> Iterator[StepCount]:
    """Counts every `torch.optim.Optimizer.step()` in this process while the block runs (PyTorch's
    global step hook: whoever created the optimizer, e.g. SAC's actor, critic and entropy ones)."""
    steps = StepCount()

    def hook(*_) -> None:
        steps.count += 1

    handle = register_optimizer_step_post_hook(hook)
    try:
        yield steps
    finally:
        handle.remove()


def trained_optimizer_steps(model: BaseAlgorithm) -> int:
    """The optimizer steps a saved model's training took, as `count_optimizer_steps` would have counted
    them, from what SB3 saves: its `_n_updates` counts DQN's and SAC's gradient steps, TD3's critic
    steps, A2C's rollouts and PPO's epochs. Exact except for a PPO run that `target_kl` stopped inside
    an epoch, which this counts as whole."""
    updates = model._n_updates
    if isinstance(model, PPO):
        return updates * math.ceil(model.n_steps * model.n_envs / model.batch_size)
    if isinstance(model, SAC):  # critic and actor, and the entropy coefficient when it is learned
        return updates * (3 if model.ent_coef_optimizer is not None else 2)
    if isinstance(model, TD3):  # the critic each step, the actor every policy_delay steps
        return updates + updates // model.policy_delay
    return updates


def optimizer_steps_per_round(model: BaseAlgorithm) -> int:
    """The optimizer steps one of the model's training rounds takes, from its hyperparameters (0 where
    they do not say: DQN/SAC/TD3 with gradient_steps=-1 train as many steps as the round collected).
    A subclass that trains more per round (EauDeQN's K networks) takes more; the budget guard also
    learns it from the rounds it sees."""
    if isinstance(model, PPO):
        return model.n_epochs * math.ceil(model.n_steps * model.n_envs / model.batch_size)
    if isinstance(model, A2C):
        return 1
    steps = max(0, model.gradient_steps)
    if isinstance(model, SAC):
        return steps * (3 if model.ent_coef_optimizer is not None else 2)
    if isinstance(model, TD3):
        return steps + math.ceil(steps / model.policy_delay)
    return steps


def actor_optimizer(model: BaseAlgorithm) -> torch.optim.Optimizer:
    """The optimizer that updates the deployed actor's weights."""
    return model.policy.actor.optimizer if isinstance(model, (SAC, TD3)) else model.policy.optimizer


def actor_net_arch(model: BaseAlgorithm, widths: list[int]) -> list[int] | dict:
    """The `net_arch` that gives `model`'s algorithm an actor MLP with these hidden widths and the
    model's own critic (DQN's Q-network is both)."""
    arch = model.policy.net_arch
    if isinstance(model, DQN):
        return list(widths)
    if isinstance(model, (PPO, A2C)):
        return {"pi": list(widths), "vf": arch["vf"] if isinstance(arch, dict) else arch}
    return {"pi": list(widths), "qf": arch["qf"] if isinstance(arch, dict) else arch}


def _extractor_layers(extractor: nn.Module) -> list[nn.Module]:
    if isinstance(extractor, FlattenExtractor):
        return [nn.Flatten()]
    if isinstance(extractor, (NatureCNN, MinAtarCNN)):
        return [*extractor.cnn, *extractor.linear]
    raise ConversionError(f"features extractor {type(extractor).__name__} is not supported")


def _preprocess(model: BaseAlgorithm, vec_normalize: VecNormalize | None, channels_last: bool) -> Preprocess:
    space = model.observation_space
    if not isinstance(space, gym.spaces.Box):
        raise ConversionError(f"observation space {space} is not supported (Box only)")
    scale = 1.0 / 255.0 if is_image_space(space) and model.policy.normalize_images else None
    normalize = None
    if vec_normalize is not None and vec_normalize.norm_obs:
        normalize = {"clip": float(vec_normalize.clip_obs), "epsilon": float(vec_normalize.epsilon)}
    shape = (*space.shape[1:], space.shape[0]) if channels_last else space.shape  # the env's H x W x C
    preprocess = Preprocess(shape, normalize, scale, channels_last)
    if normalize is not None:
        preprocess.mean.copy_(torch.as_tensor(vec_normalize.obs_rms.mean, dtype=torch.float32))
        preprocess.var.copy_(torch.as_tensor(vec_normalize.obs_rms.var, dtype=torch.float32))
    return preprocess


def _quantile_mean(layer: nn.Linear, quantiles: int) -> nn.Linear:
    """QR-DQN's last layer followed by the mean over its quantiles, as one Linear layer: the output is
    linear in the weights, so averaging each action's quantile rows of the weight and bias is exact
    (up to float rounding)."""
    actions = layer.out_features // quantiles
    mean = nn.Linear(layer.in_features, actions).to(layer.weight.device)
    with torch.no_grad():  # QR-DQN's output index is quantile * actions + action
        mean.weight.copy_(layer.weight.view(quantiles, actions, -1).mean(dim=0))
        mean.bias.copy_(layer.bias.view(quantiles, actions).mean(dim=0))
    return mean


def _actor_layers(model: BaseAlgorithm) -> tuple[list[nn.Module], str, str]:
    """The actor's layers in order, its output kind and its action-head kind."""
    policy = model.policy
    discrete = isinstance(model.action_space, gym.spaces.Discrete)
    if isinstance(model, DQN):
        return [*_extractor_layers(policy.q_net.features_extractor), *policy.q_net.q_net], "q_values", "argmax"
    if type(model).__name__ == "QRDQN":  # sb3-contrib's; acts on the mean of its quantiles
        net = policy.quantile_net
        return [*_extractor_layers(net.features_extractor), *net.quantile_net[:-1],
                _quantile_mean(net.quantile_net[-1], net.n_quantiles)], "q_values", "argmax"
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


def to_policy(model: BaseAlgorithm, vec_normalize: VecNormalize | None = None, live: bool = False,
              channels_last: bool = False) -> Policy:
    """Convert the deployed actor of an SB3 model into a `Policy` with identical actions.

    `live`: the policy's layers are the model's own modules, not copies, so that masks set on
    it act on the weights SB3 trains (on the model's device). `channels_last`: the env gives images
    as H x W x C, which SB3 transposed (VecTransposeImage) for the model; the policy takes them as the
    env gives them."""
    if live and type(model).__name__ == "QRDQN":
        raise ConversionError("a QR-DQN policy's folded last layer is a copy: it cannot be a live view")
    layers, output, head_kind = _actor_layers(model)
    space = model.action_space
    if not isinstance(space, (gym.spaces.Discrete, gym.spaces.Box)):
        raise ConversionError(f"action space {space} is not supported (Discrete or Box only)")
    action_dim = int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape))
    head = ActionHead(head_kind, action_dim)
    if head_kind != "argmax":
        head.low.copy_(torch.as_tensor(space.low, dtype=torch.float32))
        head.high.copy_(torch.as_tensor(space.high, dtype=torch.float32))
    net = nn.Sequential(*layers) if live else nn.Sequential(*(copy.deepcopy(layer) for layer in layers)).cpu().float()
    return Policy(_preprocess(model, vec_normalize, channels_last), net, head, output)
