"""Build, run and measure an exported C policy: the embedded-cost metrics.

- `instructions`: callgrind's count of the instructions executed by one `pp_act` call of the
  policy compiled for this machine (cc -O2; x86-64 with gcc 12 for the published results);
  exactly repeatable for the same binary and input.
- `flash_bytes` / `ram_bytes`: the policy linked for a Cortex-M4 (arm-none-eabi-gcc -Os, hard
  float, unused sections dropped), with the libm code it pulls in: flash is text + data, RAM is
  data + bss (activation buffers). The stack (a few dozen bytes of locals) is not counted.
- `m4_cycles` / `m4_us` / `m4_cycles_per_mac`: that same ELF's `pp_act` executed on an emulated
  Cortex-M4F, its instructions timed by the processor's manual (`cortex_m4`), at `m4_clock_hz`;
  the emulated outputs must match the host build's (within 1e-5; bit for bit in the tests).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from policypress.core.policy import Policy
from policypress.measure.c_export import TEMPLATES, CExportError, KernelChoice, export_c
from policypress.measure.cortex_m4 import CLOCK_HZ, CortexM4, M4Error
from policypress.measure.latency import compare_c_latency

HOST_FLAGS = ["-std=c99", "-O2", "-ffp-contract=off"]
CORTEX_M4_FLAGS = ["-std=c99", "-Os", "-ffp-contract=off", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                   "-mfpu=fpv4-sp-d16", "-ffunction-sections", "-fdata-sections"]
# No startup code or C library initialisation: only the policy and what it calls.
CORTEX_M4_LINK = ["-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
                  "-Wl,--entry=pp_act", "-Wl,--undefined=pp_act", "-Wl,--undefined=pp_forward"]
HOST_CC, ARM_CC, ARM_SIZE, VALGRIND = "cc", "arm-none-eabi-gcc", "arm-none-eabi-size", "valgrind"


class ToolMissing(RuntimeError):
    """A tool that a metric needs is not installed."""


class M4Mismatch(RuntimeError):
    """The emulated Cortex-M4 and the host build of the same C file computed different outputs."""


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    if "/" not in command[0] and shutil.which(command[0]) is None:
        raise ToolMissing(f"{command[0]} is not installed (scripts/install-tools installs it)")
    result = subprocess.run(command, capture_output=True, **kwargs)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace") if isinstance(result.stderr, bytes) else result.stderr
        raise RuntimeError(f"{' '.join(command[:2])} ... exited with {result.returncode}: {stderr.strip()[-2000:]}")
    return result


def build_host(c_file: str | Path, binary: str | Path) -> Path:
    """The policy and the test harness compiled for this machine."""
    _run([HOST_CC, *HOST_FLAGS, "-o", str(binary), str(c_file), str(TEMPLATES / "harness.c"), "-lm"])
    return Path(binary)


def run_binary(binary: str | Path, observations: np.ndarray, output_size: int, action_size: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(raw outputs, actions) of the C policy for a batch of observations."""
    observations = np.ascontiguousarray(observations, dtype=np.float32)
    result = _run([str(binary), str(len(observations))], input=observations.tobytes())
    values = np.frombuffer(result.stdout, dtype=np.float32).reshape(len(observations), output_size + action_size)
    return values[:, :output_size], values[:, output_size:]


