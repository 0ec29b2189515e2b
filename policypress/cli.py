"""`policypress <verb>`: one command per pipeline step; each Snakemake rule calls one of them."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from policypress.core.specs import SpecError, load_env_spec


def _train_teacher(args: argparse.Namespace) -> None:
    from policypress.teachers import train_teacher

    info = train_teacher(load_env_spec(args.env), args.profile, args.seed, args.out, args.device)
    print(f"teacher {args.env}/{args.seed}: mean return {sum(info['eval_returns']) / len(info['eval_returns']):.1f}")


def _import_teacher(args: argparse.Namespace) -> None:
    from policypress.teachers.imported import import_teacher

    info = import_teacher(load_env_spec(args.env), args.out, args.profile, args.seed, args.model, args.vecnormalize,
                          args.algo, args.zoo_run)
    returns = info["eval_returns"]
    print(f"imported {info['source']['model']} as the {args.env} teacher in {args.out}: {info['algo']}, "
          f"{info['training_cost']['env_steps']} training steps, validation return {info['validation_return']:.1f}, "
          f"mean return {sum(returns) / len(returns):.1f} over {len(returns)} held-out episodes")


def _compress_model(args: argparse.Namespace) -> None:
    from policypress.compress_model import compress_model

    time_limit = None if args.time_limit_minutes is None else 60 * args.time_limit_minutes
    compress_model(args.env, args.out, args.methods, args.levels, args.profile, args.seed, args.model,
                   args.vecnormalize, args.algo, args.zoo_run, args.method_dir, time_limit,
                   {"warmup": args.warmup, "windows": args.windows, "window_ms": args.window_ms})


def _compress(args: argparse.Namespace) -> None:
    from policypress.core.harness import compress_run
    from policypress.core.registry import load_method

    method = load_method(args.method, args.method_dir)
    hyperparameters = method.resolve_hyperparameters(json.loads(args.hyperparameters), args.config_source)
    time_limit = None if args.time_limit_minutes is None else 60 * args.time_limit_minutes
    run = compress_run(method, load_env_spec(args.env), args.profile, args.teacher, args.level, args.seed,
                       hyperparameters, args.out, time_limit, device=args.device)
    print(f"{args.env}/{args.seed}/{args.method}/{args.level}: {run['status']}"
          + (f": {run['reason']}" if run["reason"] else ""))
    if args.measure is not None:  # in this process: the DAG's job pays one interpreter start, not two
        _measure(argparse.Namespace(run=args.out, teacher=args.teacher, env=args.env, warmup=args.warmup,
                                    windows=args.windows, window_ms=args.window_ms, out=args.measure))


def _measure(args: argparse.Namespace) -> None:
    from policypress.measure.run import measure_run

    measure_run(args.run, args.teacher, load_env_spec(args.env),
                {"warmup": args.warmup, "windows": args.windows, "window_ms": args.window_ms}, args.out)


def _export(args: argparse.Namespace) -> None:
    from policypress.deploy.bundle import export_bundle

    out = export_bundle(args.run, args.out)
    print(f"wrote {out}: policy.c, policy.h, policy.onnx, Makefile (make host, make m4), README.md")


def _aggregate(args: argparse.Namespace) -> None:
    from policypress.report.aggregate import write_table

    table = write_table(args.metrics, args.out, args.runs_json)
    print(f"{args.out}: {len(table)} runs, {int((table['status'] == 'valid').sum())} valid")


def _render(args: argparse.Namespace) -> None:
    from policypress.report.site import render

    render(args.table, args.out, args.method_dir, json.loads(args.provenance), args.baselines, args.runs_json,
           args.teachers, args.claims)
    print(f"leaderboard written to {args.out}/index.html")


def _validate_config(args: argparse.Namespace) -> None:
    from policypress.core.config import load_config

    config, methods = load_config(args.config)
    print(f"{args.config}: valid ({len(config['envs'])} envs, {len(config['seeds'])} seeds, "
          f"{len(methods)} methods, {len(config['levels'])} levels)")


def _list_methods(args: argparse.Namespace) -> None:
    from policypress.core.registry import available_methods

    for name, source in available_methods(args.method_dir).items():
        print(f"{name:20s} {source}")


def _new_method(args: argparse.Namespace) -> None:
    from policypress.submit.scaffold import new_method

    for path in new_method(args.name):
        print(f"wrote {path}")
    print(f"next: edit methods/{args.name}.py, run `policypress check-method {args.name}`, add it to a config's "
          "methods: and run snakemake (README, 'Adding a method')")


def _check_method(args: argparse.Namespace) -> int:
    from policypress.submit.conformance import report

    return 0 if report(args.name, args.method_dir) else 1


def latency_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--warmup", type=int, default=200, help="untimed inferences before timing")
    sub.add_argument("--windows", type=int, default=20, help="timed windows (the median is over these)")
    sub.add_argument("--window-ms", type=float, default=20.0, help="the least duration of one window")


def outside_agent_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--env", required=True, help="the env spec (envs/ENV.yaml) the model was trained on")
    source = sub.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="an SB3 model zip (DQN, PPO, A2C, SAC, TD3, or sb3-contrib's "
                        "QR-DQN; MLP or CNN policy)")
    source.add_argument("--zoo-run", type=Path, help="an rl-baselines3-zoo run folder, logs/ALGO/ENV_ID_N/: its model, "
                        "config.yml, args.yml and vecnormalize.pkl")
    sub.add_argument("--vecnormalize", type=Path, help="the model's VecNormalize statistics (vecnormalize.pkl)")
    sub.add_argument("--algo", help="the algorithm, when the zip does not say it (dqn, qrdqn, ppo, a2c, sac, td3)")
    sub.add_argument("--seed", type=int, default=0, help="the seed this teacher stands for in the results")
    sub.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"],
                     help="whose evaluation episodes and compression budget to use")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="policypress", description=__doc__)
    verbs = top.add_subparsers(dest="verb", required=True)

    def verb(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text)
        sub.set_defaults(handler=handler)
        return sub

    sub = verb("train-teacher", _train_teacher, "train an SB3 teacher and convert it to a Policy")
    sub.add_argument("--env", required=True)
    sub.add_argument("--seed", type=int, required=True)
    sub.add_argument("--profile", required=True, choices=["smoke", "quick", "full"])
    sub.add_argument("--out", required=True, type=Path)
    sub.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                     help="where SB3 trains (auto: a GPU when present)")

    sub = verb("import-teacher", _import_teacher,
               "use an SB3 model zip or an rl-baselines3-zoo run folder as a teacher (loading it runs code: "
               "import only files you trust)")
    outside_agent_options(sub)
    sub.add_argument("--out", required=True, type=Path, help="the teacher folder to write (results/teachers/ENV/SEED)")

    sub = verb("compress-model", _compress_model,
               "import an SB3 or rl-baselines3-zoo agent, compress it with METHODS at LEVELS under the env's budget, "
               "measure and print a table (loading the agent runs code: import only files you trust)")
    outside_agent_options(sub)
    sub.add_argument("--methods", nargs="+", required=True, help="method names (policypress list-methods)")
    sub.add_argument("--levels", nargs="+", type=float, required=True,
                     help="ceilings on nonzero parameters, as fractions of the teacher's")
    sub.add_argument("--out", required=True, type=Path, help="folder for teacher/, runs/METHOD/LEVEL/ and summary.csv")
    sub.add_argument("--method-dir", action="append", help="plugin folder (repeatable; default methods/)")
    sub.add_argument("--time-limit-minutes", type=float, help="stop a method past this and record the run invalid")
    latency_options(sub)

    sub = verb("compress", _compress, "run one method on one teacher under the env's budget")
    for name in ("env", "method", "profile"):
        sub.add_argument(f"--{name}", required=True)
    sub.add_argument("--seed", type=int, required=True)
    sub.add_argument("--level", type=float, required=True)
    sub.add_argument("--teacher", required=True, type=Path)
    sub.add_argument("--out", required=True, type=Path)
    sub.add_argument("--hyperparameters", default="{}", help="JSON object of overrides")
    sub.add_argument("--config-source", default="config", help="the config file, named in errors")
    sub.add_argument("--method-dir", action="append", help="plugin folder (repeatable; default methods/)")
    sub.add_argument("--time-limit-minutes", type=float, help="stop the method past this and record the run invalid")
    sub.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"],
                     help="where the shared training loops run (auto: a GPU when present); the result is a CPU policy")
    sub.add_argument("--measure", type=Path, metavar="METRICS_JSON",
                     help="then measure the run as `policypress measure` does, writing this metrics file")
    latency_options(sub)

    sub = verb("measure", _measure, "evaluate and measure one run")
    sub.add_argument("--run", required=True, type=Path)
    sub.add_argument("--teacher", required=True, type=Path)
    sub.add_argument("--env", required=True)
    latency_options(sub)
    sub.add_argument("--out", required=True, type=Path)

    sub = verb("export", _export, "write a run's deployable bundle: C source and header, ONNX, Makefile, README")
    sub.add_argument("run", type=Path, help="a run folder, results/runs/ENV/SEED/METHOD/LEVEL")
    sub.add_argument("--out", required=True, type=Path)

    sub = verb("aggregate", _aggregate, "collect metrics files into one CSV table")
    sub.add_argument("--out", required=True, type=Path)
    sub.add_argument("--runs-json", type=Path, help="also write every run's full record (run.json + metrics.json)")
    sub.add_argument("metrics", nargs="+", type=Path)

    sub = verb("render", _render, "render the leaderboard from the table")
    sub.add_argument("--table", required=True, type=Path)
    sub.add_argument("--out", required=True, type=Path)
    sub.add_argument("--provenance", default="{}", help="JSON object shown in the page footer")
    sub.add_argument("--method-dir", action="append")
    sub.add_argument("--baselines", nargs="*", default=[], help="methods whose best one the others are compared with")
    sub.add_argument("--runs-json", type=Path, help="every run's full record, from aggregate --runs-json")
    sub.add_argument("--teachers", nargs="*", default=[], type=Path,
                     help="the teachers' teacher.json files (their returns, costs and floors are shown)")
    sub.add_argument("--claims", type=Path, help="the papers' claims to set beside the results (config/claims.yaml)")

    sub = verb("validate-config", _validate_config, "check a config file, its envs and its methods")
    sub.add_argument("config")

    sub = verb("list-methods", _list_methods, "list the discoverable method plugins")
    sub.add_argument("--method-dir", action="append")

    sub = verb("new-method", _new_method, "scaffold methods/NAME.py and its conformance test")
    sub.add_argument("name")

    sub = verb("check-method", _check_method, "run the conformance suite on a method (exit status 1 if it fails)")
    sub.add_argument("name")
    sub.add_argument("--method-dir", action="append")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("policypress").setLevel(logging.INFO)  # ours in detail, libraries' warnings only
    try:
        return args.handler(args) or 0
    except SpecError as err:
        print(f"policypress: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
