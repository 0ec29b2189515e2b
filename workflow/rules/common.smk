# Validates the configuration once, before any job runs, and derives the DAG's targets from it.
# An invalid config, an unknown env or method, a malformed env spec or a plugin that cannot be
# imported stops here with one line naming the file and the field; no result is touched.
import json
import subprocess
import sys

from policypress.config import validate_config
from policypress.specs import SpecError, load_env_spec

CONFIG_SOURCE = ", ".join(str(path) for path in workflow.configfiles) or "config"
try:
    config, METHODS = validate_config(config, CONFIG_SOURCE)
except SpecError as err:
    sys.exit(f"policypress: error: {err}")  # one line, no traceback: the message says what to fix

PROFILE = config["profile"]
METHOD_DIR_ARGS = " ".join(f"--method-dir {d}" for d in config["method_dirs"])


def level_name(level):
    return f"{level:g}"


def levels_of(method):
    """A method that ignores the level (the dense reference) runs once, at level 1."""
    return config["levels"] if METHODS[method].info.uses_level else [1.0]


RUNS = [
    (env, seed, method, level_name(level))
    for env in config["envs"]
    for seed in config["seeds"]
    for method in config["methods"]
    for level in levels_of(method)
]


wildcard_constraints:
    env="|".join(config["envs"]),
    seed=r"\d+",
    method="|".join(config["methods"]),
    level=r"[0-9.e-]+",


def hyperparameter_overrides(wildcards):
    return json.dumps((config["methods"][wildcards.method] or {}).get("hyperparameters", {}))


# Rerun triggers: Snakemake reruns a job when its params change, so each job carries (as params)
# the parts of the env spec and the plugin code that determine its result.
def env_spec_part(*keys):
    def part(wildcards):
        spec = load_env_spec(wildcards.env)
        return json.dumps({key: spec.get(key) for key in keys}, sort_keys=True)

    return part


# What a teacher's job asks a scheduler for, by env family: Atari's replay buffer of 1e5 stacked
# frames and its 1e7 steps need memory, time and (unless device is cpu) a GPU.
TEACHER_RESOURCES = {  # family: (runtime in minutes, memory in MB, GPUs when the device may be one)
    "classic_control": (240, 4000, 0),
    "box2d": (240, 4000, 0),
    "mujoco": (1440, 8000, 1),
    "atari": (2880, 16000, 1),
}


def _teacher_resource(position):
    def resource(wildcards):
        family = load_env_spec(wildcards.env)["family"]
        value = TEACHER_RESOURCES[family][position]
        return 0 if position == 2 and config["device"] == "cpu" else value

    return resource


teacher_runtime, teacher_memory, teacher_gpus = (_teacher_resource(i) for i in range(3))


def method_fingerprint(wildcards):
    return METHODS[wildcards.method].fingerprint()


def provenance():
    try:
        commit = subprocess.run(["git", "-C", workflow.basedir, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return json.dumps({"profile": PROFILE, "config": CONFIG_SOURCE, "commit": commit})
