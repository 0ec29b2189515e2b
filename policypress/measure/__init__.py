"""Measurement of a policy: evaluation on held-out seeds, size and MAC counts, the ONNX and C exports,
latency, and embedded cost (instructions, Cortex-M4 flash and RAM). Imports only `core`.
"""
