"""pops_shrink_once: ablation of PoPS, one prune-shrink-re-distil pass to the level's size.

One IPP whose ramp ends at the level's sparsity, one shrink by the PoPS rule (capped at the
level's ceiling), one re-distillation, then fine-tuning with the rest of the budget: PoPS
without its iteration. What it shows: what iterating contributes.
Deviations: as `pops` (relative thresholds, budget-scaled phases).
"""

from pathlib import Path

from policypress.core.registry import MethodInfo, load_method

pops = load_method("pops", [str(Path(__file__).parent)]).module  # the PoPS plugin beside this file

INFO = MethodInfo(
    name="pops_shrink_once",
    summary="PoPS ablation: a single prune, shrink to the level's size and re-distillation, no iteration.",
    citation="Livne, Cohen. PoPS, IEEE JSTSP 2020: one iteration of IPP + shrinking.",
    hyperparameters=dict(pops.POPS_HYPERPARAMETERS),
    deviations="The ramp targets the level's sparsity and the shrink is capped at the level's size; one pass.",
)


def compress(task):
    return pops.run_shrink_once(task)
