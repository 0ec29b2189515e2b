"""Pruning mechanisms: the Zhu-Gupta schedule, the evaluation-gated ramp, layer-wise masks."""

import pytest
import torch
from torch import nn

from policypress.compress.pruning import layerwise_magnitude_masks, polynomial_sparsity
from policypress.core.policy import ActionHead, Policy, Preprocess
from tests.conftest import plugin


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 0.0),
        (10, 0.0),  # before the ramp begins
        (35, 0.99 - 0.99 * (1 - 25 / 100) ** 3),
        (60, 0.99 - 0.99 * (1 - 50 / 100) ** 3),  # = 0.86625
        (110, 0.99),
        (500, 0.99),  # held after the ramp ends
    ],
)
def test_polynomial_schedule_equals_its_formula(step, expected):
    assert polynomial_sparsity(step, final=0.99, begin=10, end=110) == pytest.approx(expected)
    assert polynomial_sparsity(60, final=0.99, begin=10, end=110) == pytest.approx(0.86625)


def test_schedule_from_a_nonzero_initial_sparsity_is_monotone():
    values = [polynomial_sparsity(t, final=0.9, begin=0, end=50, initial=0.5) for t in range(60)]
    assert values[0] == 0.5 and values[-1] == 0.9
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))


def test_gate_pauses_the_ramp_below_the_lower_bound_and_resumes_after_recovery():
    gate = plugin("pops").GatedStep(lower_bound=80.0)
    gate.evaluated(120.0)
    for _ in range(5):
        gate.advance()
    assert gate.step == 5 and not gate.paused
    gate.evaluated(50.0)
    gate.evaluated(70.0)
    for _ in range(5):
        gate.advance()
    assert gate.step == 5 and gate.paused and gate.below_streak == 2
    gate.evaluated(95.0)
    gate.advance()
    assert gate.step == 6 and gate.below_streak == 0


def policy_with(weight: torch.Tensor) -> Policy:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.fill_(0.5)
    return Policy(Preprocess((weight.shape[1],)), nn.Sequential(nn.Flatten(), layer),
                  ActionHead("argmax", weight.shape[0]), "q_values")


def test_layerwise_masks_remove_the_smallest_magnitudes_of_each_tensor():
    policy = policy_with(torch.tensor([[0.1, -0.5, 0.3], [-0.05, 0.9, -0.2]]))
    masks = layerwise_magnitude_masks(policy, 0.5)
    assert masks["1.weight"].tolist() == [[False, True, True], [False, True, False]]
    assert "1.bias" not in masks  # biases are never pruned


def test_masked_weights_stay_masked_as_sparsity_rises():
    policy = policy_with(torch.tensor([[0.1, -0.5, 0.3], [-0.05, 0.9, -0.2]]))
    policy.masks = {"1.weight": torch.tensor([[True, True, True], [True, False, True]])}  # hide the largest
    masks = layerwise_magnitude_masks(policy, 2 / 6)
    assert not masks["1.weight"][1, 1]
    assert int(masks["1.weight"].sum()) == 4
