"""Compile every Numba kernel once with tiny inputs (called by :func:`volterra_sgd.warmup`)."""

from __future__ import annotations


def run() -> None:
    """Call each kernel once so that Numba compiles it or loads it from its cache."""
