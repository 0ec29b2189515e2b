"""Test plugin: makes its own gymnasium environment and steps it beyond the budget."""

import gymnasium

from policypress.compress.architecture import uniformly_shrunk
from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="own_env", summary="Plays an env the task did not give it.", citation="test plugin")


def compress(task):
    env = gymnasium.make("CartPole-v1")
    env.reset(seed=0)
    for _ in range(5 * task.budget.env_steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return uniformly_shrunk(task.teacher, task.max_params)
