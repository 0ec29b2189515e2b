"""dense: the teacher itself, unchanged. The reference row of every environment."""

from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

INFO = MethodInfo(
    name="dense",
    summary="The uncompressed teacher: the reference every method is compared with.",
    citation="Raffin et al., Stable-Baselines3: Reliable Reinforcement Learning Implementations, JMLR 22(268), 2021.",
    uses_level=False,
)


def compress(task: Task) -> Policy:
    return task.teacher
