"""ONNX export computes the policy's actions; the latency protocol reports what it promises."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from policypress.latency import compare_latency, export_onnx, session
from tests.test_metrics import cnn
from tests.test_policy import small_policy


@pytest.mark.parametrize("make", [lambda: small_policy("argmax"), lambda: small_policy("rescale"),
                                  lambda: small_policy("clip"), cnn], ids=["argmax", "rescale", "clip", "cnn"])
def test_onnx_actions_equal_the_torch_policy(make, tmp_path):
    policy = make()
    path = export_onnx(policy, tmp_path / "p.onnx")
    rng = np.random.default_rng(0)
    sess = session(path)
    for _ in range(50):
        obs = rng.normal(size=policy.obs_shape).astype(np.float32) * (255 if len(policy.obs_shape) == 3 else 2)
        (onnx_action,) = sess.run(None, {"obs": obs[None]})
        expected = policy.act(obs)
        if policy.is_discrete:
            assert int(onnx_action[0]) == int(expected)
        else:
            np.testing.assert_allclose(onnx_action[0], expected, rtol=1e-5, atol=1e-6)


def test_sessions_use_one_thread_sequentially(tmp_path):
    sess = session(export_onnx(small_policy(), tmp_path / "p.onnx"))
    options = sess.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


def test_latency_report_has_medians_p99_and_the_teacher_ratio(tmp_path):
    small = export_onnx(small_policy(), tmp_path / "small.onnx")
    result = compare_latency(small, small, np.zeros(3, dtype=np.float32), warmup=5, repeats=100)
    assert result["latency_us_p99"] >= result["latency_us_median"] > 0
    assert result["teacher_latency_us_p99"] >= result["teacher_latency_us_median"] > 0
    assert result["latency_speedup"] == pytest.approx(result["teacher_latency_us_median"] / result["latency_us_median"])
    assert result["latency_protocol"]["timed"] == 100 and result["latency_protocol"]["intra_op_threads"] == 1


def test_masked_policy_exports_its_zeros(tmp_path):
    policy = small_policy()
    policy.masks = {"1.weight": torch.zeros(6, 3, dtype=torch.bool)}
    policy.apply_masks()
    sess = session(export_onnx(policy, tmp_path / "p.onnx"))
    obs = np.ones((1, 3), dtype=np.float32)
    assert int(sess.run(None, {"obs": obs})[0][0]) == int(policy.act(obs[0]))
