"""The claims page: each verdict follows from the measurement's CI and the test the claims file
states; bad claims files stop with one line; the shipped claims name real methods and envs."""

import pandas as pd
import pytest
import yaml

from policypress.core.registry import load_method
from policypress.core.specs import ENVS_DIR, ROOT, SpecError
from policypress.report.claims import assess, load_claims

COMPRESSION = pd.DataFrame([
    {"env": "breakout", "method": "a", "status": "reached", "level": 0.01, "ratio": 100.0, "ci_low": 50.0,
     "ci_high": 120.0},
    {"env": "breakout", "method": "b", "status": "reached", "level": 0.03, "ratio": 30.0, "ci_low": 20.0,
     "ci_high": 40.0},
    {"env": "breakout", "method": "c", "status": "none", "level": None, "ratio": None, "ci_low": 0.0, "ci_high": 0.0},
    {"env": "breakout", "method": "d", "status": "n/a", "level": None, "ratio": None, "ci_low": None, "ci_high": None},
    {"env": "cartpole", "method": "d", "status": "reached", "level": 0.1, "ratio": 10.0, "ci_low": 9.0,
     "ci_high": 11.0},
])
SUMMARY = pd.DataFrame([
    {"env": "breakout", "method": "a", "level": 0.03, "status": "valid", "retention": 0.97, "retention_ci_low": 0.9,
     "retention_ci_high": 1.0, "params_fraction": 1 / 33},
    {"env": "breakout", "method": "a", "level": 0.01, "status": "valid", "retention": 0.96, "retention_ci_low": 0.9,
     "retention_ci_high": 1.0, "params_fraction": 1 / 100},
    {"env": "breakout", "method": "a", "level": 0.003, "status": "valid", "retention": 0.5, "retention_ci_low": 0.4,
     "retention_ci_high": 0.6, "params_fraction": 1 / 333},
    {"env": "breakout", "method": "b", "level": 0.03, "status": "invalid", "retention": None,
     "retention_ci_low": None, "retention_ci_high": None},
    {"env": "breakout", "method": "c", "level": 0.03, "status": "valid", "level_free": True, "retention": 0.5,
     "retention_ci_low": 0.4, "retention_ci_high": 0.6},  # chose its own size: counted at every level it fits
])


def claim(test: dict, method: str = "a", envs: dict | None = None) -> dict:
    return {"paper": "P", "method": method, "claim": "c", "evidence": "[A]", "paper_setting": "s",
            "envs": envs or {"breakout": "a CNN"}, "test": test}


@pytest.mark.parametrize("test, verdict", [
    ({"compression_at_least": 40}, "reproduced"),  # the whole CI [50, 120] is above
    ({"compression_at_least": 100}, "inconclusive"),  # the CI straddles it
    ({"compression_at_least": 150}, "inconclusive"),  # between 0.01 (kept) and 0.003 (333x, failed)
    ({"compression_at_least": 400}, "not reproduced"),  # the whole CI is below, and 0.003 (333x) failed
    ({"compression_beats": "b"}, "reproduced"),  # [50, 120] above [20, 40]
    ({"compression_beats": "c"}, "reproduced"),  # c never keeps 95%
    ({"score_at_least": 0.9, "level": 0.03}, "reproduced"),
    ({"score_at_least": 0.95, "level": 0.03}, "inconclusive"),
    ({"score_at_least": 1.01, "level": 0.03}, "not reproduced"),
    ({"score_at_least": 0.9, "level": 0.001}, "not comparable"),  # not run at that level
    ({"not_comparable": "the paper's tables are not accessible"}, "not comparable"),
])
def test_the_verdict_follows_from_the_ci_and_the_stated_test(test, verdict):
    assessed = assess(claim(test), SUMMARY, COMPRESSION)
    assert assessed["verdict"] == verdict, assessed["reason"]
    if verdict != "not comparable":
        assert assessed["env"] == "breakout" and assessed["differences"] == "a CNN"
        assert "breakout, a: compression at 95% retention 100× [50.0×, 120×] (level 0.01)" in assessed["measurement"]


