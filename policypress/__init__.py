"""PolicyPress: a reproducible benchmark and leaderboard for compressing deep-RL policies.

Importing it pins the numerical code paths of torch, MKL, OpenBLAS and numpy (`PINNED_NUMERICS`,
torch's oneDNN off, and the elementwise functions ATen gives MKL's vector math computed by numpy
instead: `policypress._vml`), so that a result does not depend on the CPU it was computed on. It changes
the environment of the process that imports it (and so of its children); a value already set is kept.
"""

import os
import platform

# torch (ATen's vectorized kernels, MKL's GEMM, oneDNN's convolutions), numpy and its OpenBLAS choose
# their code by the CPU, and the AVX-512 and AVX2 paths round differently: the same CartPole DQN
# teacher trained on one machine with each differs by up to 1.5 in a weight, and every result
# downstream with it. So every x86-64 machine with AVX2 and FMA (all of this project's) takes the
# same paths: ATen's and numpy's AVX2 kernels, MKL's COMPATIBLE branch (its conditional numerical
# reproducibility mode meant for Intel and compatible CPUs alike: SSE2 without the approximate
# reciprocals, whose precision differs between vendors; the AVX2 branch is not promised on other
# vendors' CPUs) and OpenBLAS's Haswell kernels on one thread. The variables are read when each
# library first computes (numpy: when imported), hence here. MKL's vector math ignores them, so the
# functions ATen gives it are computed by numpy instead (policypress/_vml.py).
PINNED_NUMERICS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN is off (below); this caps it wherever torch still calls it
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's AVX-512 dispatch targets
    "OPENBLAS_CORETYPE": "Haswell",
    "OPENBLAS_NUM_THREADS": "1",
}


def _has_avx2_and_fma() -> bool:
    """Whether this CPU runs the AVX2 paths (forcing them on one without would stop on an illegal instruction)."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


if platform.machine().lower() in ("x86_64", "amd64") and _has_avx2_and_fma():
    for name, value in PINNED_NUMERICS.items():
        os.environ.setdefault(name, value)
    try:
        import torch
    except ImportError:  # the pins above still hold for numpy
        pass
    else:
        # oneDNN's convolution kernels block their loops by the CPU's cache sizes, so their sums may be
        # ordered differently on another CPU; ATen's own convolution (im2col, then MKL's GEMM under its
        # reproducibility mode) is not, and was as fast on MinAtar's network.
        torch.backends.mkldnn.enabled = False
        from policypress._vml import replace_vml_kernels

        _VML_KERNELS = replace_vml_kernels(torch)
