"""Parameter, MAC and byte counts: exact on hand-computed nets, equal to independent counters."""

import pytest
import torch
from ptflops import get_model_complexity_info
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from policypress.core.params import params
from policypress.core.policy import ActionHead, Policy, Preprocess
from policypress.measure.metrics import macs, size_metrics, storage_bytes


def mlp() -> Policy:
    """4 -> 8 -> 2: params 4*8+8 + 8*2+2 = 58, MACs 4*8 + 8*2 = 48."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return Policy(Preprocess((4,)), net, ActionHead("argmax", 2), "q_values")


def cnn() -> Policy:
    """(3,10,10) -conv3x3-> (4,8,8) -conv2x2/s2-> (2,4,4) -flatten-> 32 -linear-> 5.

    params: 3*4*9+4 = 112, 4*2*4+2 = 34, 32*5+5 = 165; total 311.
    MACs: 8*8*(4*3*9) = 6912, 4*4*(2*4*4) = 512, 32*5 = 160; total 7584.
    """
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 2, stride=2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(32, 5))
    return Policy(Preprocess((3, 10, 10), scale=1 / 255), net, ActionHead("argmax", 5), "q_values")


@pytest.mark.parametrize("make, total, mac", [(mlp, 58, 48), (cnn, 311, 7584)])
def test_exact_counts_on_hand_computed_nets(make, total, mac):
    policy = make()
    assert params(policy) == (total, total)
    assert macs(policy) == (mac, mac)
    assert storage_bytes(policy) == 4 * total


def test_masked_weights_count_as_zero_parameters_and_work():
    policy = mlp()
    mask = torch.ones(8, 4, dtype=torch.bool)
    mask[:, :3] = False  # keep 8 of the first layer's 32 weights
    policy.masks = {"1.weight": mask}
    # 8 kept weights + 8 biases + 18 in the last layer; MACs: 8 + 16.
    assert params(policy) == (58, 8 + 8 + 18)
    assert macs(policy) == (48, 8 + 16)
    # First layer: sparse = 8 values * 4 B + ceil(32 / 8) B of bitmap = 36 < 128 dense.
    assert storage_bytes(policy) == 36 + 4 * (8 + 18)


def test_conv_nonzero_macs_scale_with_output_positions():
    policy = cnn()
    with torch.no_grad():
        policy.net[0].weight[:2] = 0  # two of four output channels: half the first layer's work
    assert macs(policy) == (7584, 7584 - 6912 // 2)


@pytest.mark.parametrize("make", [mlp, cnn])
def test_dense_counts_agree_with_torch_flop_counter_and_ptflops(make):
    policy = make()
    example = torch.zeros((1, *policy.obs_shape))
    with FlopCounterMode(display=False) as counter:
        policy.net(example)
    assert macs(policy)[0] == counter.get_total_flops() // 2  # torch counts 2 FLOPs per MAC

    ptflops_macs, ptflops_params = get_model_complexity_info(
        policy.net, tuple(policy.obs_shape), as_strings=False, print_per_layer_stat=False, backend="aten"
    )
    assert ptflops_params == params(policy)[0]
    # ptflops also counts one addition per biased output element; MACs here do not.
    bias_adds = 0
    x = example
    for layer in policy.net:
        x = layer(x)
        if getattr(layer, "bias", None) is not None:
            bias_adds += x.numel()
    assert macs(policy)[0] == ptflops_macs - bias_adds


def test_size_metrics_fields():
    assert size_metrics(mlp()) == {"params_total": 58, "params_nonzero": 58, "bytes": 232, "macs_dense": 48,
                                   "macs_nonzero": 48}