def test_a_method_that_never_keeps_95_percent_does_not_reproduce_and_b_does_not_beat_a():
    assert assess(claim({"compression_at_least": 2}, method="c"), SUMMARY, COMPRESSION)["verdict"] == "not reproduced"
    assert assess(claim({"compression_beats": "a"}, method="b"), SUMMARY, COMPRESSION)["verdict"] == "not reproduced"


def test_the_nearest_env_is_the_first_where_the_method_ran():
    envs = {"walker": "not in this profile", "breakout": "n/a there", "cartpole": "an MLP"}
    assessed = assess(claim({"compression_at_least": 5}, method="d", envs=envs), SUMMARY, COMPRESSION)
    assert (assessed["env"], assessed["verdict"], assessed["differences"]) == ("cartpole", "reproduced", "an MLP")
    nowhere = assess(claim({"compression_at_least": 5}, envs={"walker": "x"}), SUMMARY, COMPRESSION)
    assert nowhere["verdict"] == "not comparable" and "none of its envs (walker)" in nowhere["reason"]


def test_a_bad_claims_file_stops_with_one_line_naming_file_and_field(tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": [{**claim({"compression_at_least": -1})}]}))
    with pytest.raises(SpecError, match=r"claims.yaml: claims\[0\]\.test") as err:
        load_claims(path)
    assert "\n" not in str(err.value)


def test_the_shipped_claims_name_real_methods_and_envs():
    for entry in load_claims(ROOT / "config" / "claims.yaml"):
        load_method(entry["method"])
        for env in entry["envs"]:
            assert (ENVS_DIR / f"{env}.yaml").is_file(), env
        if "compression_beats" in entry["test"]:
            load_method(entry["test"]["compression_beats"])


GRID = pd.DataFrame([{"env": "pong", "method": m, "level": level, "level_free": False, "status": "valid"}
                     for m in ("p", "q") for level in (0.03, 0.01, 0.003)])


def grid_row(method: str, status: str, level, ratio, low: float, high: float) -> dict:
    return {"env": "pong", "method": method, "status": status, "level": level, "ratio": ratio, "ci_low": low,
            "ci_high": high}


@pytest.mark.parametrize("row, threshold, verdict", [
    (grid_row("p", "reached", 0.01, 100.0, 100.0, 100.0), 125, "inconclusive"),  # between 0.01 (100x) and 0.003
    (grid_row("p", "reached", 0.01, 100.0, 100.0, 100.0), 400, "not reproduced"),  # 0.003 (333x) failed
    (grid_row("p", "none", None, None, 0.0, 33.3), 10, "not comparable"),  # 10x is above the largest level
    (grid_row("p", "reached", 0.01, 100.0, 33.3, 100.0), 50, "inconclusive"),  # the CI straddles it
    (grid_row("p", "none", None, None, 0.0, 0.0), 40, "not reproduced"),  # fails at 0.03 (33x), below 40x
])
def test_a_per_level_method_is_judged_on_the_levels_it_was_run_at(row, threshold, verdict):
    assessed = assess(claim({"compression_at_least": threshold}, method="p", envs={"pong": "x"}), GRID,
                      pd.DataFrame([row]))
    assert assessed["verdict"] == verdict, assessed["reason"]


def test_a_comparison_needs_both_methods_in_the_env():
    compression = pd.concat([COMPRESSION, pd.DataFrame([
        {"env": "cartpole", "method": "e", "status": "reached", "level": 0.1, "ratio": 5.0, "ci_low": 4.0,
         "ci_high": 6.0}])])
    envs = {"breakout": "d is n/a here", "cartpole": "both ran"}
    assessed = assess(claim({"compression_beats": "e"}, method="d", envs=envs), SUMMARY, compression)
    assert (assessed["env"], assessed["verdict"]) == ("cartpole", "reproduced")  # [9, 11] above [4, 6]
    alone = assess(claim({"compression_beats": "missing"}, method="a"), SUMMARY, COMPRESSION)
    assert alone["verdict"] == "not comparable"


def test_a_score_test_skips_an_env_where_the_method_is_n_a_and_reports_an_invalid_run():
    summary = pd.concat([SUMMARY, pd.DataFrame([
        {"env": "walker", "method": "a", "level": 0.03, "status": "n/a"},
        {"env": "cartpole", "method": "a", "level": 0.03, "status": "valid", "retention": 0.99,
         "retention_ci_low": 0.97, "retention_ci_high": 1.0}])])
    test = {"score_at_least": 0.95, "level": 0.03}
    moved_on = assess(claim(test, envs={"walker": "n/a there", "cartpole": "an MLP"}), summary, COMPRESSION)
    assert (moved_on["env"], moved_on["verdict"]) == ("cartpole", "reproduced")
    invalid = assess(claim(test, method="b"), summary, COMPRESSION)
    assert (invalid["env"], invalid["verdict"]) == ("breakout", "not comparable") and "invalid" in invalid["reason"]


def test_a_level_free_method_is_judged_on_the_size_it_chose():
    free = pd.DataFrame([grid_row("f", "reached", 0.03, 40.0, 35.0, 45.0)])
    summary = pd.DataFrame([{"env": "pong", "method": "f", "level": 0.03, "level_free": True, "status": "valid"}])
    for threshold, verdict in ((30, "reproduced"), (50, "not reproduced")):  # no grid: its size is its own
        assessed = assess(claim({"compression_at_least": threshold}, method="f", envs={"pong": "x"}), summary, free)
        assert assessed["verdict"] == verdict, assessed["reason"]


def test_a_threshold_the_grid_never_tested_is_not_comparable():
    only_largest = GRID[GRID["level"] == 0.03].assign(params_fraction=1 / 33)  # as gmp: run at one level
    kept = pd.DataFrame([grid_row("p", "reached", 0.03, 33.0, 33.0, 33.0)])
    assessed = assess(claim({"compression_at_least": 100}, method="p", envs={"pong": "x"}), only_largest, kept)
    assert assessed["verdict"] == "not comparable" and "no smaller one was run" in assessed["reason"]
    # Students at the largest level were compressed 40x, not the level's 33x: failing there leaves 35x untested.
    failed = pd.DataFrame([grid_row("p", "none", None, None, 0.0, 0.0)])
    measured = GRID.assign(params_fraction=GRID["level"].map({0.03: 1 / 40, 0.01: 1 / 120, 0.003: 1 / 400}))
    assessed = assess(claim({"compression_at_least": 35}, method="p", envs={"pong": "x"}), measured, failed)
    assert assessed["verdict"] == "not comparable" and "(40.0×)" in assessed["reason"]


def test_a_failed_level_counts_at_the_compression_its_students_measured():
    measured = GRID.assign(params_fraction=GRID["level"].map({0.03: 1 / 33, 0.01: 1 / 100, 0.003: 1 / 140}))
    kept = pd.DataFrame([grid_row("p", "reached", 0.01, 100.0, 100.0, 100.0)])
    between = assess(claim({"compression_at_least": 125}, method="p", envs={"pong": "x"}), measured, kept)
    assert between["verdict"] == "inconclusive" and "0.003 (140×) did not" in between["reason"]
    beyond = assess(claim({"compression_at_least": 150}, method="p", envs={"pong": "x"}), measured, kept)
    assert beyond["verdict"] == "not reproduced"  # the 0.003 students, at 140x, failed below 150x


def test_two_methods_that_keep_95_percent_down_to_the_same_level_are_not_separated():
    same = pd.DataFrame([grid_row("p", "reached", 0.01, 116.0, 116.0, 116.0),
                         grid_row("q", "reached", 0.01, 102.0, 102.0, 102.0)])
    assessed = assess(claim({"compression_beats": "q"}, method="p", envs={"pong": "x"}), GRID, same)
    assert assessed["verdict"] == "inconclusive" and "same level, 0.01" in assessed["reason"]
    deeper = same.assign(level=[0.003, 0.01], ratio=[333.0, 102.0], ci_low=[333.0, 102.0], ci_high=[333.0, 102.0])
    assert assess(claim({"compression_beats": "q"}, method="p", envs={"pong": "x"}), GRID, deeper)["verdict"] \
        == "reproduced"
