"""The claims page: each seed and baseline paper's headline claim beside the nearest measurement,
with a verdict computed from the measurement, never typed.

`config/claims.yaml` holds per claim the paper's words (as far as they could be read, with what is
verified), the method that implements it, the nearest envs with what differs from the paper's
setting on each (the first where the profile ran the method is used), how a qualitative claim is
read, and a test, written before the results they judge were computed:
- `compression_at_least: X`: the method's compression at 95% retention (the env's headline,
  `headline.py`) reaches X;
- `compression_beats: OTHER`: it compresses further than OTHER at 95% retention;
- `score_at_least: V` at `level: L`: the IQM over seeds of the env's score at level L reaches V;
- `not_comparable: WHY`: no measurement can test it.
The verdict is "reproduced" when the whole 95% CI passes the test, "not reproduced" when the whole
CI fails it, "inconclusive" when the CI straddles it, and "not comparable" when the test cannot be
made here (with why: the profile lacks the envs, the method's runs are n/a there, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from policypress.core.specs import load_yaml, validate
from policypress.report.aggregate import env_score, is_true
from policypress.report.exports import ci_text, compression_text, ratio_text

LEDE = ("Each claim's reading and test are stated in config/claims.yaml, written before the results they judge were "
        "computed; the verdict is computed from the measurement: reproduced when the whole 95% CI passes the test, "
        "not reproduced when the whole CI fails it, inconclusive when the CI straddles it or the claim falls between "
        "the levels run, not comparable when no measurement here can test it.")


def load_claims(path: str | Path) -> list[dict]:
    """The claims of `path`, validated (a one-line error names the file and the field)."""
    data = load_yaml(path)
    validate(data, "claims", path)
    return data["claims"]


def _between(low: float, high: float, threshold: float) -> str:
    """The verdict of a CI against a threshold the claim must reach."""
    if low >= threshold:
        return "reproduced"
    return "not reproduced" if high < threshold else "inconclusive"


def _compression_row(compression: pd.DataFrame, env: str, method: str) -> pd.Series | None:
    rows = compression[(compression["env"] == env) & (compression["method"] == method)]
    return rows.iloc[0] if len(rows) and rows.iloc[0]["status"] != "n/a" else None


def _compression_bounds(row: pd.Series) -> tuple[float, float]:
    """The 95% CI of a compression at 95% retention (a resample that reaches no level counts 0)."""
    return tuple(0.0 if pd.isna(row[bound]) else float(row[bound]) for bound in ("ci_low", "ci_high"))


def _levels(summary: pd.DataFrame, env: str, method: str) -> dict[float, float]:
    """The levels a per-level method ran at in `env`, largest first, each with the compression its
    students measured there (the median seed's, or 1 / level where none was measured); {} for a
    method that chose its own size (its compression is its size, not a level of the grid)."""
    rows = summary[(summary["env"] == env) & (summary["method"] == method)]
    if not len(rows) or ("level_free" in rows and rows["level_free"].map(is_true).any()):
        return {}
    rows = rows.sort_values("level", ascending=False)
    fractions = rows["params_fraction"] if "params_fraction" in rows else pd.Series(np.nan, index=rows.index)
    return {level: 1 / (level if pd.isna(fraction) or fraction <= 0 else fraction)
            for level, fraction in zip(rows["level"], fractions, strict=True)}


def _ran(claim: dict, env: str, summary: pd.DataFrame, compression: pd.DataFrame) -> bool:
    """Whether the profile ran what the claim's test needs in `env`."""
    test = claim["test"]
    if "score_at_least" in test:  # an invalid run is a result; an n/a one is not
        return bool(len(summary[(summary["env"] == env) & (summary["method"] == claim["method"])
                                & np.isclose(summary["level"], test["level"]) & (summary["status"] != "n/a")]))
    needed = [claim["method"], *([test["compression_beats"]] if "compression_beats" in test else [])]
    return all(_compression_row(compression, env, method) is not None for method in needed)


def nearest_env(claim: dict, summary: pd.DataFrame, compression: pd.DataFrame) -> str | None:
    """The first of the claim's envs where the profile ran what its test needs (n/a runs do not count)."""
    return next((env for env in claim["envs"] if _ran(claim, env, summary, compression)), None)


def _at_least(row: pd.Series, threshold: float, levels: dict[float, float]) -> tuple[str, str]:
    """The verdict of "compression at 95% retention reaches `threshold`", and what limits it. A
    per-level method is measured on the profile's grid of levels, by the compression its students
    had there: it is not reproduced only where it failed at a level whose students were compressed
    at most `threshold`; a threshold the grid never tested (above what the largest level's students
    failed at, or beyond the smallest level run, which it kept) is not comparable, and one between
    the level it kept and the next one down is inconclusive."""
    low, high = _compression_bounds(row)
    if low >= threshold:
        return "reproduced", ""
    grid = list(levels)
    if grid and row["status"] != "reached" and threshold < levels[grid[0]]:
        return "not comparable", (f"its students failed already at the largest level, {grid[0]:g} "
                                  f"({ratio_text(levels[grid[0]])}×)")
    if high >= threshold:
        return "inconclusive", "the CI straddles it"
    failed = [level for level in grid if row["status"] != "reached" or level < row["level"]]
    if grid and not failed:
        return "not comparable", f"it kept 95% at the smallest level run, {grid[-1]:g}; no smaller one was run"
    if failed and levels[failed[0]] > threshold:
        return "inconclusive", (f"it lies between the levels tested ({row['level']:g} kept 95%, {failed[0]:g} "
                                f"({ratio_text(levels[failed[0]])}×) did not)")
    return "not reproduced", ""


def assess(claim: dict, summary: pd.DataFrame, compression: pd.DataFrame) -> dict:
    """The claim with its nearest measurement (`env`, `measurement`, `differences` from the paper's
    setting) and its `verdict`, with the measured `reason`."""
    test, method = claim["test"], claim["method"]
    env = None if "not_comparable" in test else nearest_env(claim, summary, compression)

    def verdict(outcome: str, reason: str, measurement: str = "") -> dict:
        return {**claim, "env": env or "", "differences": claim["envs"].get(env, ""), "measurement": measurement,
                "verdict": outcome, "reason": reason}

    if "not_comparable" in test:
        return verdict("not comparable", test["not_comparable"])
    if env is None:
        return verdict("not comparable", f"this profile ran what its test needs in none of its envs "
                                         f"({', '.join(claim['envs'])})")
    row = _compression_row(compression, env, method)
    compressed = compression_text(row)[0] if row is not None else "no runs"
    where = f"{env}, {method}: compression at 95% retention {compressed}" + (
        f" (level {row['level']:g})" if row is not None and row["status"] == "reached" and _levels(
            summary, env, method) else "")
    if "compression_at_least" in test:
        threshold = float(test["compression_at_least"])
        outcome, limit = _at_least(row, threshold, _levels(summary, env, method))
        return verdict(outcome, f"{compressed} against the claim's {ratio_text(threshold)}×"
                                + (f"; {limit}" if limit else ""), where)
    if "compression_beats" in test:
        other = test["compression_beats"]
        other_row = _compression_row(compression, env, other)
        (low, high), (other_low, other_high) = _compression_bounds(row), _compression_bounds(other_row)
        outcome = "reproduced" if low > other_high else "not reproduced" if high < other_low else "inconclusive"
        same = row["status"] == other_row["status"] == "reached" and np.isclose(row["level"], other_row["level"])
        if same and _levels(summary, env, method) and _levels(summary, env, other):
            # Both kept 95% down to the same level: their sizes there differ only by how each sliced its
            # units under the same cap, which is not what keeping 95% at a smaller size would show.
            outcome, why = "inconclusive", f"; both keep 95% down to the same level, {row['level']:g}"
        else:
            why = "; the CIs overlap" if outcome == "inconclusive" else ""
        return verdict(outcome, f"{method} {compressed} against {other} {compression_text(other_row)[0]}{why}",
                       where)
    at = summary[(summary["env"] == env) & (summary["method"] == method) & np.isclose(summary["level"], test["level"])]
    at = at.iloc[0]
    if at["status"] != "valid":
        return verdict("not comparable", f"{method} at level {test['level']:g} on {env}: {at['status']}", where)
    score = env_score(summary[summary["env"] == env])
    low, high = at[f"{score}_ci_low"], at[f"{score}_ci_high"]
    if pd.isna(low) or pd.isna(high):
        return verdict("not comparable", f"{method} at level {test['level']:g} on {env} has no {score} CI", where)
    scored = f"{score} at level {test['level']:g} {ci_text(at[score], low, high)}"
    return verdict(_between(low, high, test["score_at_least"]),
                   f"{scored} against the claim's {test['score_at_least']:g}", f"{where}; {scored}")


def assess_all(claims: list[dict], summary: pd.DataFrame, compression: pd.DataFrame) -> list[dict]:
    return [assess(claim, summary, compression) for claim in claims]


def why(assessed: dict) -> str:
    """The verdict's reason, then how the claim was read and what differs from the paper's setting."""
    parts = [assessed["reason"], f"Reading: {assessed['reading']}" if assessed.get("reading") else "",
             f"Differences: {assessed['differences']}" if assessed["differences"] else ""]
    return ". ".join(part for part in parts if part)


def run_by(provenance: dict) -> str:
    """Whose runs the page judges: the config by its path in the repository and the budget profile its
    envs use (the families config runs on the quick profile's budgets, so the profile alone misleads)."""
    config, profile = provenance.get("config", ""), provenance.get("profile", "")
    return f"{config}, on the {profile} profile's budgets" if config else profile


def markdown(assessed: list[dict], runs: str) -> str:
    lines = ["# The papers' claims beside PolicyPress's measurements", "", f"Runs: {runs}. {LEDE}", "",
             "| paper | claim | verified | nearest measurement | verdict | why |", "|---|---|---|---|---|---|"]
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731  (a | in a cell would end it)
    lines += [f"| {cell(c['paper'])} | {cell(c['claim'])} | {cell(c['evidence'])} | {cell(c['measurement'] or '–')} "
              f"| **{c['verdict']}** | {cell(why(c))} |" for c in assessed]
    return "\n".join(lines) + "\n"
