"""Build gymnasium environments from an env spec, the same way for training, methods and evaluation."""

from __future__ import annotations

import gymnasium as gym
import gymnasium.wrappers


def make_env(spec: dict, teacher_training: bool = False) -> gym.Env:
    """The environment as the policy sees it: gymnasium.make plus the spec's wrappers, in order.

    Frame stacking and Atari preprocessing are gymnasium wrappers here (not SB3 VecEnv
    wrappers), so every consumer of the spec sees identical observations. With
    `teacher_training`, the teacher's `train_wrappers` (e.g. reward clipping) follow.
    """
    if spec["gym_id"].startswith("ALE/"):
        import ale_py

        gym.register_envs(ale_py)
    env = apply_wrappers(gym.make(spec["gym_id"], **spec.get("env_kwargs", {})), spec.get("wrappers", []))
    return apply_wrappers(env, spec["teacher"].get("train_wrappers", [])) if teacher_training else env


def apply_wrappers(env: gym.Env, wrappers: list[dict]) -> gym.Env:
    """`env` inside the spec's gymnasium wrappers (`{name, kwargs}`), the first innermost."""
    for wrapper in wrappers:
        cls = getattr(gymnasium.wrappers, wrapper["name"], None)
        if cls is None:
            raise ValueError(f"wrappers: {wrapper['name']!r} is not a gymnasium.wrappers class")
        env = cls(env, **wrapper.get("kwargs", {}))
    return env


def action_space_kind(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Discrete):
        return "discrete"
    if isinstance(space, gym.spaces.Box):
        return "continuous"
    raise ValueError(f"unsupported action space {space}")
