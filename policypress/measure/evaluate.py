"""The evaluation protocol: deterministic actions on held-out seeds, the same for every policy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from policypress.core.envs import make_env
from policypress.core.policy import Policy

# Seeds of the teacher's checkpoint selection: above every training seed (< 1000) and method seed
# (< 500 000), below every held-out evaluation seed (>= 1 000 000, enforced by the env schema).
VALIDATION_SEED_OFFSET = 500_000


def eval_seeds(env_spec: dict, profile: str) -> list[int]:
    """Episode i resets with seed_offset + i: disjoint from every training seed (schema: >= 1e6)."""
    evaluation = env_spec["evaluation"]
    return [evaluation["seed_offset"] + i for i in range(evaluation["episodes"][profile])]


def run_episodes(env_spec: dict, seeds: list[int], act: Callable[[np.ndarray, int], np.ndarray]) -> list[float]:
    """Undiscounted return of one episode per seed, up to the environment's own time limit.

    `act(obs, seed)` returns the action; the seed lets a random baseline seed its sampler.
    """
    env = make_env(env_spec)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs, seed))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def policy_returns(policy: Policy, env_spec: dict, seeds: list[int]) -> list[float]:
    policy.eval()
    return run_episodes(env_spec, seeds, lambda obs, _seed: policy.act(obs))


def random_returns(env_spec: dict, seeds: list[int]) -> list[float]:
    """The random-policy baseline of the normalized score, on the same episodes."""
    space = make_env(env_spec).action_space
    last_seed = None

    def act(_obs: np.ndarray, seed: int) -> np.ndarray:
        nonlocal last_seed
        if seed != last_seed:
            space.seed(seed)
            last_seed = seed
        return space.sample()

    return run_episodes(env_spec, seeds, act)
