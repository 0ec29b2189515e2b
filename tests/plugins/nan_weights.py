"""Test plugin: returns a policy with a NaN weight."""

import math

import torch

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="nan_weights", summary="Returns NaN weights.", citation="test plugin", uses_level=False)


def compress(task):
    with torch.no_grad():
        task.teacher.net[1].weight[0, 0] = math.nan  # net[0] is the Flatten
    return task.teacher
