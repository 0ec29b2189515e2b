"""Test plugin: steps the task's env through `.unwrapped`, around its counter."""

from policypress.compress.architecture import uniformly_shrunk
from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="unwrapped_env", summary="Steps under the counter.", citation="test plugin")


def compress(task):
    env = task.make_env()
    env.reset(seed=0)
    raw = env.unwrapped
    for _ in range(5 * task.budget.env_steps):
        _, _, terminated, _, _ = raw.step(raw.action_space.sample())
        if terminated:
            raw.reset()
    return uniformly_shrunk(task.teacher, task.max_params)
