"""Standalone C export of a `Policy`: one C99 file, no dependencies, no dynamic allocation.

Each weighted layer gets a kernel chosen for it, and the choice is recorded:
- int8 layers (`Policy.quant`) use int8 kernels (the input quantized to uint8, exact int32
  accumulation, one float rescale per output), float layers fp32 kernels;
- the weights are stored dense, or as CSR (values, 16-bit input offsets, 32-bit row starts)
  when CSR is both smaller (flash) and faster (Cortex-M4 cycles). A CSR nonzero costs more
  cycles than a dense weight (an indexed load, no unrolled or SIMD loop), so CSR is faster only
  below a density: `benchmarks/sparse_crossover.py` measures it, and docs/embedded.md shows the table.
Preprocessing and the action head are in the file, as deployed. The template is
`policypress/measure/c/policy.c.j2`; `policypress/measure/embedded.py` builds, runs and measures it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from torch import nn

from policypress.core.io import write_text
from policypress.core.params import effective_parameters
from policypress.core.policy import LayerQuant, Policy, conv_output_shape

TEMPLATES = Path(__file__).parent / "c"
FLOAT_BYTES, INT8_BYTES, OFFSET_BYTES, ROW_BYTES = 4, 1, 2, 4
MAX_OFFSET = 2**16 - 1
STORAGES = ("auto", "dense", "sparse")  # "auto" is the rule; the others force one, for benchmarks
# The weight density below which CSR takes fewer Cortex-M4 cycles than dense, measured with
# benchmarks/sparse_crossover.py on MLP layers (the embedded target's cycles, not the host's
# instructions: on x86 the dense int8 loop vectorizes, and CSR wins there only below 0.09) and
# applied to convolutions too.
CSR_BREAK_EVEN_DENSITY = {"f32": 0.39, "i8": 0.43}


class CExportError(ValueError):
    """A policy the C export cannot express (e.g. a padded convolution)."""


@dataclasses.dataclass
class KernelChoice:
    """The kernel of one weighted layer and the weight bytes of each storage it could use."""

    layer: int
    kernel: str  # dense_f32, conv_f32, sparse_f32, dense_i8, conv_i8, sparse_i8
    dense_bytes: int
    sparse_bytes: int | None  # None: the offsets do not fit in 16 bits
    macs: int  # multiply-accumulates the kernel executes per inference (a CSR kernel: its nonzeros only)

    @property
    def weight_bytes(self) -> int:
        return self.sparse_bytes if self.kernel.startswith("sparse") else self.dense_bytes


def _literals(values: np.ndarray, ctype: str) -> str:
    flat = values.reshape(-1)
    if ctype == "float":
        items = [f"{v:.9e}f" for v in flat.astype(np.float32).tolist()]  # 9 digits: exact for float32
    else:
        items = [str(int(v)) for v in flat.tolist()]
    return "\n".join("    " + ", ".join(items[i:i + 8]) + "," for i in range(0, len(items), 8))


class _Source:
    """The arrays, steps and kernels of the C file being generated."""

    def __init__(self, storage: str):
        if storage not in STORAGES:
            raise ValueError(f"storage: {storage!r} is not one of {STORAGES}")
        self.storage = storage
        self.arrays: list[dict] = []
        self.steps: list[dict] = []
        self.used: set[str] = set()
        self.choices: list[KernelChoice] = []
        self.column_size = {"f32": 0, "i8": 0}  # the im2col buffer of each kind of convolution

    def array(self, name: str, ctype: str, values, dsp_values=None) -> str:
        """A constant array; `dsp_values`, where given, is what a Cortex-M with the DSP extension
        stores instead (the same weights in its kernel's order: one copy is compiled in)."""
        values = np.asarray(values)
        self.arrays.append({"name": name, "type": ctype, "length": max(values.size, 1),
                            "literals": _literals(values, ctype) if values.size else "    0",
                            "dsp_literals": None if dsp_values is None else _literals(np.asarray(dsp_values), ctype)})
        return name


def _sparse_rows(weight: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of a (rows, columns) matrix: nonzero values, their input offsets, row starts."""
    rows, cols = np.nonzero(weight)
    starts = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=weight.shape[0]))])
    return weight[rows, cols], offsets[cols], starts


def dsp_order(matrix: np.ndarray) -> np.ndarray:
    """Each row's weights in groups of four stored as w0 w2 w1 w3 (a short tail as it is): the
    order the int8 kernel's SXTB16 unpacks into the pairs SMLAD multiplies (policy.c.j2)."""
    rows, columns = matrix.shape
    full = columns - columns % 4
    grouped = matrix[:, :full].reshape(rows, -1, 4)[:, :, [0, 2, 1, 3]].reshape(rows, full)
    return np.concatenate([grouped, matrix[:, full:]], axis=1)


# The kernels' size arguments, named as in the template; a Linear layer is a 1x1 convolution.
KERNEL_ARGS = {"dense": ("in_c", "out_c"),
               "conv": ("in_c", "in_h", "in_w", "out_c", "k_h", "k_w", "s_h", "s_w", "out_h", "out_w"),
               "sparse": ("out_c", "out_h", "out_w", "in_w", "s_h", "s_w")}


def _geometry(index: int, layer: nn.Module, shape: tuple[int, ...]) -> dict[str, int]:
    if isinstance(layer, nn.Linear):
        return dict(in_c=layer.in_features, in_h=1, in_w=1, out_c=layer.out_features, k_h=1, k_w=1, s_h=1, s_w=1,
                    out_h=1, out_w=1)
    if tuple(layer.padding) != (0, 0):
        raise CExportError(f"layer {index}: Conv2d with padding {tuple(layer.padding)} has no C kernel")
    (in_c, in_h, in_w), (k_h, k_w), (s_h, s_w) = shape, layer.kernel_size, layer.stride
    _, out_h, out_w = conv_output_shape(shape, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
    return dict(in_c=in_c, in_h=in_h, in_w=in_w, out_c=layer.out_channels, k_h=k_h, k_w=k_w, s_h=s_h, s_w=s_w,
                out_h=out_h, out_w=out_w)


def _weighted_step(src: _Source, index: int, layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None,
                   quant: LayerQuant | None, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Add one Linear or Conv2d layer (its arrays, kernel and call); returns its output shape."""
    g = _geometry(index, layer, shape)
    dtype, ctype, value_bytes = ("i8", "int8_t", INT8_BYTES) if quant is not None else ("f32", "float", FLOAT_BYTES)
    matrix = (quant.weight_codes(weight) if quant is not None else weight).detach().numpy().reshape(g["out_c"], -1)
    # A weight's input, relative to the receptive field's origin (for Linear: its column).
    offsets = (np.arange(g["in_c"])[:, None, None] * g["in_h"] * g["in_w"]
               + np.arange(g["k_h"])[None, :, None] * g["in_w"] + np.arange(g["k_w"])).reshape(-1)
    nonzero = int(np.count_nonzero(matrix))
    dense_bytes = matrix.size * value_bytes
    sparse_bytes = (nonzero * (value_bytes + OFFSET_BYTES) + (g["out_c"] + 1) * ROW_BYTES
                    if offsets.max() <= MAX_OFFSET else None)
    if src.storage == "sparse" and sparse_bytes is None:
        raise CExportError(f"layer {index}: input offsets exceed 16 bits, so CSR storage cannot be used")
    faster = nonzero < CSR_BREAK_EVEN_DENSITY[dtype] * matrix.size
    sparse = sparse_bytes is not None and (src.storage == "sparse" or
                                           (src.storage == "auto" and sparse_bytes < dense_bytes and faster))
    form = "sparse" if sparse else "conv" if isinstance(layer, nn.Conv2d) else "dense"
    kernel = f"{form}_{dtype}"
    macs = (nonzero if sparse else matrix.size) * g["out_h"] * g["out_w"]
    choice = KernelChoice(index, kernel, dense_bytes, sparse_bytes, macs)
    src.choices.append(choice)
    src.used.add(kernel)

    if not sparse:
        src.used.add(f"dot_{dtype}")
    if form == "conv":
        src.column_size[dtype] = max(src.column_size[dtype], matrix.shape[1])
    if sparse:
        values, value_offsets, row_starts = _sparse_rows(matrix, offsets)
        weights = (f"{src.array(f'pp_values{index}', ctype, values)}, "
                   f"{src.array(f'pp_offsets{index}', 'uint16_t', value_offsets)}, "
                   f"{src.array(f'pp_rows{index}', 'uint32_t', row_starts)}")
    else:
        weights = src.array(f"pp_weight{index}", ctype, matrix, dsp_order(matrix) if quant is not None else None)
    bias = bias.detach().numpy() if bias is not None else np.zeros(g["out_c"], np.float32)
    scale = src.array(f"pp_scale{index}", "float", quant.output_scale().numpy()) if quant is not None else "0"
    x, code = "x", ""
    if quant is not None:
        src.used.add("quantize")
        x = "pp_codes"
        code = (f"quantize(x, pp_codes, {math.prod(shape)}, {float(quant.input_scale):.9e}f, "
                f"{int(quant.input_zero_point)});\n    ")
    sizes = ", ".join(str(g[arg]) for arg in KERNEL_ARGS[form])
    code += f"{kernel}({weights}, {scale}, {src.array(f'pp_bias{index}', 'float', bias)}, {x}, y, {sizes});"
    out_shape = (g["out_c"], g["out_h"], g["out_w"]) if isinstance(layer, nn.Conv2d) else (g["out_c"],)
    doc = (f"layer {index}: {type(layer).__name__} {'x'.join(map(str, shape))} -> {'x'.join(map(str, out_shape))}, "
           f"{kernel}, {nonzero} nonzero weights, {choice.weight_bytes} weight bytes")
    src.steps.append({"doc": doc, "code": code, "swaps": True, "kernel": kernel})
    return out_shape


def c_source(policy: Policy, storage: str = "auto") -> tuple[str, list[KernelChoice]]:
    """The C file of the policy, and the kernel chosen for each weighted layer."""
    src = _Source(storage)
    weights = effective_parameters(policy)
    shape = tuple(policy.net_input_shape)
    sizes = [math.prod(shape)]
    input_codes = 0
    for index, layer in enumerate(policy.net):
        size = math.prod(shape)
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            if policy.layer_quant(index) is not None:
                input_codes = max(input_codes, size)
            shape = _weighted_step(src, index, layer, weights[f"{index}.weight"], weights.get(f"{index}.bias"),
                                   policy.layer_quant(index), shape)
        elif isinstance(layer, nn.Flatten):
            src.steps.append({"doc": f"layer {index}: Flatten (the channel-major layout is already flat)",
                              "code": "", "swaps": False, "kernel": None})
            shape = (size,)
        else:
            activation = {"ReLU": "relu", "Tanh": "tanh_"}[type(layer).__name__]
            src.used.add(activation.rstrip("_"))
            src.steps.append({"doc": f"layer {index}: {type(layer).__name__}", "code": f"{activation}(x, {size});",
                              "swaps": False, "kernel": None})
        sizes.append(math.prod(shape))

    pre, head = policy.preprocess, policy.head
    normalize = None
    if pre.normalize is not None:
        src.array("pp_obs_mean", "float", pre.mean.numpy())
        src.array("pp_obs_std", "float", torch.sqrt(pre.var + pre.normalize["epsilon"]).numpy())
        clip = float(np.float32(pre.normalize["clip"]))
        normalize = {"low": f"{-clip:.9e}f", "high": f"{clip:.9e}f"}
    if head.kind == "rescale":
        src.array("pp_low", "float", head.low.numpy())
        src.array("pp_range", "float", (head.high - head.low).numpy())
    elif head.kind == "clip":
        src.array("pp_low", "float", head.low.numpy())
        src.array("pp_high", "float", head.high.numpy())
    output_size = math.prod(shape)
    jinja = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, trim_blocks=True,
                        lstrip_blocks=True, keep_trailing_newline=True)
    text = jinja.get_template("policy.c.j2").render(
        output_kind=policy.output, obs_size=sizes[0], obs_shape="x".join(map(str, policy.obs_shape)),
        output_size=output_size, action_size=1 if policy.is_discrete else head.action_dim,
        action_doc="the index of the best output, as a float" if policy.is_discrete else f"{head.action_dim} floats",
        arrays=src.arrays, steps=src.steps, used=src.used, buffer_size=max(sizes), input_codes_size=input_codes,
        column_size=src.column_size,
        normalize=normalize, scale=f"{float(np.float32(pre.scale)):.9e}f" if pre.scale is not None else None,
        head=head.kind,
        channels_last={"channels": pre.obs_shape[2], "plane": pre.obs_shape[0] * pre.obs_shape[1]}
        if pre.channels_last else None,
    )
    return text, src.choices


def export_c(policy: Policy, path: str | Path, storage: str = "auto") -> list[KernelChoice]:
    """Write the policy's C file (atomically); returns the kernel chosen for each weighted layer."""
    text, choices = c_source(policy, storage)
    write_text(path, text)
    return choices
