"""Methods that keep training with the teacher's RL loss: ERK layer targets, gmp's cubic schedule,
EauDeQN's selection, and both through the harness (DQN teachers; n/a for actor-critic teachers)."""

import math

import pytest
import torch
from torch import nn

from policypress.compress.pruning import erk_densities, erk_masks, weight_count, weight_layers
from policypress.core.params import params
from policypress.core.policy import ActionHead, Policy, Preprocess
from tests.conftest import check, pendulum_spec, plugin, with_smoke_budget
from tests.test_harness import run


def test_erk_densities_meet_the_budget_and_clamp_at_one():
    shapes = {"in": (256, 4), "hidden": (256, 256), "out": (2, 256)}
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    densities = erk_densities(shapes, 0.05)
    assert sum(densities[n] * sizes[n] for n in shapes) == pytest.approx(0.05 * sum(sizes.values()))
    assert densities["out"] == 1.0  # (2 + 256) / 512 > 1 at this scale: made dense
    assert all(0 < d <= 1 for d in densities.values())
    # The layers that are not clamped keep ERK's ratio (sum of dims / product of dims).
    assert densities["in"] / densities["hidden"] == pytest.approx((260 / 1024) / (512 / 65536))


def test_erk_masks_keep_exactly_the_weight_budget_and_do_not_drift():
    net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    policy = Policy(Preprocess((4,)), net, ActionHead("argmax", 2), "q_values")
    for budget in (50, 300, 2000):
        policy.masks = {}
        for _ in range(3):  # re-pruning a pruned net to the same budget keeps it there
            policy.masks = erk_masks(policy, budget)
            policy.apply_masks()
            assert sum(int(mask.sum()) for mask in policy.masks.values()) == budget


def test_gmp_masks_follow_the_cubic_schedule_between_20_and_80_percent(cartpole_teacher):
    student = Policy.load(cartpole_teacher / "policy")
    module = plugin("gmp")
    ceiling = params(student)[0] // 10
    masks = module.GradualMasks(student, ceiling, {**module.INFO.hyperparameters, "mask_every": 10})
    seen = {}
    for update in range(1, 1001):
        masks(update, 1000)
        seen[update] = masks.sparsity
    final = masks.final_sparsity
    for t in (200, 210, 500, 800):
        assert seen[t] == pytest.approx(final * (1 - (1 - (t - 200) / 600) ** 3)), t
    assert seen[199] == 0.0 and seen[205] == seen[200] and seen[1000] == final  # held between mask updates
    kept = sum(int(student.masks[name].sum()) for name in weight_layers(student))
    assert masks.final_weights - len(weight_layers(student)) <= kept <= masks.final_weights
    assert params(student)[1] <= ceiling


def test_gmp_trains_a_dqn_teacher_within_budget_and_ceiling(cartpole_spec, cartpole_teacher, tmp_path):
    result = run("gmp", with_smoke_budget(cartpole_spec, 600, 300), cartpole_teacher, tmp_path / "gmp", level=0.1)
    check(result, tmp_path / "gmp", False)
    assert result["budget"]["used"] == {"env_steps": 600, "teacher_queries": 0, "gradient_updates": 300}
    policy = Policy.load(tmp_path / "gmp" / "policy")
    assert policy.masks and all(name.endswith(".weight") for name in policy.masks)  # biases are never pruned
    with torch.no_grad():
        for name, param in policy.net.named_parameters():
            if name in policy.masks:
                assert not param[~policy.masks[name]].any()


def test_gmp_is_not_applicable_to_actor_critic_teachers(pendulum_teacher, tmp_path):
    result = run("gmp", pendulum_spec(), pendulum_teacher, tmp_path / "na")
    assert result["status"] == "n/a"
    assert result["reason"] == ("gmp does not support sac teachers: its RL loss needs the critic, which the policy "
                                "format does not keep")


def eaudeqn_search(cartpole_spec, cartpole_teacher, tmp_path, **overrides):
    from policypress.compress.td import DQNSettings
    from policypress.core.budget import Budget, Meter
    from policypress.core.harness import build_task
    EAUDEQN_HYPERPARAMETERS, EauDeQN = plugin("eaudeqn").EAUDEQN_HYPERPARAMETERS, plugin("eaudeqn").EauDeQN

    teacher = Policy.load(cartpole_teacher / "policy")
    meter = Meter(Budget(env_steps=1000, teacher_queries=0, gradient_updates=1000))
    task = build_task(teacher, cartpole_spec, meter, 0.1, 0, {**EAUDEQN_HYPERPARAMETERS, **overrides}, tmp_path)
    return EauDeQN(task, teacher.clone(), DQNSettings.of_teacher(cartpole_spec["teacher"]), min_density=0.1)


def test_eaudeqn_selects_the_minimum_loss_network_and_never_lowers_the_sparsity(cartpole_spec, cartpole_teacher,
                                                                                  tmp_path):
    weight_density = plugin("eaudeqn").weight_density

    search = eaudeqn_search(cartpole_spec, cartpole_teacher, tmp_path)
    densities = [weight_density(net) for net in search.online]
    assert densities[0] == 1.0 and densities[1] == pytest.approx(0.75, abs=0.01)
    assert densities[2] == pytest.approx(0.5625, abs=0.01)

    search.losses = [3.0, 1.0, 2.0]  # the middle network fits best
    assert search.select() == 1
    assert search.history == [pytest.approx(1 - densities[1])]
    assert weight_density(search.online[0]) == pytest.approx(densities[1])  # the new target's sparsity

    search.losses = [0.5, 1.0, 2.0]  # the densest fits best: the sparsity holds
    assert search.select() == 0
    assert search.history[1] == search.history[0]

    generator = torch.Generator().manual_seed(0)
    for _ in range(10):  # whatever wins, the sparsity never falls
        search.losses = torch.rand(3, generator=generator).tolist()
        search.select()
    for _ in range(10):  # the sparsest always wins: it stops at the level's
        search.losses = [3.0, 2.0, 1.0]
        search.select()
    assert all(b >= a for a, b in zip(search.history, search.history[1:], strict=False))
    weights = weight_count(search.target)
    assert all(abs(weight_density(net) - 0.1) <= 3 / weights for net in search.online)  # per-layer rounding


def test_eaudeqn_runs_within_budget_and_ceiling_and_reports_its_sparsity(cartpole_spec, cartpole_teacher, tmp_path):
    spec = with_smoke_budget(cartpole_spec, 800, 600)
    result = run("eaudeqn", spec, cartpole_teacher, tmp_path / "eaudeqn", level=0.25)
    check(result, tmp_path / "eaudeqn", False)
    assert result["budget"]["used"]["teacher_queries"] == 0
    policy = Policy.load(tmp_path / "eaudeqn" / "policy")
    history = policy.metadata["eaudeqn_sparsity_history"]
    assert len(history) == 20 and history == sorted(history)
    assert 0.0 <= policy.metadata["eaudeqn_chosen_sparsity"] == history[-1]


def test_eaudeqn_is_not_applicable_to_actor_critic_teachers(pendulum_teacher, tmp_path):
    result = run("eaudeqn", pendulum_spec(), pendulum_teacher, tmp_path / "na")
    assert result["status"] == "n/a" and result["reason"].startswith("eaudeqn does not support sac teachers: ")
