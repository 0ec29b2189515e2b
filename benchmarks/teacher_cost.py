"""Teacher training cost per env: time a short run, extrapolate to the profile's step count.

Trains the env's SB3 teacher (its spec's algorithm, policy and hyperparameters, on the device
SB3 picks) for `--steps` steps with learning starting at once for the off-policy algorithms, so every
step after the first few pays its gradient updates, and prints seconds per step and the hours for the full profile.
Usage: python benchmarks/teacher_cost.py ENV [--steps N] [--profile full]
"""

from __future__ import annotations

import argparse
import time

import torch
from stable_baselines3.common.env_util import make_vec_env

from policypress.core.envs import make_env
from policypress.core.sb3 import ALGORITHMS, sb3_kwargs
from policypress.core.specs import load_env_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--profile", default="full")
    args = parser.parse_args()
    spec = load_env_spec(args.env)
    teacher = spec["teacher"]
    hyperparameters = dict(teacher["hyperparameters"])
    if teacher["algo"] in ("dqn", "sac", "td3"):
        hyperparameters["learning_starts"] = 100
    torch.set_num_threads(1)
    venv = make_vec_env(lambda: make_env(spec, teacher_training=True), n_envs=teacher.get("n_envs", 1), seed=0)
    model = ALGORITHMS[teacher["algo"]](teacher["policy"], venv, seed=0, verbose=0, **sb3_kwargs(hyperparameters))
    started = time.perf_counter()
    model.learn(total_timesteps=args.steps)
    per_step = (time.perf_counter() - started) / args.steps
    total = teacher["timesteps"][args.profile]
    print(f"{args.env}: {teacher['algo']} {teacher['policy']} on {model.device}, {args.steps} steps: "
          f"{per_step * 1000:.2f} ms/step; {args.profile} profile {total:.0e} steps = {per_step * total / 3600:.1f} h")


if __name__ == "__main__":
    main()
