"""Test plugin: calls sys.exit inside compress."""

import sys

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="exits", summary="Exits the process.", citation="test plugin")


def compress(task):
    sys.exit(3)
