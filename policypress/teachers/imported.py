"""Import a teacher trained outside PolicyPress: an SB3 model zip (with its VecNormalize statistics) or an
rl-baselines3-zoo run folder, converted into exactly the teacher folder `train_teacher` writes.

Loading an SB3 zip executes code from it (it carries cloudpickled objects): import only files you
trust. VecNormalize statistics (a pickle) load through an unpickler that builds only the classes
such a file holds. Nothing here reads a leaderboard artifact,
whose policies are safetensors and JSON.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import torch
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm

from policypress.core.envs import Validator, make_env
from policypress.core.guard import env_creation
from policypress.core.sb3 import ALGORITHMS, ConversionError, to_policy, trained_optimizer_steps
from policypress.core.specs import SpecError
from policypress.teachers.training import floor_check, write_teacher

# Replaced on loading: schedules pickled by another Python or SB3 version may not unpickle, and
# inference does not need them (rl-baselines3-zoo's enjoy.py does the same).
UNNEEDED_OBJECTS = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "exploration_schedule": lambda _: 0.0,
                    "clip_range": lambda _: 0.0}
# The checkpoint-selection episodes an imported teacher's validation return is the mean of.
VALIDATION_EPISODES = 5
CONVERSION = ("policypress.core.sb3.to_policy: the deployed actor (DQN's Q-network; QR-DQN's quantile network with "
              "the mean over quantiles folded into its last layer; PPO/A2C's features, policy MLP and action net; "
              "SAC/TD3's actor) with VecNormalize's observation statistics")
# An imported agent must share the env spec's teacher algorithm (the during-training track trains that
# one); QR-DQN, whose deployed policy is a Q-network too, goes with a DQN spec.
COMPATIBLE = {"qrdqn": "dqn"}
# The algorithms whose models convert: SB3's, and sb3-contrib's QR-DQN.
IMPORTABLE = (*ALGORITHMS, "qrdqn")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def algo_of(model_path: Path) -> str:
    """The algorithm that saved a zip, from the module of its policy class (in the zip's `data`) and, for
    the actor-critic policy PPO and A2C share, from PPO's own `n_epochs`."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            data = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as err:
        raise SpecError(f"{model_path}: not a stable-baselines3 model zip ({err})") from err
    module = data.get("policy_class", {}).get("__module__", "")  # e.g. stable_baselines3.dqn.policies
    if module == "stable_baselines3.common.policies":  # PPO's and A2C's shared ActorCriticPolicy
        return "ppo" if "n_epochs" in data else "a2c"
    for name in IMPORTABLE:
        if f".{name}." in f".{module}.":
            return name
    raise SpecError(f"{model_path}: policy_class: {module!r} is not the policy of an importable algorithm "
                    f"({', '.join(IMPORTABLE)}); pass --algo")


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    if name != "qrdqn":
        return ALGORITHMS[name]
    try:
        from sb3_contrib import QRDQN
    except ImportError as err:
        raise SpecError("a QR-DQN model needs sb3-contrib (pip install sb3-contrib)") from err
    return QRDQN


def load_model(model_path: Path, algo: str | None, algo_source: str = "--algo") -> tuple[BaseAlgorithm, str]:
    algo = algo or algo_of(model_path)
    if algo not in IMPORTABLE:
        raise SpecError(f"{algo_source}: {algo!r} is not one of {sorted(IMPORTABLE)}")
    try:
        model = algorithm_class(algo).load(model_path, device="cpu", custom_objects=UNNEEDED_OBJECTS)
    except Exception as err:  # whatever the user's file raises, one line that names it
        raise SpecError(f"{model_path}: cannot load as {algo} ({type(err).__name__}: {err})") from err
    return model, algo


class StatisticsUnpickler(pickle.Unpickler):
    """Unpickles VecNormalize statistics and nothing else: only the classes such a file holds (SB3's
    VecNormalize and RunningMeanStd, numpy arrays and generators, gymnasium spaces) may be built, so a
    crafted file cannot call arbitrary functions while it loads."""

    ALLOWED = ("numpy", "stable_baselines3.common.vec_env.vec_normalize", "stable_baselines3.common.running_mean_std",
               "gymnasium.spaces", "collections", "copyreg")

    def find_class(self, module: str, name: str):
        if any(module == allowed or module.startswith(f"{allowed}.") for allowed in self.ALLOWED):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of VecNormalize statistics")


def load_vecnormalize(path: Path, obs_shape: tuple[int, ...]):
    """VecNormalize statistics as SB3 pickles them (`VecNormalize.save`), through `StatisticsUnpickler`;
    the venv is not needed to read them."""
    try:
        with open(path, "rb") as file:
            stats = StatisticsUnpickler(file).load()
    except Exception as err:
        raise SpecError(f"{path}: cannot read VecNormalize statistics ({type(err).__name__}: {err})") from err
    if not hasattr(stats, "obs_rms"):
        raise SpecError(f"{path}: obs_rms: missing, not VecNormalize statistics")
    if tuple(stats.obs_rms.mean.shape) != tuple(obs_shape):
        raise SpecError(f"{path}: obs_rms: statistics of shape {tuple(stats.obs_rms.mean.shape)}, the env gives "
                        f"{tuple(obs_shape)}")
    return stats


class ZooLoader(yaml.SafeLoader):
    """Reads rl-baselines3-zoo's `config.yml`/`args.yml`: safe YAML plus the OrderedDict they are dumped as."""


ZooLoader.add_constructor(
    "tag:yaml.org,2002:python/object/apply:collections.OrderedDict",
    lambda loader, node: dict(loader.construct_sequence(node, deep=True)[0]),
)


def read_zoo_run(folder: Path) -> dict:
    """The files and settings of an rl-baselines3-zoo run folder (`logs/<algo>/<env_id>_<n>/`): the final
    model `<env_id>.zip`, which the zoo's enjoy.py loads by default and whose statistics the final
    vecnormalize.pkl holds (best_model.zip only where the final one is missing), and from
    `<env_id>/`: args.yml (env id, algo, seed), config.yml (hyperparameters and preprocessing) and
    vecnormalize.pkl when the run normalized."""
    params = [path.parent for path in folder.glob("*/config.yml")]
    if len(params) != 1:
        raise SpecError(f"{folder}: not an rl-baselines3-zoo run folder (expected one <env_id>/config.yml, "
                        f"found {len(params)})")
    params = params[0]
    args = load_zoo_yaml(params / "args.yml")
    config = load_zoo_yaml(params / "config.yml")
    env_id = args.get("env", params.name)
    model = folder / f"{env_id}.zip"
    if not model.is_file():
        model = folder / "best_model.zip"
    if not model.is_file():
        raise SpecError(f"{folder}: neither {env_id}.zip nor best_model.zip is there")
    vecnormalize = params / "vecnormalize.pkl"
    if config.get("normalize") and not vecnormalize.is_file():
        raise SpecError(f"{params / 'config.yml'}: normalize: the run normalized, but {vecnormalize} is missing")
    return {"env_id": env_id, "algo": args.get("algo"), "model": model, "config": config, "args": params / "args.yml",
            "vecnormalize": vecnormalize if vecnormalize.is_file() else None}


def load_zoo_yaml(path: Path) -> dict:
    if not path.is_file():
        raise SpecError(f"{path}: file not found")
    try:
        return yaml.load(path.read_text(), Loader=ZooLoader) or {}  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid zoo YAML ({err})") from err


def check_zoo_preprocessing(env_spec: dict, zoo: dict) -> None:
    """An imported zoo teacher must be evaluated on the env it was trained on: the spec's `zoo` section
    declares the zoo preprocessing it reproduces (env_wrapper, frame_stack), and they must agree."""
    declared = env_spec.get("zoo", {})
    if zoo["env_id"] != env_spec["gym_id"]:
        raise SpecError(f"{zoo['args']}: env: the zoo run trained on {zoo['env_id']!r}, "
                        f"envs/{env_spec['name']}.yaml's gym_id is {env_spec['gym_id']!r}")
    for key in ("env_wrapper", "frame_stack"):
        if zoo["config"].get(key) != declared.get(key):
            raise SpecError(f"{zoo['args'].with_name('config.yml')}: {key}: the zoo run used "
                            f"{zoo['config'].get(key)!r}, while envs/{env_spec['name']}.yaml's zoo.{key} reproduces "
                            f"{declared.get(key)!r}")


def import_teacher(env_spec: dict, out_dir: str | Path, profile: str, seed: int, model_path: str | Path | None = None,
                   vecnormalize_path: str | Path | None = None, algo: str | None = None,
                   zoo_run: str | Path | None = None) -> dict:
    """Convert an outside SB3 model into the teacher folder (model.zip, policy/, policy.onnx, teacher.json).

    teacher.json records the source files with their sha256, the conversion, what the model's training
    spent (from the zip: env steps and the optimizer steps SB3's counters imply; the during-training
    track's budget builds on it), and the mean return on the env's validation seeds.
    """
    out_dir = Path(out_dir)
    torch.set_num_threads(1)
    source: dict = {"kind": "imported"}
    algo_source = "--algo"
    if zoo_run is not None:
        if model_path is not None or vecnormalize_path is not None:
            raise SpecError("--zoo-run: the run folder brings its own model and vecnormalize.pkl; "
                            "pass --model/--vecnormalize instead, not both")
        zoo = read_zoo_run(Path(zoo_run))
        check_zoo_preprocessing(env_spec, zoo)
        model_path, vecnormalize_path = zoo["model"], zoo["vecnormalize"]
        if algo is None:
            algo, algo_source = zoo["algo"], f"{zoo['args']}: algo"
        source.update({"zoo_run": str(zoo_run), "zoo_config": zoo["config"]})
    if model_path is None:
        raise SpecError("--model: a model zip (or --zoo-run) is required")
    model_path = Path(model_path)
    if not model_path.is_file():
        raise SpecError(f"{model_path}: file not found")
    model, algo = load_model(model_path, algo, algo_source)
    spec_algo = env_spec["teacher"]["algo"]
    if COMPATIBLE.get(algo, algo) != spec_algo:
        raise SpecError(f"{model_path}: algo: a {algo} agent, while envs/{env_spec['name']}.yaml's teacher is "
                        f"{spec_algo} (the during-training methods train the spec's algorithm): use a spec with a "
                        f"{COMPATIBLE.get(algo, algo)} teacher")
    with env_creation():
        env = make_env(env_spec)
    vec_normalize = None
    source.update({"model": str(model_path), "model_sha256": sha256(model_path), "conversion": CONVERSION})
    if vecnormalize_path is not None:
        vec_normalize = load_vecnormalize(Path(vecnormalize_path), env.observation_space.shape)
        source.update({"vecnormalize": str(vecnormalize_path), "vecnormalize_sha256": sha256(Path(vecnormalize_path))})
    env_shape, model_shape = env.observation_space.shape, model.observation_space.shape
    channels_last = len(env_shape) == 3 and model_shape == (env_shape[2], *env_shape[:2]) and env_shape != model_shape
    if env_shape != model_shape and not channels_last:
        raise SpecError(f"{model_path}: observation_space: the model takes {model.observation_space.shape}, "
                        f"envs/{env_spec['name']}.yaml gives {env.observation_space.shape}")
    if env.action_space != model.action_space:
        raise SpecError(f"{model_path}: action_space: the model acts in {model.action_space}, "
                        f"envs/{env_spec['name']}.yaml in {env.action_space}")
    try:
        policy = to_policy(model, vec_normalize, channels_last=channels_last)
    except ConversionError as err:
        raise SpecError(f"{model_path}: {err}") from err
    validation_return = Validator(env_spec, VALIDATION_EPISODES, 1)(policy)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path, out_dir / ".model.tmp.zip")
    (out_dir / ".model.tmp.zip").replace(out_dir / "model.zip")
    return write_teacher(out_dir, policy, env_spec, profile, seed, {
        "algo": algo,
        "source": source,
        "timesteps": int(model.num_timesteps),
        "train_seconds": None,
        "training_cost": {"env_steps": int(model.num_timesteps), "gradient_updates": trained_optimizer_steps(model)},
        "device": "cpu",
        "checkpoints": [],
        "validation_return": validation_return,
        **floor_check(env_spec["teacher"], validation_return, env_spec["name"], seed),
    })

