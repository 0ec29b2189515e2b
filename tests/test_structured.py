"""Structured pruning: LRP relevance, slicing, the group-sparse penalty and schedule, and the three
structured methods (lrp_prune, group_sparse, random_structured) through the harness on DQN,
PPO, SAC and CNN teachers."""

import logging
import types

import pytest
import torch
from torch import nn

from policypress.compress.architecture import hidden_layers
from policypress.compress.slicing import all_alive, neuron_masks, sliced
from policypress.compress.structured import size_with_widths, units_to_keep
from policypress.core.params import params
from policypress.core.policy import ActionHead, Policy, Preprocess
from tests.conftest import blink_spec, check, pendulum_spec, plugin, with_smoke_budget
from tests.test_harness import run

METHODS = ["lrp_prune", "group_sparse", "random_structured"]
GROUP_SPARSE, LRP = plugin("group_sparse"), plugin("lrp_prune")
GROUP_SPARSE_HYPERPARAMETERS = GROUP_SPARSE.GROUP_SPARSE_HYPERPARAMETERS
DynamicGroupPruning = GROUP_SPARSE.DynamicGroupPruning
group_lasso_penalty, outgoing_norms = GROUP_SPARSE.group_lasso_penalty, GROUP_SPARSE.outgoing_norms
chosen_output_relevance, unit_relevances = LRP.chosen_output_relevance, LRP.unit_relevances
unit_scores = LRP.unit_scores


def mlp_policy(*widths: int, bias: bool = True, activation=nn.ReLU) -> Policy:
    layers = []
    for fan_in, fan_out in zip(widths, widths[1:], strict=False):
        layers += [nn.Linear(fan_in, fan_out, bias=bias), activation()]
    return Policy(Preprocess((widths[0],)), nn.Sequential(*layers[:-1]), ActionHead("argmax", widths[-1]), "q_values")


def cnn_policy() -> Policy:
    net = nn.Sequential(nn.Conv2d(2, 6, 3, stride=2), nn.ReLU(), nn.Conv2d(6, 5, 3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(5 * 3 * 3, 7), nn.ReLU(), nn.Linear(7, 3))
    return Policy(Preprocess((2, 11, 11)), net, ActionHead("argmax", 3), "q_values")


# -- LRP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, inputs", [
    (lambda: mlp_policy(4, 8, 6, 3, bias=False).net, lambda: torch.randn(16, 4)),
    (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.ReLU(), nn.Flatten(),
                           nn.Linear(4 * 5 * 5, 3, bias=False)),
     lambda: torch.rand(16, 2, 7, 7)),
])
def test_relevance_is_conserved_layer_by_layer_without_biases(make, inputs):
    torch.manual_seed(0)
    net, x = make(), inputs()
    with torch.no_grad():
        explained = chosen_output_relevance(net(x), discrete=True).sum(dim=1)
    relevances = unit_relevances(net, x, lambda out: chosen_output_relevance(out, discrete=True))
    assert (explained > 0).all()
    for index, relevance in relevances.items():  # every hidden layer and the input (-1)
        torch.testing.assert_close(relevance.flatten(1).sum(dim=1), explained, rtol=1e-4, atol=1e-6,
                                   msg=f"layer {index}")


def test_conv_layers_use_the_z_plus_rule():
    """A 2x2 kernel [[1, -1], [1, 1]] on ones: z⁺ = 3, so the inputs under the positive weights
    get R/3 each and the one under the negative weight none (the ε-rule would give it -R/2)."""
    conv = nn.Conv2d(1, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -1.0], [1.0, 1.0]]]]))
    net = nn.Sequential(conv, nn.Flatten())
    relevance = unit_relevances(net, torch.ones(1, 1, 2, 2), lambda out: 6.0 * torch.ones_like(out))[-1]
    torch.testing.assert_close(relevance, torch.tensor([[[[2.0, 0.0], [2.0, 2.0]]]]))


def test_lrp_ranks_a_large_but_silent_neuron_last_where_magnitude_ranks_it_first():
    """Unit 0 has the largest weights but never fires on the visited (positive) states; unit 1
    has small weights and carries the decision. Magnitude keeps unit 0, LRP keeps unit 1."""
    policy = mlp_policy(2, 2, 2)
    with torch.no_grad():
        policy.net[0].weight.copy_(torch.tensor([[-5.0, -5.0], [0.3, 0.2]]))
        policy.net[0].bias.zero_()
        policy.net[2].weight.copy_(torch.tensor([[4.0, 1.0], [-4.0, -1.0]]))
        policy.net[2].bias.zero_()
    states = torch.rand(64, 2) + 0.1
    scores = unit_scores(policy, states, epsilon=1e-9)[0]
    magnitude = policy.net[0].weight.abs().sum(dim=1)
    assert magnitude.argmax() == 0 and scores.argmax() == 1
    assert scores[0] == 0
    torch.testing.assert_close(scores.sum(), torch.tensor(1.0))  # normalised within the layer


