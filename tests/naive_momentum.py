"""Brute-force second-moment recursions for momentum methods in the original coordinates.

No eigendecomposition: the state is the joint second moment of the d-dimensional parameter
error and of a second d-vector (the momentum buffer, or the previous iterate), propagated with
dense matrices.  The only Gaussian fact used is Isserlis' identity for features f ~ N(0, H):
E[f f^T A f f^T] = 2 H A H + tr(H A) H (A symmetric), so the summed batch gradient
G = S e - xi (S = sum_i f_i f_i^T, e = theta - theta*) has the noise covariance
B (H A H + tr(H A) H) + B (F0 + sigma^2) H with A = E[e e^T].  The label is decomposed as
<x, b> = <f, theta*> + zeta with theta* the least-squares solution and Var zeta = F0, so the
label noise only adds sigma^2 to F0 in the noise term.
"""

from __future__ import annotations

import numpy as np


def _setup(model, W):
    D = np.asarray(model.data_eigenvalues)
    b = np.asarray(model.target)
    H = W.T @ (D[:, None] * W)
    theta = np.linalg.solve(H, W.T @ (D * b))
    res = W @ theta - b
    return H, theta, float(res @ (D * res))


def _noise(H, A, B, F0, sigma2):
    return B * (H @ A @ H + np.trace(H @ A) * H) + B * (F0 + sigma2) * H


def generalized_momentum_moments(model, W, hyper, R, *, batch_size=1, sigma2=0.0,
                                 readout=(1.0, 0.0)):
    """E[P(theta_r)] - sigma^2 for y' = (1-D) y + g1 G, theta' = theta - g2 G - g3 y'.

    ``hyper(r) -> (g1, g2, g3, Delta)``; the reported loss is that of
    ``readout[0] * e + readout[1] * y`` (e.g. (1, gamma mu) for Nesterov's theta_r).
    """
    H, theta, F0 = _setup(model, W)
    d = H.shape[0]
    I = np.eye(d)  # noqa: E741
    B = batch_size
    S = np.zeros((2 * d, 2 * d))
    S[:d, :d] = np.outer(theta, theta)  # e_0 = -theta*, y_0 = 0
    Rd = np.hstack([readout[0] * I, readout[1] * I])
    out = []
    for r in range(R + 1):
        out.append(np.trace(H @ (Rd @ S @ Rd.T)) + F0)
        if r == R:
            break
        g1, g2, g3, dl = hyper(r)
        s = g2 + g1 * g3
        T = np.block([[I - s * B * H, -g3 * (1 - dl) * I], [g1 * B * H, (1 - dl) * I]])
        c = np.array([[-s], [g1]])
        S = T @ S @ T.T + np.kron(c @ c.T, _noise(H, S[:d, :d], B, F0, sigma2))
        S = 0.5 * (S + S.T)
    return np.array(out)


def two_step_moments(model, W, learning_rate, momentum, R, *, nesterov, batch_size=1,
                     sigma2=0.0):
    """Heavy ball / Nesterov in the variables (theta_r, theta_{r-1}), theta_{-1} = theta_0.

    Heavy ball: theta' = theta - g G(theta) + mu (theta - theta_prev).
    Nesterov: look = theta + mu (theta - theta_prev), theta' = look - g G(look).
    Returns E[P(theta_r)] - sigma^2 for r = 0..R.
    """
    H, theta, F0 = _setup(model, W)
    d = H.shape[0]
    I = np.eye(d)  # noqa: E741
    B, g, mu = batch_size, learning_rate, momentum
    S = np.kron(np.ones((2, 2)), np.outer(theta, theta))  # (e_r, e_{r-1}) = (-theta*, -theta*)
    # the point where the gradient is taken, as a linear map of (e_r, e_{r-1})
    Lg = np.hstack([(1 + mu) * I, -mu * I]) if nesterov else np.hstack([I, 0 * I])
    if nesterov:
        top = (I - g * B * H) @ Lg
    else:
        top = np.hstack([(1 + mu) * I - g * B * H, -mu * I])
    T = np.vstack([top, np.hstack([I, 0 * I])])
    out = []
    for r in range(R + 1):
        out.append(np.trace(H @ S[:d, :d]) + F0)
        if r == R:
            break
        A = Lg @ S @ Lg.T
        Q = np.zeros((2 * d, 2 * d))
        Q[:d, :d] = g * g * _noise(H, A, B, F0, sigma2)
        S = T @ S @ T.T + Q
        S = 0.5 * (S + S.T)
    return np.array(out)
