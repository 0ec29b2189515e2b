"""Change a policy's hidden widths (neurons of Linear layers, channels of Conv2d layers).

`resized` builds a fresh network with other widths and the teacher's preprocessing and
action head; fan-ins, including the Flatten between convolutions and the first Linear
layer, are recomputed from the observation shape.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from policypress.core.policy import Policy, conv_output_shape


def weighted_layers(policy: Policy) -> list[int]:
    """Indices in `policy.net` of the Linear and Conv2d layers."""
    return [i for i, layer in enumerate(policy.net) if isinstance(layer, (nn.Linear, nn.Conv2d))]


def hidden_widths(policy: Policy) -> list[int]:
    """Output width of every weighted layer but the last (whose width is the action dimension)."""
    layers = [policy.net[i] for i in weighted_layers(policy)[:-1]]
    return [layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels for layer in layers]


def hidden_layers(policy: Policy) -> dict[int, int]:
    """{index in `policy.net`: width} of the weighted layers whose units may be removed (all but the output)."""
    return dict(zip(weighted_layers(policy)[:-1], hidden_widths(policy), strict=True))


@torch.no_grad()
def layer_outputs(net: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every layer of `net` on `x`, in order."""
    outputs = []
    for layer in net:
        x = layer(x)
        outputs.append(x)
    return outputs


def resized_spec(policy: Policy, widths: list[int]) -> dict:
    """The spec of `policy` with the given hidden widths and every fan-in recomputed."""
    spec = policy.spec()
    hidden = iter(widths)
    last = weighted_layers(policy)[-1]
    shape = tuple(policy.net_input_shape)
    for index, layer in enumerate(spec["layers"]):
        if layer["type"] == "Linear":
            layer["in_features"] = shape[0]
            if index != last:
                layer["out_features"] = next(hidden)
            shape = (layer["out_features"],)
        elif layer["type"] == "Conv2d":
            layer["in_channels"] = shape[0]
            if index != last:
                layer["out_channels"] = next(hidden)
            shape = conv_output_shape(shape, layer["out_channels"], layer["kernel_size"], layer["stride"],
                                      layer["padding"])
        elif layer["type"] == "Flatten":
            shape = (math.prod(shape),)
    spec["masks"] = []
    return spec


def spec_param_count(spec: dict) -> int:
    """Parameters of a spec's layers, by arithmetic (no network is built)."""
    count = 0
    for layer in spec["layers"]:
        if layer["type"] == "Linear":
            count += (layer["in_features"] + layer["bias"]) * layer["out_features"]
        elif layer["type"] == "Conv2d":
            kernel = layer["kernel_size"][0] * layer["kernel_size"][1]
            count += (layer["in_channels"] * kernel + layer["bias"]) * layer["out_channels"]
    return count


def resized(policy: Policy, widths: list[int]) -> Policy:
    """A freshly initialised policy like `policy` with the given hidden widths."""
    student = Policy.from_spec(resized_spec(policy, widths))
    # Preprocessing statistics and action bounds are the teacher's, not learned.
    student.preprocess.load_state_dict(policy.preprocess.state_dict())
    student.head.load_state_dict(policy.head.state_dict())
    return student


def require_one_unit_fits(policy: Policy, max_params: int) -> None:
    """Raise ValueError unless a network like `policy` with one unit per hidden layer fits
    `max_params`: a structured method checks this before it spends any of its budget."""
    if spec_param_count(resized_spec(policy, [1] * len(hidden_widths(policy)))) > max_params:
        raise ValueError(f"even one unit per hidden layer exceeds the ceiling of {max_params} parameters")


def uniformly_shrunk(policy: Policy, max_params: int) -> Policy:
    """The widest student whose hidden widths are the teacher's scaled by one factor α ≤ 1
    (each at least 1) with at most `max_params` parameters."""
    teacher_widths = hidden_widths(policy)

    def widths(alpha: float) -> list[int]:
        return [max(1, round(alpha * w)) for w in teacher_widths]

    def fits(alpha: float) -> bool:
        return spec_param_count(resized_spec(policy, widths(alpha))) <= max_params

    require_one_unit_fits(policy, max_params)
    low, high = 0.0, 1.0
    if fits(1.0):
        low = 1.0
    for _ in range(40):  # bisection on α: the parameter count grows monotonically with α
        mid = (low + high) / 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return resized(policy, widths(low))
