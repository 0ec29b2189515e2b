"""Run one method on one teacher under the env's budget, and check what it returns.

Whatever the method does (finishes, goes over budget, crashes, returns a malformed policy or
one over its ceiling, hangs past its time limit, or kills its own process), the job itself
succeeds and writes `run.json` with the status `valid`, `invalid` or `n/a` and a one-line
reason, so the rest of the DAG goes on and the leaderboard shows the outcome. Only a valid run
has a `policy/`. The method runs in a forked child process: the parent enforces the time
limit by killing it, and notices a child that died (a segfault, `os._exit`, the OOM killer).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from policypress.core.budget import (
    Budget,
    BudgetExceeded,
    CountedEnv,
    Meter,
    NoOracle,
    TeacherOracle,
    UncountedUse,
    optimizer_factory,
)
from policypress.core.envs import Validator, make_env
from policypress.core.guard import enforced, permitted, seal
from policypress.core.io import read_json, write_json
from policypress.core.params import params
from policypress.core.policy import Policy, PolicyFormatError
from policypress.core.registry import Method, MethodInfo
from policypress.core.specs import ROOT, SpecError, validate
from policypress.core.task import Task

log = logging.getLogger("policypress.harness")


class InvalidPolicy(ValueError):
    """The returned policy breaks the contract (format, shapes, finiteness, ceiling)."""


def ceiling(teacher: Policy, level: float) -> int:
    """The largest number of nonzero parameters allowed at `level`."""
    return math.floor(level * params(teacher)[1] + 1e-9)


def unsupported_reason(method: Method, teacher: Policy, teacher_algo: str) -> str | None:
    info = method.info
    action_space = "discrete" if teacher.is_discrete else "continuous"
    if action_space not in info.action_spaces:
        return f"{info.name} does not support {action_space} actions"
    if teacher_algo not in info.teacher_algos:
        return f"{info.name} does not support {teacher_algo} teachers" + (
            f": {info.teacher_algos_reason}" if info.teacher_algos_reason else "")
    layer_types = {type(layer).__name__ for layer in teacher.net}
    missing = sorted(layer_types - set(info.layer_types))
    if missing:
        return f"{info.name} does not support {', '.join(missing)} layers"
    return None


def not_trainable_here(info: MethodInfo, teacher: Policy, teacher_algo: str | None, spec_algo: str) -> str | None:
    """A during-training method trains the env spec's algorithm with SB3 on channels-first frames, which
    an imported teacher may not share: a QR-DQN agent under a DQN spec, or a zoo Atari agent whose env
    gives channels-last frames. Its runs are n/a there, not crashes."""
    if info.track != "during-training":
        return None
    if teacher_algo not in (None, spec_algo):
        return f"{info.name} trains the env spec's {spec_algo}, and this teacher is an imported {teacher_algo} agent"
    if teacher.preprocess.channels_last:
        return (f"{info.name} trains with SB3 on channels-first frames, and this teacher's env gives channels-last "
                "frames (an imported zoo Atari agent)")
    return None


def check_policy(policy: object, teacher: Policy, max_params: int) -> None:
    """Raise InvalidPolicy with a one-line reason unless `policy` honours the contract."""
    if not isinstance(policy, Policy):
        raise InvalidPolicy(f"malformed policy: compress returned {type(policy).__name__}, not a Policy")
    try:
        policy.spec()
    except PolicyFormatError as err:
        raise InvalidPolicy(f"malformed policy: {err}") from err
    if policy.obs_shape != teacher.obs_shape:
        raise InvalidPolicy(f"malformed policy: input shape {policy.obs_shape} != teacher's {teacher.obs_shape}")
    if policy.head.spec() != teacher.head.spec() or any(
        not torch.equal(a, b) for a, b in zip(policy.head.buffers(), teacher.head.buffers(), strict=True)
    ):
        raise InvalidPolicy("malformed policy: its action head differs from the teacher's")
    for name, tensor in policy.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InvalidPolicy(f"malformed policy: {name} has NaN or infinite values")
    probe = torch.zeros((2, *teacher.obs_shape))
    try:
        with torch.no_grad():
            out = policy(probe)
    except RuntimeError as err:
        raise InvalidPolicy(f"malformed policy: forward pass fails: {str(err).splitlines()[0]}") from err
    expected = (2, teacher.head.action_dim)
    if tuple(out.shape) != expected:
        raise InvalidPolicy(f"malformed policy: output shape {tuple(out.shape)[1:]} != {expected[1:]}")
    if not torch.isfinite(out).all():
        raise InvalidPolicy("malformed policy: outputs NaN or infinite values")
    nonzero = params(policy)[1]
    if nonzero > max_params:
        raise InvalidPolicy(f"over its level's parameter ceiling: {nonzero} nonzero > {max_params}")


def run_budget(info: MethodInfo, compression: Budget, teacher_cost: dict | None, networks: int = 1) -> Budget:
    """What a run may spend. A post-training method starts from the trained teacher and gets the env's
    compression budget. A during-training method trains from random weights without the teacher, so
    it gets what the teacher's training spent plus the compression budget: the same interaction with
    the environment in total. A method that trains several networks on each batch (EauDeQN's K, its
    hyperparameter `networks`) gets that many times the updates, so that each network sees the
    teacher's update-to-data ratio, as its paper compares it; the totals show the extra compute."""
    if info.track == "post-training":
        return compression
    if teacher_cost is None:
        raise ValueError("training_cost is missing (the teacher predates it): retrain the teacher")
    return Budget(env_steps=teacher_cost["env_steps"] + compression.env_steps, teacher_queries=0,
                  gradient_updates=networks * (teacher_cost["gradient_updates"] + compression.gradient_updates))


