"""The Cortex-M4 cost of each run of a finished DAG (config/embedded.yaml): cycles, µs and cycles per MAC.

Reads `<results>/table.csv` and prints a Markdown table: per env, level and method, the student's
retention, its emulated Cortex-M4F cycles, µs at the metrics' clock, cycles per MAC the kernels
execute, and that over the limit of its kernels' inner loop (benchmarks/m4_kernels.py: 4 for fp32,
1.75 for int8; the whole inference, so the input's copy or quantization, the activations and the
action head count too). The `dense` rows are the teachers.
Usage: python benchmarks/m4_students.py results
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

LIMITS = {"f32": 4.0, "i8": 1.75}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    table = pd.read_csv(args.results / "table.csv", keep_default_na=False, na_values=[""])
    print("| env | level | method | status | retention | M4 cycles | µs at 80 MHz | cycles / MAC | / limit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for _, row in table.sort_values(["env", "level", "method"], ascending=[True, False, True]).iterrows():
        if row["status"] != "valid":
            print(f"| {row['env']} | {row['level']:g} | {row['method']} | {row['status']} | | | | | |")
            continue
        kernels = str(row["c_kernels"]).split()
        limit = LIMITS["i8"] if any(k.endswith("_i8") for k in kernels) else LIMITS["f32"]
        retention = "" if pd.isna(row["retention"]) else f"{row['retention']:.3f}"
        print(f"| {row['env']} | {row['level']:g} | {row['method']} | valid | {retention} | {int(row['m4_cycles']):,} "
              f"| {row['m4_us']:.1f} | {row['m4_cycles_per_mac']:.2f} | {row['m4_cycles_per_mac'] / limit:.2f} |")


if __name__ == "__main__":
    main()
