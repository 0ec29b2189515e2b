"""Loaded by pytest before any test module: importing policypress first pins torch's and numpy's
numerical code paths (policypress.PINNED_NUMERICS) before either library computes, as in the pipeline."""

import policypress  # noqa: F401
