"""Post-training static int8 quantization of a `Policy`, calibrated on observed states.

The scheme is onnxruntime's per-channel static quantization (`quantize_static` with MinMax
calibration, `activation_type=QUInt8`, `weight_type=QInt8`, `per_channel=True`: uint8
activations per tensor, symmetric int8 weights per output channel, float bias). It is written
here on the policy format because the result must stay a `Policy` that the harness measures,
exports and deploys like any other (`LayerQuant` defines its arithmetic). The ONNX export
stores the same int8 codes as uint8 (+128), because onnxruntime's kernels for int8 weights
saturate on x86 CPUs without VNNI (`policypress/measure/onnx_export.py`); the integers computed, and
so the returns, are the same.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from policypress.core.policy import LayerQuant, Policy

WEIGHTED = (nn.Linear, nn.Conv2d)


@torch.no_grad()
def input_ranges(policy: Policy, observations: np.ndarray) -> dict[int, tuple[float, float]]:
    """(min, max) of the float input of every Linear and Conv2d layer over the observations."""
    x = policy.preprocess(torch.as_tensor(np.asarray(observations), dtype=torch.float32))
    ranges = {}
    for index, layer in enumerate(policy.net):
        if isinstance(layer, WEIGHTED):
            ranges[index] = (float(x.min()), float(x.max()))
        x = layer(x)
    return ranges


@torch.no_grad()
def layer_quant(layer: nn.Module, low: float, high: float) -> LayerQuant:
    """Input range widened to include 0 (zero must be exact, as ONNX requires); symmetric
    weight scales max|w| / 127 per output channel (1 for an all-zero channel)."""
    low, high = min(low, 0.0), max(high, 0.0)
    quant = LayerQuant(layer.weight.shape[0])
    scale = (high - low) / 255.0 if high > low else 1.0
    quant.input_scale.fill_(scale)
    quant.input_zero_point.fill_(int(np.clip(round(-low / scale), 0, 255)))
    largest = layer.weight.abs().flatten(1).amax(dim=1)
    quant.weight_scale.copy_(torch.where(largest > 0, largest / LayerQuant.WEIGHT_MAX, torch.ones_like(largest)))
    return quant


@torch.no_grad()
def quantized(policy: Policy, calibration_obs: np.ndarray) -> Policy:
    """A copy of `policy` whose Linear and Conv2d layers run in int8, calibrated on the states.

    Masks are kept (a masked weight quantizes to 0); the float weights are snapped to their
    int8 grid, so the stored policy shows exactly the values it computes with.
    """
    student = policy.clone()
    student.apply_masks()
    quant = {}
    for index, (low, high) in input_ranges(student, calibration_obs).items():
        layer = student.net[index]
        quant[str(index)] = layer_quant(layer, low, high)
        layer.weight.copy_(quant[str(index)].dequantized_weight(layer.weight))
    return Policy(student.preprocess, student.net, student.head, student.output, student.masks,
                  student.metadata, quant)
