"""The leaderboard's figures: score against each cost per env, and performance profiles per level."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only: no display on a cluster node
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

LOG_AXES = ("params_nonzero", "instructions", "flash_bytes", "m4_us")
# (x column, axis label, file name part)
COST_PLOTS = (("params_nonzero", "nonzero parameters", "params"),
              ("latency_fraction", "latency (fraction of the teacher's, same job)", "latency"),
              ("instructions", "instructions per inference (C export, callgrind)", "instructions"),
              ("flash_bytes", "flash bytes (Cortex-M4 build)", "flash"),
              ("m4_us", "µs per inference on a Cortex-M4F at 80 MHz (emulated, manual's timings)", "m4"))


MARKERS = ("o", "X", "s", "P", "D", "^", "v", "<", ">", "p", "*", "h", "d", "8")


def palette(methods: list[str]) -> dict:
    """A colour per method, the same in every panel: colorblind's 10, then its darker twin's (husl's
    neighbours were indistinguishable past 10)."""
    colours = sns.color_palette("colorblind") + sns.color_palette("dark")
    if len(methods) > len(colours):
        colours = sns.color_palette("husl", len(methods))
    return dict(zip(methods, colours[:len(methods)], strict=True))


def markers(methods: list[str]) -> dict:
    return {method: MARKERS[i % len(MARKERS)] for i, method in enumerate(methods)}


def _save(fig: plt.Figure, out: Path) -> Path:
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


TRACKS = ("post-training", "during-training")
REFERENCE = "dense"  # the teacher itself: drawn in every panel, as the line to compare with


def _tracks(valid: pd.DataFrame) -> list[str]:
    """The panels: one per track present (a dozen methods on one axes are unreadable)."""
    present = set(valid["track"]) if "track" in valid else set()
    return [track for track in TRACKS if track in present] or ["all"]


def _in_track(valid: pd.DataFrame, track: str) -> pd.DataFrame:
    return valid if track == "all" else valid[(valid["track"] == track) | (valid["method"] == REFERENCE)]


def score_vs_cost(summary: pd.DataFrame, env: str, x: str, xlabel: str, out: Path) -> Path:
    """Score against a cost, one line per method across levels, with the 95% CIs as error bars; one
    panel per track, each with the teacher (`dense`) as reference, sharing the axes and the colours.

    A level-free method's runs are drawn once, at their own size: the copies counted at lower
    levels (`placed`) are the same runs."""
    valid = summary[(summary["env"] == env) & (summary["status"] == "valid")].copy()
    if "placed" in valid:
        valid = valid[~valid["placed"].astype(bool)]
    # Absolute µs differ between jobs by more than between policies; the ratio is measured in one job.
    valid["latency_fraction"] = 1.0 / valid["latency_speedup"]
    valid = valid.sort_values(x)
    y = "retention" if "retention" in valid and valid["retention"].notna().all() else "normalized_score"
    tracks = _tracks(valid)
    fig, axes = plt.subplots(1, len(tracks), figsize=(5.6 * len(tracks), 5.0), sharex=True, sharey=True,
                             squeeze=False)
    methods = sorted(valid["method"].unique())
    colours, symbols = palette(methods), markers(methods)
    for ax, track in zip(axes[0], tracks, strict=True):
        rows = _in_track(valid, track)
        shown = rows["method"].unique()
        sns.lineplot(data=rows, x=x, y=y, hue="method", style="method", dashes=False, estimator=None, sort=True,
                     palette={m: colours[m] for m in shown}, markers={m: symbols[m] for m in shown}, ax=ax)
        for method, group in rows.groupby("method"):
            values = group[y].to_numpy(dtype=float)
            errors = np.vstack([values - group[f"{y}_ci_low"].to_numpy(dtype=float),
                                group[f"{y}_ci_high"].to_numpy(dtype=float) - values])
            ax.errorbar(group[x].to_numpy(dtype=float), values, yerr=errors, fmt="none", ecolor=colours[method],
                        alpha=0.6, capsize=3)
        if x in LOG_AXES:  # levels are spaced geometrically
            ax.set_xscale("log")
            decades = np.log10(valid[x].max() / valid[x].min()) if (valid[x] > 0).all() else 0
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0) if decades < 3 else (1.0,)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if x == "params_nonzero":
            _mark_levels(ax, sorted(summary.loc[summary["env"] == env, "level"].unique()), valid)
        ax.set_xlabel(xlabel if len(xlabel) < 50 else xlabel.split(" (")[0])
        ax.set_ylabel(f"{y.replace('_', ' ')} (IQM over seeds, 95% CI)")
        ax.set_title(track if track != "all" else "", fontsize="medium")
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        # Below the axes: never over the data, and no search for the emptiest corner (`loc="best"` took
        # a third of the render's time).
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    fig.suptitle(f"{env}: {y.replace('_', ' ')} vs {xlabel.split(' (')[0]}")
    return _save(fig, out)


def _mark_levels(ax: plt.Axes, levels: list[float], valid: pd.DataFrame) -> None:
    """Each level's ceiling (level × the teacher's nonzero parameters) as a dotted line, named on a
    top axis: the levels span decades, and a point left of a line fits that level."""
    teacher = (valid["params_nonzero"] / valid["params_fraction"]).median()
    if pd.isna(teacher):
        return
    ceilings = [level * teacher for level in levels]
    for ceiling in ceilings:
        ax.axvline(ceiling, color="grey", linewidth=0.6, linestyle=":")
    ax.set_xlim(min(ax.get_xlim()[0], 0.8 * min(ceilings)), max(ax.get_xlim()[1], 1.25 * max(ceilings)))
    top = ax.secondary_xaxis("top")
    top.set_xticks(ceilings, [f"{level:g}" for level in levels])
    top.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    top.set_xlabel("level (ceiling: level × the teacher's nonzero parameters)")


def performance_profile(profiles: dict[str, np.ndarray], cis: dict[str, np.ndarray], taus: np.ndarray,
                        level: float, out: Path, tracks: dict[str, str] | None = None) -> Path:
    """Fraction of (env, seed) runs with a normalized score above τ, per method, with 95% CI bands;
    one panel per track (`tracks`: each method's), the teacher (`dense`) in each."""
    frame = pd.DataFrame({"method": sorted(profiles)})
    frame["track"] = frame["method"].map(tracks or {}).fillna("all") if tracks else "all"
    panels = _tracks(frame) if tracks else ["all"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.6), sharey=True, squeeze=False)
    colours = palette(sorted(profiles))
    for ax, track in zip(axes[0], panels, strict=True):
        for method in _in_track(frame, track)["method"]:
            ax.plot(taus, profiles[method], label=method, color=colours[method])
            ax.fill_between(taus, cis[method][0], cis[method][1], color=colours[method], alpha=0.15)
        ax.set_xlabel("normalized score τ")
        ax.set_ylabel("fraction of runs with normalized score > τ")
        ax.set_title(track if track != "all" else "", fontsize="medium")
        ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.legend(fontsize="small", loc="lower left")
    fig.suptitle(f"performance profiles at level {level:g} (all envs and seeds)")
    return _save(fig, out)
