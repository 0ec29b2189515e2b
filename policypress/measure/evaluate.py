"""The evaluation protocol: deterministic actions on held-out seeds, the same for every policy."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from policypress.core.envs import make_env, play_episodes
from policypress.core.policy import Policy


def eval_seeds(env_spec: dict, profile: str) -> list[int]:
    """Episode i resets with seed_offset + i: disjoint from every training seed (schema: >= 1e6)."""
    evaluation = env_spec["evaluation"]
    return [evaluation["seed_offset"] + i for i in range(evaluation["episodes"][profile])]


SIDE_BY_SIDE = 32  # episodes played at once: one batched policy call per step, bounded memory (Atari)


def run_episodes(env_spec: dict, seeds: list[int], act: Callable[[np.ndarray, list[int]], np.ndarray]) -> list[float]:
    """Undiscounted return of one episode per seed, up to the environment's own time limit, played
    side by side in groups of `SIDE_BY_SIDE`; `act(observations, seeds)` returns their actions."""
    returns = []
    for first in range(0, len(seeds), SIDE_BY_SIDE):
        group = seeds[first:first + SIDE_BY_SIDE]
        envs = [make_env(env_spec) for _ in group]
        returns += play_episodes(envs, group, lambda obs, running, group=group: act(obs, [group[i] for i in running]))
        for env in envs:
            env.close()
    return returns


def policy_returns(policy: Policy, env_spec: dict, seeds: list[int]) -> list[float]:
    policy.eval()
    return run_episodes(env_spec, seeds, lambda obs, _seeds: policy.act(obs))


def random_returns(env_spec: dict, seeds: list[int]) -> list[float]:
    """The random-policy baseline of the normalized score, on the same episodes: each episode
    samples from an action space seeded with the episode's seed."""
    env = make_env(env_spec)
    spaces = {seed: copy.deepcopy(env.action_space) for seed in seeds}
    env.close()
    for seed, space in spaces.items():
        space.seed(seed)
    return run_episodes(env_spec, seeds, lambda _obs, running: np.stack([spaces[seed].sample() for seed in running]))
