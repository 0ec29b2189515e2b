"""The parameter count that defines a level: a policy's deployed parameters and their nonzeros.

Parameters are the weights and biases of the deployed network; preprocessing statistics and
action bounds are constants and not counted (docs/protocol.md, "Metrics"). The harness caps
`params(policy)[1]` at `floor(level x the teacher's)`; the measure stage reports the same count.
"""

from __future__ import annotations

import torch

from policypress.core.policy import Policy


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
