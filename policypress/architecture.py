"""Change a policy's hidden widths (neurons of Linear layers, channels of Conv2d layers).

`resized` builds a fresh network with other widths and the teacher's preprocessing and
action head; fan-ins, including the Flatten between convolutions and the first Linear
layer, are recomputed from the observation shape.
"""

from __future__ import annotations

import math

from torch import nn

from policypress.policy import Policy


def weighted_layers(policy: Policy) -> list[int]:
    """Indices in `policy.net` of the Linear and Conv2d layers."""
    return [i for i, layer in enumerate(policy.net) if isinstance(layer, (nn.Linear, nn.Conv2d))]


def hidden_widths(policy: Policy) -> list[int]:
    """Output width of every weighted layer but the last (whose width is the action dimension)."""
    layers = [policy.net[i] for i in weighted_layers(policy)[:-1]]
    return [layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels for layer in layers]


def resized(policy: Policy, widths: list[int]) -> Policy:
    """A freshly initialised policy like `policy` with the given hidden widths."""
    spec = policy.spec()
    hidden = iter(widths)
    last = weighted_layers(policy)[-1]
    shape = tuple(policy.obs_shape)
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
            (kh, kw), (sh, sw), (ph, pw) = layer["kernel_size"], layer["stride"], layer["padding"]
            shape = (layer["out_channels"], (shape[1] + 2 * ph - kh) // sh + 1, (shape[2] + 2 * pw - kw) // sw + 1)
        elif layer["type"] == "Flatten":
            shape = (math.prod(shape),)
    spec["masks"] = []
    student = Policy.from_spec(spec)
    # Preprocessing statistics and action bounds are the teacher's, not learned.
    student.preprocess.load_state_dict(policy.preprocess.state_dict())
    student.head.load_state_dict(policy.head.state_dict())
    return student


def param_count(policy: Policy) -> int:
    return sum(p.numel() for p in policy.net.parameters())


def uniformly_shrunk(policy: Policy, max_params: int) -> Policy:
    """The widest student whose hidden widths are the teacher's scaled by one factor α ≤ 1
    (each at least 1) with at most `max_params` parameters."""
    widths = hidden_widths(policy)

    def candidate(alpha: float) -> Policy:
        return resized(policy, [max(1, round(alpha * w)) for w in widths])

    if param_count(candidate(0.0)) > max_params:
        raise ValueError(f"even one unit per hidden layer exceeds the ceiling of {max_params} parameters")
    low, high = 0.0, 1.0
    if param_count(candidate(1.0)) <= max_params:
        return candidate(1.0)
    for _ in range(40):  # bisection on α: parameter count grows monotonically with α
        mid = (low + high) / 2
        low, high = (mid, high) if param_count(candidate(mid)) <= max_params else (low, mid)
    return candidate(low)
