"""Collect every run's metrics into one table, and summarise it per env × method × level.

A level-free method (one that runs once per seed and chooses its own size, stored at level 1.0)
counts at every level whose ceiling its run meets (`place_level_free`). Seeds are aggregated with
the interquartile mean and a 95% stratified bootstrap confidence interval (rliable,
`policypress.report.stats`), never with a bare mean of a few runs; within each env × level,
methods are ranked by the env's score (`env_score`), and those whose CIs overlap are tied.
Invalid and n/a runs are kept in the table with their reason, and never contribute to a score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from policypress.core.io import read_json, write_json, write_text
from policypress.report.stats import iqm_with_ci, tied_ranks

LEADING_COLUMNS = ("env", "seed", "method", "level", "status", "reason", "mean_return", "retention",
                   "normalized_score", "params_total", "params_nonzero", "params_fraction", "bytes",
                   "macs_dense", "macs_nonzero", "latency_us_median", "latency_us_p99",
                   "teacher_latency_us_median", "latency_speedup", "instructions", "flash_bytes", "ram_bytes",
                   "m4_cycles", "m4_us", "m4_cycles_per_mac", "c_us_median", "c_speedup", "c_kernels")
SCORES = ("retention", "normalized_score")
# Returns, sizes and costs: the median over seeds (sizes are usually identical across seeds).
MEDIANS = ("mean_return", "params_total", "params_nonzero", "params_fraction", "bytes", "macs_dense", "macs_nonzero",
           "latency_us_median", "latency_us_p99", "teacher_latency_us_median", "latency_speedup", "instructions",
           "flash_bytes", "ram_bytes", "m4_cycles", "m4_us", "m4_cycles_per_mac", "c_us_median", "c_speedup",
           "teacher_params_nonzero",
           "total_env_steps", "total_gradient_updates")
# Tables written before runs recorded their track held post-training runs only.
DEFAULT_TRACK = "post-training"


def collect(metrics_files: list[str | Path]) -> pd.DataFrame:
    """One row per run: every scalar metric, the budget used, the CPU."""
    rows = []
    for path in metrics_files:
        metrics = read_json(path)
        row = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
        row.update({f"used_{k}": v for k, v in metrics["budget_used"].items()})
        # Whether each of the method's mechanisms engaged (e.g. pops_iterations): shown on its page.
        row.update({f"engagement_{k}": v for k, v in (metrics.get("engagement") or {}).items()})
        # The whole interaction, the teacher's training included, where recorded as one dict.
        row.update({f"total_{k}": v for k, v in (metrics.get("interaction") or {}).items() if f"total_{k}" not in row})
        if "machine" in metrics:
            row["cpu"] = metrics["machine"]["cpu"]
        if "c_kernels" in metrics:  # e.g. "dense_f32 sparse_f32 dense_f32", one per weighted layer
            row["c_kernels"] = " ".join(choice["kernel"] for choice in metrics["c_kernels"])
        rows.append(row)
    table = pd.DataFrame(rows)
    if "params_nonzero" in table:
        table["params_fraction"] = table["params_nonzero"] / table["teacher_params_nonzero"]
    first = [c for c in LEADING_COLUMNS if c in table]
    table = table[first + [c for c in table.columns if c not in first]]
    return table.sort_values(["env", "method", "level", "seed"], ignore_index=True)


def write_table(metrics_files: list[str | Path], out: str | Path, runs_json: str | Path | None = None) -> pd.DataFrame:
    """Write the table, and with `runs_json` every run's full record: its run.json (budget limits and
    use, hyperparameters, plugin sha256) updated by its metrics.json (metrics, machine, versions)."""
    table = collect(metrics_files)
    write_text(out, table.to_csv(index=False))
    if runs_json is not None:
        records = [{**read_json(Path(path).with_name("run.json")), **read_json(path)} for path in metrics_files]
        write_json(runs_json, records)
    return table


def with_defaults(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of `table` with a `track` and a boolean `level_free` on every run: tables written before
    runs recorded them hold post-training runs, each at its own level."""
    table = table.copy()
    table["track"] = table["track"].fillna(DEFAULT_TRACK) if "track" in table else DEFAULT_TRACK
    table["level_free"] = table["level_free"].map(is_true) if "level_free" in table else False
    return table


