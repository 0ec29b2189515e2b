"""Where a compression job's time goes, beside the floor of the same work, in one run.

For one env and its teacher, the median cost of each step of a job, as the harness and the
shared loops run it, and as they ran it before batched play and lean loops (batch-1 calls, the
per-parameter optimizer loop, one index draw per minibatch), each beside its floor: the raw env
step, or one plain matrix product of the same multiply-accumulates. Ratios within one run are
what to compare across machines; absolute times depend on the CPU. With `--results`, the wall
time of a finished DAG split by rule, from Snakemake's `benchmark:` files.

Usage: python benchmarks/pipeline_cost.py ENV TEACHER_DIR [--level 0.05] [--steps 2000] [--updates 300]
       [--results results]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from policypress.compress.architecture import uniformly_shrunk
from policypress.compress.distillation import Collector, LabelledStates, distillation_loss
from policypress.core.budget import Budget, CountedEnv, Meter
from policypress.core.envs import make_env
from policypress.core.harness import build_task, ceiling
from policypress.core.policy import Policy
from policypress.core.specs import load_env_spec
from policypress.measure.metrics import macs

REPEATS = 7


def median_us(work: Callable[[], int], repeats: int = REPEATS) -> float:
    """Median over `repeats` of the µs per item of `work()`, which returns how many items it did."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        times.append((time.perf_counter() - start) / items * 1e6)
    return statistics.median(times)


def matmul_floor_us(macs_per_row: int, rows: int = 1) -> float:
    """One (rows × k) @ (k × n) product with k·n ≈ `macs_per_row`: the arithmetic without the overheads."""
    k = max(1, int(np.sqrt(macs_per_row)))
    a, b = torch.randn(rows, k), torch.randn(k, max(1, macs_per_row // k))

    def products() -> int:
        for _ in range(200):
            torch.mm(a, b)
        return 200

    return median_us(products)


def import_seconds() -> float:
    """A job's interpreter start with the harness and the measurement imported, beyond a bare start."""
    def start(code: str) -> float:
        times = []
        for _ in range(5):
            begin = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - begin)
        return statistics.median(times)

    return start("import policypress.core.harness, policypress.measure.run") - start("pass")


def env_rows(spec: dict, task, steps: int) -> list[tuple]:
    raw, counted = make_env(spec), CountedEnv(make_env(spec), Meter(Budget(10**9, 0, 0)), 10**6)

    def play(env) -> Callable[[], int]:
        def work() -> int:
            env.reset(seed=0)
            for _ in range(steps):
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                if terminated or truncated:
                    env.reset()
            return steps
        return work

    floor = median_us(play(raw))
    rows = [("env step: raw", floor, floor), ("env step: counted", median_us(play(counted)), floor)]
    student = uniformly_shrunk(task.teacher, task.max_params)
    for label, parallel in (("batch 1, as before", 1), ("side by side", 8)):
        collector = Collector(task, parallel)

        def collect(collector=collector) -> int:
            collector.collect(student, steps, 0.5, LabelledStates(steps))
            return steps

        cost = median_us(collect)
        rows.append((f"labelled state (env step + oracle + student): {label}", cost, floor))
    return rows


def observations(spec: dict, count: int) -> np.ndarray:
    return np.stack([make_env(spec).reset(seed=i)[0] for i in range(count)])


def query_rows(spec: dict, task, teacher: Policy) -> list[tuple]:
    teacher_macs = macs(teacher)[0]
    obs = observations(spec, 64)
    rows = []
    for batch in (1, 8, 64):
        cost = median_us(lambda b=batch: [task.oracle(obs[:b]) for _ in range(50)] and 50 * b)
        rows.append((f"teacher query, batch {batch}", cost, matmul_floor_us(teacher_macs, batch) / batch))
    return rows


def update_rows(spec: dict, task, teacher: Policy, updates: int) -> list[tuple]:
    """A distillation update of the level's student (RMSProp, batch 64), as the loop ran it before and runs it now."""
    rows = []
    student = uniformly_shrunk(teacher, task.max_params)
    states = observations(spec, 256).astype(np.float32)
    buffer = LabelledStates(len(states))
    buffer.add(states, task.oracle(states))
    floor = matmul_floor_us(macs(student)[0], 3 * 64)  # forward and backward: about 3 forward passes
    for label, options, batched in (("before (per-parameter loop, one draw per batch)", {"foreach": False}, False),
                                    ("now", {}, True)):
        optimizer = task.make_optimizer(student.parameters(), "rmsprop", lr=1e-3, **options)

        def distill_updates(optimizer=optimizer, batched=batched) -> int:
            batches = buffer.batches(64, updates, task.rng) if batched else (
                buffer.sample(64, task.rng) for _ in range(updates))
            total = torch.zeros(())
            for obs, labels in batches:
                loss = distillation_loss(student(obs), labels, student.output, 0.01)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                student.apply_masks()
                if batched:
                    total += loss.detach()
                else:
                    loss.item()
            return updates

        rows.append((f"distill update, batch 64, student at the level: {label}", median_us(distill_updates), floor))
    return rows


def rule_times(results: Path) -> pd.DataFrame:
    """Seconds per rule from Snakemake's benchmark files: jobs, sum and median."""
    rows = []
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = path.relative_to(results / "benchmarks").parts[0].removesuffix(".tsv")
        rows.append({"rule": {"runs": "compress", "teachers": "train_teacher"}.get(rule, rule),
                     "s": float(pd.read_csv(path, sep="\t")["s"].iloc[0])})
    return pd.DataFrame(rows).groupby("rule")["s"].agg(jobs="count", seconds="sum", median="median").round(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("teacher_dir", type=Path)
    parser.add_argument("--level", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=2000, help="env steps per timing")
    parser.add_argument("--updates", type=int, default=300, help="updates per timing")
    parser.add_argument("--results", type=Path, help="a finished DAG's results/ to split by rule")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = load_env_spec(args.env)
    teacher = Policy.load(args.teacher_dir / "policy")
    meter = Meter(Budget(10**9, 10**9, 10**9))
    with tempfile.TemporaryDirectory() as scratch:
        task = build_task(teacher, spec, meter, args.level, 0, {}, Path(scratch))
        rows = env_rows(spec, task, args.steps) + query_rows(spec, task, teacher) + update_rows(spec, task, teacher,
                                                                                                args.updates)
    table = pd.DataFrame(rows, columns=["cost", "us", "floor_us"])
    table["x_floor"] = table["us"] / table["floor_us"]
    print(f"{args.env}, student at level {args.level} ({ceiling(teacher, args.level)} parameters), one thread; "
          f"median of {REPEATS}")
    print(table.round(2).to_string(index=False))
    print(f"\ninterpreter start with the harness and the measurement imported: {import_seconds():.2f} s")
    if args.results:
        print(f"\n{args.results}: seconds per rule\n{rule_times(args.results).to_string()}")


if __name__ == "__main__":
    main()
