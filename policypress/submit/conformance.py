"""`policypress check-method NAME`: the conformance suite a method must pass before it is run.

On the smoke env (CartPole with the smoke profile's budget) and a tiny continuous env
(Pendulum with a small SAC teacher), both trained here in seconds, it checks:
1. the plugin loads and its INFO is valid;
2. it returns a valid policy (the policy format, the level's ceiling) within the budget and the
   time limit, through the same harness as the pipeline;
3. it is deterministic under a seed: a second run gives identical weights;
4. its declared support matches its behaviour: where it declares support it returns a valid
   policy, where it does not the harness records n/a.
Each check prints one line, PASS or FAIL with the reason; the exit status is 1 on any FAIL. The
review's findings in the plugin's source (policypress.submit.review: environments, optimizers,
files or the network used outside the task) print as WARN lines: a reviewer reads them.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from policypress.core.harness import compress_run, unsupported_reason
from policypress.core.policy import Policy
from policypress.core.registry import Method, load_method
from policypress.core.specs import SpecError, load_env_spec
from policypress.submit.review import review
from policypress.teachers import train_teacher

LEVEL = 0.25
TIME_LIMIT_S = 600


def pendulum_spec() -> dict:
    """A continuous-action env spec with a tiny SAC teacher (for checks and tests, not shipped)."""
    return {
        "name": "pendulum", "gym_id": "Pendulum-v1", "family": "classic_control",
        "teacher": {"algo": "sac", "policy": "MlpPolicy", "timesteps": {"smoke": 300, "quick": 1, "full": 1},
                    "hyperparameters": {"learning_starts": 100, "buffer_size": 1000,
                                        "policy_kwargs": {"net_arch": [16, 16]}}},
        "evaluation": {"episodes": {"smoke": 2, "quick": 1, "full": 1}, "seed_offset": 1_000_000},
        "budget": {p: {"env_steps": 300, "teacher_queries": 300, "gradient_updates": 30}
                   for p in ("smoke", "quick", "full")},
    }


def _smoke_spec() -> dict:
    spec = copy.deepcopy(load_env_spec("cartpole"))
    spec["teacher"]["checkpoints"] = {"count": 0, "episodes": 1}  # no selection: the check needs speed
    return spec


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return Policy.load(path).state_dict()


def check_method(name: str, method_dirs: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """Yield (PASS, FAIL or WARN, line) per check, as each finishes."""
    try:
        method = load_method(name, method_dirs)
    except SpecError as err:
        yield "FAIL", f"loads: {err}"
        return
    yield "PASS", f"loads: {method.source}; INFO is valid"
    if method.source_file.is_file():
        for finding in review(method.source_file):
            yield "WARN", f"review: {finding}"
    hyperparameters = method.resolve_hyperparameters({}, "check-method")
    level = LEVEL if method.info.uses_level else 1.0
    with tempfile.TemporaryDirectory(prefix="policypress-check-") as tmp:
        tmp = Path(tmp)
        envs = {"discrete (CartPole, DQN)": _smoke_spec(), "continuous (Pendulum, SAC)": pendulum_spec()}
        for label, spec in envs.items():
            teacher_dir = tmp / spec["name"] / "teacher"
            train_teacher(spec, "smoke", 0, teacher_dir, device="cpu")
            teacher = Policy.load(teacher_dir / "policy")
            declared = unsupported_reason(method, teacher, spec["teacher"]["algo"])
            run = _run(method, spec, teacher_dir, level, hyperparameters, tmp / spec["name"] / "a")
            if declared is not None:
                yield _verdict(run["status"] == "n/a"), f"declared support, {label}: not supported ({declared}); " \
                                              f"the harness records {run['status']}"
                continue
            used = ", ".join(f"{k} {run['budget']['used'][k]:,}/{v:,}" for k, v in run["budget"]["limit"].items())
            if run["status"] != "valid":
                yield "FAIL", f"valid policy within budget, {label}: {run['status']}: {run['reason']}"
                continue
            yield "PASS", f"valid policy within budget, {label}, level {level:g} ({run['seconds']:.1f} s): {used}"
            again = _run(method, spec, teacher_dir, level, hyperparameters, tmp / spec["name"] / "b")
            first, second = _weights(tmp / spec["name"] / "a" / "policy"), None
            if again["status"] == "valid":
                second = _weights(tmp / spec["name"] / "b" / "policy")
            same = second is not None and first.keys() == second.keys() and all(
                torch.equal(first[key], second[key]) for key in first)
            yield _verdict(same), f"deterministic under a seed, {label}: " + (
                "a second run gave identical weights" if same else "a second run gave different weights")


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _run(method: Method, spec: dict, teacher_dir: Path, level: float, hyperparameters: dict, out: Path) -> dict:
    return compress_run(method, spec, "smoke", teacher_dir, level, 0, hyperparameters, out, TIME_LIMIT_S)


def report(name: str, method_dirs: list[str] | None = None, echo=print) -> bool:
    """Run the checks, print one line each, and return whether all passed."""
    passed = True
    for verdict, line in check_method(name, method_dirs):
        passed &= verdict != "FAIL"
        echo(f"{verdict}  {line}")
    echo(f"{name}: {'conforms' if passed else 'does not conform'}")
    return passed
