"""Outside submission: `new-method` scaffolds a plugin that conforms and reaches the leaderboard
in one Snakemake run; `check-method` reports a failing plugin and exits 1."""

import subprocess
import sys

import pandas as pd
import pytest

from policypress.core.specs import ROOT, SpecError
from policypress.submit.conformance import check_method
from policypress.submit.scaffold import new_method
from tests.conftest import PLUGINS
from tests.test_workflow import SMOKE, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    root = tmp_path_factory.mktemp("submitter")
    (root / "methods").mkdir()
    (root / "tests").mkdir()
    return root, new_method("my_method", root)


def test_new_method_writes_a_plugin_and_its_test_and_refuses_bad_or_taken_names(scaffolded):
    root, written = scaffolded
    assert written == [root / "methods" / "my_method.py", root / "tests" / "test_method_my_method.py"]
    assert 'name="my_method"' in written[0].read_text() and 'check_method("my_method")' in written[1].read_text()
    compile(written[1].read_text(), str(written[1]), "exec")
    with pytest.raises(SpecError, match="'my_method' exists already"):
        new_method("my_method", root)
    with pytest.raises(SpecError, match="must be lowercase letters"):
        new_method("My-Method", root)
    with pytest.raises(SpecError, match="'distill' exists already"):
        new_method("distill")  # a shipped method's name, in the repository itself: nothing is written


def test_the_scaffold_conforms(scaffolded):
    root, _ = scaffolded
    results = list(check_method("my_method", [str(root / "methods")]))
    assert all(verdict == "PASS" for verdict, _ in results), results
    assert len(results) == 5  # loads; valid and deterministic on a discrete and a continuous teacher; no warning


def test_the_scaffold_reaches_the_leaderboard_in_one_snakemake_run(scaffolded, tmp_path):
    root, _ = scaffolded
    config = {**SMOKE, "methods": {"dense": None, "my_method": None}, "baselines": [],
              "method_dirs": ["methods", str(root / "methods")]}
    result = snakemake(tmp_path, config)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results" / "table.csv")
    mine = table[table["method"] == "my_method"]
    assert len(mine) == len(SMOKE["levels"]) and (mine["status"] == "valid").all()
    site = tmp_path / "results" / "leaderboard"
    assert 'href="method-my_method.html"' in (site / "index.html").read_text()
    assert "One line for the leaderboard." in (site / "method-my_method.html").read_text()


def test_check_method_reports_a_crashing_plugin_and_exits_1():
    result = subprocess.run([sys.executable, "-m", "policypress.cli", "check-method", "crashing",
                             "--method-dir", "methods", "--method-dir", PLUGINS],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("PASS  loads:")
    assert "FAIL  valid policy within budget, discrete (CartPole, DQN): invalid: crashing crashed at" in result.stdout
    assert lines[-1] == "crashing: does not conform"
