"""The one policy format every teacher is converted to and every method returns.

A `Policy` is observation preprocessing, a sequence of layers from a small allowed set (with
optional masks for unstructured sparsity and optional int8 quantization), and an action head. It is saved as safetensors
weights plus a JSON architecture spec (never pickle), so any artifact loads safely, and
every metric (parameters, MACs, bytes, latency, exports) is computed from this one format.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from policypress.core.io import atomic_dir

FORMAT = "policypress.policy/1"
# A policy that takes channels-last frames: a reader of format 1 would ignore the transpose and compute
# wrong actions, so such a policy says it needs a newer reader.
FORMAT_CHANNELS_LAST = "policypress.policy/2"
SPEC_FILE = "policy.json"
WEIGHTS_FILE = "weights.safetensors"

# Constructor arguments that describe each allowed layer type; nothing else may appear.
LAYER_ARGS: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "Linear": (nn.Linear, ("in_features", "out_features")),
    "Conv2d": (nn.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride", "padding")),
    "Flatten": (nn.Flatten, ()),
    "ReLU": (nn.ReLU, ()),
    "Tanh": (nn.Tanh, ()),
}
OUTPUT_KINDS = ("q_values", "logits", "action")
HEAD_KINDS = ("argmax", "rescale", "clip")
# Marks the forward pre-hooks that seal a task's teacher (policypress.core.guard.seal); a clone drops them.
SEAL = "policypress_seal"


def resolve_device(request: str) -> torch.device:
    """The torch device for a config's `device`: `auto` takes a GPU when one is present. Call it in
    the process that will use the device: asking for CUDA before a fork breaks CUDA in the child."""
    if request == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(request)


class PolicyFormatError(ValueError):
    """A policy that does not follow the format: unknown layer, bad spec, wrong tensors."""


class LayerQuant(nn.Module):
    """int8 inference of one Linear or Conv2d layer.

    The input is quantized per tensor to uint8, q = clamp(round(x / input_scale) + zero_point,
    0, 255); the weight per output channel to int8, w_q = clamp(round(w / weight_scale[o]),
    -127, 127). The products are accumulated exactly as integers and rescaled:
    y[o] = (input_scale * weight_scale[o]) * Σ (q - zero_point) w_q + bias[o].
    ONNX (QuantizeLinear + MatMulInteger/ConvInteger) and the C int8 kernel compute the same.
    """

    WEIGHT_MAX = 127

    def __init__(self, out_channels: int):
        super().__init__()
        self.register_buffer("input_scale", torch.ones(()))
        self.register_buffer("input_zero_point", torch.zeros((), dtype=torch.int32))
        self.register_buffer("weight_scale", torch.ones(out_channels))

    def input_codes(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(torch.round(x / self.input_scale) + self.input_zero_point, 0, 255)

    def weight_codes(self, weight: torch.Tensor) -> torch.Tensor:
        scale = self.weight_scale.view(-1, *[1] * (weight.dim() - 1))
        return torch.clamp(torch.round(weight / scale), -self.WEIGHT_MAX, self.WEIGHT_MAX)

    def dequantized_weight(self, weight: torch.Tensor) -> torch.Tensor:
        return self.weight_codes(weight) * self.weight_scale.view(-1, *[1] * (weight.dim() - 1))

    def output_scale(self) -> torch.Tensor:
        return self.input_scale * self.weight_scale

    def forward(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # float64 holds every int32 accumulator exactly, as the integer kernels do.
        q = (self.input_codes(x) - self.input_zero_point).double()
        w = self.weight_codes(layer.weight).double()
        if isinstance(layer, nn.Conv2d):
            acc = F.conv2d(q, w, None, layer.stride, layer.padding)
            scale = self.output_scale().view(-1, 1, 1)
        else:
            acc = F.linear(q, w)
            scale = self.output_scale()
        y = acc.float() * scale
        if layer.bias is not None:
            y = y + (layer.bias.view(-1, 1, 1) if isinstance(layer, nn.Conv2d) else layer.bias)
        return y


class Preprocess(nn.Module):
    """Observation preprocessing: VecNormalize statistics and/or scaling (1/255 for images), then, for
    image observations stacked channels-last (rl-baselines3-zoo's Atari: H x W x frames), the transpose
    to the channels-first layout the network takes (SB3's VecTransposeImage)."""

    def __init__(self, obs_shape: tuple[int, ...], normalize: dict | None = None, scale: float | None = None,
                 channels_last: bool = False):
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.normalize = normalize  # {"clip": float, "epsilon": float} or None
        self.scale = scale
        self.channels_last = channels_last
        if channels_last and len(self.obs_shape) != 3:
            raise PolicyFormatError(f"preprocess.channels_last: needs an image observation, not {self.obs_shape}")
        if normalize is not None:
            self.register_buffer("mean", torch.zeros(self.obs_shape))
            self.register_buffer("var", torch.ones(self.obs_shape))

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The shape the network takes."""
        if self.channels_last:
            height, width, channels = self.obs_shape
            return channels, height, width
        return self.obs_shape

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.float()
        if self.normalize is not None:
            obs = (obs - self.mean) / torch.sqrt(self.var + self.normalize["epsilon"])
            obs = torch.clamp(obs, -self.normalize["clip"], self.normalize["clip"])
        if self.scale is not None:
            obs = obs * self.scale
        return obs.movedim(-1, -3) if self.channels_last else obs

    def spec(self) -> dict:
        spec = {"obs_shape": list(self.obs_shape), "normalize": self.normalize, "scale": self.scale}
        return {**spec, "channels_last": True} if self.channels_last else spec


class ActionHead(nn.Module):
    """argmax over Q-values/logits; rescale [-1, 1] to the action bounds; or clip to them."""

    def __init__(self, kind: str, action_dim: int):
        super().__init__()
        if kind not in HEAD_KINDS:
            raise PolicyFormatError(f"head.kind: {kind!r} is not one of {HEAD_KINDS}")
        self.kind = kind
        self.action_dim = action_dim
        if kind != "argmax":
            self.register_buffer("low", torch.full((action_dim,), -1.0))
            self.register_buffer("high", torch.full((action_dim,), 1.0))

    def forward(self, out: torch.Tensor) -> torch.Tensor:
        if self.kind == "argmax":
            return out.argmax(dim=-1)
        if self.kind == "rescale":
            return self.low + 0.5 * (out + 1.0) * (self.high - self.low)
        return torch.maximum(torch.minimum(out, self.high), self.low)

    def spec(self) -> dict:
        return {"kind": self.kind, "action_dim": self.action_dim}


def layer_spec(module: nn.Module) -> dict:
    """The JSON description of one allowed layer."""
    kind = type(module).__name__
    if kind not in LAYER_ARGS or type(module) is not LAYER_ARGS[kind][0]:
        raise PolicyFormatError(f"layer type {kind!r} is not allowed (allowed: {sorted(LAYER_ARGS)})")
    spec: dict[str, Any] = {"type": kind}
    for arg in LAYER_ARGS[kind][1]:
        value = getattr(module, arg)
        spec[arg] = list(value) if isinstance(value, tuple) else value
    if kind in ("Linear", "Conv2d"):
        spec["bias"] = module.bias is not None
    if kind == "Flatten" and (module.start_dim, module.end_dim) != (1, -1):
        raise PolicyFormatError("Flatten must flatten all but the batch dimension")
    return spec


def _weighted_layer(net: nn.Sequential, key: str) -> nn.Module:
    """The Linear or Conv2d layer that `quantized` entry `key` names."""
    layer = net[int(key)] if key.isdigit() and int(key) < len(net) else None
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        raise PolicyFormatError(f"quantized: layer {key} is not a Linear or Conv2d layer")
    return layer


def build_layer(spec: dict) -> nn.Module:
    kind = spec.get("type")
    if kind not in LAYER_ARGS:
        raise PolicyFormatError(f"layers: type {kind!r} is not allowed (allowed: {sorted(LAYER_ARGS)})")
    cls, args = LAYER_ARGS[kind]
    kwargs = {arg: spec[arg] for arg in args}
    if "bias" in spec:
        kwargs["bias"] = spec["bias"]
    return cls(**kwargs)


class Policy(nn.Module):
    """A deployable policy: `preprocess` → `net` (allowed layers, optional masks) → `head`.

    `forward` returns the raw network output (Q-values, logits or pre-head action), which is
    what distillation matches; `act` returns environment actions. `quant` maps the index (as
    a string) of a Linear or Conv2d layer to its `LayerQuant`; such a layer runs in int8.
    """

    def __init__(
        self,
        preprocess: Preprocess,
        net: nn.Sequential,
        head: ActionHead,
        output: str,
        masks: dict[str, torch.Tensor] | None = None,
        metadata: dict | None = None,
        quant: dict[str, LayerQuant] | None = None,
    ):
        super().__init__()
        if output not in OUTPUT_KINDS:
            raise PolicyFormatError(f"output: {output!r} is not one of {OUTPUT_KINDS}")
        self.preprocess = preprocess
        self.net = net
        self.head = head
        self.output = output
        self.masks: dict[str, torch.Tensor] = {k: v.bool() for k, v in (masks or {}).items()}
        self.metadata = dict(metadata or {})
        for module in net:
            layer_spec(module)  # rejects disallowed layer types early
        params = dict(self.net.named_parameters())
        for name, mask in self.masks.items():
            if name not in params or params[name].shape != mask.shape:
                raise PolicyFormatError(f"mask {name!r} does not match a parameter of the net")
        self.quant = nn.ModuleDict(quant or {})
        for key, layer_quant in self.quant.items():
            layer = _weighted_layer(net, key)
            if layer_quant.weight_scale.shape != (layer.weight.shape[0],):
                raise PolicyFormatError(f"quantized: layer {key} needs one weight scale per output channel")
            if not (layer_quant.input_scale > 0 and (layer_quant.weight_scale > 0).all()):
                raise PolicyFormatError(f"quantized: layer {key} has a scale that is not positive")
            if not 0 <= int(layer_quant.input_zero_point) <= 255:
                raise PolicyFormatError(f"quantized: layer {key} has an input zero point outside 0..255")

    # -- inference -------------------------------------------------------------------------
    def layer_quant(self, index: int) -> LayerQuant | None:
        """The int8 parameters of layer `index`, or None for a float layer."""
        return self.quant[str(index)] if str(index) in self.quant else None

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """The observation's shape, as the environment gives it."""
        return self.preprocess.obs_shape

    @property
    def net_input_shape(self) -> tuple[int, ...]:
        """The shape the network's first layer takes (channels first for images)."""
        return self.preprocess.output_shape

    @property
    def is_discrete(self) -> bool:
        return self.head.kind == "argmax"

    @property
    @torch.no_grad()
    def output_size(self) -> int:
        """Values the network outputs per observation (Q-values, logits or the action mean)."""
        return int(self(torch.zeros((1, *self.obs_shape), device=self.device)).shape[1])

    @property
    def action_size(self) -> int:
        """Floats in an action: one (the index) for a discrete policy."""
        return 1 if self.is_discrete else self.head.action_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(obs)
        if not self.quant:
            return self.net(x)
        for index, layer in enumerate(self.net):
            key = str(index)
            x = self.quant[key](layer, x) if key in self.quant else layer(x)
        return x

    @property
    def device(self) -> torch.device:
        """Where its weights are: the CPU, except inside a training loop that runs on a GPU."""
        return next(self.net.parameters(), torch.empty(0)).device

    def _apply(self, fn, recurse=True):
        """`.to(device)` and friends move the masks with the weights (a plain dict, not buffers: they
        are saved as their own tensors)."""
        super()._apply(fn, recurse)
        self.masks = {name: fn(mask) for name, mask in self.masks.items()}
        return self

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions for one observation or a batch, like SB3's predict."""
        obs = np.asarray(obs)
        single = obs.shape == self.obs_shape
        batch = torch.as_tensor(obs[None] if single else obs, device=self.device)
        actions = self.head(self(batch)).cpu().numpy()
        return actions[0] if single else actions

    # -- sparsity --------------------------------------------------------------------------
    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero the masked weights; call after every optimizer step when training with masks."""
        params = dict(self.net.named_parameters())
        for name, mask in self.masks.items():
            params[name].mul_(mask)

    def clone(self) -> Policy:
        """A deep copy; a sealed teacher's copy is unsealed (it is the method's own to run and train)."""
        return copy.deepcopy(self).unsealed()

    def unsealed(self) -> Policy:
        """This policy, without the hooks that seal a task's teacher."""
        for module in self.modules():
            for key, hook in list(module._forward_pre_hooks.items()):  # torch has no public way to list them
                if getattr(hook, SEAL, False):
                    del module._forward_pre_hooks[key]
        return self

    # -- persistence -----------------------------------------------------------------------
    def spec(self) -> dict:
        return {
            "format": FORMAT_CHANNELS_LAST if self.preprocess.channels_last else FORMAT,
            "output": self.output,
            "preprocess": self.preprocess.spec(),
            "layers": [layer_spec(m) for m in self.net],
            "head": self.head.spec(),
            "masks": sorted(self.masks),
            "quantized": sorted(self.quant, key=int),
            "metadata": self.metadata,
        }

    def save(self, directory: str | Path) -> None:
        """Write spec + weights atomically: a killed job never leaves a half-written policy."""
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        tensors.update({f"mask.{k}": v.to(torch.uint8).contiguous() for k, v in self.masks.items()})
        with atomic_dir(directory) as tmp:
            (tmp / SPEC_FILE).write_text(json.dumps(self.spec(), indent=2))
            save_file(tensors, tmp / WEIGHTS_FILE)

    @classmethod
    def from_spec(cls, spec: dict) -> Policy:
        """A freshly initialised policy with the given architecture."""
        if spec.get("format") not in (FORMAT, FORMAT_CHANNELS_LAST):
            raise PolicyFormatError(f"format: expected {FORMAT!r} or {FORMAT_CHANNELS_LAST!r}, "
                                    f"got {spec.get('format')!r}")
        try:
            pre = spec["preprocess"]
            if pre.get("channels_last", False) != (spec["format"] == FORMAT_CHANNELS_LAST):
                raise PolicyFormatError(f"preprocess.channels_last: only a {FORMAT_CHANNELS_LAST!r} policy takes "
                                        "channels-last frames")
            preprocess = Preprocess(tuple(pre["obs_shape"]), pre.get("normalize"), pre.get("scale"),
                                    pre.get("channels_last", False))
            net = nn.Sequential(*(build_layer(layer) for layer in spec["layers"]))
            head = ActionHead(spec["head"]["kind"], spec["head"]["action_dim"])
            quant = {str(i): LayerQuant(_weighted_layer(net, str(i)).weight.shape[0])
                     for i in spec.get("quantized", [])}
            return cls(preprocess, net, head, spec["output"], metadata=spec.get("metadata"), quant=quant)
        except PolicyFormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            raise PolicyFormatError(f"policy spec is missing or has a malformed field: {err}") from err

    @classmethod
    def load(cls, directory: str | Path) -> Policy:
        directory = Path(directory)
        spec = json.loads((directory / SPEC_FILE).read_text())
        policy = cls.from_spec(spec)
        tensors = load_file(directory / WEIGHTS_FILE)
        masks = {k.removeprefix("mask."): v.bool() for k, v in tensors.items() if k.startswith("mask.")}
        state = {k: v for k, v in tensors.items() if not k.startswith("mask.")}
        try:
            policy.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise PolicyFormatError(f"{directory / WEIGHTS_FILE}: tensors do not match the spec") from err
        if sorted(masks) != spec["masks"]:
            raise PolicyFormatError(f"{directory / SPEC_FILE}: masks: listed masks differ from the stored ones")
        return cls(policy.preprocess, policy.net, policy.head, policy.output, masks, policy.metadata,
                   dict(policy.quant))


def conv_output_shape(shape: tuple[int, ...], out_channels: int, kernel_size, stride, padding) -> tuple[int, int, int]:
    """(channels, height, width) after a Conv2d on a (channels, height, width) input."""
    _, height, width = shape
    return (out_channels, (height + 2 * padding[0] - kernel_size[0]) // stride[0] + 1,
            (width + 2 * padding[1] - kernel_size[1]) // stride[1] + 1)
