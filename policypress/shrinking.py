"""The PoPS shrinking rule: new dense widths from the redundancy that pruning found.

Livne & Cohen (2020), authors' code: each weight tensor i keeps P'_i = P_i (1 - r_i)
parameters, r_i = 1 - nnz_i / nnz_i(initial) from the best sparse model, and the new widths
are solved so that each layer holds about P'_i weights. The code solves a 3-hidden-layer MLP
(CartPole 4-256-256-128-2):

    h1 = P'_1 / d,   h3 = P'_4 / A
    h2 = ½ [ (P'_2 + P'_3) / (H1 + H3) + (P'_2 + P'_3) / (h1 + h3) ]
    h1 = (P'_1 + P'_2) / (d + h2),   h3 = (P'_4 + P'_3) / (A + h2)
    while params > previous size: decrement the largest width by 1

Generalised here (the reference's description) to any depth and to CNNs:
- MLP with n hidden layers: boundary widths from the first and last tensors; every interior
  width i as the average of its two estimates (P'_i + P'_{i+1}) / (H_{i-1} + H_{i+1}) with the
  old neighbour widths and with the current estimates of the neighbours, left to right; then
  the two boundary refinements. For n = 3 this is the code's formula exactly. For n = 1:
  h = (P'_1 + P'_2) / (d + A); for n = 2 the boundary estimates and their refinements.
- CNN: each conv's out-channels c_k = P'_k / (k_h k_w c_in) with the new c_in, conv channels
  being the unit; the fully connected part by the MLP rule with its fan-in d = c_last·h·w
  recomputed; then the last conv is reduced until the first FC layer's fan-in fits P'.
- Widths are truncated to integers, clamped to at least `min_width` (the code resets a width
  below 1 to 3 or 4 and recomputes its neighbours; the clamp is the simpler form) and to at
  most the old width (no layer grows), then
  the code's decrement loop keeps the result no larger than the previous network.
"""

from __future__ import annotations

import math

import torch

from policypress.architecture import hidden_widths, resized_spec, spec_param_count
from policypress.metrics import conv_output_shape
from policypress.policy import Policy
from policypress.pruning import weight_layers


def kept_counts(best: Policy, initial_nonzero: dict[str, int]) -> list[float]:
    """P'_i = P_i (1 - r_i) per weight tensor, from the best sparse model's nonzeros."""
    counts = []
    for name, layer in weight_layers(best).items():
        weight = layer.weight * best.masks[name] if name in best.masks else layer.weight
        redundancy = 1.0 - int(torch.count_nonzero(weight)) / initial_nonzero[name]
        counts.append(layer.weight.numel() * (1.0 - redundancy))
    return counts


def mlp_widths(d: float, actions: int, old: list[int], kept: list[float]) -> list[float]:
    """Widths of an MLP's n hidden layers from its n + 1 kept counts (see the module docstring)."""
    n = len(old)
    if n == 1:
        return [(kept[0] + kept[1]) / (d + actions)]
    h = [0.0] * n
    h[0], h[-1] = kept[0] / d, kept[-1] / actions
    for i in range(1, n - 1):
        h[i] = (kept[i] + kept[i + 1]) / (old[i - 1] + old[i + 1])
    for i in range(1, n - 1):
        h[i] = 0.5 * (h[i] + (kept[i] + kept[i + 1]) / (h[i - 1] + h[i + 1]))
    h[0] = (kept[0] + kept[1]) / (d + h[1])
    h[-1] = (kept[-1] + kept[-2]) / (actions + h[-2])
    return h


def shrunk_widths(policy: Policy, kept: list[float], previous_size: int, min_width: int = 3) -> list[int]:
    """New hidden widths for `policy`'s architecture, holding at most `previous_size` parameters."""
    layers = list(weight_layers(policy).values())
    convs = [layer for layer in layers[:-1] if isinstance(layer, torch.nn.Conv2d)]
    shape = tuple(policy.obs_shape)
    widths: list[float] = []
    for k, conv in enumerate(convs):
        channels = kept[k] / (conv.kernel_size[0] * conv.kernel_size[1] * shape[0])
        widths.append(channels)
        shape = conv_output_shape(shape, max(min_width, int(channels)), conv.kernel_size, conv.stride, conv.padding)
    fc_kept = kept[len(convs):]
    fc_old = hidden_widths(policy)[len(convs):]
    d = math.prod(shape)
    if fc_old:
        widths += mlp_widths(d, layers[-1].out_features, fc_old, fc_kept)
    old = hidden_widths(policy)
    result = [min(old_width, max(min_width, int(w))) for w, old_width in zip(widths, old, strict=True)]  # never wider
    if convs and fc_old:  # reduce the last conv until the first FC layer's fan-in fits its kept count
        positions = shape[1] * shape[2]
        while result[len(convs) - 1] > min_width and \
                result[len(convs) - 1] * positions * result[len(convs)] > fc_kept[0]:
            result[len(convs) - 1] -= 1
    while spec_param_count(resized_spec(policy, result)) > previous_size:
        largest = max(range(len(result)), key=lambda i: result[i])
        if result[largest] == 1:
            raise ValueError(f"no architecture of this shape fits in {previous_size} parameters")
        result[largest] -= 1
    return result
