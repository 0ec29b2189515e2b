"""Compression cost per method: time a run on a fraction of a profile's budget, extrapolate.

Every method spends its budget (env steps, teacher queries, gradient updates) at an even rate,
so the time of a run on `--fraction` of the budget, divided by the fraction, estimates the full
run; one that spends under half of it (int8's fixed calibration) costs the same at any budget.
Each method runs in its own process, through the harness exactly as `policypress compress`
runs it, and its peak resident memory is read from the kernel. A short run's memory understates
a full one's where a replay buffer fills with the budget (docs/cost.md gives them at capacity).
Usage: python benchmarks/compress_cost.py ENV TEACHER_DIR [--fraction 0.01] [--profile full]
       [--level 0.1] [--methods a b ...]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

from policypress.core.harness import compress_run
from policypress.core.registry import available_methods, load_method
from policypress.core.specs import load_env_spec


def scaled_spec(env: str, profile: str, fraction: float) -> dict:
    spec = copy.deepcopy(load_env_spec(env))
    budget = spec["budget"][profile]
    spec["budget"][profile] = {key: max(1, round(value * fraction)) for key, value in budget.items()}
    return spec


def run_one(args: argparse.Namespace, method_name: str) -> None:
    """In the child: one compress run; its record goes to stdout as JSON."""
    method = load_method(method_name)
    with tempfile.TemporaryDirectory() as out:
        run = compress_run(method, scaled_spec(args.env, args.profile, args.fraction), args.profile, args.teacher_dir,
                           args.level if method.info.uses_level else 1.0, 0,
                           method.resolve_hyperparameters({}, "benchmark"), out)
    print(json.dumps({key: run[key] for key in ("status", "reason", "seconds", "budget")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("teacher_dir", help="a trained teacher of ENV, e.g. results/teachers/ENV/0")
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--profile", default="full")
    parser.add_argument("--level", type=float, default=0.1)
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: the child's method
    args = parser.parse_args()
    if args.only:
        return run_one(args, args.only)
    budget = load_env_spec(args.env)["budget"][args.profile]
    print(f"{args.env}, {args.profile} budget {budget}, measured on {args.fraction:g} of it, level {args.level:g}")
    total = 0.0
    for name in args.methods or sorted(available_methods()):
        child = subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--only", name],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        output = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        if status != 0 or not output.strip():
            print(f"{name:18s} failed (exit status {status})")
            continue
        run = json.loads(output.strip().splitlines()[-1])
        if run["status"] != "valid":
            print(f"{name:18s} {run['status']}: {run['reason']}")
            continue
        used, limit = run["budget"]["used"], run["budget"]["limit"]
        scales = max(used[key] / limit[key] for key in used) > 0.5  # or a fixed cost, e.g. int8's calibration
        hours = run["seconds"] / (args.fraction if scales else 1) / 3600
        total += hours
        spent = ", ".join(f"{key} {value:,}" for key, value in used.items())
        print(f"{name:18s} {run['seconds']:8.1f} s -> {hours:6.2f} h for the full budget"
              f"{'' if scales else ' (a fixed cost)'}; peak memory {usage.ru_maxrss / 1024:,.0f} MB; used {spent}")
    print(f"all methods: {total:.1f} h per env, seed and level")


if __name__ == "__main__":
    main()
