"""Deployable bundles: a measured run's policy as C, header, ONNX, metrics, README and Makefile."""
