"""`policypress compress-model`: one outside agent, outside any config, through the DAG's own steps.

It imports the agent as a teacher (`imported.import_teacher`), runs each named method at each level
under the env's budget (`core.harness.compress_run`, the compress rule's code) and measures each run
(`measure.run.measure_run`, the measure step's code), in the folder layout the DAG writes, then prints
one row per run: retention (or the normalized score where the teacher's return is not positive) with
its bootstrap CI over the evaluation episodes, nonzero parameters, and the embedded costs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from policypress.core.harness import compress_run
from policypress.core.registry import load_method
from policypress.core.specs import latency_defaults, load_env_spec
from policypress.measure.run import measure_run
from policypress.report.stats import paired_ratio_with_ci
from policypress.teachers.imported import import_teacher

COLUMNS = ["method", "level", "status", "score", "score_low", "score_high", "params_nonzero", "flash_bytes",
           "ram_bytes", "instructions"]


def episode_score(metrics: dict, teacher: dict) -> tuple[str, tuple[float, float, float]]:
    """Retention over the paired evaluation episodes, or the normalized score when the teacher's mean
    return is not positive (as the leaderboard's scores), with its CI."""
    student, teacher_returns, random_returns = (pd.Series(r, dtype=float) for r in (
        metrics["returns"], teacher["eval_returns"], teacher["random_returns"]))
    if teacher_returns.mean() > 0:
        return "retention", paired_ratio_with_ci(student, teacher_returns)
    return "normalized score", paired_ratio_with_ci(student - random_returns, teacher_returns - random_returns)


def compress_model(env: str, out: str | Path, methods: list[str], levels: list[float], profile: str = "quick",
                   seed: int = 0, model: str | Path | None = None, vecnormalize: str | Path | None = None,
                   algo: str | None = None, zoo_run: str | Path | None = None, method_dirs: list[str] | None = None,
                   time_limit: float | None = None, latency: dict | None = None,
                   echo: Callable[[str], None] = print) -> pd.DataFrame:
    """Import, compress, measure; returns the table (also written to OUT/summary.csv). `latency`: the ORT
    timing protocol (warmup, windows, window_ms; default: the DAG's)."""
    out = Path(out)
    spec = load_env_spec(env)
    loaded = {name: load_method(name, method_dirs) for name in methods}  # a typo fails before any work
    teacher_dir = out / "teacher"
    echo(f"importing the teacher into {teacher_dir} (and playing its evaluation episodes) ...")
    teacher = import_teacher(spec, teacher_dir, profile, seed, model, vecnormalize, algo, zoo_run)
    echo(f"teacher: {teacher['algo']}, mean return {pd.Series(teacher['eval_returns']).mean():.1f} over "
         f"{len(teacher['eval_returns'])} episodes")
    jobs = [(name, level) for name, method in loaded.items() for level in (levels if method.info.uses_level else [1.0])]
    rows = []
    for number, (name, level) in enumerate(jobs, 1):
        method = loaded[name]
        run_dir = out / "runs" / name / f"{level:g}"
        echo(f"[{number}/{len(jobs)}] {name} at level {level:g}: compressing under the {env} {profile} budget ...")
        run = compress_run(method, spec, profile, teacher_dir, level, seed,
                           method.resolve_hyperparameters(None, "compress-model"), run_dir, time_limit)
        metrics = measure_run(run_dir, teacher_dir, spec, latency or latency_defaults(), run_dir / "metrics.json")
        row = {"method": name, "level": level, "status": run["status"]}
        if run["status"] == "valid":
            kind, (score, low, high) = episode_score(metrics, teacher)
            row.update(score_kind=kind, score=score, score_low=low, score_high=high,
                       **{key: metrics[key] for key in COLUMNS[6:]})
            echo(f"    valid in {run['seconds']:.1f} s: {kind} {score:.3f} [{low:.3f}, {high:.3f}], "
                 f"{metrics['params_nonzero']} nonzero parameters")
        else:
            echo(f"    {run['status']}: {run['reason']}")
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=[*COLUMNS, "score_kind"])
    table.to_csv(out / "summary.csv", index=False)
    echo(format_table(table))
    echo(f"runs in {out / 'runs'}; `policypress export {out / 'runs' / 'METHOD' / 'LEVEL'} --out DIR` makes a bundle")
    return table


def format_table(table: pd.DataFrame) -> str:
    kinds = set(table["score_kind"].dropna())
    score = kinds.pop() if len(kinds) == 1 else "score"
    shown = pd.DataFrame({
        "method": table["method"], "level": table["level"].map("{:g}".format), "status": table["status"],
        f"{score} [95% CI]": [f"{s:.3f} [{lo:.3f}, {hi:.3f}]" if pd.notna(s) else "" for s, lo, hi in
                              zip(table["score"], table["score_low"], table["score_high"], strict=True)],
        **{column: table[column].map(lambda v: "" if pd.isna(v) else f"{int(v)}") for column in COLUMNS[6:]},
    })
    return shown.to_string(index=False)
