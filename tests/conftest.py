"""Shared fixtures: tiny teachers trained by the real pipeline code on small budgets."""

import copy
from pathlib import Path

import pytest

from policypress.specs import load_env_spec
from policypress.teachers import train_teacher

PLUGINS = str(Path(__file__).parent / "plugins")


def tiny_spec(name: str = "cartpole") -> dict:
    """The shipped env spec with a small teacher, few evaluation episodes and a small budget."""
    spec = copy.deepcopy(load_env_spec(name))
    spec["teacher"]["timesteps"]["smoke"] = 1500
    spec["teacher"]["hyperparameters"].update(learning_starts=200, policy_kwargs={"net_arch": [32, 32]})
    spec["evaluation"]["episodes"]["smoke"] = 3
    spec["budget"]["smoke"] = {"env_steps": 400, "teacher_queries": 400, "gradient_updates": 50}
    return spec


def pendulum_spec() -> dict:
    """A continuous-action env spec with a tiny SAC teacher (not shipped: tests only)."""
    return {
        "name": "pendulum", "gym_id": "Pendulum-v1", "family": "classic_control",
        "teacher": {"algo": "sac", "policy": "MlpPolicy", "timesteps": {"smoke": 300, "quick": 1, "full": 1},
                    "hyperparameters": {"learning_starts": 100, "buffer_size": 1000,
                                        "policy_kwargs": {"net_arch": [16, 16]}}},
        "evaluation": {"episodes": {"smoke": 2, "quick": 1, "full": 1}, "seed_offset": 1_000_000},
        "budget": {p: {"env_steps": 300, "teacher_queries": 300, "gradient_updates": 30}
                   for p in ("smoke", "quick", "full")},
    }


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
