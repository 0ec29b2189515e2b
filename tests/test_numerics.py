"""Results do not depend on the CPU: importing policypress pins torch's, MKL's, OpenBLAS's and numpy's
numerical code paths on every x86-64 machine with AVX2 (policypress.PINNED_NUMERICS) and turns
torch's oneDNN off, before they compute."""

import os
import platform
import subprocess
import sys

import pytest

from policypress import PINNED_NUMERICS, _has_avx2_and_fma

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64") or not _has_avx2_and_fma(),
                                reason="x86-64 with AVX2 and FMA only")
PROBE = ("import policypress, numpy, torch, os; "
         "from numpy._core._multiarray_umath import __cpu_features__ as f; "
         "print(torch.backends.cpu.get_cpu_capability(), f['X86_V4'], os.environ['MKL_CBWR'], "
         "os.environ['OPENBLAS_CORETYPE'], torch.backends.mkldnn.enabled)")


def probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in PINNED_NUMERICS}
    return subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_torch_numpy_and_mkl_take_the_avx2_paths_whatever_the_cpu_has():
    assert probe() == "AVX2 False COMPATIBLE Haswell False"  # not AVX512, even on a machine that has it


def test_a_value_the_user_set_is_kept():
    assert probe(ATEN_CPU_CAPABILITY="default").split()[0] == "DEFAULT"


def test_this_test_session_is_pinned_too():
    import torch

    assert torch.backends.cpu.get_cpu_capability() == "AVX2" and not torch.backends.mkldnn.enabled
