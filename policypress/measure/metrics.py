"""Size and compute metrics of a `Policy`, computed from its layers by arithmetic (exact).

Conventions (docs/protocol.md, "Metrics"): the parameter count is the contract's (`policypress.core.params`);
storage counts each tensor in its own format. A MAC is one multiply-accumulate of a weight; bias
additions and activations are not MACs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from policypress.core.params import effective_parameters, is_int8, params
from policypress.core.policy import Policy, conv_output_shape

FLOAT_BYTES = 4
INT8_BYTES = 1


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


def macs(policy: Policy) -> tuple[int, int]:
    """(macs_dense, macs_nonzero) of one inference at batch 1.

    A Linear layer does in*out MACs; a Conv2d does out_h*out_w*(kernel MACs per output
    channel); with sparsity, only the nonzero weights do work (each is applied once per
    output position).
    """
    weights = effective_parameters(policy)
    shape = tuple(policy.net_input_shape)
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
