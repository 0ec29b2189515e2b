"""`policypress export RUN --out DIR`: a run's policy as a bundle an embedded engineer can build.

The bundle is generated from the run's own `policy/` (safetensors and JSON: nothing in a run folder
is unpickled) by the same code that measured it: the C file of `measure.c_export`, the ONNX file of
`measure.onnx_export`, and a Makefile with the flags `measure.embedded` built it with.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from policypress.core.envs import make_env
from policypress.core.guard import env_creation
from policypress.core.io import read_json, write_text
from policypress.core.policy import Policy
from policypress.core.specs import SpecError, load_env_spec
from policypress.measure.c_export import TEMPLATES as C_TEMPLATES
from policypress.measure.c_export import export_c
from policypress.measure.embedded import CORTEX_M4_FLAGS, HOST_FLAGS
from policypress.measure.onnx_export import export_onnx

TEMPLATES = Path(__file__).parent / "templates"
MAX_LISTED_COMPONENTS = 32  # larger observations (images) are described by their shape


def bounds(space) -> list[tuple[float, float]]:
    """Each component's (low, high) of a Box, flattened in C order."""
    return list(zip(np.asarray(space.low).reshape(-1), np.asarray(space.high).reshape(-1), strict=True))


def observation_doc(space, channels_last: bool) -> tuple[str, list[str]]:
    """The observation's layout in one line, and one line per component with its bounds where it is small."""
    shape = tuple(space.shape)
    layout = f"the environment's observation of shape {shape} flattened in C (row-major) order"
    if len(shape) == 3 and channels_last:
        layout += (f" (channels last: obs[(h * {shape[1]} + w) * {shape[2]} + c], {shape[2]} channels of "
                   f"{shape[0]}x{shape[1]}; pp_act transposes them for the network)")
    elif len(shape) == 3:
        layout += (f" (channels first: obs[(c * {shape[1]} + h) * {shape[2]} + w], {shape[0]} channels of "
                   f"{shape[1]}x{shape[2]})")
    if int(np.prod(shape)) > MAX_LISTED_COMPONENTS:
        return layout + f", each in [{space.low.min():g}, {space.high.max():g}].", []
    return layout + ":", [f"obs[{i}] in [{low:g}, {high:g}]" for i, (low, high) in enumerate(bounds(space))]


def action_doc(space) -> tuple[str, str]:
    if hasattr(space, "n"):
        return (f"action[0] is the index of the chosen action, 0 to {int(space.n) - 1}, as a float.",
                "action[0]: the chosen action's index")
    text = ", ".join(f"action[{i}] in [{low:g}, {high:g}]" for i, (low, high) in enumerate(bounds(space)))
    return f"{int(np.prod(space.shape))} floats, within the action bounds: {text}.", "action[i]: within its bounds"


def preprocessing_doc(policy: Policy) -> str:
    steps = []
    if policy.preprocess.normalize is not None:
        steps.append("VecNormalize's running mean and variance, then clipping to "
                     f"±{policy.preprocess.normalize['clip']:g}")
    if policy.preprocess.scale is not None:
        steps.append(f"scaling by {policy.preprocess.scale:g}")
    return "; ".join(steps)


def export_bundle(run_dir: str | Path, out_dir: str | Path, env_spec: dict | None = None) -> Path:
    """Write policy.c, policy.h, harness.c, Makefile, policy.onnx, metrics.json, run.json and README.md
    (`env_spec`: the run's env spec, when it is not envs/ENV.yaml)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not (run_dir / "run.json").is_file():
        raise SpecError(f"{run_dir}: not a run folder (no run.json; runs are results/runs/ENV/SEED/METHOD/LEVEL)")
    run = read_json(run_dir / "run.json")
    if run["status"] != "valid":
        raise SpecError(f"{run_dir / 'run.json'}: status: {run['status']} ({run['reason']}): nothing to export")
    policy = Policy.load(run_dir / "policy")
    spec = env_spec or load_env_spec(run["env"])
    with env_creation():
        env = make_env(spec)
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else None
    out_dir.mkdir(parents=True, exist_ok=True)

    choices = export_c(policy, out_dir / "policy.c")
    export_onnx(policy, out_dir / "policy.onnx")
    shutil.copyfile(C_TEMPLATES / "harness.c", out_dir / "harness.c")
    shutil.copyfile(run_dir / "run.json", out_dir / "run.json")
    if metrics is not None:
        shutil.copyfile(run_dir / "metrics.json", out_dir / "metrics.json")

    with torch.no_grad():
        output_size = int(policy(torch.zeros(1, *policy.obs_shape)).shape[1])
    obs_layout, obs_components = observation_doc(env.observation_space, policy.preprocess.channels_last)
    action_text, action_short = action_doc(env.action_space)
    title = f"{run['env']} {run['method']} (seed {run['seed']}, level {run['level']:g})"
    values = {
        "title": title, "gym_id": spec["gym_id"], "env": run["env"], "method": run["method"], "seed": run["seed"],
        "level": f"{run['level']:g}", "level_free": run.get("level_free", False), "run_dir": str(run_dir),
        "obs_size": int(np.prod(policy.obs_shape)), "output_size": output_size,
        "action_size": 1 if policy.is_discrete else policy.head.action_dim, "output_kind": policy.output,
        "obs_layout": obs_layout, "obs_components": obs_components, "preprocessing": preprocessing_doc(policy),
        "action_doc": action_text, "action_short": action_short, "metrics": metrics,
        "episodes": len(metrics["returns"]) if metrics else 0,
        "kernels": ", ".join(f"layer {c.layer} {c.kernel}" for c in choices),
        "machine": metrics["machine"]["cpu"] if metrics else "", "host_flags": " ".join(HOST_FLAGS),
        "m4_flags": " ".join(CORTEX_M4_FLAGS),
    }
    templates = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True)
    for name in ("policy.h", "Makefile", "README.md"):
        write_text(out_dir / name, templates.get_template(f"{name}.j2").render(**values))
    return out_dir
