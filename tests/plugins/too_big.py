"""Test plugin: returns the unpruned teacher whatever the level."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="too_big", summary="Ignores the level.", citation="test plugin")


def compress(task):
    return task.teacher
