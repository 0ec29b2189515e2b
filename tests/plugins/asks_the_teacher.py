"""Test plugin: a during-training method that asks the teacher oracle anyway."""

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="asks_the_teacher", summary="Queries a teacher it does not have.", citation="test plugin",
                  track="during-training", uses_level=False)


def compress(task):
    assert task.teacher is None
    task.oracle(task.make_env().reset(seed=0)[0])
