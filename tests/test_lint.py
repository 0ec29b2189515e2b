"""The code is ruff clean and the workflow is snakemake --lint clean."""

import subprocess
import sys

from policypress.specs import ROOT


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "policypress", "methods", "tests"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_snakemake_lint_is_clean_and_every_profile_dry_runs(tmp_path):
    for config in ("smoke", "quick", "config"):
        command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                   "--configfile", str(ROOT / "config" / f"{config}.yaml")]
        dry_run = subprocess.run([*command, "-n", "--quiet"], capture_output=True, text=True)
        assert dry_run.returncode == 0, dry_run.stderr[-2000:]
    lint = subprocess.run([*command, "--lint"], capture_output=True, text=True)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout[-2000:]
