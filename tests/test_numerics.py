"""Results do not depend on the CPU: importing policypress pins torch's and numpy's numerical code
paths to AVX2's on every x86-64 machine (policypress.PINNED_NUMERICS), before they compute."""

import os
import platform
import subprocess
import sys

import pytest

from policypress import PINNED_NUMERICS

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 only")
PROBE = ("import policypress, numpy, torch, os; "
         "from numpy._core._multiarray_umath import __cpu_features__ as f; "
         "print(torch.backends.cpu.get_cpu_capability(), f['X86_V4'], os.environ['MKL_CBWR'])")


def probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in PINNED_NUMERICS}
    return subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_torch_numpy_and_mkl_take_the_avx2_paths_whatever_the_cpu_has():
    assert probe() == "AVX2 False AVX2"  # not AVX512, even on a machine that has it


def test_a_value_the_user_set_is_kept():
    assert probe(ATEN_CPU_CAPABILITY="default").split()[0] == "DEFAULT"


def test_this_test_session_is_pinned_too():
    import torch

    assert torch.backends.cpu.get_cpu_capability() == "AVX2"
