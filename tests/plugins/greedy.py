"""Test plugin: steps the environment until the harness stops it."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="greedy", summary="Steps the env forever.", citation="test plugin")


def compress(task):
    env = task.make_env()
    env.reset(seed=0)
    while True:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
