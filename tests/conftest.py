"""Shared fixtures: tiny teachers trained by the real pipeline code on small budgets."""

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

import tests.blink_env  # noqa: F401  (registers PolicyPressTest/Blink-v0)
from policypress.core.params import params
from policypress.core.policy import ActionHead, Policy, Preprocess
from policypress.core.registry import load_method
from policypress.core.specs import load_env_spec
from policypress.submit.conformance import pendulum_spec  # noqa: F401  (the tests' continuous env)
from policypress.teachers import train_teacher

PLUGINS = str(Path(__file__).parent / "plugins")


def plugin(name: str):
    """A shipped method plugin's module (plugins are files in methods/, not an importable package)."""
    return load_method(name).module


def tiny_spec(name: str = "cartpole") -> dict:
    """The shipped env spec with a small teacher, few evaluation episodes and a small budget."""
    spec = copy.deepcopy(load_env_spec(name))
    spec["teacher"]["timesteps"]["smoke"] = 1500
    spec["teacher"]["hyperparameters"].update(learning_starts=200, policy_kwargs={"net_arch": [32, 32]})
    spec["evaluation"]["episodes"]["smoke"] = 3
    spec["budget"]["smoke"] = {"env_steps": 400, "teacher_queries": 400, "gradient_updates": 50}
    return spec


@pytest.fixture(scope="session")
def cartpole_spec() -> dict:
    return tiny_spec()


@pytest.fixture(scope="session")
def cartpole_teacher(tmp_path_factory, cartpole_spec) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "cartpole" / "0"
    train_teacher(cartpole_spec, "smoke", 0, out)
    return out


@pytest.fixture(scope="session")
def pendulum_teacher(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "pendulum" / "0"
    train_teacher(pendulum_spec(), "smoke", 0, out)
    return out


def blink_spec() -> dict:
    budget = {"env_steps": 1500, "teacher_queries": 1500, "gradient_updates": 150}
    return {"name": "blink", "gym_id": "PolicyPressTest/Blink-v0", "family": "atari",
            "teacher": {"algo": "dqn", "policy": "CnnPolicy", "timesteps": {"smoke": 1, "quick": 1, "full": 1},
                        "hyperparameters": {}},
            "evaluation": {"episodes": {"smoke": 2, "quick": 2, "full": 2}, "seed_offset": 1_000_000},
            "budget": {"smoke": budget, "quick": budget, "full": budget}}


@pytest.fixture(scope="session")
def cnn_teacher(tmp_path_factory):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 2, stride=2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(72, 32), nn.ReLU(), nn.Linear(32, 2))
    teacher = Policy(Preprocess((1, 8, 8), scale=1 / 255), net, ActionHead("argmax", 2), "q_values")
    out = tmp_path_factory.mktemp("cnn_teacher")
    teacher.save(out / "policy")
    return out


def ppo_spec() -> dict:
    """CartPole with a tiny PPO teacher (its logits are distilled at temperature 1)."""
    spec = tiny_spec()
    spec["teacher"] = {"algo": "ppo", "policy": "MlpPolicy", "timesteps": {"smoke": 256, "quick": 1, "full": 1},
                       "checkpoints": {"count": 0, "episodes": 1},
                       "hyperparameters": {"n_steps": 128, "batch_size": 64, "n_epochs": 2,
                                           "policy_kwargs": {"net_arch": [32, 32]}}}
    return spec


@pytest.fixture(scope="session")
def ppo_teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo_teacher")
    train_teacher(ppo_spec(), "smoke", 0, out)
    return out


def sb3_cnn_spec() -> dict:
    """Blink at 36x36, the smallest frame SB3's Nature CNN takes, with a tiny DQN CnnPolicy teacher."""
    spec = blink_spec()
    spec["env_kwargs"] = {"size": 36}
    spec["teacher"] = {"algo": "dqn", "policy": "CnnPolicy", "timesteps": {"smoke": 200, "quick": 1, "full": 1},
                       "checkpoints": {"count": 0, "episodes": 1},
                       "hyperparameters": {"learning_starts": 50, "buffer_size": 500, "batch_size": 16,
                                           "target_update_interval": 50}}
    return spec


@pytest.fixture(scope="session")
def sb3_cnn_teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("sb3_cnn_teacher")
    train_teacher(sb3_cnn_spec(), "smoke", 0, out)
    return out


def with_smoke_budget(spec: dict, states: int, updates: int) -> dict:
    """`spec` with a smoke budget of `states` env steps and teacher queries, and `updates` updates."""
    budget = {"env_steps": states, "teacher_queries": states, "gradient_updates": updates}
    return {**spec, "budget": {**spec["budget"], "smoke": budget}}


def check(result, out, level_ceiling_structural: bool):
    """A valid run within every budget counter and under the ceiling; dense if structural."""
    assert result["status"] == "valid", result["reason"]
    assert all(result["budget"]["used"][k] <= v for k, v in result["budget"]["limit"].items())
    policy = Policy.load(out / "policy")
    total, nonzero = params(policy)
    assert nonzero <= result["max_params"]
    if level_ceiling_structural:
        assert total == nonzero <= result["max_params"]  # a smaller dense network, not a masked one
