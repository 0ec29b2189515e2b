"""Does a run's C export act as its policy does, on the observations the policy meets?

For each run folder given (results/runs/ENV/SEED/METHOD/LEVEL), the run's own policy plays its env
for `--steps` steps (episodes seeded from 7,000,000: neither the evaluation seeds, from the spec's
`seed_offset`, nor the validation seeds, from 500,000), and every observation it meets goes through
the policy in torch and through its C export built for this host (`measure.embedded`'s build and
harness). It prints per run: the observations, how many C actions equal torch's, and the largest
difference of the network's outputs (Q-values or action means). With `--m4 K`, the first K of them
also run on the emulated Cortex-M4F (`measure.cortex_m4`), whose actions are compared the same way.
Usage: python benchmarks/c_actions.py RUN [RUN ...] [--steps 2000] [--m4 10]
"""

from __future__ import annotations

import policypress  # noqa: F401  (first: it pins numpy's and torch's code paths)

# isort: split
import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from policypress.core.envs import make_env
from policypress.core.io import read_json
from policypress.core.policy import Policy
from policypress.core.specs import load_env_spec
from policypress.measure.c_export import export_c
from policypress.measure.cortex_m4 import CortexM4
from policypress.measure.embedded import build_cortex_m4, build_host, run_binary

SEED_BASE = 7_000_000


def observations(policy: Policy, spec: dict, steps: int) -> np.ndarray:
    """The observations the policy meets playing `steps` steps, episode after episode."""
    env, seen, episode = make_env(spec), [], 0
    while len(seen) < steps:
        obs, _ = env.reset(seed=SEED_BASE + episode)
        done = False
        while not done and len(seen) < steps:
            seen.append(np.asarray(obs, dtype=np.float32))
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            done = terminated or truncated
        episode += 1
    env.close()
    return np.stack(seen)


def compare(run: Path, steps: int, m4: int) -> str:
    record = read_json(run / "run.json")
    status = read_json(run / "metrics.json")["status"]
    if status != "valid":  # no policy to export
        return f"| {record['env']} | {record['seed']} | {record['method']} | {record['level']:g} | {status} | | | | |"
    policy = Policy.load(run / "policy")
    obs = observations(policy, load_env_spec(record["env"]), steps)
    with torch.no_grad():
        outputs = policy(torch.as_tensor(obs)).reshape(len(obs), -1).numpy()
    actions = policy.act(obs).reshape(len(obs), -1)
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp) / "policy.c"
        kernels = " ".join(choice.kernel for choice in export_c(policy, c_file))
        c_outputs, c_actions = run_binary(build_host(c_file, Path(tmp) / "policy"), obs, policy.output_size,
                                          policy.action_size)
        m4_same = ""
        if m4:
            machine = CortexM4(build_cortex_m4(c_file, Path(tmp) / "policy.elf"))
            same = 0
            for x, action in zip(obs[:m4], actions[:m4], strict=True):
                call = machine.call("pp_act", x, np.zeros(policy.action_size, np.float32))
                same += bool(np.allclose(call.floats(call.buffers[1], policy.action_size), action,
                                         rtol=1e-5, atol=1e-6))
            m4_same = f"{same}/{m4}"
    equal = int(np.sum(np.all(np.isclose(c_actions, actions, rtol=1e-5, atol=1e-6), axis=1)))
    gap = float(np.max(np.abs(c_outputs - outputs)))
    return (f"| {record['env']} | {record['seed']} | {record['method']} | {record['level']:g} | {kernels} "
            f"| {len(obs)} | {equal} | {gap:.2e} | {m4_same} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--steps", type=int, default=2000, help="observations per run")
    parser.add_argument("--m4", type=int, default=0, help="how many of them also run on the emulated Cortex-M4F")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| env | seed | method | level | C kernels | observations | C actions equal to torch's "
          "| largest output difference | Cortex-M4 actions equal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        print(compare(run, args.steps, args.m4), flush=True)


if __name__ == "__main__":
    main()
