"""The smoke DAG end to end through Snakemake, in temporary folders.

Checks: a row for every method x level with every metric filled; every run's ONNX and C
exports compute its policy; crashing and hanging plugins are recorded invalid while
everything else finishes; a run from scratch killed with SIGKILL resumes with the README's commands
to exactly the same returns and counts as the uninterrupted one (the same seeds, the same results);
a bad config stops with one line and deletes nothing.
"""

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from policypress import _has_avx2_and_fma
from policypress.core.policy import Policy
from policypress.core.registry import load_method
from policypress.core.specs import ROOT, load_env_spec
from tests.test_export import assert_same_computation, c_run, onnx_run, played_states, random_states

pytestmark = pytest.mark.slow

SMOKE = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
METRICS = ["mean_return", "retention", "normalized_score", "params_total", "params_nonzero", "bytes",
           "macs_dense", "macs_nonzero", "latency_us_median", "latency_us_p99", "teacher_latency_us_median",
           "latency_speedup", "instructions", "flash_bytes", "ram_bytes", "c_kernels"]
# Methods that choose their own size (or keep the teacher's) run once, at level 1.
ONCE = {name for name in SMOKE["methods"] if not load_method(name).info.uses_level}
REPEATABLE = ["mean_return", "retention", "normalized_score", "params_total", "params_nonzero", "bytes",
              "macs_dense", "macs_nonzero", "instructions", "flash_bytes", "ram_bytes", "used_env_steps",
              "used_teacher_queries", "used_gradient_updates"]


def snakemake_command(workdir: Path, config: dict, *options: str) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(workdir / "config.yaml"), "--cores", "2", *options]


