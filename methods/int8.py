"""int8: post-training static int8 quantization of the teacher.

Algorithm (Jacob et al. 2018, in onnxruntime's per-channel static configuration):
1. The teacher plays `calibration_states` steps of the environment (env steps and teacher
   queries are charged); these are the calibration states.
2. Each Linear/Conv2d input is quantized per tensor to uint8 with the range (min, max) it
   takes on the calibration states, widened to include 0; each weight per output channel to
   int8, symmetric, with scale max|w| / 127. Biases stay float. Products accumulate in int32
   (`policypress/compress/quantization.py`, `LayerQuant`).
The parameter count does not change, so the method runs once, at level 1, beside `dense`;
`distill_int8` quantizes distilled students that fit the lower levels.

Deviations: the paper quantizes weights per layer to asymmetric uint8; here they are per output
channel and symmetric int8, as onnxruntime and TFLite later recommend (more accurate when
channels' ranges differ, and no weight zero point in the inner loop). The paper also folds
batch norm and quantizes the bias to int32 and the outputs to uint8 for integer-only hardware;
policies here have no batch norm, and float bias and output keep the action head exact at a
cost of one float multiply-add per output.
"""

from policypress.compress.distillation import Collector, LabelledStates
from policypress.compress.quantization import quantized
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

INFO = MethodInfo(
    name="int8",
    summary="Post-training static int8 quantization of the teacher (uint8 activations, per-channel int8 weights).",
    citation=(
        "Jacob, Kligys, Chen, et al. Quantization and Training of Neural Networks for Efficient "
        "Integer-Arithmetic-Only Inference. CVPR 2018."
    ),
    hyperparameters={"calibration_states": 1000},
    uses_level=False,
    deviations=(
        "Weights per output channel, symmetric int8 (the paper: per layer, asymmetric uint8); no batch norm to "
        "fold; bias and outputs stay float (integer-only hardware would quantize them too)."
    ),
)


def compress(task: Task) -> Policy:
    states = min(task.hyperparameters["calibration_states"], task.remaining("env_steps"),
                 task.remaining("teacher_queries"))
    buffer = LabelledStates(max(states, 1))
    Collector(task).collect(task.teacher, states, 1.0, buffer)
    if len(buffer) == 0:
        raise ValueError("the budget affords no calibration state")
    task.log.info("calibrating on %d teacher states", len(buffer))
    return quantized(task.teacher, buffer.observations().numpy())