def instruction_count(binary: str | Path, observation: np.ndarray) -> int:
    """Instructions executed by one pp_act call (callgrind, collection on inside pp_act only)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        _run([VALGRIND, "--tool=callgrind", f"--callgrind-out-file={out}", "--toggle-collect=pp_act",
              str(binary), "1"], input=np.asarray(observation, dtype=np.float32).tobytes())
        match = re.search(r"^summary:\s*(\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError("callgrind wrote no instruction summary")
    return int(match.group(1))


def build_cortex_m4(c_file: str | Path, elf: str | Path) -> Path:
    """The policy linked for a Cortex-M4F: the ELF whose size and cycles are measured."""
    _run([ARM_CC, *CORTEX_M4_FLAGS, *CORTEX_M4_LINK, "-o", str(elf), str(c_file), "-lm"])
    return Path(elf)


def cortex_m4_footprint(elf: str | Path) -> dict[str, int]:
    """Flash and RAM bytes of the policy linked for a Cortex-M4."""
    sizes = _run([ARM_SIZE, "-B", str(elf)], text=True).stdout.splitlines()[1]
    text, data, bss = (int(v) for v in sizes.split()[:3])
    return {"flash_bytes": text + data, "ram_bytes": data + bss}


def cortex_m4_cost(elf: str | Path, observation: np.ndarray, output_size: int, action_size: int,
                   host: tuple[np.ndarray, np.ndarray] | None, choices: list[KernelChoice]) -> dict:
    """Cycles of one `pp_act` call on the emulated Cortex-M4F, after checking that the emulated
    `pp_forward` and `pp_act` compute what the host build does (`host`: its outputs and action; equal
    bit for bit in the tests, within 1e-5 here, as newlib's and glibc's tanhf may differ in the last bit)."""
    try:
        m4 = CortexM4(elf)
        forward = m4.call("pp_forward", observation)
        act = m4.call("pp_act", observation, np.zeros(action_size, np.float32))
    except ImportError as err:
        raise ToolMissing(f"{err.name} is not installed (pip install -c constraints.txt -e .)") from err
    outputs = forward.floats(forward.result, output_size)
    action = act.floats(act.buffers[1], action_size)
    if host is not None and not (np.allclose(outputs, host[0].reshape(-1), rtol=1e-5, atol=1e-6)
                                 and np.allclose(action, host[1].reshape(-1), rtol=1e-5, atol=1e-6)):
        raise M4Mismatch(f"the emulated Cortex-M4 computed {outputs.tolist()} -> {action.tolist()}, the host build "
                         f"{host[0].reshape(-1).tolist()} -> {host[1].reshape(-1).tolist()}")
    macs = sum(choice.macs for choice in choices)
    return {"m4_cycles": act.cycles, "m4_us": round(act.cycles / CLOCK_HZ * 1e6, 3), "m4_clock_hz": CLOCK_HZ,
            "m4_cycles_per_mac": round(act.cycles / macs, 3) if macs else None, "m4_instructions": act.instructions,
            "m4_checked_against_host": host is not None}


def toolchain_info() -> dict[str, str]:
    """The first version line of each tool behind the embedded metrics ('not installed' if absent)."""
    info = {}
    for tool in (HOST_CC, ARM_CC, VALGRIND):
        try:
            info[tool] = _run([tool, "--version"], text=True).stdout.splitlines()[0].strip()
        except (ToolMissing, RuntimeError, IndexError):
            info[tool] = "not installed"
    return info


def _c_latency(binary: Path, teacher: Policy, observation: np.ndarray, latency: dict, tmp: Path) -> dict:
    """The host C latency of the student (`binary`) beside its teacher's C export's."""
    try:
        export_c(teacher, tmp / "teacher.c")
    except CExportError:  # no teacher to compare with; the student's own C metrics still count
        return {}
    return compare_c_latency(binary, build_host(tmp / "teacher.c", tmp / "teacher"), observation, **latency)


def embedded_metrics(policy: Policy, c_file: str | Path, observation: np.ndarray, log: logging.Logger,
                     teacher: Policy | None = None, latency: dict | None = None) -> dict:
    """Export the policy to C and measure its instructions, Cortex-M4 footprint and Cortex-M4 cycles;
    with a `teacher` and the `latency` protocol's settings, also both C exports' time on this host.

    A metric that cannot be measured (its tool is missing, or the policy has no C kernel) is
    None, with the reason in `embedded_unavailable`; the run's other metrics still count.
    """
    result: dict = {"instructions": None, "flash_bytes": None, "ram_bytes": None, "m4_cycles": None, "m4_us": None,
                    "m4_cycles_per_mac": None, "c_us_median": None, "c_speedup": None, "c_kernels": []}
    try:
        choices = export_c(policy, c_file)
    except CExportError as err:
        result["embedded_unavailable"] = f"no C export: {err}"
        log.warning("embedded metrics unavailable: %s", result["embedded_unavailable"])
        return result
    result["c_kernels"] = [{**dataclasses.asdict(c), "weight_bytes": c.weight_bytes} for c in choices]
    observation = np.asarray(observation, dtype=np.float32).reshape(-1)
    output_size, action_size = policy.output_size, policy.action_size
    missing, host = [], None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            binary = build_host(c_file, Path(tmp) / "policy")
            host = run_binary(binary, observation[None], output_size, action_size)
            if teacher is not None and latency is not None:
                result.update(_c_latency(binary, teacher, observation, latency, Path(tmp)))
            result["instructions"] = instruction_count(binary, observation)
        except ToolMissing as err:
            missing.append(str(err))
        try:
            elf = build_cortex_m4(c_file, Path(tmp) / "policy.elf")
            result.update(cortex_m4_footprint(elf))
            result.update(cortex_m4_cost(elf, observation, output_size, action_size, host, choices))
        except (ToolMissing, M4Mismatch, M4Error) as err:
            missing.append(str(err))
    if missing:
        result["embedded_unavailable"] = "; ".join(missing)
        log.warning("embedded metrics unavailable: %s", result["embedded_unavailable"])
    return result
