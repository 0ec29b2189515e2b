"""ONNX export and the latency protocol.

Protocol: batch 1, one intra-op and one inter-op thread, sequential execution, a fixed graph
optimization level; warm-up inferences, then timed inferences of the student and the
teacher interleaved window by window (so drift of the machine affects both alike); the
median and p99 of the per-inference times in microseconds. Pre- and post-processing are
part of the exported graph, as deployed.
"""

from __future__ import annotations

import logging
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from policypress.policy import Policy

GRAPH_OPTIMIZATION = "ORT_ENABLE_ALL"
# The exporter warns about every torchvision op it cannot register; none is used here.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
WINDOWS = 20


def export_onnx(policy: Policy, path: str | Path) -> Path:
    """Observation (batch 1) in, action out, with preprocessing and action head inside."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros((1, *policy.obs_shape), dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(policy.deployed().eval(), (example,), input_names=["obs"],
                                    output_names=["action"], dynamo=True, verbose=False)
    tmp = path.with_suffix(".tmp.onnx")
    program.save(str(tmp))
    tmp.replace(path)
    return path


def session(path: str | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _timed(sess: ort.InferenceSession, feed: dict, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        sess.run(None, feed)
        times.append((time.perf_counter_ns() - start) / 1000.0)
    return times


def compare_latency(student_onnx: str | Path, teacher_onnx: str | Path, obs: np.ndarray,
                    warmup: int, repeats: int) -> dict:
    """Latency of the student and the teacher, measured in this one process."""
    feed = {"obs": np.asarray(obs, dtype=np.float32)[None]}
    sessions = {"student": session(student_onnx), "teacher": session(teacher_onnx)}
    for sess in sessions.values():
        _timed(sess, feed, warmup)
    times: dict[str, list[float]] = {"student": [], "teacher": []}
    per_window = max(1, repeats // WINDOWS)
    for _ in range(WINDOWS):
        for name, sess in sessions.items():
            times[name].extend(_timed(sess, feed, per_window))
    result = {}
    for name, values in times.items():
        prefix = "latency" if name == "student" else "teacher_latency"
        result[f"{prefix}_us_median"] = float(np.median(values))
        result[f"{prefix}_us_p99"] = float(np.percentile(values, 99))
    result["latency_speedup"] = result["teacher_latency_us_median"] / result["latency_us_median"]
    result["latency_protocol"] = {"batch": 1, "intra_op_threads": 1, "inter_op_threads": 1,
                                  "execution_mode": "sequential", "graph_optimization": GRAPH_OPTIMIZATION,
                                  "warmup": warmup, "timed": per_window * WINDOWS, "windows": WINDOWS}
    return result


def machine_info() -> dict:
    return {"cpu": _cpu_model(), "machine": platform.machine(), "python": platform.python_version(),
            "onnxruntime": ort.__version__, "torch": torch.__version__}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
