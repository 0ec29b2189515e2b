"""Structural removal of hidden units (Linear neurons, Conv2d filters): the one place where a
network is sliced, so a pruned network is a dense smaller `Policy`, not a masked one.

The slicing is torch-pruning's dependency graph: removing a layer's output units also removes
every input that depends on them, the next Linear layer's columns, the next Conv2d's input
channels, or, through a Flatten, the next Linear layer's block of columns per channel.
"""

from __future__ import annotations

import copy

import torch
import torch_pruning as tp
from torch import nn

from policypress.compress.architecture import hidden_layers
from policypress.core.params import effective_parameters
from policypress.core.policy import Policy

# {index in `policy.net` of a hidden Linear/Conv2d layer: bool per output unit, True = kept}
Alive = dict[int, torch.Tensor]


def all_alive(policy: Policy) -> Alive:
    return {index: torch.ones(width, dtype=torch.bool) for index, width in hidden_layers(policy).items()}


def neuron_masks(policy: Policy, alive: Alive) -> dict[str, torch.Tensor]:
    """Masks that switch removed units off: their incoming weights and bias are zero, so their
    output is act(0) = 0 for ReLU and Tanh, exactly what slicing them away computes."""
    masks = {}
    for index, keep in alive.items():
        layer = policy.net[index]
        masks[f"{index}.weight"] = keep.view(-1, *([1] * (layer.weight.dim() - 1))).expand_as(layer.weight).clone()
        if layer.bias is not None:
            masks[f"{index}.bias"] = keep.clone()
    return masks


def sliced(policy: Policy, alive: Alive) -> Policy:
    """The dense policy without the units that `alive` marks False. Masks may only cover removed
    units (as `neuron_masks` does); any other mask would be lost, so it is an error."""
    for name, mask in policy.masks.items():
        index = int(name.split(".")[0])
        kept = mask if index not in alive else mask[alive[index]]
        if not bool(kept.all()):
            raise ValueError(f"mask {name!r} zeroes weights of kept units: only whole units can be sliced away")
    for index, keep in alive.items():
        if not bool(keep.any()):
            raise ValueError(f"layer {index} would lose every unit")
    net = copy.deepcopy(policy.net)
    effective = effective_parameters(policy)
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.copy_(effective[name])
    with torch.enable_grad():  # the dependency graph is traced through autograd
        graph = tp.DependencyGraph().build_dependency(net, example_inputs=torch.zeros(1, *policy.net_input_shape))
    for index, keep in alive.items():
        removed = (~keep).nonzero().flatten().tolist()
        if removed:
            layer = net[index]
            prune = tp.prune_conv_out_channels if isinstance(layer, nn.Conv2d) else tp.prune_linear_out_channels
            graph.get_pruning_group(layer, prune, idxs=removed).prune()
    return Policy(copy.deepcopy(policy.preprocess), net, copy.deepcopy(policy.head), policy.output,
                  metadata=policy.metadata)
