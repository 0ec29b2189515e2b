"""A profile's cost on N cores, from the Snakemake `benchmark:` files of a run that may not be finished.

Each compress job the config asks for counts with its measured seconds where it ran, and otherwise
with the mean of the runs of the same env, method and level that did (the same env and method where
none did); teachers count as measured. The total over N cores is a lower bound on the wall time:
Snakemake's own scheduling and an idle core at the end come on top.

Usage: python benchmarks/profile_cost.py CONFIG [--results results] [--cores 2]
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

from policypress.core.config import load_config


def job_seconds(path: Path) -> float:
    return float(path.read_text().splitlines()[1].split("\t")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    config, methods = load_config(args.config)
    runs = args.results / "benchmarks" / "runs"
    measured = {tuple(path.relative_to(runs).with_suffix("").parts): job_seconds(path)
                for path in runs.glob("*/*/*/*.tsv")}
    alike, same_method = collections.defaultdict(list), collections.defaultdict(list)
    for (env, _seed, method, level), seconds in measured.items():
        alike[env, method, level].append(seconds)
        same_method[env, method].append(seconds)
    by_method, jobs, ran, unmatched = collections.Counter(), 0, 0, 0
    for env in config["envs"]:
        for seed in config["seeds"]:
            for name, options in config["methods"].items():
                uses_level = methods[name].info.uses_level
                for level in (options or {}).get("levels", config["levels"]) if uses_level else [1.0]:
                    key = (env, str(seed), name, f"{level:g}")
                    jobs += 1
                    if key in measured:
                        by_method[name] += measured[key]
                        ran += 1
                        continue
                    twins = alike.get(key[:1] + key[2:]) or same_method.get((env, name))
                    unmatched += twins is None
                    by_method[name] += sum(twins) / len(twins) if twins else 0.0
    teachers = [job_seconds(path) for path in (args.results / "benchmarks" / "teachers").glob("*/*.tsv")]
    compress = sum(by_method.values())
    print(f"compress: {jobs} jobs, {ran} measured, {unmatched} with nothing alike measured (counted as 0 s)")
    print(f"  {compress:,.0f} job-seconds, {compress / args.cores / 60:.0f} min on {args.cores} cores")
    for track in ("during-training", "post-training"):
        names = [name for name in by_method if methods[name].info.track == track]
        print(f"  {track}: {sum(by_method[n] for n in names):,.0f} s (" + ", ".join(
            f"{n} {by_method[n]:,.0f}" for n in sorted(names, key=by_method.get, reverse=True)) + ")")
    print(f"teachers: {len(teachers)} measured, {sum(teachers):,.0f} job-seconds, "
          f"{sum(teachers) / args.cores / 60:.0f} min on {args.cores} cores")
    total = compress + sum(teachers)
    print(f"total: {total / args.cores / 3600:.2f} h on {args.cores} cores, Snakemake's own work not counted")


if __name__ == "__main__":
    main()
