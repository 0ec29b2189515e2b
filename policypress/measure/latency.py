"""The latency protocol: ONNX Runtime, batch 1, one thread, median over timed windows.

As in MLPerf Tiny: warm-up inferences, then repeated timed windows, each long enough to be
stable (at least `window_ms`); a window's latency is its time per inference, and the reported
latency is the median over windows. The p99 is over the single inferences of all windows.
Sessions use one intra-op and one inter-op thread, sequential execution and a fixed graph
optimization level, recorded with the results. Student and teacher windows alternate in one
process, so drift of the machine affects both alike; the speedup is their ratio of medians.
Pre- and post-processing are part of the exported graph, as deployed. The standalone C exports
are timed by the same protocol (`compare_c_latency`), each window one run of the harness's own
timed loop, so that no runtime's per-call overhead hides a smaller network.
"""

from __future__ import annotations

import math
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from policypress.measure.onnx_export import ACTION

GRAPH_OPTIMIZATION = "ORT_ENABLE_ALL"
MIN_INFERENCES_PER_WINDOW = 10


def session(path: str | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _timed(sess: ort.InferenceSession, feed: dict, count: int) -> list[float]:
    """Microseconds of each of `count` inferences (observation in, action out, as deployed)."""
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        sess.run([ACTION], feed)
        times.append((time.perf_counter_ns() - start) / 1000.0)
    return times


def compare_latency(student_onnx: str | Path, teacher_onnx: str | Path, obs: np.ndarray,
                    warmup: int, windows: int, window_ms: float) -> dict:
    """Latency of the student and the teacher, measured in this one process."""
    feed = {"obs": np.asarray(obs, dtype=np.float32)[None]}
    sessions = {"latency": session(student_onnx), "teacher_latency": session(teacher_onnx)}
    per_window = {}
    for name, sess in sessions.items():
        warm = _timed(sess, feed, max(warmup, 1))  # at least one, to size the windows
        per_window[name] = max(MIN_INFERENCES_PER_WINDOW, math.ceil(window_ms * 1000 / np.median(warm)))
    window_latencies: dict[str, list[float]] = {name: [] for name in sessions}
    single: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(windows):
        for name, sess in sessions.items():
            times = _timed(sess, feed, per_window[name])
            window_latencies[name].append(float(np.mean(times)))
            single[name].extend(times)
    result: dict = {}
    for name in sessions:
        result[f"{name}_us_median"] = float(np.median(window_latencies[name]))
        result[f"{name}_us_p99"] = float(np.percentile(single[name], 99))
    result["latency_speedup"] = result["teacher_latency_us_median"] / result["latency_us_median"]
    result["latency_protocol"] = {
        "runtime": f"onnxruntime {ort.__version__}", "batch": 1, "intra_op_threads": 1, "inter_op_threads": 1,
        "execution_mode": "sequential", "graph_optimization": GRAPH_OPTIMIZATION, "warmup": max(warmup, 1),
        "windows": windows, "window_ms": window_ms, "inferences_per_window": per_window["latency"],
        "teacher_inferences_per_window": per_window["teacher_latency"],
    }
    return result


def _c_window(binary: str | Path, obs: bytes, calls: int) -> float:
    """Mean microseconds per pp_act call over one window of `calls` (the harness's own timer)."""
    return float(subprocess.run([str(binary), "time", str(calls)], input=obs, capture_output=True,
                                check=True).stdout)


def compare_c_latency(student_binary: str | Path, teacher_binary: str | Path, obs: np.ndarray, warmup: int,
                      windows: int, window_ms: float) -> dict:
    """The same protocol for the standalone C exports built for this machine: each window is one run
    of the harness's timed loop (no runtime between the caller and the network), student and teacher
    alternating; the median over windows, and the teacher's median over the student's."""
    data = np.asarray(obs, dtype=np.float32).tobytes()
    binaries = {"c": student_binary, "teacher_c": teacher_binary}
    calls = {name: max(MIN_INFERENCES_PER_WINDOW, math.ceil(window_ms * 1000 / _c_window(binary, data, max(warmup, 1))))
             for name, binary in binaries.items()}  # the warm-up sizes the windows
    per_window: dict[str, list[float]] = {name: [] for name in binaries}
    for _ in range(windows):
        for name, binary in binaries.items():
            per_window[name].append(_c_window(binary, data, calls[name]))
    medians = {name: float(np.median(values)) for name, values in per_window.items()}
    return {"c_us_median": medians["c"], "teacher_c_us_median": medians["teacher_c"],
            "c_speedup": medians["teacher_c"] / medians["c"], "c_inferences_per_window": calls["c"]}


# The instruction-set features that choose onnxruntime's and gcc's kernels: x86's vector widths,
# its int8 dot products (VNNI, AMX) and ARM's (dot product, int8 matrix multiply, SVE), as
# /proc/cpuinfo names them.
KERNEL_FEATURES = ("sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8",
                   "asimd", "asimddp", "i8mm", "sve", "sve2")


def machine_info() -> dict:
    """The CPU, its kernel-choosing features and the library versions behind every measurement."""
    model, features = _cpu_info()
    return {"cpu": model, "cpu_features": features, "machine": platform.machine(), "system": platform.platform(),
            "python": platform.python_version(), "onnxruntime": ort.__version__, "onnx": onnx.__version__,
            "torch": torch.__version__, "numpy": np.__version__}


def _cpu_info(cpuinfo: str | None = None) -> tuple[str, list[str]]:
    """The model name and the `KERNEL_FEATURES` the CPU has (from /proc/cpuinfo, or the text given)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first core's
    flags = set((fields.get("flags") or fields.get("Features") or "").split())  # x86 names them flags, ARM Features
    model = fields.get("model name") or platform.processor() or "unknown"
    return model, [feature for feature in KERNEL_FEATURES if feature in flags]
