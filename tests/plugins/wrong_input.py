"""Test plugin: returns a policy for a different observation shape."""

from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="wrong_input", summary="Expects other observations.", citation="test plugin",
                  uses_level=False)


def compress(task):
    spec = task.teacher.spec()
    spec["preprocess"]["obs_shape"] = [spec["preprocess"]["obs_shape"][0] + 1]
    spec["layers"][1]["in_features"] += 1
    return Policy.from_spec(spec)
