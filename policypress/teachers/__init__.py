"""Teachers: trained here from an env spec (`training`) or imported from an outside SB3 or
rl-baselines3-zoo agent (`imported`); both write the same teacher folder."""

from policypress.teachers.training import TrainingMonitor, floor_check, train_teacher, write_teacher

__all__ = ["TrainingMonitor", "floor_check", "train_teacher", "write_teacher"]
