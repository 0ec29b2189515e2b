"""Test plugin: never returns (waits on an event nobody sets)."""

import threading

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="hangs", summary="Hangs.", citation="test plugin")


def compress(task):
    threading.Event().wait()
