"""Test plugin: declares support for discrete actions only."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="discrete_only", summary="Discrete actions only.", citation="test plugin",
                  action_spaces=("discrete",), uses_level=False)


def compress(task):
    return task.teacher
