"""The leaderboard's statistics agree with rliable computed independently (exactly on the same
resample indices, within Monte-Carlo error on others), and ties are shown tied."""

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics as rly_metrics

from policypress.report.aggregate import summarise
from policypress.report.stats import (
    aggregate_ranking,
    iqm_with_ci,
    performance_profiles,
    probability_of_improvement,
    tied_ranks,
)

ENVS, SEEDS = ["acrobot", "cartpole"], [0, 1, 2, 3, 4]


def runs(method: str, scores: np.ndarray, level: float = 0.1, status: str = "valid") -> list[dict]:
    """One row per (seed, env) of a (seeds × envs) score matrix."""
    return [{"env": env, "seed": seed, "method": method, "level": level, "status": status, "reason": None,
             "retention": scores[i, j], "normalized_score": scores[i, j]}
            for i, seed in enumerate(SEEDS) for j, env in enumerate(ENVS)]


RNG = np.random.default_rng(1)
STRONG = 0.95 + 0.02 * RNG.standard_normal((5, 2))
MATRICES = {
    "strong": STRONG,
    "close": STRONG[::-1] - 0.002,  # the same runs in another seed order, a little lower: within noise
    "weak": 0.4 + 0.05 * RNG.standard_normal((5, 2)),  # a baseline, clearly behind
    "control": 0.2 + 0.05 * RNG.standard_normal((5, 2)),  # a worse baseline
}


def table() -> pd.DataFrame:
    rows = [row for method, matrix in MATRICES.items() for row in runs(method, matrix)]
    partial = MATRICES["strong"].copy()
    rows += runs("partial", partial)
    rows[-1].update(status="n/a", retention=np.nan, normalized_score=np.nan)  # n/a on one env and seed
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def ranking() -> pd.DataFrame:
    return aggregate_ranking(table(), "retention", baselines={"weak", "control"}).set_index("method")


def rliable_iqm(matrix: np.ndarray) -> tuple[float, float, float]:
    np.random.seed(0)
    point, interval = rly.get_interval_estimates(
        {"m": matrix}, lambda x: np.array([rly_metrics.aggregate_iqm(x)]), reps=2000)
    return point["m"][0], interval["m"][0, 0], interval["m"][1, 0]


def test_aggregate_iqm_and_ci_across_envs_agree_with_rliable(ranking):
    for method, matrix in MATRICES.items():
        expected = rliable_iqm(matrix)  # (runs × tasks): stratified by env
        assert tuple(ranking.loc[method, ["iqm", "ci_low", "ci_high"]]) == pytest.approx(expected)
        assert ranking.loc[method, "ci_low"] <= ranking.loc[method, "iqm"] <= ranking.loc[method, "ci_high"]


def test_probability_of_improvement_is_over_the_best_baseline_and_agrees_with_rliable(ranking):
    assert ranking.loc["strong", "best_baseline"] == "weak"  # the better of the two baselines
    np.random.seed(0)
    point, interval = rly.get_interval_estimates({"p": (MATRICES["strong"], MATRICES["weak"])},
                                                 rly_metrics.probability_of_improvement, reps=2000)
    assert ranking.loc["strong", "poi"] == pytest.approx(point["p"]) == 1.0
    assert (ranking.loc["strong", "poi_low"], ranking.loc["strong", "poi_high"]) == pytest.approx(
        tuple(np.ravel(interval["p"])))
    assert ranking.loc["control", "poi"] < 0.05 and pd.isna(ranking.loc["weak", "poi"])


def test_overlapping_cis_are_tied_and_separated_ones_are_not(ranking):
    assert ranking.loc["strong", "rank"] == ranking.loc["close", "rank"] == "1="
    assert (ranking.loc["weak", "rank"], ranking.loc["control", "rank"]) == ("3", "4")
    assert tied_ranks([3.0, 2.0, 1.0], [2.5, 1.5, 0.5], [3.5, 2.4, 1.4]) == ["1", "2", "3"]
    assert tied_ranks([3.0, 2.0], [2.0, 1.0], [4.0, 2.5]) == ["1=", "1="]


def test_a_method_missing_a_run_is_listed_but_neither_ranked_nor_compared(ranking):
    assert not ranking.loc["partial", "complete"]
    assert pd.isna(ranking.loc["partial", "rank"]) and pd.isna(ranking.loc["partial", "iqm"])