def test_continuous_relevance_starts_from_every_action_dimension():
    out = torch.tensor([[0.5, -2.0], [1.0, 3.0]])
    torch.testing.assert_close(chosen_output_relevance(out, discrete=False), out.abs())
    torch.testing.assert_close(chosen_output_relevance(out, discrete=True), torch.tensor([[0.5, 0.0], [0.0, 3.0]]))


# -- slicing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, obs", [
    (lambda: mlp_policy(4, 9, 7, 3), lambda: torch.randn(32, 4)),
    (lambda: mlp_policy(4, 9, 7, 3, activation=nn.Tanh), lambda: torch.randn(32, 4)),
    (cnn_policy, lambda: torch.randn(32, 2, 11, 11)),
])
def test_the_sliced_net_computes_what_the_neuron_masked_net_computes(make, obs):
    torch.manual_seed(1)
    policy, x = make(), obs()
    alive = all_alive(policy)
    generator = torch.Generator().manual_seed(2)
    for keep in alive.values():
        keep &= torch.rand(len(keep), generator=generator) < 0.6
        keep[0] = True
    masked = policy.clone()
    masked.masks = neuron_masks(masked, alive)
    masked.apply_masks()
    small = sliced(masked, alive)
    assert list(hidden_layers(small).values()) == [int(k.sum()) for k in alive.values()]
    assert params(small)[0] == size_with_widths(policy, {i: int(k.sum()) for i, k in alive.items()})
    assert not small.masks
    with torch.no_grad():
        torch.testing.assert_close(small(x), masked(x), rtol=1e-5, atol=1e-6)


def test_slicing_refuses_to_drop_masks_of_kept_units():
    policy = mlp_policy(4, 6, 2)
    policy.masks = {"0.weight": torch.ones(6, 4, dtype=torch.bool)}
    policy.masks["0.weight"][1, 2] = False  # an unstructured mask on a unit that stays
    with pytest.raises(ValueError, match="kept units"):
        sliced(policy, all_alive(policy))


def test_units_to_keep_removes_the_lowest_scores_until_the_size_fits():
    policy = mlp_policy(4, 8, 8, 2)  # 4·8+8 + 8·8+8 + 8·2+2 = 130 parameters
    scores = {0: torch.arange(8.0), 2: torch.arange(8.0) + 0.5}
    alive = units_to_keep(policy, scores, max_params=100)
    # Removals in score order 0.0, 0.5, 1.0, ... until ≤ 100: (7,8)=115, (7,7)=106, (6,7)=96.
    assert alive[0].tolist() == [False, False] + [True] * 6
    assert alive[2].tolist() == [False] + [True] * 7
    with pytest.raises(ValueError, match="exceed the ceiling"):
        units_to_keep(policy, scores, max_params=10)


# -- group sparse ------------------------------------------------------------------------------


def test_group_lasso_penalty_equals_its_formula_on_a_hand_computed_layer():
    norms = {0: torch.tensor([3.0, 4.0, 12.0])}
    importance = {0: torch.tensor([1.0, 3.0, 100.0])}
    alive = {0: torch.tensor([True, True, False])}  # a switched-off unit is not penalised
    # Alive importances 1 and 3 have mean 2: relative 0.5 and 1.5; weights 1/(0.5+0.1), 1/(1.5+0.1).
    expected = 0.01 * (3.0 / 0.6 + 4.0 / 1.6)
    torch.testing.assert_close(group_lasso_penalty(norms, importance, alive, 0.01, 0.1), torch.tensor(expected))


def test_group_sparse_masks_only_switch_off_and_end_at_the_ceiling():
    torch.manual_seed(0)
    student = mlp_policy(4, 32, 32, 2)
    ceiling = params(student)[0] // 5
    pruning = DynamicGroupPruning(stub_task(ceiling), student)
    history = []
    for progress in torch.linspace(0, 1, 11).tolist():
        with torch.no_grad():  # training moves the weights between threshold rises
            for param in student.net.parameters():
                param.add_(0.3 * torch.randn_like(param))
        student.apply_masks()
        pruning.prune(progress)
        history.append({i: k.clone() for i, k in pruning.alive.items()})
    for before, after in zip(history, history[1:], strict=False):
        assert all((after[i] <= before[i]).all() for i in before)  # never switched back on
    final = sliced(student, pruning.alive)
    assert list(hidden_layers(final).values()) == [int(k.sum()) for k in pruning.alive.values()]
    assert params(final)[0] <= ceiling
    x = torch.randn(64, 4)
    with torch.no_grad():
        torch.testing.assert_close(final(x), student(x), rtol=1e-5, atol=1e-6)


