# Validates the configuration once, before any job runs, and derives the DAG's targets from it.
# An invalid config, an unknown env or method, a malformed env spec or a plugin that cannot be
# imported stops here with one line naming the file and the field; no result is touched.
import hashlib
import shlex
import json
import os
import subprocess
import sys

import policypress
from policypress import PINNED_NUMERICS
from policypress.core.config import validate_config
from policypress.core.specs import SpecError, load_env_spec


def repository_path(path):
    """A file's path relative to the repository when it lies inside it (config/quick.yaml), else as given:
    the footer names a config as the repository does, not as one machine's folders do. (The compress
    jobs' `config_source`, named in their errors, stays as Snakemake gives it: it is one of their
    params, and a changed param reruns every finished job.)"""
    relative = os.path.relpath(os.path.abspath(path), workflow.basedir)
    return str(path) if relative.startswith("..") else relative


CONFIG_SOURCE = ", ".join(str(path) for path in workflow.configfiles) or "config"
CLAIMS = os.path.join(workflow.basedir, "config", "claims.yaml")  # the papers' claims, set beside the results
try:
    config, METHODS = validate_config(config, CONFIG_SOURCE)
except SpecError as err:
    sys.exit(f"policypress: error: {err}")  # one line, no traceback: the message says what to fix

PROFILE = config["profile"]
# Read once: the params functions below run for every job, and a dry run of the full profile has thousands.
ENV_SPECS = {env: load_env_spec(env) for env in config["envs"]}
FINGERPRINTS = {name: method.fingerprint() for name, method in METHODS.items()}
METHOD_DIR_ARGS = " ".join(f"--method-dir {d}" for d in config["method_dirs"])


def level_name(level):
    return f"{level:g}"


def levels_of(method):
    """A method that chooses its own size (or keeps the teacher's) runs once, at level 1; the others at
    their own levels where the config names them, else at the config's."""
    if not METHODS[method].info.uses_level:
        return [1.0]
    return (config["methods"][method] or {}).get("levels", config["levels"])


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
        spec = ENV_SPECS[wildcards.env]
        return json.dumps({key: spec.get(key) for key in keys}, sort_keys=True)

    return part


# What a job asks a scheduler for, per step and env family: runtime in minutes and memory in MB,
# about twice what benchmarks/teacher_cost.py and benchmarks/compress_cost.py measured at the
# full profile on one CPU core (docs/cost.md). Atari's memory is its replay
# buffers: 1e5 stacked frames (28 KB each) for the teacher's DQN, twice that for the TD methods.
RESOURCES = {
    "train_teacher": {"classic_control": (240, 4000), "box2d": (240, 4000), "mujoco": (1440, 8000),
                      "atari": (2880, 16000), "minatar": (60, 4000), "highway": (30, 4000)},
    "compress": {"classic_control": (240, 4000), "box2d": (240, 4000), "mujoco": (240, 4000),
                 "atari": (960, 10000), "minatar": (240, 4000), "highway": (240, 4000)},
}
GPU_FAMILIES = {"mujoco", "atari"}  # whose teacher and compress jobs ask for a GPU, unless the config's device is cpu


def family_resource(step, position):
    def value(wildcards):
        return RESOURCES[step][ENV_SPECS[wildcards.env]["family"]][position]

    return value


def time_limit_minutes(wildcards):
    """The method's time limit: its config option, else 90% of the compress job's runtime (the rest
    is the run's measurement, in the same job)."""
    options = config["methods"][wildcards.method] or {}
    return options.get("time_limit_minutes", 0.9 * family_resource("compress", 0)(wildcards))


def gpus(wildcards):
    return int(config["device"] != "cpu" and ENV_SPECS[wildcards.env]["family"] in GPU_FAMILIES)


def compress_device(wildcards):
    """The config's device for the families whose networks are worth a GPU; the CPU for the small
    MLPs of classic control and Box2D, which a GPU's per-kernel latency would only slow down."""
    return config["device"] if gpus(wildcards) else "cpu"


def method_fingerprint(wildcards):
    return FINGERPRINTS[wildcards.method]


def provenance():
    try:
        commit = subprocess.run(["git", "-C", workflow.basedir, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    config_sha256 = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    config_paths = ", ".join(repository_path(path) for path in workflow.configfiles) or "config"
    # The jobs inherit this process's environment, which importing policypress pinned (or the user set).
    numerics = " ".join(f"{name}={os.environ[name]}" for name in PINNED_NUMERICS if name in os.environ)
    if numerics and getattr(policypress, "_VML_KERNELS", None) is not None:
        numerics += "; MKL's VML functions computed by numpy (policypress/_vml.py)"
    return json.dumps({"profile": PROFILE, "config": config_paths, "config_sha256": config_sha256, "commit": commit,
                       "numerics": numerics or "not pinned"})


# Teachers a config imports (imported_teachers.ENV.SEED) instead of training them.
def imported_teacher(wildcards):
    """The files of a teacher the config imports (imported_teachers.ENV.SEED), or {} to train one."""
    seeds = config["imported_teachers"].get(wildcards.env, {})
    return {key: value for seed, files in seeds.items() if str(seed) == wildcards.seed for key, value in files.items()}


def imported_files(wildcards):
    return [value for key, value in imported_teacher(wildcards).items() if key != "algo"]


def teacher_command(wildcards):
    """`policypress import-teacher` for an imported teacher, else `train-teacher`."""
    files = imported_teacher(wildcards)
    if not files:
        return f"train-teacher --device {config['device']}"
    return "import-teacher " + " ".join(f"--{key.replace('_', '-')} {shlex.quote(str(value))}"
                                        for key, value in files.items())
