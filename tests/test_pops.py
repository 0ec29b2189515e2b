"""PoPS and its ablations through the harness: within budget, dense and under the ceiling, for
DQN (MLP), SAC (continuous) and a tiny CNN teacher."""

import pytest
from torch import nn

from policypress.core.params import params
from policypress.core.policy import Policy
from tests.conftest import blink_spec, check, pendulum_spec, plugin, with_smoke_budget
from tests.test_harness import run

METHODS = ["pops", "pops_ipp", "pops_shrink_once"]
POPS = plugin("pops")
Evaluator, PoPS, Thresholds, ceiling_sparsity = POPS.Evaluator, POPS.PoPS, POPS.Thresholds, POPS.ceiling_sparsity


@pytest.mark.parametrize("method", METHODS)
def test_on_a_dqn_teacher(method, cartpole_spec, cartpole_teacher, tmp_path):
    spec = with_smoke_budget(cartpole_spec, 3000, 700)
    result = run(method, spec, cartpole_teacher, tmp_path / method, level=0.25)
    check(result, tmp_path / method, method != "pops_ipp")


@pytest.mark.parametrize("method", METHODS)
def test_on_a_continuous_sac_teacher(method, pendulum_teacher, tmp_path):
    result = run(method, pendulum_spec(), pendulum_teacher, tmp_path / method, level=0.5)
    check(result, tmp_path / method, method != "pops_ipp")


@pytest.mark.parametrize("method", METHODS)
def test_on_a_tiny_cnn_teacher(method, cnn_teacher, tmp_path):
    result = run(method, blink_spec(), cnn_teacher, tmp_path / method, level=0.3)
    check(result, tmp_path / method, method != "pops_ipp")
    policy = Policy.load(tmp_path / method / "policy")
    assert isinstance(policy.net[0], nn.Conv2d)


def test_thresholds_are_relative_to_the_teachers_return():
    hp = {"objective_fraction": 0.95, "lower_bound_fraction": 0.5}
    assert Thresholds.relative_to(200.0, hp) == Thresholds(190.0, 100.0)  # the paper's CartPole-v0 scale
    assert Thresholds.relative_to(-80.0, hp) == Thresholds(-84.0, -120.0)  # negative returns: worse is lower


def test_ceiling_sparsity_fits_the_ceiling_after_per_layer_rounding(cartpole_teacher):
    from policypress.compress.pruning import layerwise_magnitude_masks

    teacher = Policy.load(cartpole_teacher / "policy")
    for max_params in (100, 128, 500, 1000):
        teacher.masks = layerwise_magnitude_masks(teacher, ceiling_sparsity(teacher, max_params))
        assert max_params - 5 <= params(teacher)[1] <= max_params
        teacher.masks = {}


def test_ipp_holds_the_sparsity_while_the_score_is_below_the_lower_bound(cartpole_spec, cartpole_teacher, tmp_path,
                                                                         monkeypatch):
    from policypress.core.budget import Budget, Meter
    from policypress.core.harness import build_task
    POPS_HYPERPARAMETERS, Phase = POPS.POPS_HYPERPARAMETERS, POPS.Phase

    teacher = Policy.load(cartpole_teacher / "policy")
    hp = {**POPS_HYPERPARAMETERS, "mask_every": 1, "patience": 100}
    monkeypatch.setattr(Evaluator, "interval", lambda self, env_steps, updates: 10)
    meter = Meter(Budget(env_steps=5000, teacher_queries=5000, gradient_updates=1000))
    pops = PoPS(build_task(teacher, cartpole_spec, meter, 0.1, 0, hp, tmp_path))
    scores = iter([100.0, 100.0, 10.0, 10.0, 10.0, 100.0, 100.0, 100.0, 100.0, 100.0])
    seen = []

    def evaluate(student, _env_steps):
        masks = student.masks.values()
        seen.append(1 - sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks))
        return next(scores)

    pops.evaluate = evaluate
    pops.thresholds = Thresholds(objective=90.0, lower_bound=50.0)
    pops.ipp(teacher.clone(), Phase(env_steps=1000, queries=1000, updates=100), final_sparsity=0.9)
    assert len(seen) == 10
    rising = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    assert all(step > 0 for step in rising[:2])  # the ramp advances
    assert rising[3] == rising[4] == 0  # paused after the 3rd evaluation (score 10 < 50) until it recovers
    assert rising[5] > 0  # resumed after the 6th evaluation (score 100)


@pytest.mark.parametrize("method", METHODS)
def test_on_a_ppo_teacher(method, cartpole_spec, ppo_teacher, tmp_path):
    spec = with_smoke_budget(cartpole_spec, 2000, 300)
    result = run(method, spec, ppo_teacher, tmp_path / method, level=0.3)
    check(result, tmp_path / method, method != "pops_ipp")


def test_pops_iterates_prune_shrink_redistil_while_students_meet_the_objective(cartpole_spec, cartpole_teacher,
                                                                                tmp_path, monkeypatch):
    """The main path: every evaluation meets the objective, so each IPP finds a sparse model,
    the network shrinks, is re-distilled, and the next iteration starts from it."""
    from policypress.compress.architecture import hidden_widths

    monkeypatch.setattr(PoPS, "evaluate", lambda self, student, env_steps: 1e9)
    monkeypatch.setattr(Evaluator, "interval", lambda self, env_steps, updates: max(1, updates // 5))
    shrinks, fits = [], []
    shrink, fit = PoPS.shrink, PoPS.fit

    def recording_shrink(self, current, best, max_size):
        result = shrink(self, current, best, max_size)
        shrinks.append((hidden_widths(current), hidden_widths(result)))
        return result

    def recording_fit(self, student, phase):
        fits.append(hidden_widths(student))
        return fit(self, student, phase)

    monkeypatch.setattr(PoPS, "shrink", recording_shrink)
    monkeypatch.setattr(PoPS, "fit", recording_fit)
    spec = with_smoke_budget(cartpole_spec, 4000, 700)
    result = run("pops", spec, cartpole_teacher, tmp_path / "pops", level=0.5, isolated=False)  # to record
    check(result, tmp_path / "pops", True)
    assert len(shrinks) >= 2 and fits
    before, after = shrinks[0]
    assert before == [32, 32] and all(a < b for a, b in zip(after, before, strict=True))
    assert shrinks[1][0] == after  # the second iteration prunes the re-distilled network
