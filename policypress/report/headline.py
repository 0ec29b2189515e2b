"""The headline per env × method: the compression it keeps 95% retention at, with a CI and tied ranks.

Walking a method's levels from the largest down, it reaches the smallest level at which the IQM
over seeds of the env's score (`aggregate.env_score`: retention, or the normalized score where
retention is undefined) is at least 0.95, and every larger level is too ("stays at or above"). A
level fails where its group is missing or not valid: a seed's run there missing, invalid, n/a,
over the ceiling or without the score. The compression is the teacher's nonzero parameters over
the student's at that level, the median over its runs.

Its 95% CI is the bootstrap percentile interval over 2,000 resamples of the seeds, drawn as
`stats` draws (numpy's legacy generator seeded with `stats.SEED` for each estimate): one draw of
seeds for every level, as a seed's runs at all levels share its teacher, and the whole estimator
recomputed on each resample; a resample in which no level reaches 0.95 counts as no compression
(0). A method that never reaches 0.95 has no compression ("none") and ranks last; the others are
ranked by compression, tied where their CIs overlap the leader's (`stats.tied_ranks`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats

from policypress.report.aggregate import env_score, place_level_free
from policypress.report.stats import BOOTSTRAP_REPS, SEED, percentile_ci, tied_ranks

THRESHOLD = 0.95


def method_matrices(runs: pd.DataFrame, score: str) -> tuple[list[float], np.ndarray, np.ndarray]:
    """One method's levels (largest first) and its (seeds × levels) scores and compression ratios,
    from its runs in one env; a score is NaN where the seed's run at that level is missing, not
    valid or unscored."""
    levels = sorted(runs["level"].unique(), reverse=True)
    seeds = sorted(runs["seed"].unique())
    valid = runs[runs["status"] == "valid"]
    # params_fraction is the student's nonzero params over the teacher's: its inverse is the ratio.
    valid = valid.assign(ratio=1.0 / valid["params_fraction"] if "params_fraction" in valid else np.nan)
    matrices = [valid.pivot(index="seed", columns="level", values=column).reindex(index=seeds, columns=levels)
                .to_numpy(dtype=float) for column in (score, "ratio")]
    return levels, *matrices


def levels_reached(scores: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """How many levels, from the largest down, keep the IQM of the score >= 0.95 on each draw.

    scores: (seeds × levels), largest level first. seeds: (... × seeds) indices of each draw.
    Returns (...) counts: level `count - 1` is the smallest level reached; 0 where none is.
    """
    drawn = scores[seeds]  # (... × seeds × levels)
    complete = ~np.isnan(drawn).any(axis=-2)  # every drawn seed's run is valid and scored
    iqm = scipy.stats.trim_mean(np.nan_to_num(drawn), 0.25, axis=-2)  # the IQM, as stats.iqm
    passes = complete & (iqm >= THRESHOLD)
    return np.cumprod(passes, axis=-1).sum(axis=-1)  # a failing level stops the walk down


def compression(scores: np.ndarray, ratios: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The compression at 95% on each draw of seeds (see `levels_reached`): the median ratio of the
    drawn runs at the smallest level reached; NaN where no level is reached."""
    reached = levels_reached(scores, seeds)
    medians = np.median(ratios[seeds], axis=-2)  # (... × levels)
    at = np.take_along_axis(medians, np.maximum(reached - 1, 0)[..., None], axis=-1)[..., 0]
    return np.where(reached > 0, at, np.nan)


def compression_with_ci(scores: np.ndarray, ratios: np.ndarray) -> tuple[float, float, float]:
    """The compression at 95% and its 95% bootstrap CI (resamples with no level reached count as 0)."""
    n = scores.shape[0]
    draws = np.random.RandomState(SEED).choice(n, (BOOTSTRAP_REPS, n), replace=True)
    low, high = percentile_ci(np.nan_to_num(compression(scores, ratios, draws), nan=0.0))
    return float(compression(scores, ratios, np.arange(n))), float(low), float(high)


def headline(table: pd.DataFrame) -> pd.DataFrame:
    """Per env × method (level-free runs counted at every level they fit): its track, `status`
    ("reached", "none" or, where every run is n/a, "n/a"), the smallest level reached, the
    compression `ratio` with `ci_low` and `ci_high`, and its `rank` within the env."""
    table = place_level_free(table)
    rows = []
    for env, in_env in table.groupby("env", sort=True):
        score = env_score(in_env[in_env["status"] == "valid"])
        env_rows = []
        for method, runs in in_env.groupby("method", sort=True):
            row = {"env": env, "method": method, "track": runs["track"].iloc[0], "score": score,
                   "seeds": runs["seed"].nunique(), "status": "n/a"}
            if not (runs["status"] == "n/a").all():
                levels, scores, ratios = method_matrices(runs, score)
                row["ratio"], row["ci_low"], row["ci_high"] = compression_with_ci(scores, ratios)
                reached = int(levels_reached(scores, np.arange(len(scores))))
                row["status"] = "reached" if reached else "none"
                row["level"] = levels[reached - 1] if reached else np.nan
            env_rows.append(row)
        ranked = [row for row in env_rows if row["status"] == "reached"]
        labels = tied_ranks([r["ratio"] for r in ranked], [r["ci_low"] for r in ranked], [r["ci_high"] for r in ranked])
        for row, label in zip(ranked, labels, strict=True):
            row["rank"] = label
        last = [row for row in env_rows if row["status"] == "none"]  # no order among them: all tied, last
        for row in last:
            row["rank"] = f"{len(ranked) + 1}{'=' if len(last) > 1 else ''}"
        rows += env_rows
    columns = ["env", "method", "track", "status", "rank", "level", "ratio", "ci_low", "ci_high", "score", "seeds"]
    result = pd.DataFrame(rows).reindex(columns=columns)
    order = result["status"].map({"reached": 0, "none": 1, "n/a": 2})
    return (result.assign(_order=order).sort_values(["env", "_order", "ratio", "method"],
                                                     ascending=[True, True, False, True])
            .drop(columns="_order").reset_index(drop=True))
