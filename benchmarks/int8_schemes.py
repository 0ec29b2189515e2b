"""What the int8 ONNX scheme costs: 8-bit weights as uint8 (U8U8, the exporter's) against the
alternatives, on every `int8` and `distill_int8` run of a results folder.

- return: the run's policy (8-bit weights) and the same policy with 7-bit weights (|code| <= 63,
  the other remedy for U8S8 saturation), on the env's evaluation episodes of the profile. For
  `int8` the 7-bit weights are quantized from the teacher with the run's calibration; for
  `distill_int8` from the run's 8-bit weights (the float student is not stored).
- latency: ONNX Runtime on this CPU, the exported U8U8 graph against the same layers in the
  U8S8 form (int8 weights), alternating in one process (`compare_latency`); the ratio is
  U8S8 / U8U8 latency. U8S8 is exact here only if this CPU has VNNI (`cpu_features`).
Usage: python -m benchmarks.int8_schemes RESULTS_DIR [--profile quick]   (from the repository root,
which makes the tests' U8S8 form importable)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from policypress.core.io import read_json
from policypress.core.params import effective_parameters
from policypress.core.policy import Policy
from policypress.core.specs import load_env_spec
from policypress.measure.evaluate import eval_seeds, policy_returns
from policypress.measure.latency import compare_latency, machine_info
from policypress.measure.onnx_export import policy_model
from tests.test_export import with_int8_weights

REDUCED_WEIGHT_MAX = 63  # 255 x 63 x 2 = 32,130 <= 32,767: no pair of products saturates int16


@torch.no_grad()
def with_weight_max(policy: Policy, source: Policy, weight_max: int) -> Policy:
    """`policy` with its int8 layers' weights requantized from `source`'s to |code| <= weight_max."""
    student, weights = policy.clone(), effective_parameters(source)  # masked weights are zeros
    for key, quant in student.quant.items():
        weight = weights[f"{key}.weight"]
        largest = weight.abs().flatten(1).amax(dim=1)
        quant.weight_scale.copy_(torch.where(largest > 0, largest / weight_max, torch.ones_like(largest)))
        student.net[int(key)].weight.copy_(quant.dequantized_weight(weight))
    return student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args()
    print(f"CPU: {machine_info()['cpu']}, features {' '.join(machine_info()['cpu_features'])}\n")
    print("| env | seed | method | level | return 8-bit (run) | return 8-bit | return 7-bit | U8S8 / U8U8 latency |")
    print("|---|---|---|---|---|---|---|---|")
    for method in ("int8", "distill_int8"):
        for run in sorted(args.results.glob(f"runs/*/*/{method}/*/policy")):
            env, seed, _, level = run.parts[-5:-1]
            spec, policy = load_env_spec(env), Policy.load(run)
            source = Policy.load(args.results / "teachers" / env / seed / "policy") if method == "int8" else policy
            seeds = eval_seeds(spec, args.profile)
            eight, seven = (np.mean(policy_returns(p, spec, seeds))
                            for p in (policy, with_weight_max(policy, source, REDUCED_WEIGHT_MAX)))
            recorded = read_json(run.parent / "metrics.json")["mean_return"]
            with tempfile.TemporaryDirectory() as tmp:
                u8u8, u8s8 = Path(tmp) / "u8u8.onnx", Path(tmp) / "u8s8.onnx"
                u8u8.write_bytes(policy_model(policy).SerializeToString())
                u8s8.write_bytes(with_int8_weights(policy_model(policy)).SerializeToString())
                obs = np.zeros(policy.obs_shape, np.float32)
                latency = compare_latency(u8s8, u8u8, obs, warmup=200, windows=20, window_ms=20.0)
            print(f"| {env} | {seed} | {method} | {level} | {recorded:.1f} | {eight:.1f} | {seven:.1f} | "
                  f"{latency['latency_us_median'] / latency['teacher_latency_us_median']:.2f} |")


if __name__ == "__main__":
    main()