def test_performance_profile_is_the_fraction_of_runs_above_tau():
    taus = np.array([0.0, 0.5, 0.95, 2.0])
    profiles, cis = performance_profiles(table(), 0.1, "retention", taus)
    assert set(profiles) == set(MATRICES)  # "partial" is incomplete
    for method, matrix in MATRICES.items():
        np.testing.assert_allclose(profiles[method], [(matrix > tau).mean() for tau in taus])
        assert cis[method].shape == (2, len(taus))
        assert np.all(cis[method][0] <= profiles[method] + 1e-12) and np.all(profiles[method] <= cis[method][1] + 1e-12)


def test_per_env_ranks_tie_overlapping_methods():
    rows = []
    for method, values in {"a": [0.90, 0.95, 1.00, 0.92, 0.97], "b": [0.91, 0.94, 0.99, 0.93, 0.96],
                           "c": [0.10, 0.12, 0.11, 0.09, 0.13]}.items():
        rows += [{"env": "cartpole", "seed": s, "method": method, "level": 0.1, "status": "valid", "reason": None,
                  "retention": v, "normalized_score": v} for s, v in enumerate(values)]
    summary = summarise(pd.DataFrame(rows)).set_index("method")
    assert summary.loc["a", "rank"] == summary.loc["b", "rank"] == "1=" and summary.loc["c", "rank"] == "3"


def test_pareto_front_keeps_exactly_the_undominated_points():
    from policypress.report.pareto import mark_fronts, on_front

    score = pd.Series([1.0, 0.9, 0.9, 0.5, 0.95, np.nan, 0.2])
    cost = pd.Series([100, 10, 20, 5, 100, 1, 5])
    # 0.9@20 is beaten by 0.9@10; 0.95@100 by 1.0@100; 0.2@5 by 0.5@5; the NaN score is never on the front.
    assert on_front(score, cost).tolist() == [True, True, False, True, False, False, False]
    summary = pd.DataFrame({"env": ["a", "a", "b", "b", "b"], "status": ["valid", "valid", "valid", "valid", "n/a"],
                            "retention": [1.0, 0.5, 0.5, 0.9, np.nan], "params_nonzero": [100, 200, 100, 50, 1],
                            "latency_us_median": [1.0, 1.0, 2.0, 3.0, np.nan], "instructions": [5, 5, 5, 5, 5]})
    marked = mark_fronts(summary)
    assert marked["pareto_params"].tolist() == [True, False, False, True, False]  # fronts are per env
    assert marked["pareto_latency"].tolist() == [True, False, True, True, False]
    assert marked["pareto_instructions"].tolist() == [True, False, False, True, False]


def test_performance_profile_cis_agree_with_rliable():
    taus = np.linspace(0.0, 1.2, 13)
    _, cis = performance_profiles(table(), 0.1, "retention", taus)
    np.random.seed(0)  # rliable draws from the global generator, method after method in the same order
    _, expected = rly.create_performance_profile(dict(sorted(MATRICES.items())), taus, reps=2000)
    for method in MATRICES:
        np.testing.assert_allclose(cis[method], expected[method], atol=1e-12)


def test_other_resamples_agree_with_rliable_within_monte_carlo_error():
    """rliable on another seed: the CIs move only by bootstrap noise; so does an unequal-runs comparison."""
    rng = np.random.default_rng(7)
    scores, other = rng.normal(0.8, 0.1, (10, 3)), rng.normal(0.75, 0.1, (7, 3))
    np.random.seed(123)
    _, interval = rly.get_interval_estimates({"m": scores}, lambda x: np.array([rly_metrics.aggregate_iqm(x)]),
                                             reps=2000)
    _, low, high = iqm_with_ci(scores)
    assert (low, high) == pytest.approx((interval["m"][0, 0], interval["m"][1, 0]), abs=0.01)
    np.random.seed(123)
    point, interval = rly.get_interval_estimates({"p": (scores, other)}, rly_metrics.probability_of_improvement,
                                                 reps=2000)
    poi, low, high = probability_of_improvement(scores, other)
    assert poi == pytest.approx(point["p"])
    assert (low, high) == pytest.approx(tuple(np.ravel(interval["p"])), abs=0.03)
