"""The elementwise functions ATen hands to MKL's vector math (VML), computed by numpy instead.

ATen computes float exp, log, log2, log10, tanh, sqrt, the trigonometric functions and erf with
MKL's VML, which chooses its kernel by the CPU whatever MKL_CBWR or MKL_ENABLE_INSTRUCTIONS say
(measured: its SSE4.2 kernels on AMD's EPYC, where Intel's CPUs get AVX2 or AVX-512 ones), and whose
single-precision sqrt, log10, atan, asin, acos and tan start from the approximate reciprocal
instructions (rsqrtps, rcpps), whose bits are the vendor's: its sqrt is not correctly rounded (698 of
4,096 random floats off by one unit on an EPYC) and gives other bits on an emulated CPU. Adam's and
RMSprop's updates take that sqrt at every step, so the same seed trained other weights on another
CPU. Here those functions' CPU kernels (each op, its in-place and its out= form) compute with numpy
instead: sqrt correctly rounded, the others numpy's own kernels, pinned to AVX2 with the rest
(`PINNED_NUMERICS`), and erf, erfc and erfinv with scipy's scalar code. Autograd is untouched: the
backward formulas call these same kernels. The cost is a Python call per op (a few microseconds).
"""

from __future__ import annotations

import warnings

import numpy as np

# ATen's unary ops that call MKL's VML (aten/src/ATen/cpu/vml.h), with the numpy or scipy function
# that computes each; trunc, the one other, is exact everywhere.
FUNCTIONS = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log2": np.log2, "log10": np.log10, "tanh": np.tanh,
             "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
             "erf": "erf", "erfc": "erfc", "erfinv": "erfinv"}


def _function(name):
    function = FUNCTIONS[name]
    if isinstance(function, str):  # scipy is imported only where erf is used
        import scipy.special

        return getattr(scipy.special, function)
    return function


def replace_vml_kernels(torch):
    """Register numpy's kernels for FUNCTIONS on the CPU; returns the library, which must stay alive."""

    def kernel(name):
        def compute(x):
            dtype = x.dtype if x.is_floating_point() or x.is_complex() else torch.get_default_dtype()
            source = x.detach()
            if source.dtype not in (torch.float32, torch.float64, torch.complex64, torch.complex128):
                source = source.to(torch.float32)  # integers, bool, half and bfloat16 as ATen computes them
            result = torch.from_numpy(np.asarray(_function(name)(source.numpy())))
            return result if result.dtype == dtype else result.to(dtype)

        def out(x, *, out):
            result = compute(x)
            out.resize_(result.shape)
            return out.copy_(result)

        return compute, lambda x: x.copy_(compute(x)), out

    library = torch.library.Library("aten", "IMPL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel": that is the point
        for name in FUNCTIONS:
            functional, in_place, out = kernel(name)
            library.impl(name, functional, "CPU")
            library.impl(f"{name}_", in_place, "CPU")
            library.impl(f"{name}.out", out, "CPU")
    return library
