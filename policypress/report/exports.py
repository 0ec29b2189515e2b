"""Tables for papers (LaTeX booktabs and Markdown) and every run with its provenance (CSV, JSON).

The paper tables give first each method's compression at 95% retention per env (`headline`:
teacher / student nonzero parameters, with its 95% CI); then, per env, each method's score at
each level (retention, or the normalized score where the teacher's return is not positive) as the
IQM over seeds with its 95% CI; and across envs the aggregate IQM of the normalized score per
level. The best entry of a column (rank 1, tied ones included) is bold. Nothing is rounded before
the CIs are computed.
"""

from __future__ import annotations

import json
import math
import platform
from importlib import metadata

import pandas as pd

from policypress.report.aggregate import env_score

PACKAGES = ("policypress", "torch", "stable-baselines3", "gymnasium", "ale-py", "mujoco", "onnx", "onnxruntime",
            "rliable", "numpy", "pandas", "snakemake")
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def provenance(base: dict) -> dict:
    """What produced the leaderboard: `base` (commit, profile, config file and hash, from the
    workflow), the package versions and the machine that rendered it (each run records its own)."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {**base, "versions": versions,
            "machine": {"system": platform.platform(), "python": platform.python_version(),
                        "processor": platform.machine()}}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def ci_text(point: float, low: float, high: float) -> str:
    return "–" if pd.isna(point) else f"{point:.3f} [{low:.3f}, {high:.3f}]"


def compression_text(row: pd.Series, unit: str = "×") -> tuple[str, float]:
    """(text, sort key) of a method's compression at 95% retention, e.g. 20.1× [4.0×, 20.2×]; a CI
    bound of 0 (the resamples that reach no level) is "none", as is a method that never reaches it."""
    if row["status"] != "reached":
        return str(row["status"]), -math.inf
    low, high = (f"{ratio_text(v)}{unit}" if v > 0 else "none" for v in (row["ci_low"], row["ci_high"]))
    return f"{ratio_text(row['ratio'])}{unit} [{low}, {high}]", float(row["ratio"])


def ratio_text(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:#.3g}"  # 20.0, 4.00, 103, 1,519


def _compression_grid(compression: pd.DataFrame) -> tuple[list[str], list[tuple[str, list[tuple[str, bool]]]]]:
    """Headers (track, then one column per env) and, per method, its (cell text, best in column)."""
    envs = sorted(compression["env"].unique())
    grid = []
    for method, rows in compression.groupby("method", sort=True):
        by_env = rows.set_index("env")
        cells = [(str(rows["track"].iloc[0]), False)]
        for env in envs:
            if env not in by_env.index:
                cells.append(("", False))
                continue
            row = by_env.loc[env]
            best = row["status"] == "reached" and str(row["rank"]).rstrip("=") == "1"
            cells.append((compression_text(row, unit="")[0], best))
        grid.append((method, cells))
    return ["track", *envs], grid


def _grid(summary: pd.DataFrame, env: str) -> tuple[list[str], list[tuple[str, list[tuple[str, bool]]]]]:
    """Headers (levels) and, per method, its (cell text, best in column) at each level of one env."""
    rows = summary[summary["env"] == env]
    score = env_score(rows[rows["status"] == "valid"])
    levels = sorted(rows["level"].unique(), reverse=True)
    grid = []
    for method, group in rows.groupby("method", sort=True):
        by_level = group.set_index("level")
        cells = []
        for level in levels:
            if level not in by_level.index:
                cells.append(("", False))
                continue
            row = by_level.loc[level]
            if row["status"] != "valid":
                cells.append((row["status"], False))
                continue
            text = ci_text(row.get(score), row.get(f"{score}_ci_low"), row.get(f"{score}_ci_high"))
            cells.append((text, str(row.get("rank", "")).rstrip("=") == "1"))
        grid.append((method, cells))
    return [f"level {level:g}" for level in levels], grid


def _aggregate_grid(ranking: pd.DataFrame) -> tuple[list[str], list[tuple[str, list[tuple[str, bool]]]]]:
    levels = sorted(ranking["level"].unique(), reverse=True)
    grid = []
    for method, group in ranking.groupby("method", sort=True):
        by_level = group.set_index("level")
        cells = []
        for level in levels:
            if level not in by_level.index or not by_level.loc[level, "complete"]:
                cells.append(("" if level not in by_level.index else "incomplete", False))
                continue
            row = by_level.loc[level]
            cells.append((ci_text(row["iqm"], row["ci_low"], row["ci_high"]), str(row["rank"]).rstrip("=") == "1"))
        grid.append((method, cells))
    return [f"level {level:g}" for level in levels], grid


def _sections(summary: pd.DataFrame, ranking: pd.DataFrame, compression: pd.DataFrame | None
              ) -> list[tuple[str, list, list]]:
    sections = []
    if compression is not None and len(compression):
        sections.append(("compression at 95% retention: teacher / student nonzero parameters at the smallest level "
                         "where the IQM over seeds of the env's score stays >= 0.95 (95% CI)",
                         *_compression_grid(compression)))
    for env in sorted(summary["env"].unique()):
        score = env_score(summary[(summary["env"] == env) & (summary["status"] == "valid")])
        sections.append((f"{env}: {score.replace('_', ' ')} (IQM over seeds, 95% CI)", *_grid(summary, env)))
    if len(ranking):
        sections.append(("all envs: normalized score (IQM over envs and seeds, 95% CI)", *_aggregate_grid(ranking)))
    return sections


def markdown_tables(summary: pd.DataFrame, ranking: pd.DataFrame, compression: pd.DataFrame | None = None) -> str:
    lines = ["# PolicyPress: paper tables", "", "Bold: rank 1 in its column (methods tied with it included).", ""]
    for title, headers, grid in _sections(summary, ranking, compression):
        lines += [f"## {title}", "", "| method | " + " | ".join(headers) + " |", "|---|" + "---|" * len(headers)]
        for method, cells in grid:
            texts = [f"**{text}**" if best else text for text, best in cells]
            lines.append("| " + " | ".join([method.replace("|", "\\|")] + [t.replace("|", "\\|") for t in texts])
                         + " |")
        lines.append("")
    return "\n".join(lines)


def latex_tables(summary: pd.DataFrame, ranking: pd.DataFrame, compression: pd.DataFrame | None = None) -> str:
    """The compression table, one booktabs table per env and one across envs (needs \\usepackage{booktabs})."""
    out = ["% PolicyPress paper tables: \\usepackage{booktabs}. Bold: rank 1 in its column, ties included.", ""]
    for title, headers, grid in _sections(summary, ranking, compression):
        out += [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(title)}}}",
                r"\begin{tabular}{l" + "r" * len(headers) + "}", r"\toprule",
                "method & " + " & ".join(latex_escape(header) for header in headers) + r" \\", r"\midrule"]
        for method, cells in grid:
            texts = [rf"\textbf{{{latex_escape(t)}}}" if best else latex_escape(t) for t, best in cells]
            out.append(" & ".join([latex_escape(method)] + texts) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def runs_json(runs: list[dict], provenance_info: dict) -> str:
    return json.dumps({"provenance": provenance_info, "runs": runs}, indent=1, sort_keys=True, default=str)


def runs_csv(table: pd.DataFrame, provenance_info: dict) -> str:
    """Every run's row, with the commit and config hash that produced the leaderboard."""
    table = table.copy()
    table.insert(0, "commit", provenance_info.get("commit"))
    table.insert(1, "config_sha256", provenance_info.get("config_sha256"))
    return table.to_csv(index=False)