def is_true(value: object) -> bool:
    """Read back from a CSV, a boolean column with gaps holds True, False and NaN (or their text)."""
    return str(value).lower() == "true"


def fits_level(runs: pd.DataFrame, level: float) -> pd.Series:
    """Whether each run's nonzero parameters meet `level`'s ceiling, floor(level × teacher's), the
    harness's rule (`policypress.core.harness.ceiling`)."""
    if "teacher_params_nonzero" in runs:
        return runs["params_nonzero"] <= np.floor(level * runs["teacher_params_nonzero"] + 1e-9)
    return runs["params_fraction"] <= level + 1e-9


def place_level_free(table: pd.DataFrame) -> pd.DataFrame:
    """`table` (with its defaults) plus each level-free method's runs placed at every other level they fit.

    A level-free method runs once per seed and chooses its own size, so its run (stored at level
    1.0) with nonzero fraction f meets the ceiling of every level L >= f and counts there too; the
    levels are those of the per-level runs, and 1.0. At a level where some of the method's valid
    runs fit, its other runs are placed too, those over the ceiling as invalid: as for a per-level
    method, the level's group is scored only where every seed's run is valid and fits. Placed
    copies are marked `placed`, so that plots draw each run once, at its own size. Idempotent.
    """
    table = with_defaults(table)
    if "placed" in table:
        table = table[~table["placed"].map(is_true)].copy()
    table["placed"] = False
    levels = sorted(set(table.loc[~table["level_free"], "level"]) | {1.0})
    placed = []
    for _, runs in table[table["level_free"]].groupby(["env", "method"]):
        for level in levels:
            fits = (runs["status"] == "valid") & fits_level(runs, level)
            if not fits.any() or (runs["level"] == level).any():
                continue
            copies = runs.assign(level=level, placed=True, reason=runs["reason"].astype(object))
            over = (copies["status"] == "valid") & ~fits
            copies.loc[over, "status"] = "invalid"
            copies.loc[over, "reason"] = [f"seed {run.seed}: nonzero fraction {run.params_fraction:.3g} is over "
                                          f"level {level:g}" for run in copies[over].itertuples()]
            placed.append(copies)
    return pd.concat([table, *placed], ignore_index=True) if placed else table


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per env × method × level, with the status of its runs and aggregated metrics.

    Level-free runs count at every level they fit (`place_level_free`). A group with any invalid
    run is shown invalid (n/a when all its bad runs are n/a), with the reasons, and gets no score:
    a method is ranked only where every seed is valid.
    """
    table = place_level_free(table)
    rows = []
    for (env, method, level), group in table.groupby(["env", "method", "level"], sort=True):
        row = {"env": env, "method": method, "level": level, "seeds": len(group), "track": group["track"].iloc[0],
               "level_free": bool(group["level_free"].iloc[0]), "placed": bool(group["placed"].iloc[0])}
        bad = group[group["status"] != "valid"]
        if len(bad):
            row["status"] = "n/a" if (bad["status"] == "n/a").all() else "invalid"
            row["reason"] = "; ".join(sorted(set(bad["reason"].astype(str))))
            rows.append(row)
            continue
        row["status"] = "valid"
        for score in SCORES:
            values = group[score].dropna().to_numpy(dtype=float)
            if len(values):
                row[score], row[f"{score}_ci_low"], row[f"{score}_ci_high"] = iqm_with_ci(values)
        for column in MEDIANS:
            row[column] = float(group[column].median()) if column in group else float("nan")
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary["rank"] = None
    for _, group in summary[summary["status"] == "valid"].groupby("env"):
        score = env_score(group)
        for _, at_level in group.groupby("level"):
            scored = at_level.dropna(subset=[score])
            summary.loc[scored.index, "rank"] = tied_ranks(list(scored[score]), list(scored[f"{score}_ci_low"]),
                                                           list(scored[f"{score}_ci_high"]))
    return summary


def env_score(rows: pd.DataFrame) -> str:
    """An env's headline score: retention where it is defined (the teacher's return is positive),
    otherwise the normalized score (e.g. Acrobot's returns are negative)."""
    if "retention" in rows and rows["retention"].notna().any():
        return "retention"
    return "normalized_score"
