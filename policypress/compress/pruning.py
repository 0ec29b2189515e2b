"""Unstructured pruning mechanisms shared by methods: sparsity schedules and magnitude masks."""

from __future__ import annotations

import math

import torch
from torch import nn

from policypress.core.params import params
from policypress.core.policy import Policy


def polynomial_sparsity(step: int, final: float, begin: int, end: int, initial: float = 0.0,
                        power: int = 3) -> float:
    """Zhu & Gupta (2017): s_t = s_f + (s_i - s_f) (1 - (t - t_0) / (t_end - t_0))^power on [t_0, t_end],
    s_i before it and s_f after it."""
    if step <= begin:
        return initial
    if step >= end:
        return final
    return final + (initial - final) * (1.0 - (step - begin) / (end - begin)) ** power


def weight_layers(policy: Policy) -> dict[str, nn.Module]:
    """Name of each Linear/Conv2d weight (as in `policy.masks`) -> its layer."""
    return {f"{index}.weight": layer for index, layer in enumerate(policy.net)
            if isinstance(layer, (nn.Linear, nn.Conv2d))}


def weight_count(policy: Policy) -> int:
    """Entries of the Linear/Conv2d weight tensors (biases excluded)."""
    return sum(layer.weight.numel() for layer in weight_layers(policy).values())


def ceiling_weights(policy: Policy, max_params: int) -> int:
    """Weights that fit under `max_params` nonzero parameters with every bias kept (biases are never pruned)."""
    return max_params - (params(policy)[0] - weight_count(policy))


@torch.no_grad()
def layerwise_magnitude_masks(policy: Policy, sparsity: float | dict[str, float]) -> dict[str, torch.Tensor]:
    """Per weight tensor, mask the `sparsity` fraction of smallest magnitudes (as TensorFlow's
    model_pruning does, per layer). Biases are never pruned. Already-masked weights are zero,
    so they stay masked as the sparsity rises."""
    masks = {}
    for name, layer in weight_layers(policy).items():
        target = sparsity[name] if isinstance(sparsity, dict) else sparsity
        weight = layer.weight * policy.masks[name] if name in policy.masks else layer.weight
        pruned = min(int(round(target * weight.numel())), weight.numel() - 1)  # a layer never dies entirely
        mask = torch.ones_like(weight, dtype=torch.bool)
        if pruned > 0:
            order = torch.argsort(weight.abs().flatten(), stable=True)  # ties: the lower index goes first
            mask.view(-1)[order[:pruned]] = False
        masks[name] = mask
    return masks


def erk_densities(shapes: dict[str, tuple[int, ...]], density: float) -> dict[str, float]:
    """Erdős–Rényi-Kernel layer densities (Evci et al. 2020, as JaxPruner's `dist_type='erk'`):
    density_l ∝ (sum of the tensor's dimensions) / (their product), scaled so that the kept
    weights are `density` of all weights; a layer that would exceed 1 is made dense and the
    others are rescaled."""
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: sum(shape) / sizes[name] for name, shape in shapes.items()}
    dense: set[str] = set()
    while True:
        budget = density * sum(sizes.values()) - sum(sizes[name] for name in dense)
        scale = budget / sum(raw[name] * sizes[name] for name in shapes if name not in dense)
        over = [name for name in shapes if name not in dense and scale * raw[name] > 1.0]
        if not over:
            return {name: 1.0 if name in dense else scale * raw[name] for name in shapes}
        dense.add(max(over, key=lambda name: raw[name]))


def erk_masks(policy: Policy, max_weights: int) -> dict[str, torch.Tensor]:
    """Layer-wise magnitude masks keeping at most `max_weights` weights, spread over the layers by ERK."""
    layers = weight_layers(policy)
    sizes = {name: layer.weight.numel() for name, layer in layers.items()}
    densities = erk_densities({name: tuple(layer.weight.shape) for name, layer in layers.items()},
                              max_weights / sum(sizes.values()))
    exact = {name: densities[name] * sizes[name] for name in layers}
    kept = {name: max(1, math.floor(exact[name])) for name in layers}
    # Largest remainders take the rounding's leftover weights, so repeated calls do not drift.
    for name in sorted(layers, key=lambda n: exact[n] - math.floor(exact[n]), reverse=True):
        if sum(kept.values()) >= max_weights:
            break
        kept[name] = min(sizes[name], kept[name] + 1)
    return layerwise_magnitude_masks(policy, {name: 1.0 - kept[name] / sizes[name] for name in layers})
