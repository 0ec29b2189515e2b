"""The code is ruff clean, the workflow is snakemake --lint clean, and the full DAG has every job."""

import re
import subprocess
import sys

import yaml

from policypress.core.registry import load_method
from policypress.core.specs import ROOT


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "policypress", "methods", "tests", "benchmarks"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_snakemake_lint_is_clean_and_every_profile_dry_runs(tmp_path):
    for config in ("smoke", "quick", "families", "families_smoke", "embedded", "config"):
        command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                   "--configfile", str(ROOT / "config" / f"{config}.yaml")]
        dry_run = subprocess.run([*command, "-n", "--quiet"], capture_output=True, text=True)
        assert dry_run.returncode == 0, dry_run.stderr[-2000:]
    lint = subprocess.run([*command, "--lint"], capture_output=True, text=True)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout[-2000:]


def test_full_config_dry_run_lists_every_env_seed_method_and_level(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert len(config["envs"]) == 7 and len(config["seeds"]) == 5
    def levels(method: str) -> int:  # a method that chooses its own size (or keeps the teacher's) runs once
        options = config["methods"][method] or {}
        return len(options.get("levels", config["levels"])) if load_method(method).info.uses_level else 1

    runs = len(config["envs"]) * len(config["seeds"]) * sum(levels(method) for method in config["methods"])
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(ROOT / "config" / "config.yaml"), "-n", "--quiet", "rules"]
    dry_run = subprocess.run(command, capture_output=True, text=True)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", dry_run.stdout + dry_run.stderr, re.MULTILINE))
    assert int(counts["train_teacher"]) == 35
    assert int(counts["compress"]) == runs == 1680 and "measure" not in counts  # each compress job measures its run


def test_jobs_ask_the_scheduler_for_what_their_family_needs(tmp_path):
    def resources(device: str) -> dict[tuple[str, str], str]:
        """(rule, env) -> the resources line of the dry run, for Pong and Hopper's teachers and runs."""
        config = {**yaml.safe_load((ROOT / "config" / "families_smoke.yaml").read_text()), "envs": ["pong", "hopper"],
                  "device": device}
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                   "--configfile", str(tmp_path / "config.yaml"), "-n"]
        out = subprocess.run(command, capture_output=True, text=True).stdout
        jobs = re.findall(r"rule (train_teacher|compress):.*?env=(\w+), seed=0[^\n]*\n\s+resources: ([^\n]+)", out,
                          re.DOTALL)
        return {(rule, env): line for rule, env, line in jobs}

    auto = resources("auto")
    assert "runtime=2880" in auto["train_teacher", "pong"] and "gpu=1" in auto["train_teacher", "pong"]
    assert "mem_mb=16000" in auto["train_teacher", "pong"]
    assert "runtime=1440" in auto["train_teacher", "hopper"] and "gpu=1" in auto["train_teacher", "hopper"]
    assert "runtime=960" in auto["compress", "pong"] and "mem_mb=10000" in auto["compress", "pong"]
    assert "runtime=240" in auto["compress", "hopper"] and "gpu=1" in auto["compress", "hopper"]
    on_cpu = resources("cpu")
    assert "gpu=0" in on_cpu["train_teacher", "pong"] and "gpu=0" in on_cpu["compress", "pong"]
