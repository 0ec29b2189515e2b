"""PolicyPress: a reproducible benchmark and leaderboard for compressing deep-RL policies.

Importing it pins the numerical code paths of torch and numpy (`PINNED_NUMERICS`), so that a result
does not depend on the CPU it was computed on.
"""

import os
import platform

# torch (ATen's vectorized kernels, MKL's GEMM, oneDNN's convolutions) and numpy choose their code
# path by the CPU's instruction sets, and the AVX-512 and AVX2 paths round differently: the same
# CartPole DQN teacher trained on one machine with each differs by up to 1.5 in a weight, and every
# result downstream differs with it. Every x86-64 machine this project runs on has AVX2, so all take
# its path. The variables are read when each library first computes (numpy: when imported), hence
# here, before any of them runs; a value already set in the environment is kept.
PINNED_NUMERICS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",  # MKL's conditional numerical reproducibility: the AVX2 branch on any CPU
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's AVX-512 dispatch targets
}
if platform.machine().lower() in ("x86_64", "amd64"):
    for name, value in PINNED_NUMERICS.items():
        os.environ.setdefault(name, value)
