"""Numba kernels for use inside your own ``@numba.njit`` code.

Every function listed in ``__all__`` is a compiled Numba dispatcher that takes only
float64/int64 NumPy arrays and scalars, writes its outputs into arrays you provide, and
returns an integer status (0 = success).  They can be called from Python or from any
``@numba.njit`` function, serially or inside ``numba.prange`` loops (give each thread its
own output arrays).  They release the GIL (``nogil=True``), so Python threads run them in
parallel too.  The public Python functions of :mod:`volterra_sgd` validate their
input and call exactly these kernels, so the numbers are the same.

Kernels
-------
mode_recursion(q, c, f0, rho, r_start, r_out, out) -> int
    The exact per-mode recursion of the expected SGD loss for a fixed embedding
    (docs/theory.md, Eq. (3.6)): ``rho_k <- q_k rho_k + c_k P``, ``P = f0 + sum_k rho_k``,
    advancing ``rho`` (in place) from iteration ``r_start`` and writing ``P(r_out[i])``
    into ``out[i]``.  With ``q_k = q(lambda_k)``, ``c_k = gamma^2 B lambda_k^2``,
    ``rho_k(0) = w_k`` and ``f0 = F0`` this is :func:`volterra_sgd.expected_loss_given_w`.
    Status 1: non-finite value; 2: invalid input (shapes, unsorted ``r_out`` or
    ``r_out[0] < r_start``).

volterra_direct(F, K, P) -> int
    Direct O(n^2) solution of the discrete Volterra equation
    ``P(r) = F(r) + sum_{s<r} K(r-1-s) P(s)`` (docs/theory.md, Eq. (4.1)) into ``P``.
volterra_leaf(K, P, lo, hi) -> int
    Solve in place on ``P[lo:hi]``, which on entry holds ``F`` plus the history from
    ``s < lo``.
volterra_block(K, P, s0, s1, r0, r1) -> int
    Add ``sum_{s0<=s<s1} K(r-1-s) P(s)`` to ``P[r0:r1]`` (requires ``s1 <= r0``): the building
    block of the relaxed (divide-and-conquer) scheme of :func:`volterra_sgd.solve_volterra`.

secular_roots(p, kappa, origin, tau) -> int
    Roots of the secular equation ``sum_k kappa_k / (p_k - mu) = 1`` (docs/theory.md, Eq. (7.2)),
    one per interval between the increasing poles ``p_k = 1 - q_k``; each root is returned as
    an offset ``tau[i]`` from pole ``origin[i]`` (-1: from 0).  Status 1: kernel norm >= 1.
secular_residues(p, kappa, f, f0, origin, tau, mu, resid) -> int
    ``mu_i = 1 - nu_i`` and the residues ``R_i`` of Eq. (7.3).
secular_evaluate(mu, resid, p_inf, r, out) -> int
    ``out[j] = p_inf + sum_i R_i (1 - mu_i)^r_j``: the closed-form solution at any ``r``.

Examples
--------
>>> import numba, numpy as np
>>> from volterra_sgd.numba_api import mode_recursion
>>> @numba.njit
... def loss_at(q, c, f0, w, r_out):
...     out = np.empty(r_out.shape[0])
...     status = mode_recursion(q, c, f0, w.copy(), 0, r_out, out)
...     return out, status
>>> out, status = loss_at(np.array([0.5]), np.array([0.1]), 0.0, np.array([1.0]),
...                       np.array([0, 1, 2], dtype=np.int64))
>>> status, [round(float(x), 12) for x in out]
(0, [1.0, 0.6, 0.36])
"""

from __future__ import annotations

from ._secular import secular_evaluate_kernel as secular_evaluate
from ._secular import secular_residues_kernel as secular_residues
from ._secular import secular_roots_kernel as secular_roots
from .exact import _mode_recursion_kernel as mode_recursion
from .volterra import _volterra_block_kernel as volterra_block
from .volterra import _volterra_direct_kernel as volterra_direct
from .volterra import _volterra_leaf_kernel as volterra_leaf

__all__ = ["mode_recursion", "secular_evaluate", "secular_residues", "secular_roots",
           "volterra_block", "volterra_direct", "volterra_leaf"]
