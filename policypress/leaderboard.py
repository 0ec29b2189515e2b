"""Render the leaderboard: Markdown, a self-contained sortable HTML page, and seaborn plots.

Every number comes from `results/table.csv`, which the pipeline produced; nothing is typed in.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from jinja2 import Environment, FileSystemLoader, select_autoescape  # noqa: E402

from policypress.aggregate import summarise  # noqa: E402
from policypress.io import write_text  # noqa: E402
from policypress.registry import load_method  # noqa: E402
from policypress.specs import ROOT  # noqa: E402

TEMPLATES = ROOT / "leaderboard" / "templates"

# (column, header, one-line explanation) in display order; the README defines each metric.
COLUMNS = [
    ("method", "method", "compression method (see Methods below)"),
    ("level", "level", "ceiling on nonzero parameters, as a fraction of the teacher's"),
    ("retention", "retention", "IQM over seeds of student return / teacher return on the same episodes, 95% CI"),
    ("normalized_score", "norm. score", "IQM of (R - R_random) / (R_teacher - R_random), 95% CI"),
    ("mean_return", "return", "median over seeds of the mean episode return"),
    ("params_nonzero", "nonzero params", "parameters that are not masked or zero (share of the teacher's)"),
    ("params_total", "total params", "parameters of the deployed structure"),
    ("bytes", "bytes", "storage per tensor: fp32 or int8 values, dense or sparse (values + bitmap)"),
    ("macs_nonzero", "MACs (nonzero)", "multiply-accumulates of nonzero weights, batch 1"),
    ("macs_dense", "MACs (dense)", "multiply-accumulates of the structure, batch 1"),
    ("latency_us_median", "latency µs", "ONNX Runtime, batch 1, one thread: median over timed windows"),
    ("latency_us_p99", "p99 µs", "99th percentile of single inferences, same windows"),
    ("latency_speedup", "speedup", "teacher median latency / student median latency, same job"),
    ("instructions", "instructions", "instructions of one inference of the standalone C export (callgrind, cc -O2)"),
    ("flash_bytes", "flash", "C export built for a Cortex-M4 (arm-none-eabi-gcc -Os): code + weights"),
    ("ram_bytes", "RAM", "the same build's static RAM: activation buffers (stack not counted)"),
    ("seeds", "seeds", "runs aggregated"),
]


def _fmt_number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def cell(row: pd.Series, column: str) -> tuple[str, float | str]:
    """(display text, sort key) of one table cell."""
    value = row.get(column)
    if column in ("method", "seeds"):
        return str(value), value
    if column == "level":
        return f"{value:g}", value
    if row["status"] != "valid":
        return (row["status"], -math.inf) if column == "retention" else ("", -math.inf)
    if column in ("retention", "normalized_score"):
        if value is None or pd.isna(value):
            return "–", -math.inf
        return f"{value:.3f} [{row[f'{column}_ci_low']:.3f}, {row[f'{column}_ci_high']:.3f}]", value
    if column == "params_nonzero":
        return f"{_fmt_number(value)} ({100 * row['params_fraction']:.1f}%)", value
    if column == "latency_speedup":
        return f"{value:.2f}×", value
    if column in ("flash_bytes", "ram_bytes") and not pd.isna(value):
        return f"{value / 1024:,.1f} KiB", value
    return _fmt_number(value), value


LOG_AXES = ("params_nonzero", "instructions", "flash_bytes")
PLOTS = (("params_nonzero", "nonzero parameters", "params"),
         ("latency_fraction", "latency (fraction of the teacher's, same job)", "latency"),
         ("instructions", "instructions per inference (C export, callgrind)", "instructions"),
         ("flash_bytes", "flash bytes (Cortex-M4 build)", "flash"))


def _plot(summary: pd.DataFrame, env: str, x: str, xlabel: str, out: Path) -> Path:
    """Score against a cost, one line per method across levels, with the 95% CIs as error bars."""
    valid = summary[(summary["env"] == env) & (summary["status"] == "valid")].copy()
    # Absolute µs differ between jobs by more than between policies; the ratio is measured in one job.
    valid["latency_fraction"] = 1.0 / valid["latency_speedup"]
    valid = valid.sort_values(x)
    y = "retention" if "retention" in valid and valid["retention"].notna().all() else "normalized_score"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    methods = sorted(valid["method"].unique())
    colours = sns.color_palette("colorblind" if len(methods) <= 10 else "husl", len(methods))  # colorblind has 10
    palette = dict(zip(methods, colours, strict=True))
    sns.lineplot(data=valid, x=x, y=y, hue="method", style="method", markers=True, dashes=False,
                 estimator=None, sort=True, palette=palette, ax=ax)
    for method, group in valid.groupby("method"):
        values = group[y].to_numpy(dtype=float)
        errors = np.vstack([values - group[f"{y}_ci_low"].to_numpy(dtype=float),
                            group[f"{y}_ci_high"].to_numpy(dtype=float) - values])
        ax.errorbar(group[x].to_numpy(dtype=float), values, yerr=errors, fmt="none", ecolor=palette[method],
                    alpha=0.6, capsize=3)
    if x in LOG_AXES:  # levels are spaced geometrically
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{y.replace('_', ' ')} (IQM over seeds, 95% CI)")
    ax.set_title(f"{env}: {y.replace('_', ' ')} vs {xlabel.split(' (')[0]}")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def method_docs(names: list[str], method_dirs: list[str]) -> list[dict]:
    docs = []
    for name in names:
        try:
            method = load_method(name, method_dirs)
            info = method.info
            docs.append({"name": name, "summary": info.summary, "citation": info.citation,
                         "description": method.description,
                         "deviations": info.deviations, "hyperparameters": info.hyperparameters})
        except Exception as err:  # a broken plugin is reported on the page, not fatal to it
            docs.append({"name": name, "summary": f"could not be loaded: {err}", "citation": "", "description": "",
                         "deviations": "", "hyperparameters": {}})
    return docs


def teacher_returns(table: pd.DataFrame, env: str) -> list[dict]:
    """Per seed: the teacher's and the random policy's mean return on the held-out episodes."""
    if "teacher_mean_return" not in table:  # no valid run measured them
        return []
    runs = table[(table["env"] == env) & table["teacher_mean_return"].notna()]
    return runs.groupby("seed")[["teacher_mean_return", "random_mean_return"]].first().reset_index().to_dict("records")


def markdown(summary: pd.DataFrame) -> str:
    lines = ["# PolicyPress leaderboard", "",
             "Retention and normalized score: interquartile mean over seeds with 95% bootstrap CI.", ""]
    for env, group in summary.groupby("env", sort=True):
        lines += [f"## {env}", ""]
        headers = [header for _, header, _ in COLUMNS] + ["status"]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "---|" * len(headers))
        for _, row in group.iterrows():
            status = row["status"] if row["status"] == "valid" else f"{row['status']}: {row['reason']}"
            cells = [cell(row, column)[0].replace("|", "\\|") for column, _, _ in COLUMNS]
            lines.append("| " + " | ".join(cells + [status.replace("|", "\\|")]) + " |")
        lines.append("")
    return "\n".join(lines)


def render(table_csv: str | Path, out_dir: str | Path, method_dirs: list[str], provenance: dict) -> None:
    out_dir = Path(out_dir)
    table = pd.read_csv(table_csv, keep_default_na=False, na_values=[""])  # status "n/a" is a value, not NaN
    summary = summarise(table)
    write_text(out_dir / "summary.csv", summary.to_csv(index=False))
    write_text(out_dir / "leaderboard.md", markdown(summary))

    envs = []
    for env, group in summary.groupby("env", sort=True):
        plots = []
        if (group["status"] == "valid").any():
            for x, xlabel, name in PLOTS:
                if x in group and group[x].isna().all():  # e.g. valgrind was not installed
                    continue
                path = _plot(summary, env, x, xlabel, out_dir / "plots" / f"{env}_score_vs_{name}.png")
                plots.append({"title": f"{env}: score vs {xlabel}",
                              "data": base64.b64encode(path.read_bytes()).decode()})
        rows = [{"status": row["status"], "reason": row.get("reason") if row["status"] != "valid" else None,
                 "cells": [cell(row, column) for column, _, _ in COLUMNS]} for _, row in group.iterrows()]
        envs.append({"name": env, "rows": rows, "plots": plots, "teachers": teacher_returns(table, env)})

    jinja = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    html = jinja.get_template("leaderboard.html.j2").render(
        envs=envs, columns=COLUMNS, methods=method_docs(sorted(summary["method"].unique()), method_dirs),
        provenance=provenance,
    )
    write_text(out_dir / "index.html", html)