def interaction(info: MethodInfo, used: dict, teacher_cost: dict | None) -> dict | None:
    """The run's whole interaction with the env: its own use, plus the teacher's training where it started
    from the teacher (None where that cost is unknown)."""
    if info.track == "during-training":
        return dict(used)
    if teacher_cost is None:
        return None
    return {key: used[key] + teacher_cost.get(key, 0) for key in used}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_task(teacher: Policy, env_spec: dict, meter: Meter, level: float, seed: int,
               hyperparameters: dict, scratch: Path, method_name: str = "method", device: str = "cpu",
               track: str = "post-training", teacher_cost: dict | None = None) -> Task:
    """The task of one compression job; every resource it hands out charges `meter`. A during-training
    run gets no teacher (no weights, an oracle that refuses) and the teacher's free validation. The
    teacher's copy is sealed: its weights can be read, its network runs only through the oracle."""
    during = track == "during-training"
    held_out_from = env_spec["evaluation"]["seed_offset"]
    selection = env_spec["teacher"].get("checkpoints", {"count": 0, "episodes": 1})
    return Task(
        teacher=None if during else seal(teacher.clone(), meter),
        make_env=permitted(lambda: CountedEnv(make_env(env_spec), meter, held_out_from)),
        oracle=NoOracle(meter) if during else TeacherOracle(teacher, meter, device),
        make_optimizer=optimizer_factory(meter),
        level=level, max_params=ceiling(teacher, level), hyperparameters=dict(hyperparameters), seed=seed,
        rng=np.random.default_rng(seed), budget=meter.budget,
        log=logging.getLogger(f"policypress.method.{method_name}"), scratch=scratch,
        teacher_training=copy.deepcopy(env_spec["teacher"]), _meter=meter, device_request=device,
        validate=Validator(env_spec, selection["episodes"], selection["count"]) if during else None,
        teacher_cost=teacher_cost if during else None,
    )


