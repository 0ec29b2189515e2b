"""Test plugin: takes more gradient steps than the budget allows."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="overtrainer", summary="Takes too many optimizer steps.", citation="test plugin")


def compress(task):
    student = task.teacher
    optimizer = task.make_optimizer(student.parameters(), "sgd", lr=0.0)
    for _ in range(task.budget.gradient_updates + 1):
        optimizer.step()
    return student
