"""ONNX export of a `Policy`: observation in, action (and the raw network output) out.

Preprocessing and the action head are inside the graph, as deployed. The graph is built node by
node with onnx.helper rather than traced by torch.onnx: the policy format is a closed set of
five layer types, and its int8 layers must become integer ONNX ops (QuantizeLinear +
MatMulInteger / ConvInteger), which onnxruntime runs with integer kernels; torch.onnx exports
fake quantization as float Gemms that dequantize the weights at every inference.

The integer ops take uint8 weights (the int8 codes + 128, zero point 128): the same integers,
computed exactly on x86 CPUs with or without VNNI. With int8 weights (U8S8), onnxruntime's x86
kernels on CPUs without VNNI (AVX2, or AVX-512 without its VNNI extension) multiply with
VPMADDUBSW, whose int16 sum of two products saturates above 32,767 (255 x 127 x 2 = 64,770), so
the outputs depended on the CPU. Its x86 U8U8 kernels widen both operands to 16 bits and add
pairs of products in int32 (VPMADDWD), which cannot saturate; onnxruntime's quantization guide
names U8U8 as the format without saturation (its ARM kernels were not measured here). The int32
accumulator is exact while the fan-in keeps sum(a * b) <= fan_in x 255 x 255 within int32
(`MAX_INTEGER_FAN_IN`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from policypress.core.io import write_bytes
from policypress.core.params import effective_parameters
from policypress.core.policy import LayerQuant, Policy

OPSET = 17
IR_VERSION = 8  # the IR of opset 17; newer onnx packages default to IRs onnxruntime may not read yet
INPUT, ACTION, OUTPUT = "obs", "action", "output"
WEIGHT_ZERO_POINT = 128  # int8 codes -127..127 stored as uint8 1..255
# The largest fan-in whose raw products sum (uint8 x uint8, before the zero points are
# subtracted, as MLAS accumulates them) cannot overflow int32.
MAX_INTEGER_FAN_IN = (2**31 - 1) // (255 * 255)


class OnnxExportError(ValueError):
    """The policy has a layer that the integer ONNX ops cannot compute exactly."""


class _Graph:
    """Nodes and constants, with fresh names."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []

    def const(self, value, dtype=np.float32) -> str:
        name = f"c{len(self.constants)}"
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attributes) -> str:
        output = output or f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], **attributes))
        return output


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _preprocess(graph: _Graph, policy: Policy, x: str) -> str:
    pre = policy.preprocess
    if pre.normalize is not None:
        std = torch.sqrt(pre.var + pre.normalize["epsilon"])
        x = graph.op("Div", graph.op("Sub", x, graph.const(_numpy(pre.mean))), graph.const(_numpy(std)))
        clip = pre.normalize["clip"]
        x = graph.op("Clip", x, graph.const(-clip), graph.const(clip))
    if pre.scale is not None:
        x = graph.op("Mul", x, graph.const(pre.scale))
    if pre.channels_last:
        x = graph.op("Transpose", x, perm=[0, 3, 1, 2])
    return x


def _weighted(graph: _Graph, index: int, layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None,
              quant: LayerQuant | None, x: str) -> str:
    conv = isinstance(layer, nn.Conv2d)
    attributes = {}
    if conv:
        (ph, pw) = layer.padding
        attributes = {"strides": list(layer.stride), "pads": [ph, pw, ph, pw], "kernel_shape": list(layer.kernel_size)}
    channel_shape = (-1, 1, 1) if conv else (-1,)
    if quant is None:
        inputs = [x, graph.const(_numpy(weight))]
        if bias is not None:
            inputs.append(graph.const(_numpy(bias)))
        return graph.op("Conv", *inputs, **attributes) if conv else graph.op("Gemm", *inputs, transB=1)
    fan_in = weight[0].numel()
    if fan_in > MAX_INTEGER_FAN_IN:
        raise OnnxExportError(f"int8 layer {index} ({type(layer).__name__}) has fan-in {fan_in}, above "
                              f"{MAX_INTEGER_FAN_IN}, where its int32 accumulator could overflow")
    zero_point = graph.const(_numpy(quant.input_zero_point), np.uint8)
    codes = graph.op("QuantizeLinear", x, graph.const(_numpy(quant.input_scale)), zero_point)
    weight_codes = (_numpy(quant.weight_codes(weight)).astype(np.int16) + WEIGHT_ZERO_POINT).astype(np.uint8)
    weight_zero_point = graph.const(WEIGHT_ZERO_POINT, np.uint8)
    if conv:
        acc = graph.op("ConvInteger", codes, graph.const(weight_codes, np.uint8), zero_point, weight_zero_point,
                       **attributes)
    else:
        acc = graph.op("MatMulInteger", codes, graph.const(weight_codes.T, np.uint8), zero_point, weight_zero_point)
    y = graph.op("Mul", graph.op("Cast", acc, to=TensorProto.FLOAT),
                 graph.const(_numpy(quant.output_scale()).reshape(channel_shape)))
    if bias is not None:
        y = graph.op("Add", y, graph.const(_numpy(bias).reshape(channel_shape)))
    return y


def _head(graph: _Graph, policy: Policy, out: str) -> str:
    head = policy.head
    if head.kind == "argmax":
        return graph.op("ArgMax", out, axis=1, keepdims=0, output=ACTION)
    if head.kind == "rescale":  # low + 0.5 * (out + 1) * (high - low), in torch's order
        half = graph.op("Mul", graph.op("Add", out, graph.const(1.0)), graph.const(0.5))
        scaled = graph.op("Mul", half, graph.const(_numpy(head.high - head.low)))
        return graph.op("Add", scaled, graph.const(_numpy(head.low)), output=ACTION)
    return graph.op("Max", graph.op("Min", out, graph.const(_numpy(head.high))), graph.const(_numpy(head.low)),
                    output=ACTION)


def policy_model(policy: Policy) -> onnx.ModelProto:
    """The policy as an ONNX model (batch dimension free), checked by onnx's checker."""
    graph = _Graph()
    weights = effective_parameters(policy)
    x = _preprocess(graph, policy, INPUT)
    for index, layer in enumerate(policy.net):
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            x = _weighted(graph, index, layer, weights[f"{index}.weight"], weights.get(f"{index}.bias"),
                          policy.layer_quant(index), x)
        elif isinstance(layer, nn.Flatten):
            x = graph.op("Flatten", x, axis=1)
        else:
            x = graph.op({"ReLU": "Relu", "Tanh": "Tanh"}[type(layer).__name__], x)
    x = graph.op("Identity", x, output=OUTPUT)
    _head(graph, policy, x)
    outputs = [helper.make_tensor_value_info(ACTION, TensorProto.INT64 if policy.is_discrete else TensorProto.FLOAT,
                                             ["batch"] if policy.is_discrete else ["batch", policy.head.action_dim]),
               helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", "outputs"])]
    inputs = [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", *policy.obs_shape])]
    model = helper.make_model(helper.make_graph(graph.nodes, "policy", inputs, outputs, graph.constants),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="policypress",
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(policy: Policy, path: str | Path) -> Path:
    """Write the policy's ONNX model (atomically)."""
    write_bytes(path, policy_model(policy).SerializeToString())
    return Path(path)