def compress_run(
    method: Method,
    env_spec: dict,
    profile: str,
    teacher_dir: str | Path,
    level: float,
    seed: int,
    hyperparameters: dict,
    out_dir: str | Path,
    time_limit: float | None = None,
    isolated: bool = True,
    device: str = "cpu",
) -> dict:
    """Run `method` and write `out_dir/run.json` (+ `out_dir/policy/` when valid); `time_limit` is
    in seconds (None: none). `isolated=False` runs the method in this process, without a time
    limit, to debug a plugin or observe its internals. `device` is the task's (`cpu`, `cuda`, `auto`)."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir / "policy", ignore_errors=True)  # a previous attempt's policy must not outlive it
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    teacher = Policy.load(Path(teacher_dir) / "policy")
    teacher_info = Path(teacher_dir) / "teacher.json"
    record = read_json(teacher_info) if teacher_info.is_file() else {}
    teacher_cost = record.get("training_cost")
    reason = (unsupported_reason(method, teacher, env_spec["teacher"]["algo"])
              or not_trainable_here(method.info, teacher, record.get("algo"), env_spec["teacher"]["algo"]))
    budget = Budget.from_spec(env_spec, profile)
    if reason is None:  # an n/a run spends nothing, whatever its track
        try:
            budget = run_budget(method.info, budget, teacher_cost, int(hyperparameters.get("networks", 1)))
        except ValueError as err:
            raise SpecError(f"{teacher_info}: {err}") from err
    meter = Meter(budget)
    observed: dict = {}  # what the guard saw the method do (policypress.core.guard)
    run = {
        "env": env_spec["name"], "seed": seed, "method": method.info.name, "level": level,
        "profile": profile, "device": device, "method_source": method.source, "method_sha256": method.fingerprint(),
        "track": method.info.track, "level_free": not method.info.uses_level, "hyperparameters": hyperparameters,
        "max_params": ceiling(teacher, level), "teacher_params_nonzero": params(teacher)[1],
        "budget": {"limit": vars(meter.budget), "used": meter.used, "observed": observed},
    }
    started = time.time()
    status = "n/a"
    if reason is None:
        seed_everything(seed)
        with tempfile.TemporaryDirectory(prefix=".scratch.", dir=out_dir) as scratch:
            task = build_task(teacher, env_spec, meter, level, seed, hyperparameters, Path(scratch),
                              method.info.name, device, method.info.track, teacher_cost)
            if isolated:
                status, reason = _isolated(method, task, teacher, meter, out_dir / "policy", time_limit, observed)
            else:
                status, reason = _call(method, task, teacher, meter, out_dir / "policy", observed)
    run.update(status=status, reason=reason, seconds=round(time.time() - started, 2),
               interaction=interaction(method.info, meter.used, teacher_cost))
    if status != "valid":
        print(f"policypress: {env_spec['name']}/{seed}/{method.info.name}/{level}: {status}: {reason}",
              file=sys.stderr)
    validate(run, "run", out_dir / "run.json")
    write_json(out_dir / "run.json", run)  # written last: its presence marks a finished run
    return run


def _isolated(method: Method, task: Task, teacher: Policy, meter: Meter, destination: Path,
              time_limit: float | None, observed: dict) -> tuple[str, str | None]:
    """`_call` in a forked child; the parent keeps the outcome and the budget use it reports."""
    outcome = task.scratch / "outcome.json"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()  # safe: this process never initializes CUDA (the child resolves the task's device)
    if pid == 0:  # the child: whatever happens, it leaves through os._exit, never back into the caller
        code = 1
        try:
            status, reason = _call(method, task, teacher, meter, destination, observed)
            write_json(outcome, {"status": status, "reason": reason, "used": meter.used, "observed": observed})
            code = 0
        finally:
            os._exit(code)
    deadline = math.inf if time_limit is None else time.monotonic() + time_limit
    while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            shutil.rmtree(destination, ignore_errors=True)
            return "invalid", f"time limit exceeded: {method.info.name} ran longer than {time_limit:g} s"
        time.sleep(0.05)
    if not outcome.is_file():
        shutil.rmtree(destination, ignore_errors=True)
        status = waited[1]
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
        return "invalid", f"{method.info.name}'s process died ({how}) before it returned"
    result = read_json(outcome)
    meter.used.update(result["used"])
    observed.update(result["observed"])
    return result["status"], result["reason"]


def _call(method: Method, task: Task, teacher: Policy, meter: Meter, destination: Path,
          observed: dict) -> tuple[str, str | None]:
    """Run the method under the guard's rules; keep its policy at `destination` only if it honours the
    contract. What the guard observed goes into `observed` (the run's record)."""
    try:
        with enforced(meter) as seen:
            try:
                policy = method.compress(task)
            finally:
                observed.update(seen.as_dict())
        if meter.exceeded:  # the method caught BudgetExceeded and carried on
            raise BudgetExceeded(meter.exceeded)
        if meter.uncounted:  # likewise UncountedUse
            raise UncountedUse(meter.uncounted)
        if (overuse := seen.overuse(meter.used)) is not None:
            raise UncountedUse(f"uncounted use: {overuse}")
        if isinstance(policy, Policy):
            policy.unsealed()  # `dense` returns the task's teacher itself
            policy.cpu()  # what is checked, saved and measured is a CPU policy, wherever it trained
            policy.apply_masks()  # masked weights are stored as zeros
        check_policy(policy, teacher, task.max_params)
        policy.metadata.update({"method": method.info.name, "level": task.level, "seed": task.seed})
        staged = task.scratch / "policy"
        try:
            policy.save(staged)
            saved = Policy.load(staged)
        except (TypeError, ValueError, RuntimeError, OSError) as err:
            raise InvalidPolicy(f"malformed policy: cannot be saved and reloaded: {_first_line(err)}") from err
        check_policy(saved, teacher, task.max_params)  # what is measured is exactly what was saved
        staged.replace(destination)
    except (BudgetExceeded, UncountedUse, InvalidPolicy) as err:
        return "invalid", str(err)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # a crashing plugin (even sys.exit) must not take the job down with it
        log.error("%s crashed:\n%s", method.info.name, traceback.format_exc())
        return "invalid", f"{method.info.name} crashed at {_plugin_frame(err, method)}: " \
                          f"{type(err).__name__}: {_first_line(err)}"
    return "valid", None


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [""])[0]


def _plugin_frame(err: BaseException, method: Method) -> str:
    """`file:line` of the innermost frame in the plugin's own file (else the plugin's source)."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == method.source]
    if not frames:
        return method.source
    path = Path(frames[-1].filename)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{shown}:{frames[-1].lineno}"
