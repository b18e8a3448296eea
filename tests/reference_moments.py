"""Slow, independent references for the exact given-W expected loss.

* :func:`dense_second_moment_loss` iterates the explicit v x v second-moment recursion of
  docs/theory.md, Eq. (3.5) (Isserlis/Wick), never diagonalising anything.
* :func:`mp_given_w` evaluates F, K and P at high precision with mpmath.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np


def dense_second_moment_loss(model, W, r_max, learning_rate, batch_size):
    """E[P(theta_r) | W] for r = 0..r_max from M_{r+1} = M - gB(KM+MK) + g^2B(B+1)KMK + g^2B tr(M)K^2."""
    g, B = learning_rate, batch_size
    X = np.sqrt(model.data_eigenvalues)[:, None] * W
    Kh = X @ X.T
    Kh2 = Kh @ Kh
    u0 = -np.asarray(model.scaled_target)
    M = np.outer(u0, u0)
    out = np.empty(r_max + 1)
    for r in range(r_max + 1):
        out[r] = np.trace(M)
        KM = Kh @ M
        M = (M - g * B * (KM + KM.T) + g * g * B * (B + 1) * (KM @ Kh)
             + g * g * B * np.trace(M) * Kh2)
        M = 0.5 * (M + M.T)
    return out


def mp_given_w(model, W, r_max, learning_rate, batch_size, dps=50):
    """F, K, P at r = 0..r_max computed with mpmath at ``dps`` digits (W taken as exact)."""
    with mp.workdps(dps):
        v, d = W.shape
        g = mp.mpf(learning_rate)
        B = mp.mpf(batch_size)
        X = mp.matrix(v, d)
        c = mp.matrix(v, 1)
        for j in range(v):
            s = mp.mpf(j + 1) ** (-model.alpha)
            c[j] = mp.mpf(j + 1) ** (-(model.alpha + model.beta))
            for k in range(d):
                X[j, k] = s * mp.mpf(W[j, k])
        H = X.T * X
        lam, V = mp.eigsy(H)
        P0 = sum(c[j] ** 2 for j in range(v))
        w = []
        for k in range(d):
            proj = (X * V[:, k]).T * c  # <X phi_k, c>
            w.append(proj[0] ** 2 / lam[k])
        F0 = P0 - sum(w)
        q = [1 - 2 * g * B * lam[k] + g * g * B * (B + 1) * lam[k] ** 2 for k in range(d)]
        F = [F0 + sum(w[k] * q[k] ** r for k in range(d)) for r in range(r_max + 1)]
        K = [g * g * B * sum(lam[k] ** 2 * q[k] ** r for k in range(d)) for r in range(r_max + 1)]
        P = []
        for r in range(r_max + 1):
            P.append(F[r] + sum(K[r - 1 - s] * P[s] for s in range(r)))
        return ([float(x) for x in F], [float(x) for x in K], [float(x) for x in P])
