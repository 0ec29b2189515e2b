"""The claims page: each seed and baseline paper's headline claim beside the nearest measurement,
with a verdict computed from the measurement, never typed.

`config/claims.yaml` holds per claim the paper's words (as far as they could be read, with what is
verified), the method that implements it, the nearest envs with what differs from the paper's
setting on each (the first where the profile ran the method is used), how a qualitative claim is
read, and a test, stated before any result is seen:
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

import pandas as pd

from policypress.core.specs import load_yaml, validate
from policypress.report.aggregate import env_score
from policypress.report.exports import ci_text, compression_text, ratio_text

LEDE = ("Each claim's test is stated in config/claims.yaml before any result is seen; the verdict is computed from "
        "the measurement: reproduced when the whole 95% CI passes the test, not reproduced when the whole CI fails "
        "it, inconclusive when the CI straddles it, not comparable when no measurement here can test it.")


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


def _compression_bounds(row: pd.Series | None) -> tuple[float, float]:
    """The 95% CI of a compression at 95% retention; (0, 0) where it never keeps 95%."""
    if row is None or row["status"] != "reached":
        return 0.0, 0.0
    return float(row["ci_low"]), float(row["ci_high"])


def _compression_row(compression: pd.DataFrame, env: str, method: str) -> pd.Series | None:
    rows = compression[(compression["env"] == env) & (compression["method"] == method)]
    return rows.iloc[0] if len(rows) else None


def nearest_env(claim: dict, compression: pd.DataFrame) -> str | None:
    """The first of the claim's envs where the profile ran its method (n/a runs do not count)."""
    for env in claim["envs"]:
        row = _compression_row(compression, env, claim["method"])
        if row is not None and row["status"] != "n/a":
            return env
    return None


def assess(claim: dict, summary: pd.DataFrame, compression: pd.DataFrame) -> dict:
    """The claim with its nearest measurement (`env`, `measurement`, `differences` from the paper's
    setting) and its `verdict`, with the measured `reason`."""
    test, method = claim["test"], claim["method"]
    env = None if "not_comparable" in test else nearest_env(claim, compression)

    def verdict(outcome: str, reason: str, measurement: str = "") -> dict:
        return {**claim, "env": env or "", "differences": claim["envs"].get(env, ""), "measurement": measurement,
                "verdict": outcome, "reason": reason}

    if "not_comparable" in test:
        return verdict("not comparable", test["not_comparable"])
    if env is None:
        return verdict("not comparable", f"this profile ran {method} on none of its envs ({', '.join(claim['envs'])})")
    row = _compression_row(compression, env, method)
    compressed = compression_text(row)[0]
    where = f"{env}, {method}: compression at 95% retention {compressed}" + (
        f" (level {row['level']:g})" if row["status"] == "reached" else "")
    if "compression_at_least" in test:
        threshold = float(test["compression_at_least"])
        low, high = _compression_bounds(row)
        return verdict(_between(low, high, threshold), f"{compressed} against the claim's {ratio_text(threshold)}×",
                       where)
    if "compression_beats" in test:
        other = test["compression_beats"]
        other_row = _compression_row(compression, env, other)
        other_text = compression_text(other_row)[0] if other_row is not None else "no runs"
        (low, high), (other_low, other_high) = _compression_bounds(row), _compression_bounds(other_row)
        outcome = "reproduced" if low > other_high else "not reproduced" if high < other_low else "inconclusive"
        overlap = "; the CIs overlap" if outcome == "inconclusive" else ""
        return verdict(outcome, f"{method} {compressed} against {other} {other_text}{overlap}", where)
    level = float(test["level"])
    at = summary[(summary["env"] == env) & (summary["method"] == method) & (summary["level"] == level)]
    if not len(at) or at.iloc[0]["status"] != "valid":
        status = at.iloc[0]["status"] if len(at) else "not run"
        return verdict("not comparable", f"{method} at level {level:g} on {env}: {status}", where)
    score, at = env_score(summary[summary["env"] == env]), at.iloc[0]
    scored = f"{score} at level {level:g} {ci_text(at[score], at[f'{score}_ci_low'], at[f'{score}_ci_high'])}"
    return verdict(_between(at[f"{score}_ci_low"], at[f"{score}_ci_high"], test["score_at_least"]),
                   f"{scored} against the claim's {test['score_at_least']:g}", f"{where}; {scored}")


def assess_all(claims: list[dict], summary: pd.DataFrame, compression: pd.DataFrame) -> list[dict]:
    return [assess(claim, summary, compression) for claim in claims]


def why(assessed: dict) -> str:
    """The verdict's reason, then how the claim was read and what differs from the paper's setting."""
    parts = [assessed["reason"], f"Reading: {assessed['reading']}" if assessed.get("reading") else "",
             f"Differences: {assessed['differences']}" if assessed["differences"] else ""]
    return ". ".join(part for part in parts if part)


def markdown(assessed: list[dict], profile: str) -> str:
    lines = ["# The papers' claims beside PolicyPress's measurements", "", f"Profile: {profile}. {LEDE}", "",
             "| paper | claim | verified | nearest measurement | verdict | why |", "|---|---|---|---|---|---|"]
    lines += [f"| {c['paper']} | {c['claim']} | {c['evidence']} | {c['measurement'] or '–'} | **{c['verdict']}** "
              f"| {why(c)} |" for c in assessed]
    return "\n".join(lines) + "\n"
