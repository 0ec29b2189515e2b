"""Measure one finished run: return on the held-out episodes, size, compute, latency and the
embedded cost of its standalone C export (instructions, Cortex-M4 flash and RAM).

Writes `metrics.json` (validated by workflow/schemas/metrics.schema.yaml). A run that is
invalid or n/a gets a metrics file with its status and reason and no numbers, so the
leaderboard shows it as such and never ranks it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from policypress.core.envs import make_env
from policypress.core.io import read_json, write_json
from policypress.core.policy import Policy
from policypress.core.specs import validate
from policypress.measure.embedded import embedded_metrics, toolchain_info
from policypress.measure.evaluate import policy_returns
from policypress.measure.latency import compare_latency, machine_info
from policypress.measure.metrics import size_metrics
from policypress.measure.onnx_export import export_onnx


def return_scores(returns: list[float], teacher_returns: list[float], random_returns: list[float]) -> dict:
    """Mean return, retention and normalized score, paired on the same episodes.

    retention = mean(student) / mean(teacher): defined only when the teacher's mean return
    is positive (a ratio of negative returns is meaningless); the normalized score
    (R - R_random) / (R_teacher - R_random) is defined for every env.
    """
    mean, teacher, random = (float(np.mean(r)) for r in (returns, teacher_returns, random_returns))
    return {
        "mean_return": mean,
        "std_return": float(np.std(returns)),
        "teacher_mean_return": teacher,
        "random_mean_return": random,
        "retention": mean / teacher if teacher > 0 else None,
        "normalized_score": (mean - random) / (teacher - random) if teacher != random else None,
    }


def measure_run(run_dir: str | Path, teacher_dir: str | Path, env_spec: dict, latency: dict, out: str | Path) -> dict:
    """`latency` holds compare_latency's protocol settings: warmup, windows, window_ms."""
    run_dir, teacher_dir = Path(run_dir), Path(teacher_dir)
    torch.set_num_threads(1)
    log = logging.getLogger("policypress.measure")
    run = read_json(run_dir / "run.json")
    metrics = {key: run[key] for key in ("env", "seed", "method", "level", "profile", "status", "reason")}
    metrics["budget_used"] = run["budget"]["used"]
    metrics["teacher_params_nonzero"] = run["teacher_params_nonzero"]
    metrics["track"], metrics["level_free"] = run.get("track", "post-training"), run.get("level_free", False)
    for resource, total in (run.get("interaction") or {}).items():  # the teacher's training included, where used
        metrics[f"total_{resource}"] = total
    if run["status"] == "valid":
        teacher_info = read_json(teacher_dir / "teacher.json")
        policy = Policy.load(run_dir / "policy")
        metrics["engagement"] = policy.metadata.get("engagement", {})  # did the method's mechanism engage
        returns = policy_returns(policy, env_spec, teacher_info["eval_seeds"])
        metrics["returns"] = returns
        metrics.update(return_scores(returns, teacher_info["eval_returns"], teacher_info["random_returns"]))
        metrics.update(size_metrics(policy))
        student_onnx = export_onnx(policy, run_dir / "policy.onnx")
        obs, _ = make_env(env_spec).reset(seed=teacher_info["eval_seeds"][0])
        teacher = Policy.load(teacher_dir / "policy")
        with tempfile.TemporaryDirectory() as tmp:  # the teacher exported by this same code
            teacher_onnx = export_onnx(teacher, Path(tmp) / "teacher.onnx")
            metrics.update(compare_latency(student_onnx, teacher_onnx, obs, **latency))
        metrics.update(embedded_metrics(policy, run_dir / "policy.c", obs, log, teacher, latency))
        metrics["machine"] = {**machine_info(), **toolchain_info()}
    validate(metrics, "metrics", out)
    write_json(out, metrics)
    return metrics
