"""Render the leaderboard: a static, self-contained site, paper tables and every run with provenance.

`results/leaderboard/` holds:
- `index.html`: per env, each method's compression at 95% retention (`headline`); then the
  aggregate ranking per level (IQM across envs and seeds with 95% CIs, tied ranks, probability
  of improvement over the best baseline), performance profiles, links;
- `env-<env>.html`: the env's compression at 95% retention per method, its teachers (`teachers`:
  return beside the floor, training cost), then its table per method × level (ranks, Pareto
  fronts, track, total interaction), plots;
- `method-<method>.html`: a method's description, citation, hyperparameters, supported
  families, deviations from its paper, whether its mechanisms engaged, and every one of its runs;
- `leaderboard.md` (the env tables), `tables.md` and `tables.tex` (paper tables), `summary.csv`,
  `compression.csv`, `ranking.csv`, `teachers.csv`, `runs.csv` and `runs.json` (every run with its provenance),
  `plots/`.
A level-free method's runs count at every level they fit (`aggregate.place_level_free`).
Pages embed their plots and need no network; every text from a plugin or the table is escaped.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from policypress.core.io import read_json, write_text
from policypress.core.registry import load_method
from policypress.report import claims, exports, plots, teachers
from policypress.report.aggregate import env_score, is_true, place_level_free, summarise
from policypress.report.headline import THRESHOLD, headline
from policypress.report.pareto import FRONTS, mark_fronts
from policypress.report.stats import aggregate_ranking, performance_profiles

TEMPLATES = Path(__file__).parent / "templates"  # package data: a non-editable install renders too
TAUS = np.linspace(0.0, 1.25, 126)  # performance profiles: retention thresholds

# (column, header, one-line explanation) in display order; docs/protocol.md defines each metric.
COLUMNS = [
    ("method", "method", "compression method (see its page)"),
    ("track", "track", "post-training (from the trained teacher) or during-training (from random weights)"),
    ("level", "level", "ceiling on nonzero parameters, as a fraction of the teacher's"),
    ("rank", "rank", "by the env's score within a level; '=' marks methods whose CIs overlap the leader's (tied)"),
    ("retention", "retention", "IQM over seeds of student return / teacher return on the same episodes, 95% CI"),
    ("normalized_score", "norm. score", "IQM of (R - R_random) / (R_teacher - R_random), 95% CI"),
    ("pareto", "Pareto", "on the env's front of retention against nonzero params / latency / instructions"),
    ("mean_return", "return", "median over seeds of the mean episode return"),
    ("params_nonzero", "nonzero params", "parameters that are not masked or zero (share of the teacher's)"),
    ("params_total", "total params", "parameters of the deployed structure"),
    ("bytes", "bytes", "storage per tensor: fp32 or int8 values, dense or sparse (values + bitmap)"),
    ("macs_nonzero", "MACs (nonzero)", "multiply-accumulates of nonzero weights, batch 1"),
    ("macs_dense", "MACs (dense)", "multiply-accumulates of the structure, batch 1"),
    ("latency_us_median", "latency µs", "ONNX Runtime, batch 1, one thread: median over timed windows"),
    ("latency_us_p99", "p99 µs", "99th percentile of single inferences, same windows"),
    ("latency_speedup", "speedup", "teacher median latency / student median latency, same job"),
    ("c_us_median", "C µs", "the standalone C export (cc -O2) on this host, batch 1: median over timed windows"),
    ("c_speedup", "C speedup", "the standalone C export on this host, teacher median time / student median time, "
                               "same job (the ONNX Runtime protocol, the harness's own timed loop)"),
    ("instructions", "instructions", "instructions of one inference of the standalone C export (callgrind, cc -O2)"),
    ("flash_bytes", "flash", "C export built for a Cortex-M4 (arm-none-eabi-gcc -Os): code + weights"),
    ("ram_bytes", "RAM", "the same build's static RAM: activation buffers (stack not counted)"),
    ("m4_us", "M4 µs", "that build's pp_act on an emulated Cortex-M4F, timed by ARM's manual, at 80 MHz"),
    ("m4_cycles_per_mac", "M4 cycles / MAC", "the same cycles per multiply-accumulate the kernels execute"),
    ("total_env_steps", "env steps (total)",
     "median over seeds of the run's whole interaction: its env steps plus its teacher's training where it used one"),
    ("total_gradient_updates", "updates (total)",
     "the same for gradient updates: the run's own plus its teacher's training where it used one"),
    ("seeds", "seeds", "runs aggregated"),
]
# The env table's column groups, which the reader shows or hides (all of them do not fit a laptop's
# width); the columns not listed (method, track, level, rank, status), and the env's headline score
# (`env_score`), always show.
COLUMN_GROUPS = {
    "score": ["retention", "normalized_score", "pareto", "mean_return"],
    "size": ["params_nonzero", "bytes", "macs_nonzero"],
    "dense structure": ["params_total", "macs_dense"],
    "host speed": ["latency_us_median", "latency_us_p99", "latency_speedup", "c_us_median", "c_speedup",
                   "instructions"],
    "embedded": ["flash_bytes", "ram_bytes", "m4_us", "m4_cycles_per_mac"],
    "interaction": ["total_env_steps", "total_gradient_updates", "seeds"],
}
SHOWN_GROUPS = ("size", "embedded")  # at first: with the fixed columns they fit 1,366 px
HEADERS = {column: header for column, header, _ in COLUMNS}
GROUP_OF = {column: group for group, columns in COLUMN_GROUPS.items() for column in columns}


def column_groups(score: str) -> list[str]:
    """Each env-table column's group as a CSS name ("" for the columns that always show)."""
    return ["" if column == score else GROUP_OF.get(column, "").replace(" ", "-") for column, _, _ in COLUMNS]


