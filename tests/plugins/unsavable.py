"""Test plugin: returns a policy whose metadata cannot be written as JSON."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="unsavable", summary="Puts an object in the metadata.", citation="test plugin",
                  uses_level=False)


def compress(task):
    task.teacher.metadata["trainer"] = object()
    return task.teacher