def stub_task(max_params: int, **overrides) -> types.SimpleNamespace:
    return types.SimpleNamespace(hyperparameters={**GROUP_SPARSE_HYPERPARAMETERS, **overrides},
                                 max_params=max_params, log=logging.getLogger("test"))


def test_group_sparse_penalty_pushes_unimportant_groups_down():
    """With only the penalty as loss, the least important unit's group norm falls fastest."""
    student = mlp_policy(3, 4, 2)
    with torch.no_grad():  # four live units with equal group norms; unit 0 is read by almost nothing
        student.net[0].weight.copy_(torch.eye(4, 3) + 0.5)
        student.net[0].bias.fill_(1.0)
        student.net[2].weight.fill_(1.0)
        student.net[2].weight[:, 0] = 1e-3
    pruning = DynamicGroupPruning(stub_task(10**6), student)
    obs = torch.rand(64, 3)
    before = torch.cat([student.net[0].weight, student.net[0].bias[:, None]], 1).norm(dim=1)
    loss = pruning.regularizer(student, obs)
    loss.backward()
    step = torch.cat([student.net[0].weight.grad, student.net[0].bias.grad[:, None]], 1).norm(dim=1) / before
    assert step.argmax() == 0


def test_the_threshold_schedule_ends_at_prune_end_and_then_the_penalty_stops(monkeypatch):
    pruning = DynamicGroupPruning(stub_task(100, mask_every=50, prune_start=0.1, prune_end=0.7), mlp_policy(4, 8, 2))
    rises = []
    monkeypatch.setattr(pruning, "prune", lambda progress: rises.append(progress))
    penalising = []
    for update in range(1, 301):
        pruning.after_update(update, 300)
        penalising.append(pruning.penalising)
    # Updates 30 to 210 (10% to 70% of 300): rises every 50 updates and at the end.
    assert rises == [(u - 30) / 180 for u in (50, 100, 150, 200, 210)]
    assert all(penalising[:209]) and not any(penalising[209:])


def test_outgoing_norms_read_each_filters_block_of_columns_through_the_flatten():
    policy = cnn_policy()  # conv (5 channels, 3x3 map) -> Flatten -> Linear(45, 7)
    reader = policy.net[5].weight
    expected = torch.stack([reader[:, c * 9:(c + 1) * 9].norm() for c in range(5)])
    torch.testing.assert_close(outgoing_norms(policy)[2], expected)
    torch.testing.assert_close(outgoing_norms(policy)[0], policy.net[2].weight.transpose(0, 1).flatten(1).norm(dim=1))


# -- the methods through the harness -----------------------------------------------------------


def check_structured(result, out):
    check(result, out, True)
    assert result["budget"]["used"]["gradient_updates"] > 0  # pruning left budget to distil


@pytest.mark.parametrize("method", METHODS)
def test_on_a_dqn_teacher(method, cartpole_spec, cartpole_teacher, tmp_path):
    result = run(method, with_smoke_budget(cartpole_spec, 3000, 700), cartpole_teacher, tmp_path / method, 0.25)
    check_structured(result, tmp_path / method)


@pytest.mark.parametrize("method", METHODS)
def test_on_a_ppo_teacher(method, cartpole_spec, ppo_teacher, tmp_path):
    result = run(method, with_smoke_budget(cartpole_spec, 2000, 300), ppo_teacher, tmp_path / method, 0.3)
    check_structured(result, tmp_path / method)


@pytest.mark.parametrize("method", METHODS)
def test_on_a_continuous_sac_teacher(method, pendulum_teacher, tmp_path):
    result = run(method, pendulum_spec(), pendulum_teacher, tmp_path / method, level=0.5)
    check_structured(result, tmp_path / method)


@pytest.mark.parametrize("method", METHODS)
def test_on_a_tiny_cnn_teacher_filters_are_removed(method, cnn_teacher, tmp_path):
    result = run(method, blink_spec(), cnn_teacher, tmp_path / method, level=0.3)
    check_structured(result, tmp_path / method)
    policy = Policy.load(tmp_path / method / "policy")
    assert isinstance(policy.net[0], nn.Conv2d)
    assert policy.net[0].out_channels < 8 or policy.net[2].out_channels < 8


@pytest.mark.parametrize("method", [*METHODS, "pops"])
def test_a_level_no_network_fits_fails_before_spending_anything(method, cartpole_spec, cartpole_teacher, tmp_path):
    teacher = Policy.load(cartpole_teacher / "policy")
    one_unit = size_with_widths(teacher, dict.fromkeys(hidden_layers(teacher), 1))
    level = (one_unit - 1) / params(teacher)[1]  # a ceiling one parameter below the smallest network
    result = run(method, cartpole_spec, cartpole_teacher, tmp_path / method, level=level)
    assert result["status"] == "invalid"
    assert f"even one unit per hidden layer exceeds the ceiling of {one_unit - 1} parameters" in result["reason"]
    assert set(result["budget"]["used"].values()) == {0}