RUN_COLUMNS = ["env", "seed", "level", "status", "reason", "retention", "normalized_score", "mean_return",
               "params_nonzero", "latency_speedup", "instructions", "flash_bytes", "m4_us", "total_env_steps",
               "total_gradient_updates"]


def page_name(kind: str, name: str) -> str:
    """A file name for an env or method page that is safe whatever the name holds."""
    slug = re.sub(r"[^a-z0-9_.-]", "_", str(name))
    if slug != name:  # distinct names must not share a page
        slug += "-" + hashlib.sha256(str(name).encode()).hexdigest()[:8]
    return f"{kind}-{slug}.html"


def _fmt_number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def cell(row: pd.Series, column: str) -> tuple[str, float | str]:
    """(display text, sort key) of one table cell."""
    value = row.get(column)
    if column in ("method", "seeds", "track"):
        return str(value), value
    if column == "level":
        return f"{value:g}", value
    if row["status"] != "valid":
        return (row["status"], -math.inf) if column == "retention" else ("", -math.inf)
    if column == "rank":
        return (str(value), int(str(value).rstrip("="))) if isinstance(value, str) and value else ("–", math.inf)
    if column == "pareto":
        fronts = [name for name in FRONTS if row.get(f"pareto_{name}")]
        return ", ".join(fronts) or "", len(fronts)
    if column in ("retention", "normalized_score"):
        if value is None or pd.isna(value):
            return "–", -math.inf
        return f"{value:.3f} [{row[f'{column}_ci_low']:.3f}, {row[f'{column}_ci_high']:.3f}]", value
    if column == "params_nonzero":
        return f"{_fmt_number(value)} ({100 * row['params_fraction']:.1f}%)", value
    if column in ("latency_speedup", "c_speedup") and not pd.isna(value):
        return f"{value:.2f}×", value
    if column in ("flash_bytes", "ram_bytes") and not pd.isna(value):
        return f"{value / 1024:,.1f} KiB", value
    return _fmt_number(value), value


def method_doc(name: str, method_dirs: list[str]) -> dict:
    try:
        method = load_method(name, method_dirs)
    except Exception as err:  # a broken plugin is reported on its page, not fatal to the site
        return {"name": name, "summary": f"could not be loaded: {err}", "citation": "", "description": "",
                "deviations": "", "hyperparameters": {}, "supports": {}}
    info = method.info
    supports = {"action spaces": ", ".join(info.action_spaces), "teacher algorithms": ", ".join(info.teacher_algos),
                "layers": ", ".join(info.layer_types)}
    if info.teacher_algos_reason:
        supports["why not other teachers"] = info.teacher_algos_reason
    return {"name": name, "summary": info.summary, "citation": info.citation, "description": method.description,
            "deviations": info.deviations, "hyperparameters": info.hyperparameters, "supports": supports,
            "source": method.source}


