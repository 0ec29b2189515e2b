"""Each published leaderboard (`leaderboard/PROFILE/`) traces to its runs: every number of its tables
is recomputed here from the run records committed beside it, and the README quotes its cost from
its PROVENANCE.md."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from policypress.core.config import load_config
from policypress.core.registry import load_method
from policypress.core.specs import ROOT
from policypress.report.aggregate import SCORES, summarise

PUBLISHED = ROOT / "leaderboard" / "quick"
PROFILES = sorted(path.name for path in (ROOT / "leaderboard").iterdir() if (path / "PROVENANCE.md").is_file())


def profile_runs(profile: str) -> set[tuple]:
    """(env, seed, method, level) of every run config/PROFILE.yaml asks for, as the DAG derives them."""
    config = load_config(ROOT / "config" / f"{profile}.yaml")[0]
    return {(env, seed, method, float(level))
            for env in config["envs"] for seed in config["seeds"] for method, options in config["methods"].items()
            for level in ((options or {}).get("levels", config["levels"]) if load_method(method).info.uses_level
                          else [1.0])}


def read(name: str, profile: str = "quick") -> pd.DataFrame:
    return pd.read_csv(ROOT / "leaderboard" / profile / name, keep_default_na=False, na_values=[""],
                       float_precision="round_trip")


@pytest.mark.parametrize("profile", PROFILES)
def test_every_row_of_the_table_is_a_run_record(profile):
    table = read("table.csv", profile)
    runs = json.loads((ROOT / "leaderboard" / profile / "runs.json").read_text())["runs"]
    records = {(r["env"], r["seed"], r["method"], float(r["level"])): r for r in runs}
    assert len(runs) == len(table) == len(records)
    assert set(records) == profile_runs(profile)  # every run its config asks for, once
    for _, row in table.iterrows():
        record = records[(row["env"], row["seed"], row["method"], float(row["level"]))]
        assert row["status"] == record["status"]
        for column in ("mean_return", "retention", "normalized_score", "params_nonzero", "instructions",
                       "flash_bytes", "latency_speedup"):
            expected = record.get(column)
            assert (pd.isna(row[column]) and expected is None) or row[column] == pytest.approx(expected), column
        assert row["used_env_steps"] == record["budget"]["used"]["env_steps"] <= record["budget"]["limit"]["env_steps"]


@pytest.mark.parametrize("profile", PROFILES)
def test_the_summary_is_recomputed_exactly_from_the_table(profile):
    summary = read("summary.csv", profile).set_index(["env", "method", "level"]).sort_index()
    recomputed = summarise(read("table.csv", profile)).set_index(["env", "method", "level"]).sort_index()
    assert list(summary.index) == list(recomputed.index)
    for score in SCORES:
        for column in (score, f"{score}_ci_low", f"{score}_ci_high"):
            np.testing.assert_allclose(summary[column].to_numpy(float), recomputed[column].to_numpy(float),
                                       rtol=1e-12, equal_nan=True)
    assert (summary["rank"].fillna("") == recomputed["rank"].fillna("")).all()


@pytest.mark.parametrize("profile", PROFILES)
def test_the_readme_quotes_each_published_cost_from_its_provenance(profile):
    """The README's Profiles table gives each published profile's wall time and commit as its
    PROVENANCE.md records them, so a republished pass cannot leave an old cost in the README."""
    provenance = (ROOT / "leaderboard" / profile / "PROVENANCE.md").read_text()
    wall = re.search(r"\*\*Wall time\.\*\* ((?:\d+ h )?\d+ min \d+ s)", provenance).group(1)
    commit = re.search(r"commit ([0-9a-f]{7,40})", provenance).group(1)[:7]
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(f"| {profile} |"))
    assert wall in row and commit in row, f"README.md: the {profile} row must quote {wall} at commit {commit}"


def test_the_slice_check_passes_identical_rows_and_names_a_changed_count(tmp_path):
    """scripts/reproduce-slice's check (its --compare mode): the published rows of a slice match
    themselves, and a rerun whose instruction count moved by one is reported with the column."""
    table = read("table.csv")
    rows = table[(table["env"] == "cartpole") & (table["seed"] == 0) & table["method"].isin(["dense", "int8"])]
    rows.to_csv(tmp_path / "same.csv", index=False)
    changed = rows.copy()
    changed.loc[changed.index[0], "instructions"] += 1
    changed.to_csv(tmp_path / "changed.csv", index=False)
    script = [sys.executable, str(ROOT / "scripts" / "reproduce-slice"), "--compare", str(PUBLISHED / "table.csv")]
    same = subprocess.run([*script, str(tmp_path / "same.csv")], capture_output=True, text=True)
    assert same.returncode == 0 and f"{len(rows)} of {len(rows)} runs reproduced exactly" in same.stdout
    moved = subprocess.run([*script, str(tmp_path / "changed.csv")], capture_output=True, text=True)
    assert moved.returncode == 1 and "DIFFERENT cartpole/0/dense/1.0: instructions" in moved.stdout
