"""Test plugin: returns a plain torch module instead of a Policy."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="not_a_policy", summary="Returns a torch module.", citation="test plugin", uses_level=False)


def compress(task):
    return task.teacher.net
