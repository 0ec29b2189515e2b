"""Build gymnasium environments from an env spec, the same way for training, methods and evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import gymnasium.wrappers
import numpy as np

from policypress.core.guard import env_creation

# Seeds of checkpoint selection (the teacher's, and a during-training run's): above every training
# seed (< 1000) and method seed (< 500 000), below every held-out evaluation seed (>= 1 000 000,
# enforced by the env schema).
VALIDATION_SEED_OFFSET = 500_000


def make_env(spec: dict, teacher_training: bool = False) -> gym.Env:
    """The environment as the policy sees it: gymnasium.make plus the spec's wrappers, in order.

    Frame stacking and Atari preprocessing are gymnasium wrappers here (not SB3 VecEnv
    wrappers), so every consumer of the spec sees identical observations. With
    `teacher_training`, the teacher's `train_wrappers` (e.g. reward clipping) follow.
    """
    register_family(spec["family"], spec["gym_id"])
    env = apply_wrappers(gym.make(spec["gym_id"], **spec.get("env_kwargs", {})), spec.get("wrappers", []))
    return apply_wrappers(env, spec["teacher"].get("train_wrappers", [])) if teacher_training else env


def register_family(family: str, gym_id: str) -> None:
    """Register the ids of the packages whose envs gymnasium does not know by itself."""
    if family == "atari":  # ALE/*-v5 and the zoo's *NoFrameskip-v4 ids
        import ale_py

        gym.register_envs(ale_py)
    elif family == "minatar" and gym_id not in gym.registry:
        # minatar registers MinAtar/*-v0 (6 actions) and -v1 (each game's minimal action set) through
        # a gymnasium plugin entry point, which gymnasium 1.x no longer loads by itself
        from minatar.gym import register_envs

        register_envs()
    elif family == "highway":  # highway-env registers highway-v0, highway-fast-v0, ... on import
        import highway_env

        gym.register_envs(highway_env)


class FrameStackChannelsLast(gym.ObservationWrapper):
    """The last `stack` frames side by side on the channel axis, oldest first, zeros before the first:
    what SB3's VecFrameStack gives rl-baselines3-zoo's Atari agents (84 x 84 x 4), as a gymnasium wrapper."""

    def __init__(self, env: gym.Env, stack: int):
        super().__init__(env)
        space = env.observation_space
        if len(space.shape) != 3:
            raise ValueError(f"wrappers: FrameStackChannelsLast stacks H x W x C frames, not {space.shape}")
        self.channels = space.shape[-1]
        self.observation_space = gym.spaces.Box(np.repeat(space.low, stack, axis=-1),
                                                np.repeat(space.high, stack, axis=-1), dtype=space.dtype)
        self.frames = np.zeros(self.observation_space.shape, space.dtype)

    def reset(self, **kwargs):
        self.frames[...] = 0
        return super().reset(**kwargs)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        self.frames = np.roll(self.frames, -self.channels, axis=-1)
        self.frames[..., -self.channels:] = observation
        return self.frames.copy()


class ChannelsFirstFloat(gym.ObservationWrapper):
    """H x W x C frames of any dtype as C x H x W float32. MinAtar gives 10 x 10 x C boolean grids;
    Young & Tian (2019)'s DQN feeds them to its CNN channels first as 0.0/1.0, and SB3 takes them as a
    plain Box, not as an image (no transpose, no scaling by 1/255)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        height, width, channels = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0.0, 1.0, (channels, height, width), np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(observation, -1, 0), dtype=np.float32)


def _sb3_atari_wrapper():
    from stable_baselines3.common.atari_wrappers import AtariWrapper

    return AtariWrapper


# Wrappers a spec may name besides gymnasium.wrappers': those that reproduce rl-baselines3-zoo's
# preprocessing (so that an imported zoo agent plays the env it was trained on), and MinAtar's grids
# as a CNN takes them.
EXTRA_WRAPPERS = {"AtariWrapper": _sb3_atari_wrapper, "FrameStackChannelsLast": lambda: FrameStackChannelsLast,
                  "ChannelsFirstFloat": lambda: ChannelsFirstFloat}


def apply_wrappers(env: gym.Env, wrappers: list[dict]) -> gym.Env:
    """`env` inside the spec's wrappers (`{name, kwargs}`), the first innermost: gymnasium.wrappers
    classes, or one of EXTRA_WRAPPERS."""
    for wrapper in wrappers:
        name = wrapper["name"]
        cls = EXTRA_WRAPPERS[name]() if name in EXTRA_WRAPPERS else getattr(gymnasium.wrappers, name, None)
        if cls is None:
            raise ValueError(f"wrappers: {name!r} is not a gymnasium.wrappers class nor one of "
                             f"{sorted(EXTRA_WRAPPERS)}")
        env = cls(env, **wrapper.get("kwargs", {}))
    return env


def action_space_kind(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Discrete):
        return "discrete"
    if isinstance(space, gym.spaces.Box):
        return "continuous"
    raise ValueError(f"unsupported action space {space}")


def play_episodes(envs: Sequence[gym.Env], seeds: Sequence[int | None],
                  act: Callable[[np.ndarray, list[int]], np.ndarray], max_steps: int | None = None) -> list[float]:
    """The undiscounted return of one episode per env (env i reset with `seeds[i]`), played side by side.

    Each step makes one `act(observations, episodes)` call for the episodes still running (their
    indices in `episodes`, their observations stacked in that order), so a policy runs on a batch
    instead of once per env step. An episode ends at the env's own termination or time limit, or
    after `max_steps` steps. Each env's episode is the one it would play alone.
    """
    obs = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]
    returns = [0.0] * len(envs)
    running, steps = list(range(len(envs))), 0
    while running:
        actions = act(np.stack([obs[i] for i in running]), running)
        steps += 1
        still = []
        for i, action in zip(running, actions, strict=True):
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += float(reward)
            if not (terminated or truncated or (max_steps is not None and steps >= max_steps)):
                still.append(i)
        running = still
    return returns


class Validator:
    """Checkpoint selection's validation return: the mean over `episodes` validation episodes (seeds
    VALIDATION_SEED_OFFSET + i, deterministic actions), at most `calls` times. The teacher's checkpoints
    are chosen this way without charge; a during-training run gets the same, and no more."""

    def __init__(self, spec: dict, episodes: int, calls: int):
        self.spec, self.seeds, self.calls = spec, [VALIDATION_SEED_OFFSET + i for i in range(episodes)], calls

    def __call__(self, policy) -> float:
        if self.calls <= 0:
            raise RuntimeError("validation refused: a run gets as many validations as the teacher's checkpoints")
        self.calls -= 1
        with env_creation():  # free, and the guard of a run lets it make its envs
            envs = [make_env(self.spec) for _ in self.seeds]
        policy.eval()
        returns = play_episodes(envs, self.seeds, lambda obs, _running: policy.act(obs))
        for env in envs:
            env.close()
        return float(np.mean(returns))
