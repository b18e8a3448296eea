"""Slow, obviously-correct reference implementations (pure Python / NumPy) for the tests.

Each function here follows the defining formula literally, with no tricks, so that the
fast code in :mod:`volterra_sgd` can be checked against it on small inputs.
"""

from __future__ import annotations

import math

import numpy as np


def naive_volterra(F, K) -> np.ndarray:
    """``P(r) = F(r) + sum_{s<r} K(r-1-s) P(s)`` by the literal double loop (Eq. (4.1)).

    Every sum is evaluated with ``math.fsum`` (correctly rounded), so for positive data the
    result is accurate to a few ulps.  O(n^2) Python operations: use for n <= ~1000.
    """
    F = [float(f) for f in np.asarray(F, dtype=np.float64)]
    K = [float(k) for k in np.asarray(K, dtype=np.float64)]
    if len(F) != len(K):
        raise ValueError("F and K must have the same length")
    P: list[float] = []
    for r in range(len(F)):
        P.append(math.fsum([F[r]] + [K[r - 1 - s] * P[s] for s in range(r)]))
    return np.array(P, dtype=np.float64)
