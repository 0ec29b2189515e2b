"""What a reviewer looks for in a method's source, found by reading it (never by running it).

The harness's guard (policypress.core.guard) refuses or charges the routes around the budget that a
running process shows. What it cannot see, or sees only when a run happens to take that route, a
review reads in the code; these checks point the reviewer at the lines:
- environments made outside the task (`gymnasium.make`, `make_vec`, the registry, an env class);
- optimizers made outside the task (`torch.optim.*`, an SB3 algorithm, which makes its own);
- files read outside the method's scratch folder (`open`, `Path.read_*`, `torch.load`, ...);
- the network and other programs (`socket`, `urllib`, `requests`, `subprocess`, `os.system`, ...).
Each finding is a warning, not a failure: an SB3 algorithm on `task.make_env()` is legitimate, and
the guard charges its optimizer steps; the reviewer decides (README, "Submitting a method").
"""

from __future__ import annotations

import ast
from pathlib import Path

ENV_MODULES = ("gymnasium", "gym", "ale_py", "minatar", "highway_env")
ENV_CALLS = {"make", "make_vec", "register", "register_envs"}  # attributes of an env module
SB3_ALGORITHMS = {"DQN", "PPO", "A2C", "SAC", "TD3", "DDPG", "QRDQN", "TQC", "TRPO", "ARS", "CrossQ"}
FILE_CALLS = {"open", "read_text", "read_bytes", "load", "loadtxt", "genfromtxt", "load_file", "safe_load",
              "read_csv", "read_json", "read_parquet", "fromfile", "memmap"}
NETWORK_MODULES = ("socket", "urllib", "http", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "huggingface_hub",
                   "subprocess", "multiprocessing.connection")
PROGRAM_CALLS = {"system", "popen", "execv", "execvp", "spawnv"}


def review(source: str | Path) -> list[str]:
    """The findings in the plugin file `source`, one line each, `file:line: what`."""
    path = Path(source)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases = _import_aliases(tree)
    findings = []
    for node in ast.walk(tree):
        finding = None
        if isinstance(node, ast.Import | ast.ImportFrom):
            finding = _import_finding(node)
        elif isinstance(node, ast.Call):
            finding = _call_finding(node, aliases)
        if finding:
            findings.append(f"{path.name}:{node.lineno}: {finding}")
    return sorted(set(findings), key=lambda line: int(line.split(":")[1]))


def _import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it stands for (`import torch.optim as o`, `from torch.optim import Adam`)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]  # `import a.b` binds a; `import a.b as x`, a.b
                aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str:
    """`a.b.c` for an attribute chain, its first name resolved through the imports ('' if not a chain)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def _in(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == module or name.startswith(module + ".") for module in modules)


def _import_finding(node: ast.Import | ast.ImportFrom) -> str | None:
    names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    for name in names:
        if _in(name, NETWORK_MODULES):
            return f"imports {name}: a method may not use the network or run other programs"
        if _in(name, ("policypress.core.guard",)):
            return f"imports {name}: the guard is the harness's, not a method's"
        if isinstance(node, ast.ImportFrom) and _in(name, ("gymnasium.envs", "gym.envs")):
            return f"imports from {name}: environments come from task.make_env(), whose steps are charged"
        if isinstance(node, ast.ImportFrom) and name == "torch.autograd" and \
                {alias.name for alias in node.names} & {"backward", "grad"}:
            return "imports torch.autograd's backward or grad by name: bound before the run, the guard cannot " \
                   "count its gradient passes (call torch.autograd.grad or Tensor.backward)"
    return None


def _call_finding(node: ast.Call, aliases: dict[str, str]) -> str | None:
    name = _dotted(node.func, aliases)
    last = name.rsplit(".", 1)[-1] if name else getattr(node.func, "attr", "")
    if _in(name, ENV_MODULES) and (last in ENV_CALLS or last.endswith("Env")):
        return f"makes an environment ({name}): environments come from task.make_env(), whose steps are charged"
    if _in(name, ("torch.optim",)) and last[:1].isupper() and "lr_scheduler" not in name:
        return (f"makes an optimizer ({name}): use task.make_optimizer (the guard charges every optimizer's steps "
                "anyway)")
    if last in SB3_ALGORITHMS and _in(name, ("stable_baselines3", "sb3_contrib")):
        return (f"makes an SB3 algorithm ({name}), which makes its own optimizers: the guard charges their steps; "
                "policypress.compress.rl_training trains one on the task's env")
    if last in FILE_CALLS and not _mentions_scratch(node):
        return f"reads a file ({name or last}): a method may read only its scratch folder (task.scratch)"
    if _in(name, ("os",)) and last in PROGRAM_CALLS:
        return f"runs another program ({name}): a method may not"
    return None


def _mentions_scratch(node: ast.Call) -> bool:
    """Whether the call's path (its receiver or first argument) is built from the scratch folder (`task.scratch`)."""
    parts = [node.func.value] if isinstance(node.func, ast.Attribute) else []
    parts += node.args[:1]
    return any(isinstance(inner, ast.Attribute) and inner.attr == "scratch"
               for part in parts for inner in ast.walk(part))