HEADLINE_HEADERS = ("method", "track", f"compression at {THRESHOLD:.0%}", "level reached", "rank")


def headline_cells(row: pd.Series) -> list[tuple[str, float | str]]:
    """(display text, sort key) of a headline row's cells, in the order of `HEADLINE_HEADERS`."""
    rank = row["rank"] if isinstance(row["rank"], str) else "–"
    return [(str(row["method"]), row["method"]), (str(row["track"]), row["track"]), exports.compression_text(row),
            (f"{row['level']:g}", row["level"]) if not pd.isna(row["level"]) else ("–", -math.inf),
            (rank, int(rank.rstrip("="))) if rank != "–" else (rank, math.inf)]


def markdown(summary: pd.DataFrame, compression: pd.DataFrame | None = None) -> str:
    lines = ["# PolicyPress leaderboard", "",
             "Retention and normalized score: interquartile mean over seeds with 95% bootstrap CI.", ""]
    for env, group in summary.groupby("env", sort=True):
        lines += [f"## {env}", ""]
        if compression is not None:
            lines += [f"Compression at {THRESHOLD:.0%} retention (teacher / student nonzero params, 95% CI):", "",
                      "| " + " | ".join(HEADLINE_HEADERS) + " |", "|" + "---|" * len(HEADLINE_HEADERS)]
            for _, row in compression[compression["env"] == env].iterrows():
                lines.append("| " + " | ".join(t.replace("|", "\\|") for t, _ in headline_cells(row)) + " |")
            lines.append("")
        headers = [header for _, header, _ in COLUMNS] + ["status"]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "---|" * len(headers))
        for _, row in group.iterrows():
            status = row["status"] if row["status"] == "valid" else f"{row['status']}: {row['reason']}"
            cells = [cell(row, column)[0].replace("|", "\\|") for column, _, _ in COLUMNS]
            lines.append("| " + " | ".join(cells + [status.replace("|", "\\|")]) + " |")
        lines.append("")
    return "\n".join(lines)


def _embed(path: Path, title: str) -> dict:
    return {"title": title, "data": base64.b64encode(path.read_bytes()).decode()}


def _env_plots(summary: pd.DataFrame, env: str, out_dir: Path) -> list[dict]:
    group = summary[summary["env"] == env]
    if not (group["status"] == "valid").any():
        return []
    embedded = []
    for x, xlabel, name in plots.COST_PLOTS:
        source = "latency_speedup" if x == "latency_fraction" else x  # the fraction is derived in the plot
        if source not in group or group[source].isna().all():  # e.g. valgrind was not installed, or an older table
            continue
        path = plots.score_vs_cost(summary, env, x, xlabel, out_dir / "plots" / f"{env}_score_vs_{name}.png")
        embedded.append(_embed(path, f"{env}: score vs {xlabel}"))
    return embedded


def _rows(frame: pd.DataFrame) -> list[dict]:
    return [{"status": row["status"], "reason": row.get("reason") if row["status"] != "valid" else None,
             "front": any(row.get(f"pareto_{name}") for name in FRONTS),
             "cells": [cell(row, column) for column, _, _ in COLUMNS]} for _, row in frame.iterrows()]


