"""Test plugin: INFO.name differs from the file name."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="another_name", summary="Misnamed.", citation="test plugin")


def compress(task):
    return task.teacher
