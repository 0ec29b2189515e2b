"""Compression on a GPU gives the CPU's results, and always hands back a CPU policy.

The GPU comparison runs only where CUDA is present (never in CI); the rest runs everywhere.
"""

import pytest
import torch

from policypress.core.harness import compress_run
from policypress.core.policy import Policy, resolve_device
from policypress.core.registry import load_method
from tests.conftest import with_smoke_budget

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_takes_a_gpu_only_when_one_is_present():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_masks_move_with_the_weights():
    from tests.test_policy import small_policy

    student = small_policy()
    student.masks = {name: torch.ones_like(weight, dtype=torch.bool) for name, weight in student.net.named_parameters()
                     if name.endswith("weight")}
    student.to("meta")  # a device every machine has: tensors without data
    assert student.device == torch.device("meta")
    assert all(mask.device == torch.device("meta") and mask.dtype == torch.bool for mask in student.masks.values())


@CUDA
@pytest.mark.parametrize("method_name", ["distill", "magnitude", "eaudeqn"])  # distill's and TD's loops
def test_a_gpu_run_gives_the_cpu_runs_result(method_name, cartpole_spec, cartpole_teacher, tmp_path):
    method = load_method(method_name)
    hyperparameters = method.resolve_hyperparameters({}, "test")
    spec = with_smoke_budget(cartpole_spec, 600, 200)
    runs = {device: compress_run(method, spec, "smoke", cartpole_teacher, 0.25, 0, hyperparameters,
                                 tmp_path / device, device=device) for device in ("cpu", "cuda")}
    assert runs["cpu"]["status"] == runs["cuda"]["status"] == "valid"
    assert runs["cpu"]["budget"]["used"] == runs["cuda"]["budget"]["used"]
    on_cpu, on_gpu = (Policy.load(tmp_path / device / "policy") for device in ("cpu", "cuda"))
    assert on_gpu.device == torch.device("cpu")
    for (name, a), (_, b) in zip(on_cpu.state_dict().items(), on_gpu.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)
