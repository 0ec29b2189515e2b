"""Test plugin: labels states by running `task.teacher` directly instead of the counted `task.oracle`."""

import torch

from policypress.compress.architecture import uniformly_shrunk
from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="free_teacher", summary="Runs the teacher without paying for queries.", citation="test plugin")


def compress(task):
    student = uniformly_shrunk(task.teacher, task.max_params)
    states = torch.randn(5 * task.budget.teacher_queries, *task.teacher.obs_shape)
    with torch.no_grad():
        task.teacher(states)  # five times the query budget, uncounted
    return student
