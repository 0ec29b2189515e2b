"""Test plugin: kills its own process as a segfault in native code would."""

import os
import signal

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="segfaults", summary="Dies of SIGSEGV.", citation="test plugin")


def compress(task):
    os.kill(os.getpid(), signal.SIGSEGV)
