"""Test plugin: returns a policy with one output too many."""

from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="wrong_shape", summary="Returns the wrong number of outputs.", citation="test plugin",
                  uses_level=False)


def compress(task):
    spec = task.teacher.spec()
    spec["layers"][-1]["out_features"] += 1
    spec["head"]["action_dim"] += 1
    return Policy.from_spec(spec)
