"""Test plugin: raises inside compress."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="crashing", summary="Crashes.", citation="test plugin")


def compress(task):
    raise RuntimeError("boom: the plugin failed")
