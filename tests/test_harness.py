"""The harness enforces budgets and the policy contract; misbehaving plugins become invalid runs."""

import json
import time

import pytest

from policypress.core.harness import ceiling, compress_run
from policypress.core.params import params
from policypress.core.policy import Policy
from policypress.core.registry import load_method
from tests.conftest import PLUGINS, pendulum_spec


def run(method_name, spec, teacher_dir, out, level=0.25, time_limit=None, isolated=True):
    method = load_method(method_name, ["methods", PLUGINS])
    hyperparameters = method.resolve_hyperparameters({}, "test")
    level = level if method.info.uses_level else 1.0  # as the DAG runs it
    result = compress_run(method, spec, "smoke", teacher_dir, level, 0, hyperparameters, out, time_limit,
                          isolated)
    assert json.loads((out / "run.json").read_text()) == result  # the record on disk is the result
    return result


@pytest.mark.parametrize(
    "plugin, reason",
    [
        ("greedy", "budget exceeded: env_steps would reach 401 > limit 400"),
        ("oracle_hog", "budget exceeded: teacher_queries would reach 401 > limit 400"),
        ("overtrainer", "budget exceeded: gradient_updates would reach 51 > limit 50"),
        ("too_big", "over its level's parameter ceiling"),
        ("nan_weights", "malformed policy: net.1.weight has NaN or infinite values"),
        ("wrong_shape", "malformed policy: its action head differs from the teacher's"),
        ("wrong_input", "malformed policy: input shape (5,) != teacher's (4,)"),
        ("not_a_policy", "malformed policy: compress returned Sequential, not a Policy"),
        ("crashing", "crashing crashed at tests/plugins/crashing.py:9: RuntimeError: boom: the plugin failed"),
        ("swallows_budget", "budget exceeded: teacher_queries would reach 401 > limit 400"),
        ("exits", "exits crashed at tests/plugins/exits.py:11: SystemExit: 3"),
        ("unsavable", "malformed policy: cannot be saved and reloaded: Object of type object is not JSON serializable"),
        ("peeks_at_eval", "ValueError: seed 1000000 is held out for evaluation"),
        ("refunds", "ValueError: cannot charge a negative amount of env_steps"),
        # the routes around the counters (policypress.core.guard):
        ("free_teacher", "uncounted use: ran task.teacher's network: it is for reading weights; run the teacher "
                         "through task.oracle(observations)"),
        ("own_env", "uncounted use: created an environment (CartPoleEnv) outside task.make_env()"),
        ("unwrapped_env", "uncounted use: stepped a task env around its counter (through .unwrapped or .env)"),
        ("own_optimizer", "budget exceeded: gradient_updates would reach 51 > limit 50 (a step of an optimizer "
                          "not made by task.make_optimizer)"),
        ("hand_updates", "uncounted use: 150 gradient passes, but 0 counted gradient updates explain at most 100 "
                         "(parameters updated without a counted optimizer step)"),
    ],
)
def test_misbehaving_plugin_is_recorded_invalid(plugin, reason, cartpole_spec, cartpole_teacher, tmp_path):
    result = run(plugin, cartpole_spec, cartpole_teacher, tmp_path / plugin)
    assert result["status"] == "invalid"
    assert reason in result["reason"]
    assert "\n" not in result["reason"]
    assert not (tmp_path / plugin / "policy").exists()  # nothing that could be ranked


def test_a_hanging_plugin_is_stopped_at_its_time_limit(cartpole_spec, cartpole_teacher, tmp_path):
    started = time.monotonic()
    result = run("hangs", cartpole_spec, cartpole_teacher, tmp_path / "hangs", time_limit=2)
    assert (result["status"], result["reason"]) == ("invalid", "time limit exceeded: hangs ran longer than 2 s")
    assert 2 <= time.monotonic() - started < 60 and not (tmp_path / "hangs" / "policy").exists()


def test_a_plugin_that_kills_its_process_is_an_invalid_run(cartpole_spec, cartpole_teacher, tmp_path):
    result = run("segfaults", cartpole_spec, cartpole_teacher, tmp_path / "segfaults")
    assert result["status"] == "invalid"
    assert result["reason"] == "segfaults's process died (signal 11) before it returned"


def test_budget_counters_stop_exactly_at_the_limit(cartpole_spec, cartpole_teacher, tmp_path):
    result = run("greedy", cartpole_spec, cartpole_teacher, tmp_path / "greedy")
    assert result["budget"]["used"]["env_steps"] == result["budget"]["limit"]["env_steps"] == 400


def test_output_shape_is_checked_even_when_the_head_matches(cartpole_spec, cartpole_teacher):
    from policypress.core.harness import InvalidPolicy, check_policy

    teacher = Policy.load(cartpole_teacher / "policy")
    spec = teacher.spec()
    spec["layers"][-1]["out_features"] += 1  # the head still says 2 actions
    with pytest.raises(InvalidPolicy, match=r"output shape \(3,\) != \(2,\)"):
        check_policy(Policy.from_spec(spec), teacher, 10**9)


def test_valid_run_saves_a_policy_within_the_ceiling(cartpole_spec, cartpole_teacher, tmp_path):
    result = run("magnitude", cartpole_spec, cartpole_teacher, tmp_path / "magnitude", level=0.1)
    assert result["status"] == "valid" and result["reason"] is None
    policy = Policy.load(tmp_path / "magnitude" / "policy")
    teacher = Policy.load(cartpole_teacher / "policy")
    assert params(policy)[1] <= result["max_params"] == ceiling(teacher, 0.1)
    assert all(result["budget"]["used"][k] <= v for k, v in result["budget"]["limit"].items())


def test_a_failed_rerun_does_not_leave_the_previous_policy(cartpole_spec, cartpole_teacher, tmp_path):
    out = tmp_path / "run"
    assert run("magnitude", cartpole_spec, cartpole_teacher, out, level=0.1)["status"] == "valid"
    assert run("too_big", cartpole_spec, cartpole_teacher, out, level=0.1)["status"] == "invalid"
    assert not (out / "policy").exists()


def test_unsupported_action_space_is_not_applicable(pendulum_teacher, tmp_path):
    result = run("discrete_only", pendulum_spec(), pendulum_teacher, tmp_path / "na")
    assert result["status"] == "n/a"
    assert result["reason"] == "discrete_only does not support continuous actions"


def test_ceiling_is_the_floor_of_level_times_teacher_nonzero(cartpole_teacher):
    teacher = Policy.load(cartpole_teacher / "policy")
    assert params(teacher) == (4 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2,) * 2  # 1282, all nonzero
    assert ceiling(teacher, 0.1) == 128
    assert ceiling(teacher, 0.05) == 64
    assert ceiling(teacher, 1.0) == 1282
