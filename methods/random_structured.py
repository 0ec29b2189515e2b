"""random_structured: the control for structured pruning criteria.

The same rounds, sizes, slicing and distillation as `lrp_prune` (policypress/compress/structured.py),
but the units removed each round are drawn at random (uniform scores scaled by 1/width, as
LRP's scores are normalised per layer, so both spread removals over the layers alike). What `lrp_prune` (or any
structured criterion) gains over this row is what its criterion is worth.
"""

import torch

from policypress.compress.architecture import hidden_layers
from policypress.compress.structured import STRUCTURED_HYPERPARAMETERS, prune_iteratively
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

INFO = MethodInfo(
    name="random_structured",
    summary="Random neurons/filters removed to the level in rounds, each followed by distillation (a control).",
    citation="Control for structured pruning criteria, as in Blalock, Gonzalez Ortiz, Frankle, Guttag. "
             "What is the State of Neural Network Pruning? MLSys 2020.",
    hyperparameters=dict(STRUCTURED_HYPERPARAMETERS),
)


def compress(task: Task) -> Policy:
    def random_scores(policy: Policy, _obs: torch.Tensor) -> dict[int, torch.Tensor]:
        # Scaled by 1/width, as LRP's scores are normalised per layer: removals spread over the
        # layers alike, and only which units of a layer go is random.
        widths = hidden_layers(policy)
        return {index: torch.as_tensor(task.rng.random(width) / width) for index, width in widths.items()}

    return prune_iteratively(task, random_scores)