def engagement(runs: pd.DataFrame) -> list[dict]:
    """Whether one method's mechanisms engaged, per env and `engagement_<key>` column over its valid
    runs that recorded it: for a flag, how many runs engaged; for a number, its median and range.
    A method that ran without its mechanism doing anything looks like a weaker method otherwise."""
    columns = [column for column in runs.columns if column.startswith("engagement_")]
    rows = []
    for env, in_env in runs[runs["status"] == "valid"].groupby("env", sort=True):
        for column in columns:
            values = in_env[column].dropna()
            if values.empty:
                continue
            if values.map(lambda v: isinstance(v, bool | np.bool_) or str(v) in ("True", "False")).all():
                text = f"{int(values.map(is_true).sum())}/{len(values)} runs"
            else:
                numbers = values.astype(float)
                text = (f"median {_fmt_number(numbers.median())}, range {_fmt_number(numbers.min())}"
                        f" to {_fmt_number(numbers.max())} ({len(values)} runs)")
            rows.append({"env": env, "mechanism": column.removeprefix("engagement_"), "text": text})
    return rows


def _ranking_rows(ranking: pd.DataFrame, retention: pd.DataFrame) -> list[dict]:
    """The overview's rows: rank, normalized score and P(improvement), and retention where it is
    defined on every env."""
    ratios = retention.set_index(["level", "method"])
    rows = []
    for _, row in ranking.iterrows():
        entry = {"level": row["level"], "method": row["method"], "complete": bool(row["complete"]),
                 "baseline": bool(row["baseline"]), "rank": row["rank"] if row["complete"] else "–",
                 "score": exports.ci_text(row["iqm"], row["ci_low"], row["ci_high"]),
                 "sort": row["iqm"] if row["complete"] else -math.inf, "poi": "", "retention": "–"}
        if isinstance(row.get("best_baseline"), str):
            entry["poi"] = f"{row['poi']:.2f} [{row['poi_low']:.2f}, {row['poi_high']:.2f}] vs {row['best_baseline']}"
        key = (row["level"], row["method"])
        if key in ratios.index and ratios.loc[key, "complete"]:
            entry["retention"] = exports.ci_text(*ratios.loc[key, ["iqm", "ci_low", "ci_high"]])
        rows.append(entry)
    return rows


def _headline_rows(compression: pd.DataFrame, methods: list[dict]) -> list[dict]:
    """The overview's compression table: one row per method, one (text, sort key) cell per env."""
    envs = sorted(compression["env"].unique())
    by_key = {(row["env"], row["method"]): row for _, row in compression.iterrows()}
    rows = []
    for method in methods:
        cells = []
        for env in envs:
            row = by_key.get((env, method["name"]))
            if row is None:
                cells.append(("", -math.inf))
                continue
            text, key = exports.compression_text(row)
            cells.append((f"{text} · rank {row['rank']}" if row["status"] == "reached" else text, key))
        tracks = compression.loc[compression["method"] == method["name"], "track"]
        rows.append({"method": method, "track": tracks.iloc[0] if len(tracks) else "", "cells": cells})
    return rows


def _floor_source(teacher_table: pd.DataFrame, env: str) -> str:
    sources = teacher_table.loc[teacher_table["env"] == env, "floor_source"]
    return sources.iloc[0] if len(sources) else ""


