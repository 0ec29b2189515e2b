"""Test plugin: asks the teacher about more states than the budget allows."""

import numpy as np

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="oracle_hog", summary="Queries the teacher too often.", citation="test plugin")


def compress(task):
    states = np.zeros((task.budget.teacher_queries + 1, *task.teacher.obs_shape), dtype=np.float32)
    task.oracle(states)
    return task.teacher
