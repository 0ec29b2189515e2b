"""Where does the CSR kernel beat the dense one? Instructions (callgrind), Cortex-M4 cycles and flash per density.

A 64-input policy with one 256x256 hidden layer whose weights are masked at random to each
density; the C export is built once with dense and once with CSR storage for every layer.
Usage: python benchmarks/sparse_crossover.py [--int8]   (prints a Markdown table)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from policypress.compress.quantization import quantized
from policypress.core.policy import ActionHead, Policy, Preprocess
from policypress.measure.c_export import export_c
from policypress.measure.cortex_m4 import CortexM4
from policypress.measure.embedded import build_cortex_m4, build_host, cortex_m4_footprint, instruction_count

DENSITIES = (1.0, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.3, 0.2, 0.15, 0.1, 0.08, 0.05)


def masked_policy(density: float, seed: int = 0) -> Policy:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))
    masks = {f"{i}.weight": torch.rand_like(net[i].weight) < density for i in (0, 2, 4)}
    policy = Policy(Preprocess((64,)), net, ActionHead("argmax", 4), "q_values", masks)
    policy.apply_masks()
    return policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--int8", action="store_true", help="quantize the policy first (int8 kernels)")
    args = parser.parse_args()
    obs = np.random.default_rng(0).normal(size=(256, 64)).astype(np.float32)
    print("| density | dense instructions | CSR instructions | CSR / dense | dense M4 cycles | CSR M4 cycles "
          "| CSR / dense | dense flash | CSR flash | rule picks |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for density in DENSITIES:
            policy = masked_policy(density)
            if args.int8:
                policy = quantized(policy, obs)
            row = {}
            for storage in ("dense", "sparse", "auto"):
                c_file = Path(tmp) / f"{storage}.c"
                choices = export_c(policy, c_file, storage=storage)
                if storage == "auto":
                    row["pick"] = choices[1].kernel.split("_")[0]
                    continue
                binary = build_host(c_file, Path(tmp) / storage)
                elf = build_cortex_m4(c_file, Path(tmp) / f"{storage}.elf")
                cycles = CortexM4(elf).call("pp_act", obs[0], np.zeros(1, np.float32)).cycles
                row[storage] = (instruction_count(binary, obs[0]), cycles, cortex_m4_footprint(elf)["flash_bytes"])
            (di, dc, df), (si, sc, sf) = row["dense"], row["sparse"]
            print(f"| {density:.2f} | {di:,} | {si:,} | {si / di:.2f} | {dc:,} | {sc:,} | {sc / dc:.2f} | {df:,} "
                  f"| {sf:,} | {row['pick']} |")


if __name__ == "__main__":
    main()
