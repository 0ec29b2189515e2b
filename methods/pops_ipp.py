"""pops_ipp: ablation of PoPS, the IPP stage alone (pruning by distillation, no shrinking).

The Zhu-Gupta ramp ends at the layer-wise sparsity that fits the level's ceiling; the
evaluation gate pauses it as in PoPS; the sparsest model that met the objective is kept,
pruned further to the ceiling if needed, and fine-tuned under its mask with the rest of the
budget. What it shows: what PoPS's pruning half achieves as a sparse (not smaller) network.
Deviations: as `pops` (relative thresholds, budget-scaled phases).
"""

from pathlib import Path

from policypress.core.registry import MethodInfo, load_method

pops = load_method("pops", [str(Path(__file__).parent)]).module  # the PoPS plugin beside this file

INFO = MethodInfo(
    name="pops_ipp",
    summary="PoPS ablation: iterative policy pruning by distillation to the level, without shrinking.",
    citation="Livne, Cohen. PoPS, IEEE JSTSP 2020: the IPP stage (Sec. on iterative policy pruning).",
    hyperparameters=dict(pops.POPS_HYPERPARAMETERS),
    deviations="The ramp targets the level's sparsity instead of 99%; otherwise as pops.",
)


def compress(task):
    return pops.run_ipp_only(task)
