"""Size and compute metrics of a `Policy`, computed from its layers by arithmetic (exact).

Conventions (README, "Metrics"): parameters are the weights and biases of the deployed
network; preprocessing statistics and action bounds are constants and not counted. A MAC is
one multiply-accumulate of a weight; bias additions and activations are not MACs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from policypress.policy import Policy

FLOAT_BYTES = 4


def params(policy: Policy) -> tuple[int, int]:
    """(params_total, params_nonzero): masked weights are stored as zeros, so both count as zero."""
    policy.apply_masks()
    tensors = list(policy.net.parameters())
    return sum(t.numel() for t in tensors), sum(int(torch.count_nonzero(t)) for t in tensors)


def storage_bytes(policy: Policy) -> int:
    """Bytes of the parameters in their own format: each tensor dense fp32, or sparse as
    fp32 nonzero values plus a one-bit-per-entry occupancy bitmap, whichever is smaller."""
    policy.apply_masks()
    total = 0
    for tensor in policy.net.parameters():
        dense = tensor.numel() * FLOAT_BYTES
        sparse = int(torch.count_nonzero(tensor)) * FLOAT_BYTES + math.ceil(tensor.numel() / 8)
        total += min(dense, sparse)
    return total


def _conv_output(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def macs(policy: Policy) -> tuple[int, int]:
    """(macs_dense, macs_nonzero) of one inference at batch 1.

    A Linear layer does in*out MACs; a Conv2d does out_h*out_w*(kernel MACs per output
    channel); with sparsity, only the nonzero weights do work (each is applied once per
    output position).
    """
    policy.apply_masks()
    shape = tuple(policy.obs_shape)
    dense = nonzero = 0
    for layer in policy.net:
        if isinstance(layer, nn.Linear):
            dense += layer.in_features * layer.out_features
            nonzero += int(torch.count_nonzero(layer.weight))
            shape = (layer.out_features,)
        elif isinstance(layer, nn.Conv2d):
            _, height, width = shape
            out_h = _conv_output(height, layer.kernel_size[0], layer.stride[0], layer.padding[0])
            out_w = _conv_output(width, layer.kernel_size[1], layer.stride[1], layer.padding[1])
            dense += out_h * out_w * layer.weight.numel()
            nonzero += out_h * out_w * int(torch.count_nonzero(layer.weight))
            shape = (layer.out_channels, out_h, out_w)
        elif isinstance(layer, nn.Flatten):
            shape = (math.prod(shape),)
    return dense, nonzero


def size_metrics(policy: Policy) -> dict[str, int]:
    params_total, params_nonzero = params(policy)
    macs_dense, macs_nonzero = macs(policy)
    return {
        "params_total": params_total,
        "params_nonzero": params_nonzero,
        "bytes": storage_bytes(policy),
        "macs_dense": macs_dense,
        "macs_nonzero": macs_nonzero,
    }
