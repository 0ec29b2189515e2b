"""Test plugin: resets its environment with an evaluation seed."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="peeks_at_eval", summary="Trains on held-out episodes.", citation="test plugin",
                  uses_level=False)


def compress(task):
    task.make_env().reset(seed=1_000_000)
    return task.teacher
