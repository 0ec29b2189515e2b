"""Results do not depend on the CPU: importing policypress pins torch's, MKL's, OpenBLAS's and numpy's
numerical code paths on every x86-64 machine with AVX2 (policypress.PINNED_NUMERICS) and turns
torch's oneDNN off, before they compute."""

import os
import platform
import shutil
import subprocess
import sys
import time

import pytest

from policypress import PINNED_NUMERICS, _has_avx2_and_fma
from policypress.core.specs import ROOT

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


def test_the_functions_aten_gives_mkl_vml_compute_numpys_bits_in_every_form():
    """sqrt is correctly rounded (MKL's starts from the vendor's approximate rsqrt), and every function
    of policypress._vml gives numpy's (or scipy's) bits, as a function, in place, with out= and on the
    path Adam's and RMSprop's updates take (torch._foreach_sqrt)."""
    import numpy as np
    import scipy.special
    import torch

    from policypress._vml import FUNCTIONS

    x = torch.rand(10_000, generator=torch.Generator().manual_seed(0)) * 0.98 + 0.01  # inside every domain
    assert (torch.sqrt(x).double() == torch.sqrt(x.double()).float().double()).all()  # correctly rounded
    for name, function in FUNCTIONS.items():
        reference = getattr(scipy.special, function) if isinstance(function, str) else function
        for values in (x, x.double()):
            expected = reference(values.numpy())
            assert np.array_equal(getattr(torch, name)(values).numpy(), expected), name
            in_place, out = values.clone(), torch.empty(0, dtype=values.dtype)
            getattr(in_place, f"{name}_")()
            getattr(torch, name)(values, out=out)
            assert np.array_equal(in_place.numpy(), expected) and np.array_equal(out.numpy(), expected), name
    assert np.array_equal(torch._foreach_sqrt([x])[0].numpy(), np.sqrt(x.numpy()))
    assert torch.sqrt(torch.tensor([4, 9])).dtype == torch.float32  # an integer input gives the default float


def test_autograd_goes_through_the_replaced_kernels():
    import torch

    x = torch.tensor([0.25, 1.0, 4.0], requires_grad=True)
    (torch.sqrt(x).sum() + torch.tanh(x).sum()).backward()
    expected = 0.5 / torch.sqrt(x.detach()) + 1 - torch.tanh(x.detach()) ** 2
    assert torch.allclose(x.grad, expected, rtol=0, atol=1e-7)


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="needs qemu-x86_64 (Debian's qemu-user)")
def test_training_gives_the_same_bits_on_emulated_intel_and_amd_cpus():
    """The fingerprint's training (Adam, RMSprop, a convolution, tanh, exp, log; numpy's transforms)
    gives the same weights on this CPU and on qemu's Haswell (Intel, AVX2 without AVX-512) and EPYC
    (AMD), whose approximate reciprocals are exact: MKL's VML sqrt alone gave three fingerprints."""
    command = [sys.executable, str(ROOT / "scripts" / "numerics-fingerprint"), "--steps", "20"]
    clean = {k: v for k, v in os.environ.items() if k not in PINNED_NUMERICS}
    runs = {cpu: subprocess.Popen((["qemu-x86_64", "-cpu", cpu] if cpu else []) + command, env=clean,
                                  stdout=subprocess.PIPE, text=True)
            for cpu in ("", "Haswell", "EPYC")}  # side by side: emulation is slow, and each run one thread
    deadline = time.monotonic() + 600
    try:
        outputs = {cpu: run.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
                   for cpu, run in runs.items()}
    finally:  # a timeout or a failure leaves no emulation running
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()
    assert all(run.returncode == 0 for run in runs.values()), {cpu: run.returncode for cpu, run in runs.items()}
    digests = {cpu: output.split()[0] for cpu, output in outputs.items()}
    assert len(set(digests.values())) == 1, digests
