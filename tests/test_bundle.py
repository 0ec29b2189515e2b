"""`policypress export`: a run's bundle builds for the host and for a Cortex-M4, and the host build
computes the policy's own actions."""

import json
import subprocess

import numpy as np
import onnxruntime
import pytest

from policypress.cli import main
from policypress.core.harness import compress_run
from policypress.core.policy import Policy
from policypress.core.registry import load_method
from policypress.core.specs import SpecError
from policypress.deploy.bundle import export_bundle
from policypress.measure.embedded import run_binary
from policypress.measure.run import measure_run
from policypress.submit.conformance import pendulum_spec
from tests.test_export import assert_same_computation, played_states, random_states

LATENCY = {"warmup": 1, "windows": 2, "window_ms": 1}
SIZES_MATCH = """#include "policy.h"
int main(void) { return !(PP_OBS_SIZE == pp_obs_size && PP_OUTPUT_SIZE == pp_output_size
                          && PP_ACTION_SIZE == pp_action_size); }
"""


def measured_run(teacher, spec, tmp_path):
    distill = load_method("distill")
    run = compress_run(distill, spec, "smoke", teacher, 0.3, 0, distill.resolve_hyperparameters(None, "test"),
                       tmp_path / "run")
    assert run["status"] == "valid", run["reason"]
    measure_run(tmp_path / "run", teacher, spec, LATENCY, tmp_path / "run" / "metrics.json")
    return tmp_path / "run"


@pytest.mark.parametrize("case", ["dqn-cartpole", "sac-pendulum"])
def test_a_bundle_builds_for_host_and_cortex_m4_and_the_host_build_acts_like_the_policy(
        case, cartpole_teacher, cartpole_spec, pendulum_teacher, tmp_path):
    teacher, spec = (cartpole_teacher, cartpole_spec) if case == "dqn-cartpole" else (pendulum_teacher, pendulum_spec())
    run = measured_run(teacher, spec, tmp_path)
    bundle = export_bundle(run, tmp_path / "bundle", spec)

    subprocess.run(["make", "host", "m4"], cwd=bundle, check=True, capture_output=True)
    assert (bundle / "libpolicy_m4.a").stat().st_size > 0
    policy = Policy.load(run / "policy")
    states = np.concatenate([played_states(policy, spec, 1000), random_states(policy, 1000)])
    outputs, actions = run_binary(bundle / "policy_host", states, policy.output_size, policy.action_size)
    assert_same_computation(policy, states, outputs, actions)
    onnx_actions = onnxruntime.InferenceSession(str(bundle / "policy.onnx")).run(None, {"obs": states})[0]
    np.testing.assert_allclose(onnx_actions.reshape(len(states), -1),
                               policy.act(states).reshape(len(states), -1), rtol=1e-5, atol=1e-5)

    (bundle / "sizes.c").write_text(SIZES_MATCH)
    subprocess.run(["cc", "-std=c99", "-o", "sizes", "sizes.c", "policy.c", "-lm"], cwd=bundle, check=True)
    assert subprocess.run([bundle / "sizes"]).returncode == 0
    metrics = json.loads((run / "metrics.json").read_text())
    readme = (bundle / "README.md").read_text()
    row = "| nonzero parameters (of {teacher_params_nonzero} in the teacher) | {params_nonzero} |".format(**metrics)
    assert row in readme


def test_exporting_an_invalid_run_or_another_folder_says_why_in_one_line(tmp_path, capsys):
    with pytest.raises(SpecError, match="not a run folder"):
        export_bundle(tmp_path, tmp_path / "bundle")
    (tmp_path / "run.json").write_text('{"status": "invalid", "reason": "budget exceeded"}')
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "bundle")]) == 2
    assert "run.json: status: invalid (budget exceeded): nothing to export" in capsys.readouterr().err
