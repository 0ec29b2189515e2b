"""The smoke DAG through Snakemake's SLURM executor on a single-node cluster on this machine.

`scripts/slurm-local-cluster start` (as root) makes the cluster: slurmctld, slurmd, slurmdbd with
MariaDB (so that sacct works, as the executor plugin needs) and munge. CI starts it; elsewhere
the test is skipped when no cluster answers.
"""

import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from policypress.core.specs import ROOT

pytestmark = pytest.mark.slow

METHODS = {"dense": None, "distill": None, "magnitude": None}


@pytest.fixture(scope="module")
def cluster():
    answers = shutil.which("sinfo") and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
    if not answers:
        if os.environ.get("CI"):
            pytest.fail("CI must start the local SLURM cluster first: scripts/slurm-local-cluster start")
        pytest.skip("no SLURM cluster answers here (scripts/slurm-local-cluster start, as root, makes one)")


def test_smoke_dag_runs_every_compute_job_through_sbatch(cluster, tmp_path):
    config = {**yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text()), "methods": METHODS, "levels": [0.25],
              "baselines": ["distill"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(tmp_path / "config.yaml"), "--profile", str(ROOT / "workflow/profiles/slurm"),
               "--default-resources", "slurm_account=policypress", "slurm_partition=cpu", "mem_mb=1500",
               "runtime=30", "--jobs", "4", "--slurm-init-seconds-before-status-checks", "5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", result.stdout + result.stderr)
    # one teacher, then one compress job (which also measures) for dense (once) and two methods at one level
    assert len(job_ids) == 1 + (1 + 2)
    accounting = subprocess.run(["sacct", "-X", "-n", "-P", "--format=JobIdRaw,State", "-j", ",".join(job_ids)],
                                capture_output=True, text=True, check=True).stdout
    states = dict(line.split("|") for line in accounting.splitlines())
    assert states == dict.fromkeys(job_ids, "COMPLETED")
    table = pd.read_csv(tmp_path / "results" / "table.csv")
    assert (table["status"] == "valid").all() and len(table) == 3
    assert (tmp_path / "results" / "leaderboard" / "index.html").exists()  # aggregate and render ran locally