def snakemake(workdir: Path, config: dict, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(workdir, config, *options), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def smoke_with_crash(tmp_path_factory):
    """The smoke config plus a plugin that crashes and one that hangs (with a 3-second time limit)."""
    config = {**SMOKE, "methods": {**SMOKE["methods"], "crashing": None, "hangs": {"time_limit_minutes": 0.05}},
              "method_dirs": ["methods", "tests/plugins"]}
    workdir = tmp_path_factory.mktemp("smoke_a")
    result = snakemake(workdir, config)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_every_method_and_level_has_a_row_with_every_metric(smoke_with_crash):
    table = pd.read_csv(smoke_with_crash / "results" / "table.csv")
    methods = [m for m in SMOKE["methods"] if m not in ONCE] + ["crashing", "hangs"]
    expected = {(m, 1.0) for m in ONCE} | {(m, level) for m in methods for level in SMOKE["levels"]}
    assert set(zip(table["method"], table["level"], strict=True)) == expected
    valid = table[~table["method"].isin(["crashing", "hangs"])]
    assert (valid["status"] == "valid").all()
    assert valid[METRICS].notna().all().all()
    assert (valid["params_nonzero"] <= valid["level"] * valid["teacher_params_nonzero"]).all()


def test_every_runs_onnx_and_c_exports_compute_its_policy(smoke_with_crash, tmp_path):
    runs = sorted((smoke_with_crash / "results" / "runs").glob("*/*/*/*/policy"))
    assert len(runs) == (len(SMOKE["methods"]) - len(ONCE)) * len(SMOKE["levels"]) + len(ONCE)
    teacher = Policy.load(smoke_with_crash / "results" / "teachers" / "cartpole" / "0" / "policy")
    real = played_states(teacher, load_env_spec("cartpole"), 200)
    for run in runs:
        policy = Policy.load(run)
        for states in (real, random_states(policy)):
            assert_same_computation(policy, states, *onnx_run(policy, states, tmp_path))
            assert_same_computation(policy, states, *c_run(policy, states, tmp_path))
        # the measured exports are the ones checked here
        assert (run.parent / "policy.c").read_text() == (tmp_path / "p.c").read_text()
        assert (run.parent / "policy.onnx").read_bytes() == (tmp_path / "p.onnx").read_bytes()


def test_embedded_costs_fall_with_structure_and_int8_shrinks_flash(smoke_with_crash):
    table = pd.read_csv(smoke_with_crash / "results" / "table.csv").set_index(["method", "level"])
    teacher = table.loc[("dense", 1.0)]
    for level in SMOKE["levels"]:
        student = table.loc[("distill", level)]
        assert student["instructions"] < teacher["instructions"]
        assert student["flash_bytes"] < teacher["flash_bytes"] and student["ram_bytes"] <= teacher["ram_bytes"]
        assert table.loc[("distill_int8", level)]["flash_bytes"] < student["flash_bytes"]
    assert table.loc[("int8", 1.0)]["flash_bytes"] < teacher["flash_bytes"] / 2  # int8 weights: a quarter


def test_crashing_and_hanging_plugins_are_invalid_and_the_leaderboard_still_renders(smoke_with_crash):
    table = pd.read_csv(smoke_with_crash / "results" / "table.csv")
    crashed = table[table["method"] == "crashing"]
    assert (crashed["status"] == "invalid").all()
    assert crashed["reason"].str.contains("crashing crashed at tests/plugins/crashing.py:9: RuntimeError").all()
    hung = table[table["method"] == "hangs"]
    assert (hung["reason"] == "time limit exceeded: hangs ran longer than 3 s").all() and len(hung)
    site = smoke_with_crash / "results" / "leaderboard"
    assert "invalid: crashing crashed" in (site / "env-cartpole.html").read_text()
    assert "not valid on every env and seed" in (site / "index.html").read_text()  # listed, not ranked
    pops = (site / "method-pops.html").read_text()
    assert "Livne, Cohen" in pops and "Algorithm and details" in pops  # method pages come from the plugins
    assert "crashing crashed" in (site / "method-crashing.html").read_text()  # every run, failed ones too
    # one row per level, and one in the env's headline (the compression at 95% retention)
    assert (site / "leaderboard.md").read_text().count("| magnitude |") == len(SMOKE["levels"]) + 1


def test_exports_carry_every_run_with_its_provenance(smoke_with_crash):
    site = smoke_with_crash / "results" / "leaderboard"
    exported = json.loads((site / "runs.json").read_text())
    provenance = exported["provenance"]
    assert len(provenance["commit"]) >= 7 and len(provenance["config_sha256"]) == 64
    assert provenance["versions"]["torch"] and provenance["machine"]["system"]
    table = pd.read_csv(smoke_with_crash / "results" / "table.csv")
    assert len(exported["runs"]) == len(table)
    for run in exported["runs"]:  # the budget counters, the plugin's hash and the machine of every run
        assert set(run["budget"]["used"]) == {"env_steps", "teacher_queries", "gradient_updates"}
        assert len(run["method_sha256"]) == 64
        assert "machine" in run or run["status"] != "valid"
    runs_csv = pd.read_csv(site / "runs.csv", dtype={"commit": str})  # a hash can be all digits
    assert (runs_csv["commit"] == provenance["commit"]).all() and len(runs_csv) == len(table)
    latex = (site / "tables.tex").read_text()
    assert latex.count(r"\toprule") == latex.count(r"\bottomrule") == 3  # headline, cartpole, across envs
    assert r"distill\_int8" in latex and r"\textbf{" in latex
    teachers = pd.read_csv(site / "teachers.csv")  # every teacher, read from its teacher.json
    expected = [[env, seed] for env in SMOKE["envs"] for seed in SMOKE["seeds"]]
    assert teachers[["env", "seed"]].values.tolist() == expected
    assert teachers["return_mean"].notna().all() and teachers["floor"].notna().all()
    claims = (site / "claims.md").read_text()  # every claim of config/claims.yaml, each with a verdict
    shipped = yaml.safe_load((ROOT / "config" / "claims.yaml").read_text())["claims"]
    assert claims.count("| **") == len(shipped) and "claims.html" in (site / "index.html").read_text()
    run_by = json.loads((site / "runs.json").read_text())["provenance"]  # the config by its path, then the budgets
    assert f"Runs: {run_by['config']}, on the {run_by['profile']} profile's budgets." in claims


def test_a_dag_killed_mid_run_resumes_with_the_documented_commands(smoke_with_crash, tmp_path):
    """The README's "Reliability": after a hard kill, `--unlock`, then the same command with
    `--rerun-incomplete`; finished jobs are kept, the interrupted ones redone, the results unchanged.
    Its DAG runs from scratch in a new directory, so the same seeds giving identical results is checked
    here too, against the uninterrupted smoke DAG."""
    dag = subprocess.Popen(snakemake_command(tmp_path, SMOKE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)  # its own process group: the kill takes its jobs too
    runs = tmp_path / "results" / "runs"
    deadline = time.monotonic() + 600
    # metrics.json is a compress job's last output: its presence marks a finished job
    while len(finished := sorted(runs.rglob("metrics.json"))) < 3 and dag.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # Snakemake records a job as finished just after its last output: give it that moment
    assert dag.poll() is None, "the DAG ended before it could be killed"
    os.killpg(dag.pid, signal.SIGKILL)  # as power loss, the OOM killer or a pre-empted node would
    dag.wait()
    kept = {path: path.stat().st_mtime_ns for path in finished}

    stopped = snakemake(tmp_path, SMOKE)  # the same command stops, naming what the README explains
    said = stopped.stdout + stopped.stderr
    assert stopped.returncode != 0 and ("--rerun-incomplete" in said or "--unlock" in said)
    assert snakemake(tmp_path, SMOKE, "--unlock").returncode == 0
    resumed = snakemake(tmp_path, SMOKE, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    assert {path: path.stat().st_mtime_ns for path in finished} == kept  # finished runs were not redone
    first = pd.read_csv(smoke_with_crash / "results" / "table.csv")
    first = first[~first["method"].isin(["crashing", "hangs"])].reset_index(drop=True)
    second = pd.read_csv(tmp_path / "results" / "table.csv")
    columns = ["method", "level", *REPEATABLE]
    pd.testing.assert_frame_equal(first[columns], second[columns], check_dtype=False, check_exact=True)


def test_bad_config_stops_with_one_line_and_deletes_nothing(smoke_with_crash):
    results = smoke_with_crash / "results"
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in results.rglob("*") if p.is_file()}
    result = snakemake(smoke_with_crash, {**SMOKE, "envs": ["cartpole", "no_such_env"]})
    assert result.returncode != 0
    message = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert message == [f"policypress: error: {smoke_with_crash}/config.yaml: envs[1]: unknown environment "
                       f"'no_such_env' (no {ROOT}/envs/no_such_env.yaml)"]
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in results.rglob("*") if p.is_file()}
    assert after == before


def script(name):
    """One of scripts/, which have no .py suffix, imported as a module."""
    loader = importlib.machinery.SourceFileLoader(name, str(ROOT / "scripts" / name))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(module)
    return module


def test_a_carried_pass_resumes_without_rerunning_what_it_finished(tmp_path, monkeypatch):
    """Restored in a fresh checkout, a teacher's policy/ folder (an input by its own modification
    time) keeps the time of its files, older than the runs made from it, not the moment of
    unpacking, which would make Snakemake rerun every run of that teacher."""
    carry_pass = script("carry-pass")
    monkeypatch.setattr(carry_pass, "ARCHIVES", tmp_path / "passes")
    first, fresh = tmp_path / "first", tmp_path / "fresh"
    teacher = first / "results/teachers/cartpole/0/policy/weights.safetensors"
    run = first / "results/runs/cartpole/0/dense/1/run.json"
    for path, mtime in ((teacher, 1_700_000_000), (run, 1_700_000_600)):
        path.parent.mkdir(parents=True)
        path.write_text("{}")
        os.utime(path, (mtime, mtime))
    carry_pass.save("demo", first)
    time.sleep(0.01)
    carry_pass.restore("demo", fresh)
    assert (fresh / "results/teachers/cartpole/0/policy").stat().st_mtime == 1_700_000_000
    assert (fresh / "results/runs/cartpole/0/dense/1").stat().st_mtime == 1_700_000_600


def test_publish_counts_the_time_of_sessions_that_ran_side_by_side_once(tmp_path):
    """A pass resumed as two Snakemakes at once (`--nolock`, other targets, a core each) took the
    wall time of their union, not their sum; a killed session, which logs no elapsed time, counts
    from its start to the last job it logged; one that ran no job is not a session of the pass."""
    publish = script("publish")
    logs = {"2026-12-05T040000.000000": "Elapsed time: 1:00:00", "2026-12-05T043000.000000": "Elapsed time: 1:00:00",
            "2026-12-05T041000.000000": "Elapsed time: 0:05:00", "2026-12-05T070000.000000": "Elapsed time: 0:10:00",
            "2026-12-05T080000.000000": "[Sat Dec  5 08:00:01 2026]\nrule compress:\n[Sat Dec  5 08:20:00 2026]\n",
            "2026-12-05T090000.000000": "Building DAG of jobs...\nNothing to be done (all requested files are present "
                                        "and up to date)."}
    for start, text in logs.items():
        (tmp_path / f"{start}.snakemake.log").write_text(text + "\n")
    spans, killed = publish.sessions(tmp_path)
    assert killed == 1 and len(spans) == 5
    # 04:00 to 05:30, 07:00 to 07:10, then the killed one's 08:00 to 08:20
    assert publish.wall_time(spans) == timedelta(hours=2)


def test_publish_lets_runs_of_an_earlier_commit_stand_only_if_each_ran_the_plugin_published(tmp_path, monkeypatch):
    """A pass resumed at a later commit after a fix to one method: its earlier runs stand when every
    published run ran its plugin as the later checkout has it (so the fixed method's runs were all
    rerun) and nothing else a job computes with changed; pyproject.toml's [tool] tables (pytest's
    and ruff's settings) may change. A stale run, or a changed dependency, is refused by name."""
    publish = script("publish")
    repo = tmp_path / "repo"
    (repo / "methods").mkdir(parents=True)
    plugin = (ROOT / "methods" / "magnitude.py").read_text()
    files = {"methods/magnitude.py": plugin, "README.md": "a\n",
             "pyproject.toml": '[project]\nname = "x"\ndependencies = ["numpy"]\n[tool.pytest.ini_options]\n'}

    def commit(changes: dict | None = None) -> str:
        files.update(changes or {})
        for name, text in files.items():
            (repo / name).write_text(text)
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "c"], check=True)
        return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    earlier = commit()
    old_sha = load_method("magnitude", [str(repo / "methods")]).fingerprint()
    later = commit({"methods/magnitude.py": plugin + "# the fix\n", "README.md": "b\n",
                    "pyproject.toml": files["pyproject.toml"] + 'addopts = "-q"\n'})
    new_sha = load_method("magnitude", [str(repo / "methods")]).fingerprint()
    monkeypatch.setattr(publish, "ROOT", repo)
    runs = [{"method": "magnitude", "env": "cartpole", "seed": seed, "method_sha256": new_sha} for seed in (0, 1)]
    line = publish.earlier_runs_alike(earlier, later, repo, runs)
    assert "only in methods/magnitude.py (besides the [tool] tables of pyproject.toml" in line
    assert "every one of the 2 runs" in line
    runs[1]["method_sha256"] = old_sha
    with pytest.raises(SystemExit, match=r"1 published run \(e.g. magnitude on cartpole seed 1\) ran another version"):
        publish.earlier_runs_alike(earlier, later, repo, runs)
    runs[1]["method_sha256"] = new_sha
    changed = commit({"pyproject.toml": files["pyproject.toml"].replace('"numpy"', '"numpy", "scipy"')})
    with pytest.raises(SystemExit, match="changes pyproject.toml, which jobs compute with"):
        publish.earlier_runs_alike(earlier, changed, repo, runs)


def test_publish_copies_the_site_unchanged_and_writes_its_provenance_from_the_records(smoke_with_crash, tmp_path):
    out = tmp_path / "published"
    command = [sys.executable, str(ROOT / "scripts" / "publish"), "smoke", "--root", str(smoke_with_crash), "--out",
               str(out)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    site = smoke_with_crash / "results" / "leaderboard"
    for path in site.rglob("*"):
        if path.is_file():
            assert (out / path.relative_to(site)).read_bytes() == path.read_bytes(), path.name
    provenance = (out / "PROVENANCE.md").read_text()
    runs = json.loads((site / "runs.json").read_text())
    assert f"at commit {runs['provenance']['commit']}" in provenance
    assert "`snakemake --cores 2 --configfile config/smoke.yaml`" in provenance
    assert "in 1 Snakemake session" in provenance and f"**Runs.** {len(runs['runs'])}," in provenance
    pinned = platform.machine().lower() in ("x86_64", "amd64") and _has_avx2_and_fma()
    assert ("ATEN_CPU_CAPABILITY=avx2" in provenance) == pinned  # the render records the jobs' numerics
