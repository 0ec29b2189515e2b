"""Collect every run's metrics into one table, and summarise it per env × method × level.

Seeds are aggregated with the interquartile mean and a 95% stratified bootstrap confidence
interval (rliable, `policypress.report.stats`), never with a bare mean of a few runs; within each
env × level, methods are ranked by the env's score (`env_score`), and those whose CIs overlap
are tied. Invalid and n/a runs are kept in
the table with their reason, and never contribute to a score.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from policypress.core.io import read_json, write_json, write_text
from policypress.report.stats import iqm_with_ci, tied_ranks

LEADING_COLUMNS = ("env", "seed", "method", "level", "status", "reason", "mean_return", "retention",
                   "normalized_score", "params_total", "params_nonzero", "params_fraction", "bytes",
                   "macs_dense", "macs_nonzero", "latency_us_median", "latency_us_p99",
                   "teacher_latency_us_median", "latency_speedup", "instructions", "flash_bytes", "ram_bytes",
                   "c_kernels")
SCORES = ("retention", "normalized_score")
# Returns, sizes and costs: the median over seeds (sizes are usually identical across seeds).
MEDIANS = ("mean_return", "params_total", "params_nonzero", "params_fraction", "bytes", "macs_dense", "macs_nonzero",
           "latency_us_median", "latency_us_p99", "teacher_latency_us_median", "latency_speedup", "instructions",
           "flash_bytes", "ram_bytes")


def collect(metrics_files: list[str | Path]) -> pd.DataFrame:
    """One row per run: every scalar metric, the budget used, the CPU."""
    rows = []
    for path in metrics_files:
        metrics = read_json(path)
        row = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
        row.update({f"used_{k}": v for k, v in metrics["budget_used"].items()})
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


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per env × method × level, with the status of its runs and aggregated metrics.

    A group with any invalid run is shown invalid (n/a when all its bad runs are n/a), with
    the reasons, and gets no score: a method is ranked only where every seed is valid.
    """
    rows = []
    for (env, method, level), group in table.groupby(["env", "method", "level"], sort=True):
        row = {"env": env, "method": method, "level": level, "seeds": len(group)}
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
