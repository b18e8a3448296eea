r"""Expected loss of generalized momentum methods on a spectrum (Sec. 9).

This is the seam between a spectrum and the dynamics.  A spectrum is a set of modes (nodes)
:math:`x_i > 0` with forcing weights :math:`f_i` and eigenvalue weights :math:`\rho_i` (1 for
the exact eigenpairs of a given embedding; the quadrature weights of the deterministic
spectral measure otherwise), plus the constant :math:`F_0`.  Each mode carries the second
moments :math:`X_i = (A_i, C_i, E_i)` and obeys the exact recursion (Eqs. (9.6)-(9.9))

.. math::

    X_i(r+1) = M_i(r) X_i(r) + x_i^2\rho_i\,\bar\omega(r)\,(P(r) + \sigma^2), \qquad
    P(r) = F_0 + \sum_i A_i(r), \qquad X_i(0) = f_i e_1 .

Three solvers:

* ``"recursion"`` -- unit steps, exact, :math:`O(N)` per step (the reference);
* ``"closed_form"`` -- constant hyperparameters, any horizon: unit steps up to a switch
  iteration, then :math:`P(r) = P(\infty) + \sum_j A_j \nu_j^r` over the slow roots of the
  secular equation (Eq. (9.16)), each root found as an offset from its nearest slow pole,
  the slow poles from the structured characteristic polynomial (Eq. (9.15));
* ``"blocks"`` -- time-varying hyperparameters: geometric blocks with exact per-mode block
  propagators built by doubling of :math:`M - I` and :math:`P` linear inside a block (eq.
  9.18); run with ``h`` and ``h/2``, the difference is the error estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import prange

from ._numba import njit
from ._validation import as_iterations, as_real
from .exceptions import ConvergenceError
from .optimizers import check_optimizer

__all__ = ["MomentumLoss", "momentum_loss", "momentum_forcing_kernel", "STATUS"]

#: Status codes of the kernels and of :func:`momentum_loss`.
STATUS = {
    0: "success",
    1: "a non-finite value appeared (unstable hyperparameters)",
    2: "invalid input",
    3: "closed form: a slow pole is complex or a bracket is empty; fell back to blocks",
    4: "closed form: root search failed; fell back to blocks",
    5: "closed form did not match the recursion at the switch iteration; fell back to blocks",
}


# =============================================================================== kernels
@njit
def _unit_kernel(x, f, m, f0, s2, B, g1, g2, g3, dl, ca, cc, ce, A, C, E, r_start, r_out, out):
    """Advance Eqs. (9.6)-(9.9) by unit steps from ``r_start``; record readouts at ``r_out``.

    ``g1, g2, g3, dl`` are indexed by the absolute step; ``A, C, E`` hold the state at
    ``r_start`` and are advanced in place.  Returns a status (0 ok, 1 non-finite, 2 input).
    """
    n = x.shape[0]
    nout = r_out.shape[0]
    if f.shape[0] != n or m.shape[0] != n or out.shape[0] != nout:
        return 2
    if nout == 0:
        return 0
    if r_out[0] < r_start or g1.shape[0] < r_out[nout - 1]:
        return 2
    r = r_start
    i = 0
    while True:
        sa = 0.0
        sr = 0.0
        for k in range(n):
            sa += A[k]
            sr += ca * A[k] + cc * C[k] + ce * E[k]
        while i < nout and r_out[i] == r:
            out[i] = f0 + sr
            i += 1
        if i == nout:
            break
        if r_out[i] < r:
            return 2
        p = f0 + sa + s2
        a1 = g1[r]
        a2 = g2[r]
        a3 = g3[r]
        d = dl[r]
        s = a2 + a1 * a3
        o1 = B * s * s
        o2 = -B * s * a1
        o3 = B * a1 * a1
        t12 = -a3 * (1.0 - d)
        t22 = 1.0 - d
        for k in range(n):
            xk = x[k]
            t11 = 1.0 - s * B * xk
            t21 = a1 * B * xk
            a = A[k]
            c = C[k]
            e = E[k]
            drive = xk * xk * a + m[k] * p
            A[k] = t11 * t11 * a + 2.0 * t11 * t12 * c + t12 * t12 * e + o1 * drive
            C[k] = t11 * t21 * a + (t11 * t22 + t12 * t21) * c + t12 * t22 * e + o2 * drive
            E[k] = t21 * t21 * a + 2.0 * t21 * t22 * c + t22 * t22 * e + o3 * drive
        if not math.isfinite(p):
            return 1
        r += 1
    return 0


@njit
def _n_matrix(xk, a1, a2, a3, d, B, N):
    """``N = M - I`` (Eq. (9.7)) with cancellation-free entries, written into the 3x3 ``N``."""
    s = a2 + a1 * a3
    u11 = -s * B * xk
    t12 = -a3 * (1.0 - d)
    t21 = a1 * B * xk
    u22 = -d
    t11 = 1.0 + u11
    t22 = 1.0 + u22
    x2 = xk * xk
    N[0, 0] = 2.0 * u11 + u11 * u11 + x2 * B * s * s
    N[0, 1] = 2.0 * t11 * t12
    N[0, 2] = t12 * t12
    N[1, 0] = t11 * t21 - x2 * B * s * a1
    N[1, 1] = u11 + u22 + u11 * u22 + t12 * t21
    N[1, 2] = t12 * t22
    N[2, 0] = t21 * t21 + x2 * B * a1 * a1
    N[2, 1] = 2.0 * t21 * t22
    N[2, 2] = 2.0 * u22 + u22 * u22


@njit
def _power_apply(N, L, S, k, skip, u, v, o, Dp, T):
    """Advance node ``k`` over a block of length ``L`` with ``M = I + N`` (Eq. (9.18)).

    Replaces ``S[s, k]`` by ``M^L S[s, k]`` for every state ``s`` with ``skip[s] == 0`` and
    writes ``u = U o``, ``v = V o`` with ``U = sum_{i<L} M^i``, ``V = sum_{i<L} i M^i``.
    Binary method on ``M^P - I`` (the deviation of a slow mode from the identity keeps full
    relative accuracy); only ``M^P - I`` is squared as a matrix, the sums and the states are
    carried as vectors (``M^a`` and ``M^b`` commute, so ``U_{a+b} o = U_b o + M^b U_a o`` and
    ``V_{a+b} o = V_b o + M^b (V_a o + b U_a o)``).
    """
    ns = S.shape[0]
    for i in range(3):
        u[i] = 0.0
        v[i] = 0.0
        for j in range(3):
            Dp[i, j] = N[i, j]
    up0, up1, up2 = o[0], o[1], o[2]      # U_P o
    vp0, vp1, vp2 = 0.0, 0.0, 0.0         # V_P o
    P = 1.0
    rem = L
    while rem > 0:
        big = 0.0
        for i in range(3):
            for j in range(3):
                big = max(big, abs(Dp[i, j] + (1.0 if i == j else 0.0)))
        last = big < 1e-30
        if last:
            # M^P and every higher power vanish against 1 (a fast mode): the rest of the
            # block is "infinite", M^L = 0, U o = U_P o, V o = V_P o (converged)
            for s in range(ns):
                if skip[s] == 0:
                    S[s, k, 0] = 0.0
                    S[s, k, 1] = 0.0
                    S[s, k, 2] = 0.0
            u[0], u[1], u[2] = up0, up1, up2
            v[0], v[1], v[2] = vp0, vp1, vp2
            break
        if rem & 1:
            # the result so far (length lr) after the power block (length P)
            t0 = v[0] + P * u[0]
            t1 = v[1] + P * u[1]
            t2 = v[2] + P * u[2]
            v[0] = vp0 + t0 + (Dp[0, 0] * t0 + Dp[0, 1] * t1 + Dp[0, 2] * t2)
            v[1] = vp1 + t1 + (Dp[1, 0] * t0 + Dp[1, 1] * t1 + Dp[1, 2] * t2)
            v[2] = vp2 + t2 + (Dp[2, 0] * t0 + Dp[2, 1] * t1 + Dp[2, 2] * t2)
            t0, t1, t2 = u[0], u[1], u[2]
            u[0] = up0 + t0 + (Dp[0, 0] * t0 + Dp[0, 1] * t1 + Dp[0, 2] * t2)
            u[1] = up1 + t1 + (Dp[1, 0] * t0 + Dp[1, 1] * t1 + Dp[1, 2] * t2)
            u[2] = up2 + t2 + (Dp[2, 0] * t0 + Dp[2, 1] * t1 + Dp[2, 2] * t2)
            for s in range(ns):
                if skip[s] == 0:
                    t0, t1, t2 = S[s, k, 0], S[s, k, 1], S[s, k, 2]
                    S[s, k, 0] = t0 + (Dp[0, 0] * t0 + Dp[0, 1] * t1 + Dp[0, 2] * t2)
                    S[s, k, 1] = t1 + (Dp[1, 0] * t0 + Dp[1, 1] * t1 + Dp[1, 2] * t2)
                    S[s, k, 2] = t2 + (Dp[2, 0] * t0 + Dp[2, 1] * t1 + Dp[2, 2] * t2)
        rem >>= 1
        if rem == 0:
            break
        # square the power block: 2P
        t0 = vp0 + P * up0
        t1 = vp1 + P * up1
        t2 = vp2 + P * up2
        vp0 = vp0 + t0 + (Dp[0, 0] * t0 + Dp[0, 1] * t1 + Dp[0, 2] * t2)
        vp1 = vp1 + t1 + (Dp[1, 0] * t0 + Dp[1, 1] * t1 + Dp[1, 2] * t2)
        vp2 = vp2 + t2 + (Dp[2, 0] * t0 + Dp[2, 1] * t1 + Dp[2, 2] * t2)
        t0, t1, t2 = up0, up1, up2
        up0 = 2.0 * t0 + (Dp[0, 0] * t0 + Dp[0, 1] * t1 + Dp[0, 2] * t2)
        up1 = 2.0 * t1 + (Dp[1, 0] * t0 + Dp[1, 1] * t1 + Dp[1, 2] * t2)
        up2 = 2.0 * t2 + (Dp[2, 0] * t0 + Dp[2, 1] * t1 + Dp[2, 2] * t2)
        for i in range(3):
            for j in range(3):
                T[i, j] = (2.0 * Dp[i, j] + Dp[i, 0] * Dp[0, j] + Dp[i, 1] * Dp[1, j]
                           + Dp[i, 2] * Dp[2, j])
        for i in range(3):
            for j in range(3):
                Dp[i, j] = T[i, j]
        P *= 2.0


@njit
def _block_kernel(x, S, W, f0, s2, B, rd, shift, lengths, g1, g2, g3, dl, e1, e2, e3, e4,
                  out):
    r"""Geometric blocks (Eq. (9.18)) for ``ns`` systems on the same nodes, in one pass.

    ``S[s]`` (shape (n, 3)) is the initial state of system ``s``, advanced in place; its
    drive weights are ``W[s]`` (the :math:`m_i`; 0 for a free response), its loss
    :math:`P_s = F_{0,s} + \sum_i A_i`, its readout ``f0[s] + rd[s] . sum_i X_i`` goes to
    ``out[s, b]`` at the end of block ``b``.  Block ``b`` has length ``lengths[b]`` and frozen
    hyperparameters ``g1[b] .. dl[b]``; ``P + sigma^2`` is linear inside the block, closed by
    one scalar equation per system.  A system with ``shift[s] = 1`` starts at step 1 (it
    skips block 0, which must have length 1) and is read after one more unit step with the
    hyperparameters ``e1[b] .. e4[b]`` of the block's end (the kernel :math:`K(r)` of
    Eq. (9.19)).  Each node's propagator is computed once per block for all systems.
    Returns a status (0 ok, 1 non-finite, 2 input).
    """
    ns = W.shape[0]
    n = x.shape[0]
    nb = lengths.shape[0]
    if S.shape[0] != ns or S.shape[1] != n or W.shape[1] != n or out.shape[0] != ns:
        return 2
    if out.shape[1] != nb or shift.shape[0] != ns or rd.shape[0] != ns or f0.shape[0] != ns:
        return 2
    anyshift = False
    for s in range(ns):
        anyshift = anyshift or shift[s] != 0
    if nb > 0 and lengths[0] != 1 and anyshift:
        return 2
    bvec = np.empty((n, 3))
    p_now = np.empty(ns)
    q = np.empty(ns)
    suma = np.empty(ns)
    sumb = np.empty(ns)
    skip0 = np.zeros(ns, dtype=np.int64)
    N = np.empty((3, 3))
    Dp = np.empty((3, 3))
    T = np.empty((3, 3))
    u = np.empty(3)
    v = np.empty(3)
    o = np.empty(3)
    for s in range(ns):
        p_now[s] = f0[s]
        for k in range(n):
            p_now[s] += S[s, k, 0]
    for b in range(nb):
        L = lengths[b]
        a1 = g1[b]
        a2 = g2[b]
        a3 = g3[b]
        d = dl[b]
        sg = a2 + a1 * a3
        fl = float(L)
        o[0] = B * sg * sg
        o[1] = -B * sg * a1
        o[2] = B * a1 * a1
        skip = shift if b == 0 else skip0
        for s in range(ns):
            suma[s] = 0.0
            sumb[s] = 0.0
        for k in range(n):
            _n_matrix(x[k], a1, a2, a3, d, B, N)
            _power_apply(N, L, S, k, skip, u, v, o, Dp, T)
            # (I + D) X + p0 (U + V)/L w  and  W w, W = ((L-1) U - V)/L
            for i in range(3):
                bvec[k, i] = ((fl - 1.0) * u[i] - v[i]) / fl
            for s in range(ns):
                wk = W[s, k]
                if wk != 0.0:
                    p0 = p_now[s] + s2
                    for i in range(3):
                        S[s, k, i] += p0 * wk * (u[i] + v[i]) / fl
                    sumb[s] += wk * bvec[k, 0]
                suma[s] += S[s, k, 0]
        for s in range(ns):
            # P1 = f0 + suma + sumb (P1 + s2)
            p1 = (f0[s] + suma[s] + sumb[s] * s2) / (1.0 - sumb[s])
            if not math.isfinite(p1):
                return 1
            q[s] = p1 + s2
            p_now[s] = p1
            suma[s] = 0.0
        for k in range(n):
            if anyshift:
                _n_matrix(x[k], e1[b], e2[b], e3[b], e4[b], B, N)
            for s in range(ns):
                wk = W[s, k]
                if wk != 0.0:
                    for i in range(3):
                        S[s, k, i] += q[s] * wk * bvec[k, i]
                if shift[s] != 0:
                    suma[s] += (S[s, k, 0] + N[0, 0] * S[s, k, 0] + N[0, 1] * S[s, k, 1]
                                + N[0, 2] * S[s, k, 2])
                else:
                    suma[s] += rd[s, 0] * S[s, k, 0] + rd[s, 1] * S[s, k, 1] \
                        + rd[s, 2] * S[s, k, 2]
        for s in range(ns):
            out[s, b] = f0[s] + suma[s]
    return 0


@njit
def _secular_value(eta, org, t, eps, cs, l1, l0, b1, b0, q2, q1, q0, a2, a1, a0, deriv):
    """Evaluate a secular sum (or its derivative) at ``eta = org + t``.

    Slow modes contribute ``c/(eta - eps) + (l1 eta + l0)/(eta^2 + b1 eta + b0)``, the other
    modes ``(q2 eta^2 + q1 eta + q0)/(eta^3 + a2 eta^2 + a1 eta + a0)``.
    ``eta = org + t`` with ``org`` a slow pole or 0; distances to slow poles are
    ``(org - eps_j) + t``.  ``deriv=True`` returns the derivative instead.
    """
    tot = 0.0
    for j in range(eps.shape[0]):
        dist = (org - eps[j]) + t
        qd = eta * eta + b1[j] * eta + b0[j]
        ln = l1[j] * eta + l0[j]
        if deriv:
            tot += -cs[j] / (dist * dist) + (l1[j] * qd - ln * (2.0 * eta + b1[j])) / (qd * qd)
        else:
            tot += cs[j] / dist + ln / qd
    for j in range(q2.shape[0]):
        num = (q2[j] * eta + q1[j]) * eta + q0[j]
        den = ((eta + a2[j]) * eta + a1[j]) * eta + a0[j]
        if deriv:
            dnum = 2.0 * q2[j] * eta + q1[j]
            dden = (3.0 * eta + 2.0 * a2[j]) * eta + a1[j]
            tot += (dnum * den - num * dden) / (den * den)
        else:
            tot += num / den
    return tot


@njit
def _secular_rest(eta, org, t, jo, eps, cs, l1, l0, b1, b0, q2, q1, q0, a2, a1, a0):
    """Value and derivative of the secular sum at ``eta = org + t`` without ``cs[jo]/t``.

    As :func:`_secular_value` (both in one pass), leaving out the pole term of slow pole
    ``jo`` (the origin ``org = eps[jo]``); ``jo = -1`` leaves out nothing.
    """
    val = 0.0
    der = 0.0
    for j in range(eps.shape[0]):
        qd = eta * eta + b1[j] * eta + b0[j]
        ln = l1[j] * eta + l0[j]
        val += ln / qd
        der += (l1[j] * qd - ln * (2.0 * eta + b1[j])) / (qd * qd)
        if j != jo:
            dist = (org - eps[j]) + t
            val += cs[j] / dist
            der -= cs[j] / (dist * dist)
    for j in range(q2.shape[0]):
        num = (q2[j] * eta + q1[j]) * eta + q0[j]
        den = ((eta + a2[j]) * eta + a1[j]) * eta + a0[j]
        val += num / den
        dnum = 2.0 * q2[j] * eta + q1[j]
        dden = (3.0 * eta + 2.0 * a2[j]) * eta + a1[j]
        der += (dnum * den - num * dden) / (den * den)
    return val, der


@njit
def _one_secular_root(k, eps, cs, l1, l0, b1, b0, q2, q1, q0, a2, a1, a0):
    r"""Root of ``H(eta) = 1`` in bracket ``k`` (see :func:`_secular_roots`): (org, t, status).

    Newton on :math:`\phi(t) = t\,(1 - H(o + t))`, from which the pole at the origin
    :math:`o` has been divided out (nearly linear in ``t`` when the root is close to ``o``),
    safeguarded by the sign bracket; bisection on ``|t|`` when Newton leaves it or stalls.
    """
    ns = eps.shape[0]
    left = eps[k]
    right = eps[k + 1] if k + 1 < ns else 0.0
    gap = right - left
    if not gap > 0.0:
        return 0.0, 0.0, 3
    half = 0.5 * gap
    fmid = 1.0 - _secular_value(left + half, left, half, eps, cs, l1, l0, b1, b0, q2, q1,
                                q0, a2, a1, a0, False)
    if fmid > 0.0:      # root in (left, mid): f -> -inf at left+
        org = left
        sgn = 1.0
        want = -1.0     # sign of f near the origin
        jo = k
    else:               # root in (mid, right): f -> +inf at right- (or 1 - ||K|| at 0)
        org = right
        sgn = -1.0
        want = 1.0
        jo = k + 1 if k + 1 < ns else np.int64(-1)
    lo = 0.0            # |t| with f of the near sign (want)
    hi = half           # |t| with f of the far sign
    if jo >= 0:
        co = cs[jo]
        rv, rd = _secular_rest(org, org, 0.0, jo, eps, cs, l1, l0, b1, b0, q2, q1, q0,
                               a2, a1, a0)
        den = 1.0 - rv
        s = sgn * co / den if den != 0.0 else -1.0
        for _ in range(100):
            if not (lo < s < hi):
                s = 0.5 * (lo + hi)
            t = sgn * s
            rv, rd = _secular_rest(org + t, org, t, jo, eps, cs, l1, l0, b1, b0, q2, q1,
                                   q0, a2, a1, a0)
            f = 1.0 - co / t - rv
            if f * want > 0.0:
                lo = s
            else:
                hi = s
            # phi = t f = t - co - t R,  phi' = 1 - R - t R'
            dphi = 1.0 - rv - t * rd
            tn = t - (t * f) / dphi if dphi != 0.0 else t
            sn = sgn * tn
            if abs(sn - s) <= 4e-16 * s or hi - lo <= 4e-16 * hi:
                if lo < sn < hi:
                    return org, sgn * sn, 0
                return org, sgn * s, 0
            s = sn
    # the bracket ending at 0 (no pole there), or Newton did not settle: halve, then bisect
    hi = half
    lo = 0.5 * half
    found = False
    for _ in range(1100):
        fl = 1.0 - _secular_value(org + sgn * lo, org, sgn * lo, eps, cs, l1, l0, b1, b0,
                                  q2, q1, q0, a2, a1, a0, False)
        if fl * want > 0.0:
            found = True
            break
        hi = lo
        lo = 0.5 * lo
        if lo == 0.0:
            break
    if not found:
        return org, 0.0, 4
    for _ in range(200):   # bisection on |t| in [lo, hi], hi <= 2 lo
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        fm = 1.0 - _secular_value(org + sgn * mid, org, sgn * mid, eps, cs, l1, l0, b1, b0,
                                  q2, q1, q0, a2, a1, a0, False)
        if fm * want > 0.0:
            lo = mid
        else:
            hi = mid
    return org, sgn * 0.5 * (lo + hi), 0


@njit(parallel=True)
def _secular_roots(eps, cs, l1, l0, b1, b0, q2, q1, q0, a2, a1, a0, org_out, t_out):
    """Find one root of ``H(eta) = 1`` per bracket between slow poles (Eq. (9.16)).

    The brackets are the intervals between consecutive slow poles and ``(eps_max, 0)``;
    ``eps`` ascending, every ``cs > 0``.  Root ``j`` is ``org_out[j] + t_out[j]`` with
    ``org_out`` its nearer bracket end.  The roots are independent: one parallel loop over
    them.  Returns a status.
    """
    ns = eps.shape[0]
    st = np.zeros(ns, dtype=np.int64)
    for k in prange(ns):
        o, t, s = _one_secular_root(np.int64(k), eps, cs, l1, l0, b1, b0, q2, q1, q0, a2, a1, a0)
        org_out[k] = o
        t_out[k] = t
        st[k] = s
    return int(np.max(st)) if ns else 0


@njit(parallel=True)
def _amplitudes(org, t, eps, b1, b0, cH, lH1, lH0, qH2, qH1, qH0, cF, lF1, lF0, qF2, qF1,
                qF0, cC, lC1, lC0, qC2, qC1, qC0, a2, a1, a0, f0s2, readout, amp):
    """Amplitude of each secular root (Eq. (9.16)); ``readout`` multiplies by the readout sum.

    Root ``j`` is ``org[j] + t[j]``; ``R_j = ((F_0 + sigma^2)/eta_j + F(eta_j))/(-H'(eta_j))``.
    """
    for j in prange(org.shape[0]):
        o = org[j]
        tj = t[j]
        ej = o + tj
        dH = _secular_value(ej, o, tj, eps, cH, lH1, lH0, b1, b0, qH2, qH1, qH0, a2, a1, a0,
                            True)
        Fv = _secular_value(ej, o, tj, eps, cF, lF1, lF0, b1, b0, qF2, qF1, qF0, a2, a1, a0,
                            False)
        rj = (f0s2 / ej + Fv) / (-dH)
        if readout:
            rj *= _secular_value(ej, o, tj, eps, cC, lC1, lC0, b1, b0, qC2, qC1, qC0, a2, a1,
                                 a0, False)
        amp[j] = rj


# ========================================================================= setup (NumPy)
def _characteristic(N, x, g1, g2, g3, d, B):
    r"""Characteristic polynomial of ``N = M - I`` per mode and the noise response's parts.

    Returns ``(a2, a1, a0, num_h, den_h)``: :math:`\eta^3 + a_2\eta^2 + a_1\eta + a_0` with
    the analytic :math:`a_0 = \det(I - M)` (Eq. (9.15)) that keeps the slow root accurate, and
    :math:`h = ` ``num_h / den_h`` of Eq. (9.14).
    """
    a2 = -(N[:, 0, 0] + N[:, 1, 1] + N[:, 2, 2])
    a1 = (N[:, 0, 0] * N[:, 1, 1] - N[:, 0, 1] * N[:, 1, 0]
          + N[:, 0, 0] * N[:, 2, 2] - N[:, 0, 2] * N[:, 2, 0]
          + N[:, 1, 1] * N[:, 2, 2] - N[:, 1, 2] * N[:, 2, 1])
    p = g1 * g3
    pt1 = B * x * (p + d * g2)
    one_m_det = d + B * g2 * x * (1.0 - d)
    ptm1 = 4.0 - 2.0 * d - B * x * (p + (2.0 - d) * g2)
    num_h = x * ((2.0 - d) * (p + d * g2) + B * x * (1.0 - d) * g2 * ((2.0 - d) * g2 + p))
    a0 = pt1 * (one_m_det * ptm1 - num_h)
    return a2, a1, a0, num_h, one_m_det * ptm1


def _n_matrices(x, g1, g2, g3, d, B) -> np.ndarray:
    """``N_i = M_i - I`` for all modes, shape (n, 3, 3) (Eq. (9.7), cancellation-free)."""
    out = np.empty((x.size, 3, 3))
    for k in range(x.size):
        _n_matrix(float(x[k]), g1, g2, g3, d, float(B), out[k])
    return out


def _cofactor_poly(N, c, v):
    """Coefficients ``(k2, k1, k0)`` of ``c^T adj(eta I - N) v`` (quadratic in eta), per mode."""
    n11, n12, n13 = N[:, 0, 0], N[:, 0, 1], N[:, 0, 2]
    n21, n22, n23 = N[:, 1, 0], N[:, 1, 1], N[:, 1, 2]
    n31, n32, n33 = N[:, 2, 0], N[:, 2, 1], N[:, 2, 2]
    z = np.zeros_like(n11)
    o = np.ones_like(n11)
    # cofactors C_ab of Z = eta I - N as (eta^2, eta, 1) coefficient triples
    cof = {
        (1, 1): (o, -(n22 + n33), n22 * n33 - n23 * n32),
        (2, 1): (z, n12, n13 * n32 - n12 * n33),
        (3, 1): (z, n13, n12 * n23 - n13 * n22),
        (1, 2): (z, n21, n23 * n31 - n21 * n33),
        (2, 2): (o, -(n11 + n33), n11 * n33 - n13 * n31),
        (3, 2): (z, n23, n13 * n21 - n23 * n11),
        (1, 3): (z, n31, n21 * n32 - n31 * n22),
        (2, 3): (z, n32, n12 * n31 - n32 * n11),
        (3, 3): (o, -(n11 + n22), n11 * n22 - n12 * n21),
    }
    k = [np.zeros_like(n11) for _ in range(3)]
    for a in range(3):          # adj_ab = C_ba
        for b in range(3):
            if c[a] == 0.0:
                continue
            tri = cof[(b + 1, a + 1)]
            vb = v[:, b] if np.ndim(v) == 2 else v[b]
            for p in range(3):
                k[p] = k[p] + c[a] * tri[p] * vb
    return k


@dataclass(frozen=True)
class _ClosedForm:
    p_inf: float
    read_inf: float
    kernel_norm: float
    eta: np.ndarray
    amp: np.ndarray
    tau: float
    status: int


def _closed_form_setup(x, f, m, f0, s2, B, hp, read) -> _ClosedForm:
    """Find slow poles, secular roots and amplitudes (constant hyperparameters; Eq. (9.16)).

    The slow poles come from Eq. (9.15).
    """
    g1, g2, g3, d = hp
    # merge nodes closer than 1e-12 relative (the graded panels of a deterministic measure
    # put several within 1e-16 at a spectral edge): their slow poles would coincide in
    # float64; the merge changes P by at most ~1e-12 * max_r (r eps e^(-r eps)) relative
    o = np.argsort(x)
    xs = x[o]
    grp = np.r_[0, np.cumsum(np.diff(xs) > 1e-12 * xs[1:])] if x.size else np.zeros(0, int)
    if x.size and grp[-1] + 1 < x.size:
        rho = np.bincount(grp, weights=m[o] / (xs * xs))
        x = np.bincount(grp, weights=xs * m[o] / (xs * xs)) / rho
        f = np.bincount(grp, weights=f[o])
        m = x * x * rho
    N = _n_matrices(x, g1, g2, g3, d, B)
    ob = np.array([B * (g2 + g1 * g3) ** 2, -B * (g2 + g1 * g3) * g1, B * g1 * g1])
    e1 = np.array([1.0, 0.0, 0.0])
    # eigenvalues for classification only
    z = np.linalg.eigvals(np.eye(3)[None, :, :] + N)
    with np.errstate(divide="ignore"):
        rate = -np.log(np.abs(z))
    order = np.argsort(rate, axis=1)
    rs = np.take_along_axis(rate, order, axis=1)
    zs = np.take_along_axis(z, order, axis=1)
    tau = min(0.05, 0.5 * float(np.min(rs[:, 1]))) if x.size else 0.05
    slow = rs[:, 0] < tau
    if np.any(slow & (zs[:, 0].imag != 0.0)):
        return _ClosedForm(0, 0, 0, np.empty(0), np.empty(0), tau, 3)
    # characteristic polynomial of N: eta^3 + a2 eta^2 + a1 eta + a0, a0 = det(I - M) (Eq. (9.15))
    a2, a1, a0, num_h, den_h = _characteristic(N, x, g1, g2, g3, d, B)
    h = num_h / den_h
    kn = float(np.sum(m / (x * x) * h / (1.0 - h)))
    # structured slow root by Newton from -a0/a1
    xs = np.flatnonzero(slow)
    eps = -a0[xs] / a1[xs]
    for _ in range(8):
        pv = ((eps + a2[xs]) * eps + a1[xs]) * eps + a0[xs]
        dv = (3.0 * eps + 2.0 * a2[xs]) * eps + a1[xs]
        eps = eps - pv / dv
    if np.any(~np.isfinite(eps)) or np.any(np.abs(eps - (zs[xs, 0].real - 1.0)) >
                                           1e-6 * np.maximum(np.abs(eps), 1e-300) + 1e-12):
        return _ClosedForm(0, 0, 0, np.empty(0), np.empty(0), tau, 3)
    b1 = a2[xs] + eps
    b0 = a1[xs] + eps * b1

    def split(kk):
        k2, k1, k0 = (kk[0][xs], kk[1][xs], kk[2][xs])
        c1 = ((k2 * eps + k1) * eps + k0) / ((eps + b1) * eps + b0)
        l1 = k2 - c1
        l0 = k1 - c1 * b1 + eps * l1
        return c1, l1, l0

    rest = np.flatnonzero(~slow)
    kH = [k * m for k in _cofactor_poly(N, e1, ob)]
    kF = [k * f for k in _cofactor_poly(N, e1, e1)]
    kC = [k * m for k in _cofactor_poly(N, np.asarray(read, dtype=np.float64), ob)]
    cH, lH1, lH0 = split(kH)
    if np.any(~(cH > 0.0)):
        return _ClosedForm(0, 0, 0, np.empty(0), np.empty(0), tau, 3)
    cF, lF1, lF0 = split(kF)
    cC, lC1, lC0 = split(kC)
    srt = np.argsort(eps)  # the brackets need ascending slow poles
    eps, b1, b0 = eps[srt], b1[srt], b0[srt]
    cH, lH1, lH0 = cH[srt], lH1[srt], lH0[srt]
    cF, lF1, lF0 = cF[srt], lF1[srt], lF0[srt]
    cC, lC1, lC0 = cC[srt], lC1[srt], lC0[srt]
    cub = (a2[rest], a1[rest], a0[rest])

    def arr(v):
        return np.ascontiguousarray(v, dtype=np.float64)

    Hn = tuple(arr(k[rest]) for k in kH)
    org = np.empty(eps.size)
    t = np.empty(eps.size)
    st = _secular_roots(arr(eps), arr(cH), arr(lH1), arr(lH0), arr(b1), arr(b0), *Hn,
                        *(arr(c) for c in cub), org, t)
    if st != 0:
        return _ClosedForm(0, 0, 0, np.empty(0), np.empty(0), tau, st)
    eta = org + t
    amp = np.empty(eps.size)
    Fn = tuple(arr(k[rest]) for k in kF)
    Cn = tuple(arr(k[rest]) for k in kC)
    e_args = (arr(eps), arr(b1), arr(b0))
    cub = tuple(arr(c) for c in cub)
    _amplitudes(org, t, e_args[0], e_args[1], e_args[2], arr(cH), arr(lH1), arr(lH0), *Hn,
                arr(cF), arr(lF1), arr(lF0), *Fn, arr(cC), arr(lC1), arr(lC0), *Cn, *cub,
                float(f0 + s2), tuple(read) != (1.0, 0.0, 0.0), amp)
    p_inf = (f0 + s2 * kn) / (1.0 - kn)
    if tuple(read) == (1.0, 0.0, 0.0):
        read_inf = p_inf
    else:
        hc0 = _secular_value(0.0, 0.0, 0.0, e_args[0], arr(cC), arr(lC1), arr(lC0), e_args[1],
                             e_args[2], *Cn, *(arr(c) for c in cub), False)
        read_inf = f0 + hc0 * (p_inf + s2)
    return _ClosedForm(p_inf, read_inf, kn, eta, amp, tau, 0)


def _evaluate_closed(cf: _ClosedForm, r: np.ndarray) -> np.ndarray:
    out = np.empty(r.size)
    lg = np.log1p(cf.eta)
    step = max(1, (1 << 20) // max(1, cf.eta.size))
    for i in range(0, r.size, step):
        rr = r[i:i + step].astype(np.float64)
        out[i:i + step] = cf.read_inf + np.exp(np.multiply.outer(rr, lg)) @ cf.amp
    return out


# ====================================================================== friendly layer
@dataclass(frozen=True)
class MomentumLoss:
    r"""Expected loss of a generalized momentum method on a spectrum (:func:`momentum_loss`).

    Attributes
    ----------
    r : ndarray of int64
        Iterations.
    loss : ndarray
        Excess risk :math:`P(r)` of the reported iterates (Eq. (9.10)).
    total_loss : ndarray
        ``loss + noise_variance`` (Eq. (9.1)).
    loss_error : ndarray
        Error estimate of ``loss`` (0 for the exact recursion; see :func:`momentum_loss`).
    kernel_norm : float
        :math:`\|K\|` with the hyperparameters of step 0 (Eq. (9.13)).
    limit_loss : float
        :math:`P(\infty)` of the reported loss for constant hyperparameters (Eq. (9.5)), else
        ``nan``.
    method : str
        Solver used.
    status : int
        0 on success; otherwise see :data:`STATUS` (the result is still valid: it comes from
        the fallback solver).
    message : str
        ``STATUS[status]``.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> res = vs.momentum_loss([0.5, 0.05], [1.0, 0.5], 0.01, [0, 100],
    ...                        vs.Nesterov(learning_rate=0.1, momentum=0.5), noise_variance=0.1)
    >>> res.method, bool(np.all(res.total_loss == res.loss + 0.1))
    ('recursion', True)
    """

    r: np.ndarray
    loss: np.ndarray
    total_loss: np.ndarray
    loss_error: np.ndarray
    kernel_norm: float
    limit_loss: float
    method: str
    status: int
    message: str


def _as_modes(nodes, forcing_weights, eigen_weights):
    x = np.ascontiguousarray(nodes, dtype=np.float64)
    f = np.ascontiguousarray(forcing_weights, dtype=np.float64)
    if x.ndim != 1 or f.shape != x.shape:
        raise ValueError("nodes and forcing_weights must be 1-D arrays of the same length; got "
                         f"shapes {x.shape} and {f.shape}")
    if eigen_weights is None:
        w = np.ones_like(x)
    else:
        w = np.ascontiguousarray(eigen_weights, dtype=np.float64)
        if w.shape != x.shape:
            raise ValueError(f"eigen_weights must have the shape of nodes {x.shape}; "
                             f"got {w.shape}")
    for name, a in (("nodes", x), ("forcing_weights", f), ("eigen_weights", w)):
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"{name} must be finite and non-negative")
    keep = x > 0
    x, f, w = x[keep], f[keep], w[keep]
    # identical nodes have identical dynamics: merge them (sum the weights); the closed form
    # needs distinct slow poles, and deterministic measures can repeat a node at an edge
    xu, inv = np.unique(x, return_inverse=True)
    if xu.size < x.size:
        f = np.bincount(inv, weights=f, minlength=xu.size)
        w = np.bincount(inv, weights=w, minlength=xu.size)
        x = xu
    return (np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(f, dtype=np.float64),
            np.ascontiguousarray(w, dtype=np.float64))


def _hyper_arrays(optimizer, steps):
    return tuple(np.ascontiguousarray(a, dtype=np.float64)
                 for a in optimizer.hyperparameters(steps))


def _recursion(x, f, m, f0, s2, opt, r):
    rmax = int(r[-1])
    hp = _hyper_arrays(opt, np.arange(max(rmax, 1), dtype=np.int64))
    ca, cc, ce = opt.readout
    out = np.empty(r.size)
    st = _unit_kernel(x, f, m, f0, s2, float(opt.batch_size), *hp, ca, cc, ce, f.copy(),
                      np.zeros(x.size), np.zeros(x.size), 0, r, out)
    return out, st


def _block_error(r, coarse, fine):
    """Error estimate of the ``h/2`` run: ``2 P(r) max_{r' <= 2r} |P_h - P_{h/2}|/P`` (r').

    A running maximum rather than a local envelope: errors made early (where the blocks
    start, r = r_exact) persist in the slow modes, and the two runs can cross while both are
    off.  The factor 2 covers the order (about 1.4 for DANA: the h/2 error is ~0.6 times the
    difference) with a margin.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(fine != 0.0, np.abs(coarse - fine) / np.abs(fine), 0.0)
    hi = np.searchsorted(r, 2 * r + 1, side="right")
    run = np.maximum.accumulate(rel)
    return 2.0 * np.abs(fine) * run[np.maximum(hi - 1, 0)] + 1e-14 * np.abs(fine)


def _blocks_states(x, S0, W, f0, s2, opt, r, hh, r_exact, rd, shift=None):
    """Run :func:`_block_kernel` with relative block length ``hh``: readouts at ``r``.

    ``S0`` (ns, n, 3) initial states, ``W`` (ns, n) drive weights, ``f0`` (ns,), ``rd``
    (ns, 3) readouts, ``shift`` (ns,) kernel-type systems.  Returns (ns, r.size) and a status.
    """
    from .schedule import _blocks

    ns = S0.shape[0]
    shift = np.zeros(ns, dtype=np.int64) if shift is None else np.asarray(shift, np.int64)
    lengths, ends = _blocks(r, hh, r_exact)
    starts = ends - lengths
    # frozen at the block's mean step s + (L - 1)/2 (a half-integer for even L: the mean
    # of the two neighbouring steps); unit blocks (s < r_exact) are exact unit steps
    lo_mid = starts + (lengths - 1) // 2
    hi_mid = starts + lengths // 2
    hp = tuple(np.ascontiguousarray(0.5 * (a + b)) for a, b in
               zip(_hyper_arrays(opt, lo_mid), _hyper_arrays(opt, hi_mid), strict=True))
    he = _hyper_arrays(opt, ends) if np.any(shift) else tuple(np.zeros(ends.size)
                                                              for _ in range(4))
    S = np.array(S0, dtype=np.float64, order="C")
    W = np.ascontiguousarray(W, dtype=np.float64)
    f0 = np.ascontiguousarray(f0, dtype=np.float64)
    rd = np.ascontiguousarray(rd, dtype=np.float64)
    first = f0 + np.einsum("si,si->s", rd, S.sum(axis=1))
    out = np.empty((ns, lengths.size))
    st = _block_kernel(x, S, W, f0, float(s2), float(opt.batch_size), rd, shift,
                       np.ascontiguousarray(lengths), *hp, *he, out)
    vals = np.concatenate([first[:, None], out], axis=1)
    return vals[:, np.searchsorted(np.r_[0, ends], r)], st


def _blocks_run(x, f, m, f0, s2, opt, r, h, r_exact, X0=None, read=None, single=False):
    """Blocks with ``h`` and ``h/2``: (P of the h/2 run, error estimate, status).

    ``single=True`` runs ``h/2`` only and returns a zero error estimate (for the forcing
    and kernel, whose estimate is not used).
    """
    rd = np.array([opt.readout if read is None else read], dtype=np.float64)
    if X0 is None:
        X0 = np.zeros((x.size, 3))
        X0[:, 0] = f
    res = []
    for hh in ((h / 2,) if single else (h, h / 2)):
        vals, st = _blocks_states(x, X0[None], m[None], [f0], s2, opt, r, hh, r_exact, rd)
        if st != 0:
            return None, None, st
        res.append(vals[0])
    if single:
        return res[0], np.zeros(r.size), 0
    return res[1], _block_error(r, res[0], res[1]), 0


def momentum_loss(nodes, forcing_weights, limit_loss, r, optimizer, *, eigen_weights=None,
                  noise_variance: float = 0.0, method: str = "auto", h: float = 0.01,
                  r_exact: int = 1000, throw: bool = True) -> MomentumLoss:
    r"""Compute the expected loss of a generalized momentum method on a spectrum.

    The per-mode recursion of Sec. 9 (Eqs. (9.6)-(9.10)), over exact eigenpairs or
    deterministic nodes (Eq. (9.19)), solved by unit steps, the closed form (Eq. (9.16)) or
    geometric blocks (Eq. (9.18)).

    Parameters
    ----------
    nodes : array_like
        Modes :math:`x_i \ge 0` (eigenvalues of :math:`W^TDW`, or deterministic nodes);
        zero modes are dropped (their mass belongs in ``limit_loss``).
    forcing_weights : array_like
        :math:`f_i` (:math:`w_k` for an embedding), the initial :math:`A_i(0)`.
    limit_loss : float
        :math:`F_0`.
    r : array_like of int
        Non-decreasing iterations.
    optimizer : SGD, HeavyBall, Nesterov, GeneralizedMomentum or DANA
        The method (:mod:`volterra_sgd.optimizers`).
    eigen_weights : array_like, optional
        :math:`\rho_i`; the kernel weights are :math:`m_i = x_i^2\rho_i` (Eq. (9.19)).
        Default 1 (exact eigenpairs).
    noise_variance : float, default 0
        Label-noise variance :math:`\sigma^2` (Eq. (9.1)).
    method : {"auto", "recursion", "closed_form", "blocks"}
        ``"auto"``: ``"closed_form"`` for constant hyperparameters, ``"blocks"`` otherwise
        (``"recursion"`` when ``max(r) <= r_exact``).
    h : float, default 0.01
        Relative block length of ``"blocks"`` (runs with ``h`` and ``h/2``; the second is
        returned).  The default keeps DANA within 1e-4 relative (measured 5e-5 on the
        Case I spectrum with label noise, r <= 1e6; 7 s for d = 200 modes to r = 1e12).
    r_exact : int, default 1000
        Unit steps up to this iteration in ``"blocks"``.
    throw : bool, default True
        Raise :class:`ConvergenceError` if the loss becomes non-finite.

    Returns
    -------
    MomentumLoss

    Notes
    -----
    Error estimates: 0 for ``"recursion"``; for ``"blocks"`` twice the running maximum (over
    iterations up to :math:`2r`) of the relative difference :math:`|P_h - P_{h/2}|/P`, times
    :math:`P(r)` (the :math:`h/2` run is returned; the scheme converges with order about 1.4
    for DANA and 2 for constant hyperparameters); for ``"closed_form"`` the mismatch between
    closed form and recursion at the switch iteration (the neglected fast roots decay beyond
    it) plus rounding.

    Examples
    --------
    Heavy ball on three modes, closed form against unit steps:

    >>> import numpy as np, volterra_sgd as vs
    >>> from volterra_sgd.momentum import momentum_loss
    >>> x, f = np.array([0.5, 0.05, 0.005]), np.array([1.0, 0.5, 0.25])
    >>> opt = vs.HeavyBall(learning_rate=0.05, momentum=0.9)
    >>> r = np.array([0, 10, 1000, 10**5])
    >>> a = momentum_loss(x, f, 0.01, r, opt, method="recursion").loss
    >>> b = momentum_loss(x, f, 0.01, r, opt).loss
    >>> bool(np.max(np.abs(a - b) / a) < 1e-12)
    True
    """
    opt = check_optimizer(optimizer)
    x, f, w = _as_modes(nodes, forcing_weights, eigen_weights)
    f0 = as_real(limit_loss, "limit_loss", lower=0.0, lower_open=False)
    s2 = as_real(noise_variance, "noise_variance", lower=0.0, lower_open=False)
    r = as_iterations(r)
    h = as_real(h, "h", lower=0.0, upper=1.0)
    m = np.ascontiguousarray(x * x * w)
    if method == "auto":
        if int(r[-1]) <= r_exact:
            method = "recursion"
        else:
            method = "closed_form" if opt.is_constant else "blocks"
    if method not in ("recursion", "closed_form", "blocks"):
        raise ValueError("method must be 'auto', 'recursion', 'closed_form' or 'blocks'; "
                         f"got {method!r}")
    if method == "closed_form" and not opt.is_constant:
        raise ValueError("method='closed_form' needs constant hyperparameters; "
                         f"{type(opt).__name__} has time-varying ones")
    steps = (0,) if opt.is_constant else (0, int(r[-1]))
    kn = opt.check_stable(x, weights=w, steps=steps)
    status = 0
    err = np.zeros(r.size)
    limit = math.nan
    if method == "closed_form":
        hp = tuple(float(a[0]) for a in opt.hyperparameters(np.zeros(1, dtype=np.int64)))
        cf = _closed_form_setup(x, f, m, f0, s2, opt.batch_size, hp, opt.readout)
        status = cf.status
        if status == 0:
            loss, err, status = _closed_form_curve(x, f, m, f0, s2, opt, r, cf)
            limit = cf.read_inf
        if status != 0:
            method = "blocks"
    if method == "recursion":
        loss, st = _recursion(x, f, m, f0, s2, opt, r)
        # rounding: a few dozen operations per step and mode, coupled through P(r); the
        # linear bound 1e-14 (r + 1) |P| (measured: <= 3e-13 at r = 150 against the dense
        # original-coordinate recursion, tests/test_optimizers.py)
        err = 1e-14 * (r.astype(np.float64) + 1.0) * np.abs(loss)
        if st != 0:
            loss = np.full(r.size, np.nan)
            status = st
        if opt.is_constant:  # the limit (Eq. (9.5) with the readout) is known all the same
            hp = tuple(float(a[0]) for a in opt.hyperparameters(np.zeros(1, dtype=np.int64)))
            cf = _closed_form_setup(x, f, m, f0, s2, opt.batch_size, hp, opt.readout)
            if cf.status == 0:
                limit = cf.read_inf
    elif method == "blocks":
        loss, err, st = _blocks_run(x, f, m, f0, s2, opt, r, h, r_exact)
        if st != 0:
            loss, err, status = np.full(r.size, np.nan), np.full(r.size, np.nan), st
    if throw and not np.all(np.isfinite(loss)):
        raise ConvergenceError(f"momentum_loss: {STATUS.get(status, status)}")
    return MomentumLoss(r=r, loss=loss, total_loss=loss + s2, loss_error=err,
                        kernel_norm=float(kn), limit_loss=limit, method=method,
                        status=int(status), message=STATUS.get(int(status), "unknown"))


def _shifted(opt, k: int):
    """Return the optimizer whose step ``r`` uses the hyperparameters of step ``r + k``."""
    from .optimizers import GeneralizedMomentum

    if opt.is_constant or k == 0:
        return opt

    def make(i):
        return lambda rr: opt.hyperparameters(np.asarray(rr, dtype=np.int64) + k)[i]

    return GeneralizedMomentum(make(0), make(1), make(2), make(3), opt.batch_size)


def _free_response(x, X0, opt, r, method, h, r_exact):
    """``sum_i e_1^T Phi_i(r, 0) X0_i`` without the loss coupling (Eqs. (9.9), (9.16))."""
    n = x.size
    zero = np.zeros(n)
    if method == "recursion" or (method == "closed_form" and not opt.is_constant):
        method = "recursion" if int(r[-1]) <= r_exact else "blocks"
    if method == "blocks":
        return _blocks_run(x, zero, zero, 0.0, 0.0, opt, r, h, r_exact, X0=X0,
                           read=(1.0, 0.0, 0.0), single=True)

    def unit(rr):
        hp = _hyper_arrays(opt, np.arange(max(int(rr[-1]), 1), dtype=np.int64))
        out = np.empty(rr.size)
        A, C, E = (np.array(X0[:, i], dtype=np.float64) for i in range(3))
        st = _unit_kernel(x, zero, zero, 0.0, 0.0, float(opt.batch_size), *hp, 1.0, 0.0, 0.0,
                          A, C, E, 0, rr, out)
        return out, st

    if method == "recursion":
        out, st = unit(r)
        return out, np.zeros(r.size), st
    # constant hyperparameters: unit steps, then the slow poles alone
    g1, g2, g3, d = (float(a[0]) for a in opt.hyperparameters(np.zeros(1, dtype=np.int64)))
    B = opt.batch_size
    N = _n_matrices(x, g1, g2, g3, d, B)
    z = np.linalg.eigvals(np.eye(3)[None, :, :] + N)
    with np.errstate(divide="ignore"):
        rate = -np.log(np.abs(z))
    srt = np.sort(rate, axis=1)
    tau = min(0.05, 0.5 * float(np.min(srt[:, 1]))) if n else 0.05
    slow = np.flatnonzero(srt[:, 0] < tau)
    a2, a1, a0, _, _ = _characteristic(N, x, g1, g2, g3, d, B)
    eps = -a0[slow] / a1[slow]
    for _ in range(8):
        pv = ((eps + a2[slow]) * eps + a1[slow]) * eps + a0[slow]
        dv = (3.0 * eps + 2.0 * a2[slow]) * eps + a1[slow]
        eps = eps - pv / dv
    b1 = a2[slow] + eps
    b0 = a1[slow] + eps * b1
    k2, k1, k0 = (k[slow] for k in _cofactor_poly(N, np.array([1.0, 0.0, 0.0]), X0))
    c1 = ((k2 * eps + k1) * eps + k0) / ((eps + b1) * eps + b0)
    lg = np.log1p(eps)
    r_sw = int(math.ceil(40.0 / tau))
    checks = np.array([r_sw, (3 * r_sw) // 2], dtype=np.int64)
    early = r[r < r_sw]
    rr = np.unique(np.r_[early, checks]).astype(np.int64)
    vals, st = unit(rr)
    if st != 0:
        return None, None, st

    def late(q):
        out = np.empty(q.size)
        step = max(1, (1 << 20) // max(1, eps.size))
        for i in range(0, q.size, step):
            out[i:i + step] = np.exp(np.multiply.outer(q[i:i + step].astype(np.float64), lg)) @ c1
        return out

    ref = vals[np.searchsorted(rr, checks)]
    mismatch = float(np.max(np.abs(late(checks) - ref)))
    if not mismatch <= 1e-9 * float(np.max(np.abs(ref))) + 1e-300:
        return _blocks_run(x, zero, zero, 0.0, 0.0, opt, r, h, r_exact, X0=X0,
                           read=(1.0, 0.0, 0.0))
    out = np.empty(r.size)
    lo = r < r_sw
    out[lo] = vals[np.searchsorted(rr, r[lo])]
    out[~lo] = late(r[~lo])
    return out, np.where(lo, 0.0, mismatch), 0


def momentum_forcing_kernel(nodes, forcing_weights, limit_loss, r, optimizer, *,
                            eigen_weights=None, method: str = "auto", h: float = 0.01,
                            r_exact: int = 1000) -> dict:
    r"""Return the forcing :math:`F(r)` and kernel :math:`K(r)` of a momentum method.

    :math:`F(r) = F_0 + \sum_i f_i e_1^T\Phi_i(r, 0) e_1` and
    :math:`K(r) = \sum_i x_i^2\rho_i e_1^T\Phi_i(r + 1, 1)\bar\omega(0)` (Eqs. (9.9),
    (9.19)), the loss response at :math:`r + 1` to a unit loss at step 0; for constant
    hyperparameters :math:`K(r) = \sum_i x_i^2\rho_i e_1^T M_i^r\bar\omega`.

    Parameters
    ----------
    nodes, forcing_weights, limit_loss, r, optimizer, eigen_weights, method, h, r_exact
        As for :func:`momentum_loss`.

    Returns
    -------
    dict
        ``forcing``, ``kernel`` (arrays at ``r``) and ``error`` (estimate of each; 0 for
        blocks, which run with ``h/2`` only).

    Examples
    --------
    SGD: :math:`F(r) = F_0 + \sum_i f_i q_i^r`, :math:`K(r) = \gamma^2 B \sum_i x_i^2 q_i^r`.

    >>> import numpy as np, volterra_sgd as vs
    >>> from volterra_sgd.momentum import momentum_forcing_kernel
    >>> out = momentum_forcing_kernel([0.5], [1.0], 0.1, [0, 3], vs.SGD(0.4))
    >>> q = 1 - 2 * 0.4 * 0.5 + 0.4**2 * 2 * 0.25
    >>> bool(np.allclose(out["forcing"], [1.1, 0.1 + q**3], rtol=1e-14))
    True
    >>> bool(np.allclose(out["kernel"], [0.4**2 * 0.25, 0.4**2 * 0.25 * q**3], rtol=1e-14))
    True
    """
    opt = check_optimizer(optimizer)
    x, f, w = _as_modes(nodes, forcing_weights, eigen_weights)
    f0 = as_real(limit_loss, "limit_loss", lower=0.0, lower_open=False)
    r = as_iterations(r)
    if method == "auto":
        method = "recursion" if int(r[-1]) <= r_exact else (
            "closed_form" if opt.is_constant else "blocks")
    XF = np.zeros((x.size, 3))
    XF[:, 0] = f
    F, eF, st = _free_response(x, XF, opt, r, method, h, r_exact)
    g1, g2, g3, _ = (float(a[0]) for a in opt.hyperparameters(np.zeros(1, dtype=np.int64)))
    s = g2 + g1 * g3
    B = opt.batch_size
    XK = np.outer(x * x * w, [B * s * s, -B * s * g1, B * g1 * g1])
    K, eK, st2 = _free_response(x, XK, _shifted(opt, 1), r, method, h, r_exact)
    if st or st2:
        raise ConvergenceError(f"momentum_forcing_kernel: {STATUS.get(st or st2)}")
    return {"forcing": F + f0, "kernel": K, "error": {"forcing": eF, "kernel": eK}}


def _closed_form_curve(x, f, m, f0, s2, opt, r, cf):
    """Return unit steps below the switch iteration and the slow-root closed form above."""
    r_sw = int(math.ceil(40.0 / cf.tau))
    checks = np.unique(np.r_[r_sw, (5 * r_sw) // 4, (3 * r_sw) // 2]).astype(np.int64)
    early = r[r < r_sw]
    rr = np.unique(np.r_[early, checks]).astype(np.int64)
    vals, st = _recursion(x, f, m, f0, s2, opt, rr)
    if st != 0:
        return None, None, 1
    ref = vals[np.searchsorted(rr, checks)]
    cfv = _evaluate_closed(cf, checks)
    mismatch = float(np.max(np.abs(cfv - ref)))
    scale = float(np.min(np.abs(ref)))
    if not mismatch <= 1e-9 * scale:
        return None, None, 5
    loss = np.empty(r.size)
    lo = r < r_sw
    loss[lo] = vals[np.searchsorted(rr, r[lo])]
    loss[~lo] = _evaluate_closed(cf, r[~lo])
    err = np.where(lo, 0.0, mismatch + 1e-15 * np.abs(loss) * np.log2(2.0 + r))
    return loss, err, 0


# ============================================================ public routes (loss_curve etc.)
def _info(rel_error: float, tol: float, status: int, who: str, throw: bool, n_modes: int):
    """SolverInfo: success iff the relative error estimate is within ``tol``."""
    import warnings

    from .curve import SolverInfo
    from .exceptions import ConvergenceWarning

    if rel_error <= tol:
        msg = "success" if status == 0 else f"success ({STATUS.get(status, status)})"
        return SolverInfo(success=True, status=0, message=msg, error_estimate=rel_error,
                          n_modes=n_modes)
    message = f"estimated relative error {rel_error:.3g} exceeds tol={tol:.3g}"
    if throw:
        raise ConvergenceError(f"{who}: {message}")
    warnings.warn(f"{who}: {message}", ConvergenceWarning, stacklevel=3)
    return SolverInfo(success=False, status=1, message=message, error_estimate=rel_error,
                      n_modes=n_modes)


def _rate_fields(opt):
    """(learning_rate, batch_size) recorded in results: the immediate step s_0 (Eq. (9.4))."""
    g1, g2, g3, _ = (float(a[0]) for a in opt.hyperparameters(np.zeros(1, dtype=np.int64)))
    return g2 + g1 * g3, int(opt.batch_size)


def _frozen_limit(opt, x, w, f0, s2, step):
    """Return Eq. (9.5) with the hyperparameters frozen at ``step``.

    For time-varying methods a diagnostic of where the curve is heading (finite, so that
    curves can be saved).
    """
    kn = opt.kernel_norm(x, weights=w, step=step)
    return (f0 + s2 * kn) / (1.0 - kn) if kn < 1.0 else math.inf


def _fused_blocks(meas, r, opt, s2, h, kn):
    """Blocks for a deterministic curve: the fine rule's systems share their propagators.

    One ``h/2`` pass over the fine rule carries the loss and the forcing and kernel of both
    components (Eq. (9.19)), sharing each node's propagator; one ``h/2`` pass over the coarse
    rule gives the quadrature error, one ``h`` pass over the fine rule the block error.  The
    result equals :func:`momentum_loss` and :func:`momentum_forcing_kernel` with
    ``method="blocks"`` up to rounding, except that the kernel's blocks are aligned with the
    loss's (its frozen hyperparameters are those of the unshifted block, a difference of the
    order of the block error).  Returns ``(fine, coarse, parts)``.
    """
    def modes(x, f, w):
        x, f, w = (np.asarray(a, dtype=np.float64) for a in (x, f, w))
        keep = x > 0
        return np.ascontiguousarray(x[keep]), f[keep], w[keep], keep

    x, f, w, keep = modes(meas.nodes, meas.forcing_weights, meas.eigen_weights)
    comp = np.asarray(meas.component)[keep]
    g1, g2, g3, _ = (float(a[0]) for a in opt.hyperparameters(np.zeros(1, dtype=np.int64)))
    sg = g2 + g1 * g3
    B = opt.batch_size
    om = np.array([B * sg * sg, -B * sg * g1, B * g1 * g1])
    m = x * x * w
    S0 = np.zeros((5, x.size, 3))
    S0[0, :, 0] = f
    S0[1, :, 0] = np.where(comp > 0, f, 0.0)
    S0[2, :, 0] = np.where(comp == 0, f, 0.0)
    S0[3] = np.outer(np.where(comp > 0, m, 0.0), om)
    S0[4] = np.outer(np.where(comp == 0, m, 0.0), om)
    W = np.zeros((5, x.size))
    W[0] = m
    f0 = np.array([meas.limit_loss, 0.0, 0.0, 0.0, 0.0])
    e1 = (1.0, 0.0, 0.0)
    rd = np.array([opt.readout, e1, e1, e1, e1], dtype=np.float64)
    shift = np.array([0, 0, 0, 1, 1])
    half, st = _blocks_states(x, S0, W, f0, s2, opt, r, h / 2, 1000, rd, shift)
    if st == 0:
        full, st = _blocks_states(x, S0[:1], W[:1], f0[:1], s2, opt, r, h, 1000, rd[:1])
    if st == 0:
        xc, fc, wc, _ = modes(meas.coarse_nodes, meas.coarse_forcing_weights,
                              meas.coarse_eigen_weights)
        Sc = np.zeros((1, xc.size, 3))
        Sc[0, :, 0] = fc
        coarse, st = _blocks_states(xc, Sc, (xc * xc * wc)[None], f0[:1], s2, opt, r, h / 2,
                                    1000, rd[:1])
    if st != 0 or not np.all(np.isfinite(half[0])):
        raise ConvergenceError(f"loss_curve: {STATUS.get(st or 1)}")

    def res(loss, err):
        return MomentumLoss(r=r, loss=loss, total_loss=loss + s2, loss_error=err,
                            kernel_norm=float(kn), limit_loss=math.nan, method="blocks",
                            status=0, message=STATUS[0])

    parts = {"Fo": np.full(r.size, meas.limit_loss), "Fpp": half[1], "Fac": half[2],
             "Kpp": half[3], "Kac": half[4]}
    return res(half[0], _block_error(r, full[0], half[0])), res(coarse[0], 0 * r), parts


def optimizer_loss_curve(model, r, optimizer, *, rtol: float = 1e-11, h: float = 0.01,
                         tol: float | None = None, throw: bool = True, cache_dir=None):
    r"""Deterministic loss curve of any optimizer with label noise (``loss_curve``).

    Runs Eq. (9.19) over the nodes of the deterministic spectral measure (15-point rule) and,
    for the quadrature error, over the embedded 7-point rule.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model; its ``noise_variance`` is used.
    r : array_like of int
        Iterations.
    optimizer : SGD, HeavyBall, Nesterov, GeneralizedMomentum or DANA
        The method.
    rtol : float
        Quadrature tolerance of the spectral measure.
    h : float
        Relative block length for time-varying hyperparameters.
    tol : float, optional
        Relative error accepted in ``info.success`` (default ``max(1e3 * rtol, 1e-6)`` for constant
        hyperparameters, 1e-3 otherwise).
    throw : bool
        Raise :class:`ConvergenceError` when the estimate exceeds ``tol`` (else warn).
    cache_dir : str or os.PathLike, optional
        Opt-in cache of the spectral measure.

    Returns
    -------
    LossCurve
        With ``loss`` the excess risk, ``total_loss = loss + noise_variance``.  For
        time-varying hyperparameters ``kernel_norm`` refers to step 0 and ``limit_loss`` is
        Eq. (9.5) with the hyperparameters frozen at ``max(r)``.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> from volterra_sgd.momentum import optimizer_loss_curve
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=400, d=40, noise_variance=0.01)
    >>> opt = vs.HeavyBall(learning_rate=0.1 * model.reference_learning_rate(0.5), momentum=0.9)
    >>> curve = optimizer_loss_curve(model, [0, 100, 10**4], opt)
    >>> bool(curve.loss[0] > curve.loss[1] > curve.loss[2] > curve.limit_loss)
    True
    >>> bool(abs(curve.total_loss[2] - curve.loss[2] - 0.01) < 1e-15)
    True
    """
    from .curve import LossCurve, _max_relative
    from .forcing import _dynamics_measures
    from .model import check_model
    from .schedule import envelope

    check_model(model)
    opt = check_optimizer(optimizer)
    r = as_iterations(r)
    s2 = float(getattr(model, "noise_variance", 0.0))
    # stability on the full measure; the dynamics over the compressed one (Sec. 15)
    full, meas = _dynamics_measures(model, float(rtol), cache_dir)
    steps = (0,) if opt.is_constant else (0, int(r[-1]))
    kn = opt.check_stable(full.nodes[full.nodes > 0], weights=full.eigen_weights[full.nodes > 0],
                          steps=steps)
    if tol is None:
        tol = max(1e3 * rtol, 1e-6) if opt.is_constant else 1e-3
    tol = as_real(tol, "tol", lower=0.0)
    if not opt.is_constant and int(r[-1]) > 1000:
        fine, coarse, parts = _fused_blocks(meas, r, opt, s2, h, kn)
    else:
        fine = momentum_loss(meas.nodes, meas.forcing_weights, meas.limit_loss, r, opt,
                             eigen_weights=meas.eigen_weights, noise_variance=s2, h=h)
        coarse = momentum_loss(meas.coarse_nodes, meas.coarse_forcing_weights,
                               meas.limit_loss, r, opt, eigen_weights=meas.coarse_eigen_weights,
                               noise_variance=s2, h=h, throw=False)
        parts = {"Fo": np.full(r.size, meas.limit_loss)}
        for name, sel in (("pp", meas.component > 0), ("ac", meas.component == 0)):
            if np.any(sel):
                fk = momentum_forcing_kernel(meas.nodes[sel], meas.forcing_weights[sel], 0.0,
                                             r, opt, eigen_weights=meas.eigen_weights[sel], h=h)
                parts["F" + name], parts["K" + name] = fk["forcing"], fk["kernel"]
            else:
                parts["F" + name] = parts["K" + name] = np.zeros(r.size)
    err = fine.loss_error + envelope(r, np.abs(fine.loss - coarse.loss))
    g, B = _rate_fields(opt)
    info = _info(_max_relative(err, fine.loss), tol, fine.status, "loss_curve", throw,
                 int(meas.nodes.size))
    limit = fine.limit_loss if opt.is_constant else _frozen_limit(
        opt, meas.nodes, meas.eigen_weights, meas.limit_loss, s2, int(r[-1]))
    return LossCurve(r=r, loss=fine.loss, forcing=parts["Fo"] + parts["Fpp"] + parts["Fac"],
                     kernel=parts["Kpp"] + parts["Kac"], parts=parts, loss_error=err,
                     kernel_norm=float(kn), limit_loss=limit, model=model,
                     learning_rate=g, batch_size=B, info=info,
                     options={"rtol": rtol, "tol": tol, "method": fine.method, "h": h,
                              "optimizer": repr(opt), "noise_variance": s2})


def optimizer_expected_loss(model, W, r, optimizer, *, method: str = "auto", h: float = 0.01,
                            tol: float | None = None, throw: bool = True):
    r"""Exact expected loss of any optimizer for one embedding (``expected_loss_given_w``).

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model; its ``noise_variance`` is used.
    W : array_like of shape (v, d), or EmbeddingSpectrum
        The embedding or its spectrum.
    r : array_like of int
        Iterations.
    optimizer : SGD, HeavyBall, Nesterov, GeneralizedMomentum or DANA
        The method.
    method : {"auto", "recursion", "closed_form", "blocks"}
        Solver of :func:`momentum_loss` (``"integrator"`` is accepted for ``"blocks"``).
    h : float
        Relative block length for ``"blocks"``.
    tol : float, optional
        Relative error accepted in ``info.success`` (default 1e-10 for the closed form,
        1e-3 for blocks, and for the recursion 1e-10 or its rounding bound
        :math:`2\cdot 10^{-14}(\max r + 2)`, whichever is larger).
    throw : bool
        Raise :class:`ConvergenceError` when the estimate exceeds ``tol`` (else warn).

    Returns
    -------
    ExpectedLoss
        ``loss`` is the excess risk of the reported iterates; ``total_loss`` adds
        ``noise_variance``.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> from volterra_sgd.momentum import optimizer_expected_loss
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30, noise_variance=0.01)
    >>> W = model.sample_embedding(rng=0)
    >>> res = optimizer_expected_loss(model, W, [0, 10, 10**6], vs.DANA.constant(model))
    >>> bool(res.loss[0] > res.loss[1] > res.loss[2])
    True
    """
    from .curve import _max_relative
    from .exact import EmbeddingSpectrum, ExpectedLoss, embedding_spectrum

    opt = check_optimizer(optimizer)
    spec = W if isinstance(W, EmbeddingSpectrum) else embedding_spectrum(model, W)
    r = as_iterations(r)
    s2 = float(getattr(model, "noise_variance", 0.0))
    if method == "integrator":
        method = "blocks"
    res = momentum_loss(spec.eigenvalues, spec.weights, spec.limit_loss, r, opt,
                        noise_variance=s2, method=method, h=h)
    fk = momentum_forcing_kernel(spec.eigenvalues, spec.weights, spec.limit_loss, r, opt,
                                 method="recursion" if res.method == "recursion" else "auto",
                                 h=h)
    if tol is None:
        # the recursion's error is its rounding bound 1e-14 (r + 1) P: accept it at any r
        tol = {"blocks": 1e-3, "recursion": max(1e-10, 2e-14 * (float(r[-1]) + 2.0))}.get(
            res.method, 1e-10)
    tol = as_real(tol, "tol", lower=0.0)
    err = res.loss_error + 1e-15 * np.abs(res.loss) * np.log2(2.0 + r)
    info = _info(_max_relative(err, res.loss), tol, res.status,
                 f"expected_loss_given_w ({res.method})", throw, int(spec.rank))
    g, B = _rate_fields(opt)
    limit = res.limit_loss if opt.is_constant else _frozen_limit(
        opt, spec.eigenvalues, None, spec.limit_loss, s2, int(r[-1]))
    return ExpectedLoss(r=r, loss=res.loss, forcing=fk["forcing"], kernel=fk["kernel"],
                        kernel_norm=res.kernel_norm, limit_loss=limit, learning_rate=g,
                        batch_size=B, spectrum=spec, loss_error=err, info=info,
                        noise_variance=s2)
