"""distill: policy distillation into a smaller dense student sized to the level.

Algorithm (Rusu et al. 2016):
1. The student has the teacher's layer structure with every hidden width (neurons, conv
   channels) scaled by one factor, the largest that fits the level's parameter ceiling.
2. It is trained from scratch on teacher-labelled states: KL(softmax(q_T/τ) ‖ softmax(q_S))
   with τ = 0.01 on DQN Q-values (τ = 1 on PPO/A2C logits), MSE on continuous actions,
   RMSProp, states from a DAgger-style teacher/student mix, within the env's budget.

Deviations: the paper's students were hand-designed per game; here the width follows from
the level so that every level gets a student. The paper collected data with the teacher
(ε = 0.05); here data comes from a teacher/student mix (DAgger), which needs fewer samples
and is common in later distillation work. The replay holds at most `buffer_size` states.
"""

from policypress.compress.architecture import uniformly_shrunk
from policypress.compress.distillation import DISTILL_HYPERPARAMETERS, DistillConfig, distill
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

INFO = MethodInfo(
    name="distill",
    summary="Policy distillation into a dense student whose widths are scaled to fit the level.",
    citation="Rusu, Colmenarejo, Gulcehre, et al. Policy Distillation. ICLR 2016 (arXiv:1511.06295).",
    hyperparameters=dict(DISTILL_HYPERPARAMETERS),
    deviations=(
        "Student widths are the teacher's scaled uniformly to the level, not hand-designed; data comes from a "
        "DAgger-style teacher/student mix rather than teacher play with epsilon = 0.05."
    ),
)


def compress(task: Task) -> Policy:
    student = uniformly_shrunk(task.teacher, task.max_params)
    task.log.info("student widths: %s", [p.shape[0] for p in student.net.parameters() if p.dim() > 1])
    return distill(task, student, DistillConfig.from_hyperparameters(task.hyperparameters, student.output))
