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
INT8_BYTES = 1


@torch.no_grad()
def effective_parameters(policy: Policy) -> dict[str, torch.Tensor]:
    """The parameters as deployed: masked entries are zero whether or not they were zeroed yet,
    and int8 weights are their dequantized codes (a weight that rounds to 0 is zero)."""
    effective = {}
    for name, param in policy.net.named_parameters():
        if name in policy.masks:
            param = param * policy.masks[name]
        if is_int8(policy, name):
            param = policy.layer_quant(int(name.split(".")[0])).dequantized_weight(param)
        effective[name] = param
    return effective


def is_int8(policy: Policy, name: str) -> bool:
    """Whether parameter `name` ("<layer>.weight" or "<layer>.bias") is stored as int8."""
    layer, kind = name.split(".")
    return kind == "weight" and layer in policy.quant


def params(policy: Policy) -> tuple[int, int]:
    """(params_total, params_nonzero): masked and zero entries are not counted as nonzero."""
    tensors = effective_parameters(policy).values()
    return sum(t.numel() for t in tensors), sum(int(torch.count_nonzero(t)) for t in tensors)


def storage_bytes(policy: Policy) -> int:
    """Bytes of the parameters in their own format: each tensor dense, or sparse as nonzero
    values plus a one-bit-per-entry occupancy bitmap, whichever is smaller. Values are fp32, or
    int8 for quantized weights, which add their fp32 scales (one per output channel) and the
    input's scale and zero point."""
    total = 0
    for name, tensor in effective_parameters(policy).items():
        value_bytes = INT8_BYTES if is_int8(policy, name) else FLOAT_BYTES
        dense = tensor.numel() * value_bytes
        sparse = int(torch.count_nonzero(tensor)) * value_bytes + math.ceil(tensor.numel() / 8)
        total += min(dense, sparse)
    for quant in policy.quant.values():
        total += (quant.weight_scale.numel() + 1) * FLOAT_BYTES + INT8_BYTES
    return total


def conv_output_shape(shape: tuple[int, ...], out_channels: int, kernel_size, stride, padding) -> tuple[int, int, int]:
    """(channels, height, width) after a Conv2d on a (channels, height, width) input."""
    _, height, width = shape
    return (out_channels, (height + 2 * padding[0] - kernel_size[0]) // stride[0] + 1,
            (width + 2 * padding[1] - kernel_size[1]) // stride[1] + 1)


def macs(policy: Policy) -> tuple[int, int]:
    """(macs_dense, macs_nonzero) of one inference at batch 1.

    A Linear layer does in*out MACs; a Conv2d does out_h*out_w*(kernel MACs per output
    channel); with sparsity, only the nonzero weights do work (each is applied once per
    output position).
    """
    weights = effective_parameters(policy)
    shape = tuple(policy.obs_shape)
    dense = nonzero = 0
    for index, layer in enumerate(policy.net):
        if isinstance(layer, nn.Linear):
            dense += layer.in_features * layer.out_features
            nonzero += int(torch.count_nonzero(weights[f"{index}.weight"]))
            shape = (layer.out_features,)
        elif isinstance(layer, nn.Conv2d):
            shape = conv_output_shape(shape, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
            positions = shape[1] * shape[2]
            dense += positions * layer.weight.numel()
            nonzero += positions * int(torch.count_nonzero(weights[f"{index}.weight"]))
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
