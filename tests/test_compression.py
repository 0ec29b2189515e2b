"""Which method compresses best: level-free runs count at every level they fit, and the compression at
95% retention equals a hand computation, its bootstrap the whole estimator recomputed per resample."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from policypress.report.aggregate import collect, place_level_free, summarise
from policypress.report.headline import headline
from policypress.report.site import engagement, render
from policypress.report.stats import tied_ranks

TEACHER = 1000
LEVELS = (0.5, 0.25, 0.1)


def run(method: str, seed: int, level: float, retention: float, nonzero: int, status: str = "valid",
        **extra) -> dict:
    return {"env": "cartpole", "seed": seed, "method": method, "level": level, "status": status,
            "reason": None if status == "valid" else "crashed", "retention": retention, "normalized_score": retention,
            "mean_return": 500 * retention, "params_total": nonzero, "params_nonzero": nonzero,
            "params_fraction": nonzero / TEACHER, "teacher_params_nonzero": TEACHER, **extra}


def per_level(method: str, retentions: dict[float, list[float]], nonzero: dict[float, list[int]] | None = None,
              **extra) -> list[dict]:
    """One run per seed and level; nonzero params default to the level's ceiling."""
    return [run(method, seed, level, value, (nonzero or {}).get(level, [int(level * TEACHER)] * 4)[seed], **extra)
            for level, values in retentions.items() for seed, value in enumerate(values)]


def level_free(method: str, fractions: list[float], retentions: list[float], **extra) -> list[dict]:
    return [run(method, seed, 1.0, value, int(f * TEACHER), level_free=True, **extra)
            for seed, (f, value) in enumerate(zip(fractions, retentions, strict=True))]


def iqm(values: list[float]) -> float:
    return scipy.stats.trim_mean(values, 0.25)


# 4 seeds × 3 levels. IQM of 4 values: the mean of the middle two.
PASSES_TWO = {0.5: [1.0, 0.98, 0.96, 0.90],  # IQM 0.97
              0.25: [0.99, 0.97, 0.95, 0.80],  # IQM 0.96
              0.1: [0.90, 0.50, 0.96, 0.94]}  # IQM 0.92: fails
NONZERO = {0.5: [500, 480, 450, 470], 0.25: [250, 240, 200, 230], 0.1: [100, 90, 80, 100]}
MIDDLE_FAILS = {0.5: [0.97, 0.99, 0.96, 0.98],  # IQM 0.975
                0.25: [0.90, 0.93, 0.99, 0.80],  # IQM 0.915: fails, so 0.1 does not count
                0.1: [0.99, 0.98, 0.97, 0.99]}  # IQM 0.985
TOP_FAILS = {0.5: [0.90, 0.91, 0.93, 0.92], 0.25: [1.0] * 4, 0.1: [1.0] * 4}


def table() -> pd.DataFrame:
    rows = per_level("two", PASSES_TWO, NONZERO) + per_level("middle", MIDDLE_FAILS) + per_level("top", TOP_FAILS)
    rows += level_free("adaptive", [0.30, 0.35, 0.40, 0.30], [0.99, 0.97, 0.98, 1.0], track="during-training")
    return pd.DataFrame(rows)


def test_a_level_free_run_counts_at_every_level_it_fits_and_at_none_below():
    rows = per_level("distill", {level: [0.9] for level in LEVELS})
    rows += [run("own", 0, 1.0, 0.95, 300, level_free=True),  # f = 0.3: fits 0.5 and 1.0
             run("exact", 0, 1.0, 0.96, 250, level_free=True),  # f = 0.25: a ceiling is inclusive
             run("broken", 0, 1.0, np.nan, 100, status="invalid", level_free=True)]  # never placed
    summary = summarise(pd.DataFrame(rows))
    levels = summary.groupby("method")["level"].apply(sorted).to_dict()
    assert levels == {"distill": [0.1, 0.25, 0.5], "own": [0.5, 1.0], "exact": [0.25, 0.5, 1.0], "broken": [1.0]}
    own = summary[summary["method"] == "own"].set_index("level")
    assert (own["status"] == "valid").all() and own["retention"].tolist() == [0.95, 0.95]
    assert own["placed"].tolist() == [True, False]  # stored at 1.0, counted at 0.5
    at_half = summary[summary["level"] == 0.5].set_index("method")
    assert at_half["rank"].to_dict() == {"distill": "3", "exact": "1", "own": "2"}  # ranked with the others


