"""The teachers behind a leaderboard: what each reached, what it cost, and the published return it
should reach, so a reader sees whether an env's rows compress a teacher that really learned.

One row per teacher from its `teacher.json` (written by `train-teacher` or `import-teacher`): its
algorithm and training steps, its training time on the machine that trained it, its best
checkpoint's validation return, its mean return on the held-out evaluation episodes (the same
episodes every student of the profile plays), a random policy's on those episodes, and the floor
its env spec sets (the published reference return, less its spread) with the spec's source for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from policypress.core.io import read_json
from policypress.core.specs import SpecError, load_env_spec

COLUMNS = ["env", "seed", "algo", "timesteps", "train_minutes", "validation_return", "return_mean", "return_std",
           "episodes", "random_mean", "floor", "meets_floor", "floor_source"]


def floor_source(env: str) -> str:
    """Where the env spec's floor comes from (its `teacher.floor.source`), or "" without one."""
    try:
        return load_env_spec(env).get("teacher", {}).get("floor", {}).get("source", "")
    except SpecError:  # a teacher of an env whose spec is not in this checkout
        return ""


def teacher_row(path: str | Path) -> dict:
    info = read_json(path)
    returns = np.asarray(info.get("eval_returns", []), dtype=float)
    seconds = info.get("train_seconds")
    return {
        "env": info["env"], "seed": info["seed"], "algo": info.get("algo", ""), "timesteps": info.get("timesteps"),
        "train_minutes": round(seconds / 60, 1) if seconds is not None else None,
        "validation_return": info.get("validation_return"),
        "return_mean": float(returns.mean()) if len(returns) else None,
        "return_std": float(returns.std()) if len(returns) else None, "episodes": len(returns),
        "random_mean": float(np.mean(info["random_returns"])) if info.get("random_returns") else None,
        "floor": info.get("floor"), "meets_floor": info.get("meets_floor"), "floor_source": floor_source(info["env"]),
    }


def teacher_table(paths: list[str | Path]) -> pd.DataFrame:
    """One row per teacher.json, sorted by env and seed."""
    table = pd.DataFrame([teacher_row(path) for path in paths], columns=COLUMNS)
    return table.sort_values(["env", "seed"], ignore_index=True)


def _number(value, digits: int = 1) -> str:
    return "" if value is None or pd.isna(value) else f"{value:,.{digits}f}"


def _meets(value) -> str:
    return "" if value is None or pd.isna(value) else ("yes" if value else "no")


def rows_of(table: pd.DataFrame, env: str) -> list[dict]:
    """The env's teachers as display cells, then their mean over seeds."""
    rows = table[table["env"] == env]
    cells = [{"seed": str(row.seed), "algo": row.algo, "timesteps": _number(row.timesteps, 0),
              "minutes": _number(row.train_minutes), "validation": _number(row.validation_return),
              "held_out": f"{_number(row.return_mean)} ± {_number(row.return_std)}" if row.episodes else "",
              "episodes": str(row.episodes), "random": _number(row.random_mean), "floor": _number(row.floor, 0),
              "meets": _meets(row.meets_floor)} for row in rows.itertuples()]
    if len(rows) > 1:
        met = rows["meets_floor"].dropna()
        cells.append({"seed": "mean", "algo": "", "timesteps": "", "minutes": _number(rows["train_minutes"].mean()),
                      "validation": _number(rows["validation_return"].mean()),
                      "held_out": _number(rows["return_mean"].mean()), "episodes": "",
                      "random": _number(rows["random_mean"].mean()), "floor": _number(rows["floor"].iloc[0], 0),
                      "meets": f"{int(met.astype(bool).sum())} of {len(met)}" if len(met) else ""})
    return cells


HEADERS = [("seed", "seed"), ("algo", "algorithm"), ("timesteps", "training steps"),
           ("minutes", "training minutes"), ("validation", "validation (best checkpoint)"),
           ("held_out", "held-out return"), ("episodes", "episodes"), ("random", "random policy"),
           ("floor", "floor"), ("meets", "validation ≥ floor")]


def markdown(table: pd.DataFrame) -> str:
    """Every env's teachers as Markdown tables, each with its floor's source."""
    lines = ["## Teachers", "",
             "Held-out return: the mean (± std) over the profile's evaluation episodes, which every student plays; "
             "the floor is the published reference return less its spread, from the env spec.", ""]
    for env in sorted(table["env"].unique()):
        source = table.loc[table["env"] == env, "floor_source"].iloc[0]
        lines += [f"### {env}", "", f"Floor: {source}" if source else "No floor in the env spec.", "",
                  "| " + " | ".join(header for _, header in HEADERS) + " |",
                  "|" + "---|" * len(HEADERS)]
        lines += ["| " + " | ".join(row[key] for key, _ in HEADERS) + " |" for row in rows_of(table, env)]
        lines.append("")
    return "\n".join(lines)
