"""Test plugin: trains with its own torch optimizer, three times the update budget."""

import torch

from policypress.compress.architecture import uniformly_shrunk
from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="own_optimizer", summary="Optimizes with an uncounted Adam.", citation="test plugin")


def compress(task):
    student = uniformly_shrunk(task.teacher, task.max_params)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    for _ in range(3 * task.budget.gradient_updates):
        optimizer.zero_grad()
        student(torch.randn(8, *student.obs_shape)).pow(2).mean().backward()
        optimizer.step()
    return student
