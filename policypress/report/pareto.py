"""Pareto fronts of score against cost: the runs no other run beats on both at once."""

from __future__ import annotations

import numpy as np
import pandas as pd

# The fronts the leaderboard marks, per env: retention against each cost.
FRONTS = {"params": "params_nonzero", "latency": "latency_us_median", "instructions": "instructions"}


def on_front(score: pd.Series, cost: pd.Series) -> pd.Series:
    """True where no other row has a score at least as high and a cost at least as low, one of
    them strictly; rows missing either value are never on the front."""
    known = score.notna() & cost.notna()
    s, c = score[known].to_numpy(float), cost[known].to_numpy(float)
    dominated = ((s[None, :] >= s[:, None]) & (c[None, :] <= c[:, None])
                 & ((s[None, :] > s[:, None]) | (c[None, :] < c[:, None]))).any(axis=1)
    front = pd.Series(False, index=score.index)
    front[known] = ~dominated
    return front


def mark_fronts(summary: pd.DataFrame, score: str = "retention") -> pd.DataFrame:
    """`summary` with a boolean `pareto_<cost>` column per front, computed within each env over its
    valid rows (every method and level, the teacher's dense row included)."""
    summary = summary.copy()
    for name, cost in FRONTS.items():
        column = np.zeros(len(summary), dtype=bool)
        if cost in summary and score in summary:
            for _, group in summary[summary["status"] == "valid"].groupby("env"):
                front = on_front(group[score], group[cost])
                column[summary.index.get_indexer(front.index)] = front.to_numpy()
        summary[f"pareto_{name}"] = column
    return summary
