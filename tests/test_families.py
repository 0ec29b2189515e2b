"""Every shipped method on every teacher family: a tiny CNN (DQN, image input), a continuous SAC
actor and a discrete PPO actor. A method either returns a valid policy within its budget and
ceiling, or the run is n/a with the reason its metadata declares; never anything else."""

import pytest
from torch import nn

from policypress.core.harness import unsupported_reason
from policypress.core.policy import Policy
from policypress.core.registry import available_methods, load_method
from tests.conftest import blink_spec, check, pendulum_spec, ppo_spec, sb3_cnn_spec, with_smoke_budget
from tests.test_harness import run

SHIPPED = sorted(available_methods())


@pytest.fixture
def teachers(cnn_teacher, sb3_cnn_teacher, pendulum_teacher, ppo_teacher):
    return {"cnn": (blink_spec(), cnn_teacher), "sb3_cnn": (sb3_cnn_spec(), sb3_cnn_teacher),
            "continuous": (pendulum_spec(), pendulum_teacher),
            "ppo": (with_smoke_budget(ppo_spec(), 1000, 100), ppo_teacher)}


@pytest.mark.parametrize("family", ["cnn", "continuous", "ppo"])
@pytest.mark.parametrize("method", SHIPPED)
def test_method_runs_or_declares_why_not(method, family, teachers, tmp_path):
    if family == "cnn" and load_method(method).info.track == "during-training":
        family = "sb3_cnn"  # trains SB3's own CnnPolicy, whose Nature CNN needs 36x36 frames, not the tiny CNN
    spec, teacher_dir = teachers[family]
    teacher = Policy.load(teacher_dir / "policy")
    declared = unsupported_reason(load_method(method), teacher, spec["teacher"]["algo"])
    result = run(method, spec, teacher_dir, tmp_path / method, level=0.3)
    if declared is not None:
        assert (result["status"], result["reason"]) == ("n/a", declared)
        assert not (tmp_path / method / "policy").exists()
        return
    check(result, tmp_path / method, level_ceiling_structural=False)
    student = Policy.load(tmp_path / method / "policy")
    assert student.head.spec() == teacher.head.spec()  # the deployed actor keeps the teacher's action head
    if family == "cnn":
        assert isinstance(student.net[0], nn.Conv2d)  # still a CNN: filters are the structured unit


def test_only_eaudeqn_declines_actor_critic_teachers():
    """The declarations themselves: what is n/a is what the methods' papers cannot express (EauDeQN's
    actor-critic design is not published)."""
    declining = {name for name in SHIPPED if "sac" not in load_method(name).info.teacher_algos}
    assert declining == {"eaudeqn"}
    assert all(load_method(name).info.teacher_algos_reason for name in declining)
