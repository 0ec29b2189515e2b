"""Sound statistics for the leaderboard, with rliable (Agarwal et al. 2021).

- A score per env × method × level: the interquartile mean (IQM) over seeds, with a 95%
  stratified bootstrap confidence interval.
- A score per method × level across envs: the IQM over every (env, seed) run, with the
  bootstrap stratified by env, as rliable aggregates over tasks.
- The probability of improvement of each method over the best baseline (the baseline with the
  highest aggregate IQM at that level), with its CI.
- Ranks that do not pretend an order: methods whose CIs overlap the leader of their group
  share its rank ("tied").
- Performance profiles: the fraction of runs with a score above τ, with CIs.

Every bootstrap reseeds numpy's global generator first (rliable draws from it; its
`random_state` argument is deprecated in the `arch` package underneath), so the leaderboard
repeats exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics as rly_metrics

BOOTSTRAP_REPS = 2000
SEED = 0


def _iqm(scores: np.ndarray) -> np.ndarray:
    return np.array([rly_metrics.aggregate_iqm(scores)])


def iqm_with_ci(scores: np.ndarray) -> tuple[float, float, float]:
    """IQM and its 95% CI of a (runs,) or (runs × tasks) score array; the bootstrap resamples runs
    within each task."""
    matrix = np.asarray(scores, dtype=float)
    matrix = matrix.reshape(-1, 1) if matrix.ndim == 1 else matrix
    np.random.seed(SEED)
    point, interval = rly.get_interval_estimates({"x": matrix}, _iqm, reps=BOOTSTRAP_REPS)
    return float(point["x"][0]), float(interval["x"][0, 0]), float(interval["x"][1, 0])


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """P(X > Y) (ties count half) of two (runs × tasks) score arrays, averaged over tasks, and its CI."""
    np.random.seed(SEED)
    point, interval = rly.get_interval_estimates({"x,y": (np.asarray(x, float), np.asarray(y, float))},
                                                 rly_metrics.probability_of_improvement, reps=BOOTSTRAP_REPS)
    low, high = np.ravel(interval["x,y"])
    return float(point["x,y"]), float(low), float(high)


def tied_ranks(points: list[float], lows: list[float], highs: list[float]) -> list[str]:
    """Rank labels, best first: a method whose CI overlaps the CI of its group's leader shares
    the leader's rank, marked "=" (e.g. 1=, 1=, 3)."""
    rank, leader = {}, None
    for position, i in enumerate(sorted(range(len(points)), key=lambda i: -points[i]), start=1):
        if leader is None or highs[i] < lows[leader]:  # no overlap with the leader: a new group
            leader = i
            rank[leader] = position
        rank[i] = rank[leader]
    shared = pd.Series(rank).value_counts()
    return [f"{rank[i]}{'=' if shared[rank[i]] > 1 else ''}" for i in range(len(points))]


def score_matrix(table: pd.DataFrame, method: str, level: float, score: str, envs: list[str],
                 seeds: list[int]) -> np.ndarray | None:
    """(seeds × envs) scores of one method at one level, or None unless every run is valid and scored."""
    runs = table[(table["method"] == method) & (table["level"] == level)].set_index(["seed", "env"])
    matrix = np.full((len(seeds), len(envs)), np.nan)
    for i, seed in enumerate(seeds):
        for j, env in enumerate(envs):
            if (seed, env) in runs.index and runs.loc[(seed, env), "status"] == "valid":
                matrix[i, j] = runs.loc[(seed, env), score]
    return None if np.isnan(matrix).any() else matrix


def aggregate_ranking(table: pd.DataFrame, score: str, baselines: set[str]) -> pd.DataFrame:
    """Per level, every method's IQM of `score` across envs and seeds with its CI, its tied rank,
    and its probability of improvement over the best baseline. A method that is not valid on
    every env and seed at a level is listed with `complete` False, and neither ranked nor compared."""
    envs = sorted(table["env"].unique())
    seeds = sorted(table["seed"].unique())
    rows = []
    for level, at_level in table.groupby("level", sort=False):
        matrices = {}
        for method in sorted(at_level["method"].unique()):
            matrix = score_matrix(at_level, method, level, score, envs, seeds)
            row = {"level": level, "method": method, "complete": matrix is not None, "baseline": method in baselines}
            if matrix is not None:
                matrices[method] = matrix
                row["iqm"], row["ci_low"], row["ci_high"] = iqm_with_ci(matrix)
            rows.append(row)
        ranked = [r for r in rows if r["level"] == level and r["complete"]]
        for row, label in zip(ranked, tied_ranks([r["iqm"] for r in ranked], [r["ci_low"] for r in ranked],
                                                [r["ci_high"] for r in ranked]), strict=True):
            row["rank"] = label
        candidates = [r for r in ranked if r["baseline"]]
        if candidates:
            best = max(candidates, key=lambda r: r["iqm"])["method"]
            for row in ranked:
                if row["method"] != best:
                    row["best_baseline"] = best
                    row["poi"], row["poi_low"], row["poi_high"] = probability_of_improvement(
                        matrices[row["method"]], matrices[best])
    columns = ["level", "method", "rank", "iqm", "ci_low", "ci_high", "best_baseline", "poi", "poi_low", "poi_high",
               "complete", "baseline"]
    ranking = pd.DataFrame(rows).reindex(columns=columns)
    return ranking.sort_values(["level", "iqm"], ascending=[False, False], ignore_index=True)


def performance_profiles(table: pd.DataFrame, level: float, score: str, taus: np.ndarray
                         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per method complete at `level`: the fraction of its (env, seed) runs with a score above each τ,
    and the 95% CI of that fraction (rows: low, high)."""
    envs, seeds = sorted(table["env"].unique()), sorted(table["seed"].unique())
    matrices = {}
    for method in sorted(table.loc[table["level"] == level, "method"].unique()):
        matrix = score_matrix(table, method, level, score, envs, seeds)
        if matrix is not None:
            matrices[method] = matrix
    if not matrices:
        return {}, {}
    np.random.seed(SEED)
    return rly.create_performance_profile(matrices, taus, reps=BOOTSTRAP_REPS)
