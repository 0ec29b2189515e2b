"""When post-training int8 loses return: action gaps against the int8 error.

For each env of a results folder, seed 0: the teacher plays 2000 steps; on those states the
outputs (a DQN's Q-values; a PPO actor's logits or action means) of the teacher and of its `int8`
run are compared. Prints a Markdown table.
Usage: python benchmarks/int8_action_gaps.py RESULTS_DIR   (e.g. the quick profile's results/)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from policypress.core.envs import make_env
from policypress.core.policy import Policy
from policypress.core.specs import load_env_spec

STEPS = 2000


def teacher_states(teacher: Policy, env_name: str) -> np.ndarray:
    env = make_env(load_env_spec(env_name))
    obs, _ = env.reset(seed=5)
    states = []
    for _ in range(STEPS):
        states.append(obs)
        obs, _, terminated, truncated, _ = env.step(teacher.act(obs))
        if terminated or truncated:
            obs, _ = env.reset()
    return np.asarray(states, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    results = parser.parse_args().results
    print("| env | output range | median action gap | median int8 error (max over actions) | same action |")
    print("|---|---|---|---|---|")
    for run in sorted(results.glob("runs/*/0/int8/1/policy")):
        env = run.parts[-5]
        teacher = Policy.load(results / "teachers" / env / "0" / "policy")
        states = torch.as_tensor(teacher_states(teacher, env))
        with torch.no_grad():
            q_teacher, q_int8 = teacher(states), Policy.load(run)(states)
        top2 = q_teacher.topk(2).values
        gap = float((top2[:, 0] - top2[:, 1]).median())
        error = float((q_int8 - q_teacher).abs().max(dim=1).values.median())
        same = float((q_teacher.argmax(1) == q_int8.argmax(1)).float().mean())
        print(f"| {env} | {float(q_teacher.min()):.1f} to {float(q_teacher.max()):.1f} | {gap:.3f} | {error:.3f} | "
              f"{same:.0%} |")


if __name__ == "__main__":
    main()