def test_a_level_is_scored_only_where_every_seed_fits():
    rows = level_free("own", [0.2, 0.4], [1.0, 1.0]) + per_level("distill", {level: [0.9, 0.9] for level in LEVELS})
    summary = summarise(pd.DataFrame(rows)).set_index(["method", "level"])
    assert summary.loc[("own", 0.5), "status"] == "valid" and summary.loc[("own", 0.5), "seeds"] == 2
    assert summary.loc[("own", 0.25), "status"] == "invalid"  # seed 1 (f = 0.4) is over its ceiling
    assert summary.loc[("own", 0.25), "reason"] == "seed 1: nonzero fraction 0.4 is over level 0.25"
    assert ("own", 0.1) not in summary.index  # no run fits
    placed = place_level_free(pd.DataFrame(rows))
    assert len(place_level_free(placed)) == len(placed)  # idempotent


def test_tables_without_the_new_columns_are_post_training_and_per_level():
    rows = per_level("distill", {0.5: [0.9]})
    summary = summarise(pd.DataFrame(rows))
    assert summary["track"].tolist() == ["post-training"] and not summary["level_free"].any()


def test_compression_at_95_equals_the_hand_computation():
    result = headline(table()).set_index("method")
    two = result.loc["two"]
    assert iqm(PASSES_TWO[0.5]) >= 0.95 and iqm(PASSES_TWO[0.25]) >= 0.95 and iqm(PASSES_TWO[0.1]) < 0.95
    assert two["status"] == "reached" and two["level"] == 0.25
    assert two["ratio"] == pytest.approx(np.median([TEACHER / n for n in NONZERO[0.25]]))  # 4.257...
    assert two["ci_low"] <= two["ratio"] <= two["ci_high"]
    # A failing middle level stops the walk down: 0.1 passes again, but only 0.5 stays at or above 0.95.
    assert iqm(MIDDLE_FAILS[0.25]) < 0.95 <= iqm(MIDDLE_FAILS[0.1])
    assert result.loc["middle", "level"] == 0.5 and result.loc["middle", "ratio"] == pytest.approx(2.0)
    # Failing the largest level: never reaches 0.95, "none", ranked last.
    assert result.loc["top", "status"] == "none" and pd.isna(result.loc["top", "ratio"])
    assert result.loc["top", "rank"] == "4"
    # A level-free method: its own size, wherever it is counted (here also at 0.5, where all its runs fit).
    adaptive = result.loc["adaptive"]
    assert adaptive["track"] == "during-training" and adaptive["level"] == 0.5
    assert adaptive["ratio"] == pytest.approx(np.median([1 / 0.30, 1 / 0.35, 1 / 0.40, 1 / 0.30]))
    reached = result[result["status"] == "reached"]
    assert list(reached["rank"]) == tied_ranks(list(reached["ratio"]), list(reached["ci_low"]),
                                               list(reached["ci_high"]))


def test_a_missing_or_invalid_run_fails_its_level():
    rows = per_level("two", PASSES_TWO, NONZERO)
    rows[5]["status"] = "invalid"  # level 0.25, seed 1
    assert headline(pd.DataFrame(rows)).loc[0, "level"] == 0.5
    rows = [r for r in per_level("two", PASSES_TWO, NONZERO) if not (r["level"] == 0.25 and r["seed"] == 3)]
    assert headline(pd.DataFrame(rows)).loc[0, "level"] == 0.5


