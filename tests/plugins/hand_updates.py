"""Test plugin: updates its weights by hand (plain SGD, no optimizer), three times the update budget."""

import torch

from policypress.compress.architecture import uniformly_shrunk
from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="hand_updates", summary="Writes gradient steps into its weights itself.", citation="test plugin")


def compress(task):
    student = uniformly_shrunk(task.teacher, task.max_params)
    for _ in range(3 * task.budget.gradient_updates):
        student.zero_grad()
        student(torch.randn(8, *student.obs_shape)).pow(2).mean().backward()
        with torch.no_grad():
            for parameter in student.parameters():
                parameter -= 1e-3 * parameter.grad
    return student
