"""Runs ONNX models on states and saves their outputs: `python onnx_runner.py in.npz out.npz model.onnx...`.

It imports only numpy and onnxruntime, so that it starts in seconds under an instruction-set
emulator (tests/test_export.py runs it on an emulated CPU without VNNI); the session options
are those of `policypress.measure.latency.session`, so its graph optimizations are the measured ones.
"""

import sys

import numpy as np
import onnxruntime as ort


def run(model: str, states: np.ndarray) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: states})


if __name__ == "__main__":
    inputs, output, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    states = np.load(inputs)
    results = {}
    for i, model in enumerate(models):
        for j, value in enumerate(run(model, states[f"m{i}"])):
            results[f"m{i}_{j}"] = value
    np.savez(output, **results)
