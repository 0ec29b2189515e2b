"""The latency protocol reports what it promises."""

import numpy as np
import onnxruntime as ort
import pytest

from policypress.compress.architecture import resized
from policypress.measure.latency import MIN_INFERENCES_PER_WINDOW, _cpu_info, compare_latency, machine_info, session
from policypress.measure.onnx_export import export_onnx
from tests.test_policy import small_policy


def test_sessions_use_one_thread_sequentially(tmp_path):
    sess = session(export_onnx(small_policy(), tmp_path / "p.onnx"))
    options = sess.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


def test_latency_report_has_window_medians_p99_and_the_teacher_ratio(tmp_path):
    small = export_onnx(small_policy(), tmp_path / "small.onnx")
    big = export_onnx(resized(small_policy(), [256]), tmp_path / "big.onnx")
    result = compare_latency(small, big, np.zeros(3, dtype=np.float32), warmup=5, windows=4, window_ms=0.01)
    assert result["latency_us_p99"] >= result["latency_us_median"] > 0
    assert result["teacher_latency_us_p99"] >= result["teacher_latency_us_median"] > 0
    assert result["latency_speedup"] == pytest.approx(result["teacher_latency_us_median"] / result["latency_us_median"])
    protocol = result["latency_protocol"]
    assert protocol["windows"] == 4 and protocol["intra_op_threads"] == 1 and protocol["batch"] == 1
    assert protocol["inferences_per_window"] == MIN_INFERENCES_PER_WINDOW  # 0.01 ms is shorter than 10 inferences


def test_windows_last_at_least_their_duration(tmp_path):
    small = export_onnx(small_policy(), tmp_path / "small.onnx")
    result = compare_latency(small, small, np.zeros(3, dtype=np.float32), warmup=20, windows=2, window_ms=20.0)
    per_window = result["latency_protocol"]["inferences_per_window"]
    assert per_window > MIN_INFERENCES_PER_WINDOW
    assert per_window * result["latency_us_median"] >= 20_000 * 0.5  # about 20 ms per window, within timer noise


def test_machine_info_names_the_cpu_and_libraries():
    info = machine_info()
    assert info["cpu"] and info["onnxruntime"] == ort.__version__ and "torch" in info and "onnx" in info
    assert info["cpu_features"] == _cpu_info()[1]


def test_cpu_features_are_read_from_x86_flags_and_arm_features():
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_1 avx avx2 fma bmi2\n\n" \
          "processor\t: 1\nmodel name\t: other\nflags\t\t: avx512_vnni\n"
    assert _cpu_info(x86) == ("AMD EPYC 7B13", ["sse4_1", "avx", "avx2", "fma"])  # the first core's, no VNNI
    arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd aes asimddp sve i8mm\nCPU part\t: 0xd40\n"
    assert _cpu_info(arm)[1] == ["asimd", "asimddp", "i8mm", "sve"]
