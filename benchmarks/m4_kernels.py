"""How close do the C export's kernels come to what a Cortex-M4 can do? Cycles per MAC by layer shape.

Each kernel's marginal cost: the emulated Cortex-M4 cycles (policypress/measure/cortex_m4.py) of
a one-layer policy with 2m outputs less those with m outputs, over the MACs the extra outputs add,
so the input's copy and quantization and the convolution's gathering cancel. The limits are what the
Cortex-M4 manual's timings allow for one MAC's instructions in a loop with no overhead:
- fp32: two operand loads in VLDM bursts (1 cycle per word) and VMUL + VADD (1 cycle each): 4;
- int8: per four MACs, three words loaded in a pipelined burst (3 cycles), two SXTB16 and two
  SMLAD (1 cycle each): 7 / 4 = 1.75 (SMLAD alone: 0.5).
Usage: python benchmarks/m4_kernels.py   (prints a Markdown table)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from policypress.compress.quantization import quantized
from policypress.core.policy import ActionHead, Policy, Preprocess
from policypress.measure.c_export import export_c
from policypress.measure.cortex_m4 import CortexM4
from policypress.measure.embedded import build_cortex_m4

LIMITS = {"f32": 4.0, "i8": 1.75}
# (name, input shape, layer with `outputs` outputs): the families' layer shapes
SHAPES = (
    ("Linear 256 -> m (Hopper's hidden layer)", (256,), lambda outputs: nn.Linear(256, outputs)),
    ("Linear 1024 -> m (MinAtar's hidden layer)", (1024,), lambda outputs: nn.Linear(1024, outputs)),
    ("Linear 64 -> m (a 64-unit MLP)", (64,), lambda outputs: nn.Linear(64, outputs)),
    ("Conv 3x3, 6 -> m channels on 10x10 (MinAtar's)", (6, 10, 10), lambda outputs: nn.Conv2d(6, outputs, 3)),
)


def layer_policy(shape: tuple[int, ...], layer: nn.Module) -> Policy:
    net = nn.Sequential(layer, nn.Flatten()) if isinstance(layer, nn.Conv2d) else nn.Sequential(layer)
    outputs = int(net(torch.zeros(1, *shape)).shape[1])
    return Policy(Preprocess(shape), net, ActionHead("argmax", outputs), "q_values")


def cycles_and_macs(policy: Policy, obs: np.ndarray, tmp: Path) -> tuple[int, int]:
    choices = export_c(policy, tmp / "p.c", storage="dense")
    m4 = CortexM4(build_cortex_m4(tmp / "p.c", tmp / "p.elf"))
    return m4.call("pp_act", obs, np.zeros(1, np.float32)).cycles, sum(c.macs for c in choices)


def main() -> None:
    torch.manual_seed(0)
    print("| layer | kernel | cycles per MAC (marginal) | limit | ratio to the limit |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape, make in SHAPES:
            obs = np.random.default_rng(0).normal(size=shape).astype(np.float32)
            for dtype in ("f32", "i8"):
                measured = []
                for outputs in (16, 32):
                    policy = layer_policy(shape, make(outputs))
                    if dtype == "i8":
                        policy = quantized(policy, obs[None])
                    measured.append(cycles_and_macs(policy, obs, Path(tmp)))
                (small_cycles, small_macs), (big_cycles, big_macs) = measured
                per_mac = (big_cycles - small_cycles) / (big_macs - small_macs)
                kernel = ("conv" if len(shape) == 3 else "dense") + f"_{dtype}"
                print(f"| {name} | {kernel} | {per_mac:.2f} | {LIMITS[dtype]} | {per_mac / LIMITS[dtype]:.2f} |")


if __name__ == "__main__":
    main()
