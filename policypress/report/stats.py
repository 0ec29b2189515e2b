"""Sound statistics for the leaderboard: rliable's estimators (Agarwal et al. 2021), vectorized.

- A score per env × method × level: the interquartile mean (IQM) over seeds, with a 95%
  stratified bootstrap confidence interval.
- A score per method × level across envs: the IQM over every (env, seed) run, with the
  bootstrap stratified by env, as rliable aggregates over tasks.
- The probability of improvement of each method over the best baseline (the baseline with the
  highest aggregate IQM at that level), with its CI.
- Ranks that do not pretend an order: methods whose CIs overlap the leader of their group
  share its rank ("tied").
- Performance profiles: the fraction of runs with a score above τ, with CIs.

rliable computes each estimate in a Python loop over the resamples (through the `arch`
package), which made rendering a leaderboard take minutes. Here every resample is drawn at
once, as one array of run indices, and each estimator is one reduction over it. The draws are
rliable's own: numpy's legacy generator seeded with `SEED` for each estimate (each performance
profile figure), drawing the same indices in the same order, so the numbers equal rliable's
up to floating-point rounding (tests/test_stats.py checks this against rliable itself).
CIs are the bootstrap percentiles, as rliable's default `percentile` method.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats

BOOTSTRAP_REPS = 2000
SEED = 0
CONFIDENCE = 0.95


def _as_matrix(scores: np.ndarray) -> np.ndarray:
    """A (runs × tasks) float matrix; a 1-D array is one task."""
    matrix = np.asarray(scores, dtype=float)
    return matrix.reshape(-1, 1) if matrix.ndim == 1 else matrix


def _resamples(matrix: np.ndarray, draws: np.random.RandomState) -> np.ndarray:
    """(reps × runs × tasks): each task's runs resampled with replacement, the stratified bootstrap."""
    return _take(matrix, draws.choice(matrix.shape[0], (BOOTSTRAP_REPS, *matrix.shape), replace=True))


def _take(matrix: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """`matrix` (runs × tasks) at the run indices `runs` (reps × runs × tasks), task by task."""
    return np.take_along_axis(matrix[None], runs, axis=1)


def percentile_ci(estimates: np.ndarray) -> np.ndarray:
    """(2 × ...) lower and upper bounds: the bootstrap percentiles of `estimates` (reps first)."""
    tail = 100 * (1 - CONFIDENCE) / 2
    return np.percentile(estimates, [tail, 100 - tail], axis=0)


def iqm(matrix: np.ndarray) -> np.ndarray:
    """The interquartile mean over the last two axes (runs × tasks), as rliable's `aggregate_iqm`."""
    return scipy.stats.trim_mean(matrix.reshape(*matrix.shape[:-2], -1), 0.25, axis=-1)


def iqm_with_ci(scores: np.ndarray) -> tuple[float, float, float]:
    """IQM and its 95% CI of a (runs,) or (runs × tasks) score array; the bootstrap resamples runs
    within each task."""
    matrix = _as_matrix(scores)
    low, high = percentile_ci(iqm(_resamples(matrix, np.random.RandomState(SEED))))
    return float(iqm(matrix)), float(low), float(high)


def paired_ratio_with_ci(numerator: np.ndarray, denominator: np.ndarray) -> tuple[float, float, float]:
    """mean(numerator) / mean(denominator) of paired samples (e.g. a student's and its teacher's return on
    the same episodes), with the 95% percentile bootstrap CI that resamples the pairs."""
    x, y = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    pairs = np.random.RandomState(SEED).choice(len(x), (BOOTSTRAP_REPS, len(x)), replace=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = percentile_ci(x[pairs].mean(axis=1) / y[pairs].mean(axis=1))
    return float(x.mean() / y.mean()), float(low), float(high)


def improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 per task, averaged over tasks, of (... × runs × tasks) arrays: the
    Mann-Whitney U statistic over the number of pairs, as rliable's `probability_of_improvement`."""
    pairs_x, pairs_y = x[..., :, None, :], y[..., None, :, :]
    per_task = (pairs_x > pairs_y).mean(axis=(-3, -2)) + 0.5 * (pairs_x == pairs_y).mean(axis=(-3, -2))
    return per_task.mean(axis=-1)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """P(X > Y) (ties count half) of two (runs × tasks) score arrays, averaged over tasks, and its CI;
    the bootstrap resamples each array's runs independently within each task."""
    x, y = _as_matrix(x), _as_matrix(y)
    draws = np.random.RandomState(SEED)
    if x.shape == y.shape:  # rliable's order of draws: all of x's indices, then y's, for each resample
        runs = draws.choice(x.shape[0], (BOOTSTRAP_REPS, 2, *x.shape), replace=True)
        x_resampled, y_resampled = _take(x, runs[:, 0]), _take(y, runs[:, 1])
    else:
        x_resampled, y_resampled = _resamples(x, draws), _resamples(y, draws)
    low, high = percentile_ci(improvement(x_resampled, y_resampled))
    return float(improvement(x, y)), float(low), float(high)


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
    draws = np.random.RandomState(SEED)  # one stream for the figure, through its methods in order
    profiles, cis = {}, {}
    for method, matrix in matrices.items():
        profiles[method] = fraction_above(matrix, taus)
        cis[method] = percentile_ci(fraction_above(_resamples(matrix, draws), taus))
    return profiles, cis


def fraction_above(matrix: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """The fraction of runs (last two axes) with a score above each τ: rliable's score distribution."""
    flat = matrix.reshape(*matrix.shape[:-2], -1)
    return (flat[..., None] > np.asarray(taus)).mean(axis=-2)
