"""magnitude: global one-shot magnitude pruning to the level, then fine-tuning by distillation.

Algorithm:
1. Keep the largest-magnitude weights across all Linear/Conv2d weight tensors (one global
   threshold, torch.nn.utils.prune.global_unstructured with the L1 criterion) so that
   weights + biases fit the level's ceiling on nonzero parameters. Biases are never pruned.
2. Fine-tune the masked network by policy distillation from the teacher (KL at temperature τ
   on Q-values/logits, MSE on continuous actions) with the whole budget; masks are
   re-applied after every update.

Deviations: this is the standard one-shot baseline (Han et al. 2015 prune-then-retrain),
retrained by distillation rather than by the RL loss so that it spends the same budget as
the other distillation methods.
"""

from torch import nn
from torch.nn.utils import prune

from policypress.compress.distillation import DISTILL_HYPERPARAMETERS, DistillConfig, distill
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

INFO = MethodInfo(
    name="magnitude",
    summary="Global one-shot magnitude pruning to the level, then distillation fine-tuning under the mask.",
    citation=(
        "Han, Pool, Tran, Dally. Learning both Weights and Connections for Efficient Neural Networks. NeurIPS 2015."
    ),
    hyperparameters=dict(DISTILL_HYPERPARAMETERS),
    deviations="Fine-tuned by distillation from the teacher (not by the RL loss), within the env's budget.",
)


def prune_globally(policy: Policy, max_params: int) -> Policy:
    """Mask the smallest-magnitude weights so that at most `max_params` parameters are nonzero."""
    layers = [m for m in policy.net if isinstance(m, (nn.Linear, nn.Conv2d))]
    biases = sum(m.bias.numel() for m in layers if m.bias is not None)  # a zero bias may not stay zero
    weights = sum(m.weight.numel() for m in layers)
    keep = max_params - biases
    if keep < 0:
        raise ValueError(f"the biases alone ({biases}) exceed the ceiling of {max_params} parameters")
    prune.global_unstructured([(m, "weight") for m in layers], prune.L1Unstructured, amount=max(0, weights - keep))
    masks = {}
    for name, module in policy.net.named_children():
        if module in layers:
            masks[f"{name}.weight"] = module.weight_mask.bool()
            prune.remove(module, "weight")
    return Policy(policy.preprocess, policy.net, policy.head, policy.output, masks, policy.metadata)


def compress(task: Task) -> Policy:
    student = prune_globally(task.teacher.clone(), task.max_params)
    return distill(task, student, DistillConfig.from_hyperparameters(task.hyperparameters, student.output))
