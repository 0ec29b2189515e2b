"""The library's layout: stages import only the stages below them, and an installed copy renders."""

import ast
import os
import subprocess
import sys
from pathlib import Path

from policypress.core.specs import ROOT
from tests.test_leaderboard import table

# What each stage may import (docs/architecture.md): nothing imports upward.
ALLOWED = {
    "core": set(),
    "compress": {"core"},
    "measure": {"core"},
    "teachers": {"core", "measure"},
    "report": {"core"},
    "submit": {"core", "teachers"},
    "deploy": {"core", "measure"},
    "compress_model": {"core", "measure", "report", "teachers"},
    "cli": {"core", "measure", "report", "submit", "teachers", "deploy", "compress_model"},
    "methods": {"core", "compress"},
}


def stage_of(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return "methods" if relative.parts[0] == "methods" else relative.parts[1].removesuffix(".py")


def imported_stages(path: Path) -> set[str]:
    stages = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "policypress":
                stages.add(parts[1] if len(parts) > 1 else "policypress")
    return stages


def test_no_stage_imports_a_higher_one():
    files = sorted((ROOT / "policypress").glob("*/*.py")) + sorted((ROOT / "policypress").glob("[!_]*.py"))
    files += sorted((ROOT / "methods").glob("*.py"))
    seen = set()
    for path in files:
        stage = stage_of(path)
        seen.add(stage)
        upward = imported_stages(path) - ALLOWED[stage] - {stage}
        assert not upward, f"{path.relative_to(ROOT)} ({stage}) imports {sorted(upward)}"
    assert seen == set(ALLOWED)  # every stage is checked, and no module sits outside one


def test_a_non_editable_install_renders_the_leaderboard(tmp_path):
    """`pip install .` (not -e): the page templates and the C template are package data."""
    target = tmp_path / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True)
    assert (target / "policypress" / "report" / "templates" / "index.html.j2").is_file()
    assert (target / "policypress" / "measure" / "c" / "policy.c.j2").is_file()
    assert (target / "policypress" / "deploy" / "templates" / "Makefile.j2").is_file()
    table().to_csv(tmp_path / "table.csv", index=False)
    script = ("import policypress, sys; from policypress.report.site import render; "
              f"assert policypress.__file__.startswith({str(target)!r}), policypress.__file__; "
              f"render('table.csv', 'site', [{str(ROOT / 'methods')!r}], {{'commit': 'abc123'}})")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "env-cartpole.html" in (tmp_path / "site" / "index.html").read_text()
