"""Compression mechanisms that several methods share: distillation, pruning schedules and masks, resizing,
structural slicing, structured pruning in rounds, DQN's TD loss, int8 quantization. Imports only `core`;
an algorithm that one method (and its ablations) uses lives in that method's plugin in `methods/`.
"""