def naive_compression(scores: dict[float, list[float]], ratios: dict[float, list[float]], seeds: np.ndarray) -> float:
    """The estimator on one draw of seeds, written as the protocol states it."""
    reached = None
    for level in sorted(scores, reverse=True):
        if iqm([scores[level][s] for s in seeds]) < 0.95:
            break
        reached = level
    return 0.0 if reached is None else float(np.median([ratios[reached][s] for s in seeds]))


def test_the_bootstrap_draws_seeds_once_for_every_level_and_recomputes_the_whole_estimator():
    ratios = {level: [TEACHER / n for n in NONZERO[level]] for level in NONZERO}
    draws = np.random.RandomState(0).choice(4, (2000, 4), replace=True)
    estimates = [naive_compression(PASSES_TWO, ratios, seeds) for seeds in draws]
    assert 0.0 in estimates and len(set(estimates)) > 2  # some resamples reach no level, others differ
    expected = np.percentile(estimates, [2.5, 97.5])
    two = headline(pd.DataFrame(per_level("two", PASSES_TWO, NONZERO))).iloc[0]
    assert (two["ci_low"], two["ci_high"]) == pytest.approx(tuple(expected))


def test_collect_flattens_engagement_and_interaction(tmp_path):
    metrics = {"env": "cartpole", "seed": 0, "method": "pops", "level": 0.1, "status": "valid", "reason": None,
               "params_nonzero": 10, "teacher_params_nonzero": 100, "track": "post-training", "level_free": False,
               "budget_used": {"env_steps": 5}, "engagement": {"pops_iterations": 3, "pops_reached_objective": True},
               "interaction": {"env_steps": 105, "gradient_updates": 7}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    row = collect([tmp_path / "metrics.json"]).iloc[0]
    assert row["engagement_pops_iterations"] == 3 and row["engagement_pops_reached_objective"]
    assert (row["total_env_steps"], row["total_gradient_updates"], row["used_env_steps"]) == (105, 7, 5)


def test_engagement_counts_flags_and_summarises_numbers():
    runs = pd.DataFrame(per_level("pops", {0.5: [1.0, 1.0, 1.0, 1.0]}))
    runs["engagement_pops_reached_objective"] = [True, False, True, np.nan]  # the last did not record it
    runs["engagement_pops_iterations"] = [3.0, 2.0, 4.0, 5.0]
    runs.loc[3, "status"] = "invalid"
    rows = {row["mechanism"]: row["text"] for row in engagement(runs)}
    assert rows == {"pops_reached_objective": "2/3 runs", "pops_iterations": "median 3, range 2 to 4 (3 runs)"}


def test_pages_and_paper_tables_lead_with_the_compression(tmp_path):
    frame = table()
    frame["total_env_steps"] = 123456
    frame.loc[frame["method"] == "adaptive", "engagement_adaptive_sparsity_moved"] = True
    frame.to_csv(tmp_path / "table.csv", index=False)
    render(tmp_path / "table.csv", tmp_path / "site", ["methods"], {"commit": "abc123"})
    site = tmp_path / "site"
    env = (site / "env-cartpole.html").read_text()
    assert env.index('id="compression"') < env.index('id="levels"')  # the headline comes first
    assert "4.26× [" in env and ">during-training<" in env and ">123,456<" in env
    index = (site / "index.html").read_text()
    assert index.index('id="compression"') < index.index("Level 0.5") and "4.26× [" in index
    method = (site / "method-adaptive.html").read_text()
    assert "adaptive_sparsity_moved" in method and "4/4 runs" in method and "Track: during-training" in method
    for name in ("tables.md", "tables.tex", "leaderboard.md"):
        text = (site / name).read_text()
        assert "compression at 95" in text.lower() and "4.26 [" in text.replace("×", ""), name
    compression = pd.read_csv(site / "compression.csv").set_index("method")
    assert compression.loc["two", "level"] == 0.25