def render(table_csv: str | Path, out_dir: str | Path, method_dirs: list[str], provenance: dict,
           baselines: list[str] | None = None, runs_json: str | Path | None = None,
           teacher_files: list[str | Path] | None = None, claims_file: str | Path | None = None) -> None:
    out_dir = Path(out_dir)
    claim_list = claims.load_claims(claims_file) if claims_file else []  # bad input fails before any write
    table = pd.read_csv(table_csv, keep_default_na=False, na_values=[""])  # status "n/a" is a value, not NaN
    placed = place_level_free(table)  # a level-free run counts at every level it fits, here and across envs
    summary = mark_fronts(summarise(placed))
    compression = headline(placed)
    info = exports.provenance(provenance)
    # Across envs, the normalized score: retention is undefined where a teacher's return is negative.
    ranking = aggregate_ranking(placed, "normalized_score", set(baselines or []))
    retention = aggregate_ranking(placed, "retention", set())
    teacher_table = teachers.teacher_table(teacher_files or [])

    write_text(out_dir / "summary.csv", summary.to_csv(index=False))
    write_text(out_dir / "compression.csv", compression.to_csv(index=False))
    write_text(out_dir / "ranking.csv", ranking.to_csv(index=False))
    write_text(out_dir / "leaderboard.md", markdown(summary, compression))
    write_text(out_dir / "teachers.csv", teacher_table.to_csv(index=False))
    tables_md = exports.markdown_tables(summary, ranking, compression)
    if len(teacher_table):
        tables_md = tables_md.rstrip("\n") + "\n\n" + teachers.markdown(teacher_table)
    write_text(out_dir / "tables.md", tables_md)
    write_text(out_dir / "tables.tex", exports.latex_tables(summary, ranking, compression))
    write_text(out_dir / "runs.csv", exports.runs_csv(table, info))
    runs = read_json(runs_json) if runs_json else table.to_dict("records")
    write_text(out_dir / "runs.json", exports.runs_json(runs, info))

    levels = sorted(ranking["level"].unique(), reverse=True) if len(ranking) else []
    profiles = []
    track_of = placed.groupby("method")["track"].first().to_dict() if "track" in placed else {}
    for level in levels:
        curves, cis = performance_profiles(placed, level, "normalized_score", TAUS)
        if curves:
            path = plots.performance_profile(curves, cis, TAUS, level, out_dir / "plots" / f"profile_{level:g}.png",
                                             tracks=track_of)
            profiles.append(_embed(path, f"performance profiles at level {level:g}"))
    envs = [{"name": env, "page": page_name("env", env)} for env in sorted(summary["env"].unique())]
    methods = [{"name": name, "page": page_name("method", name)} for name in sorted(summary["method"].unique())]
    jinja = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    common = {"envs": envs, "methods": methods, "provenance": provenance, "columns": COLUMNS,
              "groups": {group: group.replace(" ", "-") for group in COLUMN_GROUPS}, "shown_groups": SHOWN_GROUPS,
              "threshold": f"{THRESHOLD:.0%}", "headline_headers": HEADLINE_HEADERS, "has_claims": bool(claim_list)}
    if claim_list:
        assessed, run_by = claims.assess_all(claim_list, summary, compression), claims.run_by(provenance)
        write_text(out_dir / "claims.md", claims.markdown(assessed, run_by))
        write_text(out_dir / "claims.html", jinja.get_template("claims.html.j2").render(
            **common, lede=claims.LEDE, run_by=run_by,
            claims=[{**c, "why": claims.why(c), "page": page_name("method", c["method"])} for c in assessed]))

    rows = _ranking_rows(ranking, retention)
    write_text(out_dir / "index.html", jinja.get_template("index.html.j2").render(
        **common, levels=[{"level": level, "rows": [r for r in rows if r["level"] == level]} for level in levels],
        profiles=profiles, baselines=sorted(baselines or []), show_retention=any(r["retention"] != "–" for r in rows),
        headline=_headline_rows(compression, methods)))
    for env in envs:
        in_env = compression[compression["env"] == env["name"]]
        write_text(out_dir / env["page"], jinja.get_template("env.html.j2").render(
            **common, env=env["name"], rows=_rows(summary[summary["env"] == env["name"]]),
            column_groups=column_groups(env_score(placed[placed["env"] == env["name"]])),
            headline=[{"page": page_name("method", row["method"]), "status": row["status"],
                       "cells": headline_cells(row)} for _, row in in_env.iterrows()],
            plots=_env_plots(summary, env["name"], out_dir), teachers=teachers.rows_of(teacher_table, env["name"]),
            teacher_headers=teachers.HEADERS, floor_source=_floor_source(teacher_table, env["name"])))
    for method in methods:
        of_method = placed[~placed["placed"] & (placed["method"] == method["name"])]
        runs_of = of_method.reindex(columns=RUN_COLUMNS)
        runs = [[("" if pd.isna(v) else _fmt_number(v) if isinstance(v, float) else v) for v in row]
                for row in runs_of.itertuples(index=False)]
        write_text(out_dir / method["page"], jinja.get_template("method.html.j2").render(
            **common, method=method_doc(method["name"], method_dirs), track=of_method["track"].iloc[0],
            engagement=engagement(of_method), run_columns=RUN_COLUMNS, runs=runs,
            run_headers=[HEADERS.get(column, column.replace("_", " ")) for column in RUN_COLUMNS]))
