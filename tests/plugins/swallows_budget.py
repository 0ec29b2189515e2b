"""Test plugin: catches BudgetExceeded and returns a policy anyway."""

from policypress.core.budget import BudgetExceeded
from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="swallows_budget", summary="Ignores the budget error.", citation="test plugin",
                  uses_level=False)


def compress(task):
    try:
        task.oracle(task.teacher.obs_shape and [[0.0] * task.teacher.obs_shape[0]] * (task.budget.teacher_queries + 1))
    except BudgetExceeded:
        pass
    return task.teacher
