"""distill_int8: policy distillation to the level, then post-training int8 quantization.

Algorithm: exactly `distill` (Rusu et al. 2016: a dense student with the teacher's layers and
widths scaled to fit the level, trained on teacher-labelled states), then `int8`'s
quantization (Jacob et al. 2018) calibrated on `calibration_states` of the states the
distillation collected, so calibration costs no extra budget. Compared with `distill` at the
same level, it shows what int8 costs in return and saves in bytes, flash and instructions.

Deviations: those of `distill` and `int8`; no quantization-aware fine-tuning (post-training only).
"""

from policypress.compress.architecture import uniformly_shrunk
from policypress.compress.distillation import DISTILL_HYPERPARAMETERS, DistillConfig, LabelledStates, distill
from policypress.compress.quantization import quantized
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

INFO = MethodInfo(
    name="distill_int8",
    summary="Distillation into a dense student sized to the level, then post-training int8 quantization.",
    citation=(
        "Rusu et al. Policy Distillation. ICLR 2016; Jacob et al. Quantization and Training of Neural "
        "Networks for Efficient Integer-Arithmetic-Only Inference. CVPR 2018."
    ),
    hyperparameters={**DISTILL_HYPERPARAMETERS, "calibration_states": 1000},
    deviations="Those of distill and int8; post-training quantization only, no quantization-aware fine-tuning.",
)


def compress(task: Task) -> Policy:
    config = DistillConfig.from_hyperparameters(task.hyperparameters, task.teacher.output)
    buffer = LabelledStates(config.buffer_size)
    student = distill(task, uniformly_shrunk(task.teacher, task.max_params), config, buffer=buffer)
    states = buffer.observations().numpy()
    if len(states) == 0:
        raise ValueError("the budget affords no calibration state")
    chosen = task.rng.choice(len(states), min(task.hyperparameters["calibration_states"], len(states)), replace=False)
    return quantized(student, states[chosen])
