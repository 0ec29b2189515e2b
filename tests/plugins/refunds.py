"""Test plugin: tries to give itself budget back through the optimizer's hooks."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="refunds", summary="Charges a negative amount.", citation="test plugin", uses_level=False)


def compress(task):
    task._meter.charge("env_steps", -1000)
    return task.teacher
