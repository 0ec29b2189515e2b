"""The PoPS shrinking rule: the reference formula on the paper's CartPole net, and its bounds."""

import numpy as np
import pytest
import torch
from torch import nn

from policypress.compress.architecture import resized, resized_spec, spec_param_count
from policypress.core.policy import ActionHead, Policy, Preprocess
from tests.conftest import plugin

POPS = plugin("pops")  # the PoPS width rule lives in its plugin
kept_counts, mlp_widths, shrunk_widths = POPS.kept_counts, POPS.mlp_widths, POPS.shrunk_widths


def pops_cartpole_teacher() -> Policy:
    """4-256-256-128-2, the PoPS CartPole teacher: 100,226 parameters."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 2))
    return Policy(Preprocess((4,)), net, ActionHead("argmax", 2), "q_values")


# The first IPP iteration's per-layer redundancies hard-coded in the authors' CartPole script.
REDUNDANCY = [0.840, 0.835, 0.838, 0.840]
WEIGHTS = [4 * 256, 256 * 256, 256 * 128, 128 * 2]


def test_widths_equal_the_reference_formula_on_the_papers_cartpole_example():
    teacher = pops_cartpole_teacher()
    assert spec_param_count(teacher.spec()) == 100_226
    p1, p2, p3, p4 = (n * (1 - r) for n, r in zip(WEIGHTS, REDUNDANCY, strict=True))
    d, actions, big_h1, big_h3 = 4, 2, 256, 128
    h1, h3 = p1 / d, p4 / actions
    h2 = 0.5 * ((p2 + p3) / (big_h1 + big_h3) + (p2 + p3) / (h1 + h3))
    h1, h3 = (p1 + p2) / (d + h2), (p4 + p3) / (actions + h2)
    expected = [int(h1), int(h2), int(h3)]
    assert expected == [70, 152, 34]
    assert shrunk_widths(teacher, [p1, p2, p3, p4], previous_size=100_226) == expected


def test_kept_counts_follow_the_redundancy_of_the_best_sparse_model():
    teacher = pops_cartpole_teacher()
    generator = torch.Generator().manual_seed(0)
    names = [name for name, _ in teacher.net.named_parameters() if name.endswith("weight")]
    masks = {name: torch.rand(teacher.net.get_parameter(name).shape, generator=generator) > redundancy
             for name, redundancy in zip(names, REDUNDANCY, strict=True)}
    sparse = Policy(teacher.preprocess, teacher.net, teacher.head, teacher.output, masks)
    initial = {name: teacher.net.get_parameter(name).numel() for name in names}
    assert kept_counts(sparse, initial) == pytest.approx([float(m.sum()) for m in masks.values()])
    # From the second iteration on, the current network may already hold zeros: the redundancy is
    # relative to its own initial nonzeros, and P'_i = P_i (1 - r_i) scales the full tensor size.
    halved = {name: count // 2 for name, count in initial.items()}
    expected = [teacher.net.get_parameter(n).numel() * float(masks[n].sum()) / halved[n] for n in names]
    assert kept_counts(sparse, halved) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(20))
def test_shrinking_never_exceeds_the_previous_size(seed):
    teacher = pops_cartpole_teacher()
    rng = np.random.default_rng(seed)
    kept = [n * rng.uniform(0.001, 1.0) for n in WEIGHTS]
    previous = int(rng.integers(200, 100_226))
    widths = shrunk_widths(teacher, kept, previous_size=previous, min_width=1)
    assert spec_param_count(resized_spec(teacher, widths)) <= previous
    assert all(w >= 1 for w in widths)


def test_depth_one_and_two_mlps_use_the_boundary_estimates():
    assert mlp_widths(4, 2, [64], [100.0, 50.0]) == [pytest.approx(150 / 6)]
    h = mlp_widths(4, 2, [64, 64], [128.0, 1024.0, 64.0])
    assert h[0] == pytest.approx((128 + 1024) / (4 + 32))
    assert h[1] == pytest.approx((64 + 1024) / (2 + h[0]))


def test_cnn_channels_are_the_unit_and_the_fc_fan_in_is_recomputed():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 2, stride=2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 5))
    cnn = Policy(Preprocess((3, 10, 10), scale=1 / 255), net, ActionHead("argmax", 5), "q_values")
    kept = [8 * 3 * 9 / 2, 4 * 8 * 4 / 2, 64 * 16 / 2, 16 * 5 / 2]  # half of every tensor
    # conv1: 108 / (3·3·3) = 4 channels; conv2: 64 / (2·2·4) = 4; FC: d = 4·4·4, h = (512 + 40) / (64 + 5) = 8
    widths = shrunk_widths(cnn, kept, previous_size=spec_param_count(cnn.spec()))
    assert widths == [4, 4, 8]
    student = resized(cnn, widths)
    assert student.net[5].in_features == 64 and student(torch.zeros(1, 3, 10, 10)).shape == (1, 5)


def test_last_conv_is_reduced_until_the_fc_fan_in_fits():
    net = nn.Sequential(nn.Conv2d(1, 8, 2, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10), nn.ReLU(),
                        nn.Linear(10, 2))
    cnn = Policy(Preprocess((1, 8, 8)), net, ActionHead("argmax", 2), "q_values")
    kept = [32.0, 200.0, 20.0]  # conv keeps all 8 channels, but FC1 keeps only 200 of 1280 weights
    widths = shrunk_widths(cnn, kept, previous_size=spec_param_count(cnn.spec()), min_width=1)
    assert widths[0] * 16 * widths[1] <= 200


def test_no_layer_grows_even_when_a_kept_count_would_allow_it():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    policy = Policy(Preprocess((4,)), net, ActionHead("argmax", 2), "q_values")
    kept = [4 * 32 * 0.1, 32 * 32 * 8.0, 32 * 2 * 0.1]  # the middle count alone would ask for wider layers
    assert all(new <= 32 for new in shrunk_widths(policy, kept, previous_size=10**6, min_width=1))
