r"""Monte-Carlo simulation of one-pass SGD on the PLRF model (docs/theory.md, Sec. 5).

Two engines simulate the same process, SGD from :math:`\theta_0 = 0` with fresh Gaussian
samples and the gradient summed over a batch of :math:`B`,

.. math::

    \theta_{r+1} = \theta_r - \gamma \sum_{i=1}^{B} W^T x_i
        \bigl(\langle W^T x_i, \theta_r\rangle - \langle x_i, b\rangle\bigr),
    \qquad x_i \sim N(0, D),

and record the exact population loss :math:`P(\theta) = \|D^{1/2}(W\theta - b)\|^2`
(no factor 1/2) at the requested iterations:

``"literal"``
    samples :math:`x \in R^v` and uses :math:`W` directly: :math:`O(vdB)` per step.
``"eigen"`` (default)
    the exact reduction of docs/theory.md, Eqs. (5.1)-(5.2) (derived in docs/sgd.md): with
    :math:`X = D^{1/2} W = U \Sigma V^T` and :math:`D^{1/2} b = U a + c_\perp`, the residual
    :math:`\varphi = \Sigma V^T \theta - a \in R^k` evolves as

    .. math::

        \varphi \leftarrow \varphi - \gamma \Lambda \sum_{i=1}^{B} \zeta_i
            \bigl(\langle \zeta_i, \varphi\rangle - \sqrt{F_0}\,\xi_i\bigr),
        \qquad P(\theta) = \|\varphi\|^2 + F_0,

    with :math:`\zeta_i \sim N(0, I_k)`, :math:`\xi_i \sim N(0, 1)` independent,
    :math:`\Lambda = \Sigma^2` and :math:`F_0 = \|c_\perp\|^2`.  The sequence of losses has
    exactly the law of the literal one; a step costs :math:`O(kB)`.

Schedules (docs/theory.md, Sec. 8): ``learning_rate`` and ``batch_size`` may be arrays indexed by
the step or vectorized callables (:func:`volterra_sgd.schedule.as_schedule`).  They are evaluated
once on the steps ``s = 0 .. max(r) - 1`` and the step from ``s`` to ``s + 1`` uses
:math:`\gamma(s)` and :math:`B(s)`.  One kernel per engine reads these per-step arrays;
constant hyper-parameters are passed as arrays of one entry (no per-step memory) and give
the same results, bit for bit, as the same values given as a schedule.

Momentum and label noise (docs/theory.md, Sec. 9): with ``optimizer=`` every member of the
generalized momentum family, Eq. (9.3), runs in the same kernels, which then carry a momentum
buffer (:math:`\psi = \Sigma V^T y` in the eigenbasis, :math:`y` literally) and read the
rows :math:`\gamma_1, \gamma_2, \gamma_3, \Delta` per step; plain SGD keeps its own branch
(bit for bit as before).  Label noise :math:`y = \langle x, b\rangle + \epsilon`,
:math:`\epsilon \sim N(0, \sigma^2)` (``model.noise_variance``, Eq. (9.1)) enters the
eigenbasis engine as :math:`\sqrt{F_0} \to \sqrt{F_0 + \sigma^2}` (the two independent
Gaussian terms of the residual merge into one) and the literal engine as one extra normal
per sample.  Nesterov records the loss of its iterates :math:`\theta_r = \tilde\theta_r +
\gamma\mu y_r`, not of the look-ahead points (Eq. (9.10)).

Developer note: Numba's on-disk cache is keyed on the source file of each cached function,
not on the functions it calls.  The kernels below inline the generator of
:mod:`volterra_sgd._rng`; after editing ``_rng.py``, clear the caches (``__pycache__/*.nb*``)
or touch this file, or the kernels keep the old generator.

Randomness: each run owns an xoshiro256++ stream (:mod:`volterra_sgd._rng`) seeded from a
child of one :class:`numpy.random.SeedSequence`, so results do not depend on the number of
threads or on scheduling, and the first ``n`` runs do not depend on ``n_runs``.  Runs are
spread over the Numba threads (``prange``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numba
import numpy as np

from . import _rng
from ._numba import njit
from ._rng import next_uint64, normal_slow, ziggurat_split
from ._validation import (
    as_int,
    as_iterations,
    as_positive_real,
    as_rng,
    check_budget,
    sgd_cost,
)
from .exact import EmbeddingSpectrum, check_learning_rate, embedding_spectrum
from .model import PLRF, SpectralModel, check_model, model_metadata

__all__ = ["SGDRun", "simulate_sgd", "ENGINES", "STATUS"]

#: Available simulation engines.
ENGINES = ("eigen", "literal")

#: Status codes returned by the SGD kernels.
STATUS = {
    0: "success",
    1: "a non-finite loss appeared (SGD diverged in at least one run)",
    2: "invalid input to the kernel",
}

# Memory allowed for the embeddings of one literal-engine chunk when W=None.
_LITERAL_CHUNK_BYTES = 256 * 2**20

# Work (runs x modes x batch per step for the eigenbasis engine, runs x v x d x batch for the
# literal one) per kernel call: ~0.1 s, so that Ctrl-C stops a long simulation promptly.
_CHUNK_WORK = 2e7


# ============================================================================ kernels
# One kernel per engine serves constant hyper-parameters and schedules.  The learning rate and
# the batch size are read per step from arrays indexed by the absolute step s; an array of
# length 1 is a constant (entry min(s, len - 1) is used), so constant inputs keep no per-step
# arrays in memory.  gamma(s) * lambda_k is formed in the kernel once per change of gamma(s),
# i.e. once per call for a constant, with the same product as before (bit-identical results).
# The eigenbasis kernel reads constants once per call, not per step: a version that looked
# them up every step ran 6-10% slower at k = 1000 (LLVM spilled two table pointers in the hot
# loop).  The literal kernel's O(vd) step hides such details; it indexes per step.
# The Ziggurat quick test stays hand-inlined in the hot loops (see volterra_sgd._rng): moved
# into a helper called once per sample it costs ~40 ns a call (the tables are passed as
# array structs), +16% at k = 50; with inline="always", Numba keeps the generator state in
# memory and reference-counts the tables inside the loop.
@njit(nogil=True)
def _check_run(gamma, batch, step0, step_end, r_record, state, out, col):
    """Shared input checks of :func:`_eigen_run` and :func:`_literal_run`: True if valid."""
    n_g = gamma.shape[0]
    n_b = batch.shape[0]
    if (step0 < 0 or step_end < step0 or state.shape[0] != 4 or n_g < 1 or n_b < 1
            or (n_g > 1 and n_g < step_end) or (n_b > 1 and n_b < step_end)
            or out.shape[0] != r_record.shape[0] or col < 0 or col >= out.shape[1]):
        return False
    for s in range(min(step0, n_g - 1), min(step_end, n_g)):  # the entries that are used
        if not (gamma[s] > 0.0 and math.isfinite(gamma[s])):
            return False
    for s in range(min(step0, n_b - 1), min(step_end, n_b)):
        if batch[s] < 1:
            return False
    for m in range(r_record.shape[0]):
        if (r_record[m] < step0 or r_record[m] > step_end
                or (m > 0 and r_record[m] < r_record[m - 1])):
            return False
    return True


@njit(nogil=True)
def _eigen_run(lam, phi, noise, limit_loss, gamma, batch, step0, step_end, r_record, state,
               zk, zw, zf, zr, out, col):
    """Plain SGD in the eigenbasis: :func:`_eigen_core` without a momentum buffer."""
    return _eigen_core(lam, phi, np.empty(0), np.empty((4, 0)), 0.0, noise, limit_loss, gamma,
                       batch, step0, step_end, r_record, state, zk, zw, zf, zr, out, col)


@njit(nogil=True)
def _eigen_core(lam, phi, psi, hyper, read, noise, limit_loss, gamma, batch, step0, step_end,
                r_record, state, zk, zw, zf, zr, out, col):
    r"""Advance one run of eigenbasis SGD from ``step0`` to ``step_end`` (serial kernel).

    Parameters
    ----------
    lam : float64 (k,)
        Eigenvalues :math:`\lambda_k` (the kernel multiplies them by :math:`\gamma(s)`).
    phi : float64 (k,)
        Residual :math:`\varphi = \Sigma V^T\theta - a` (in/out; :math:`-a` at ``r = 0``).
    psi : float64 (k,) or (0,)
        Momentum buffer :math:`\psi = \Sigma V^T y` (in/out; 0 at ``r = 0``); length 0 for
        plain SGD.
    hyper : float64 (4, n_h)
        Rows :math:`\gamma_1, \gamma_2, \gamma_3, \Delta` of docs/theory.md Eq. (9.3),
        indexed like ``gamma`` (``n_h = 1``: constants).  ``n_h = 0`` is plain SGD with the
        learning rate ``gamma`` (the code path of the SGD engine, bit for bit); otherwise
        ``gamma`` is unused and the step is
        :math:`\psi \leftarrow (1-\Delta)\psi + \gamma_1\Lambda g`,
        :math:`\varphi \leftarrow \varphi - \gamma_2\Lambda g - \gamma_3\psi`
        with :math:`g = \sum_i \zeta_i(\langle\zeta_i, \varphi\rangle - \sqrt{F_0 +
        \sigma^2}\,\xi_i)`.
    read : float
        Readout shift :math:`c`: the recorded loss is :math:`\|\varphi + c\psi\|^2 + F_0`
        (Nesterov's iterates, Eq. (9.10): :math:`c = \gamma\mu`; 0 otherwise).
    noise : float
        :math:`\sqrt{F_0 + \sigma^2}`, scale of the part of the target outside the span of
        ``X`` plus the label noise (docs/theory.md, Eq. (9.1)).
    limit_loss : float
        :math:`F_0`; the loss is :math:`\|\varphi\|^2 + F_0`.
    gamma : float64 (n_gamma,) or float
        Learning rates: the step from ``s`` to ``s + 1`` uses ``gamma[min(s, n_gamma - 1)]``,
        so one entry (or a scalar) is a constant :math:`\gamma`; otherwise
        ``n_gamma >= step_end``.  The entries used must be positive and finite.
    batch : int64 (n_batch,) or int
        Batch sizes :math:`B(s) \ge 1`, indexed like ``gamma`` (any size: the scratch space
        does not depend on it).
    step0, step_end : int
        The run is at iteration ``step0`` and is advanced to ``step_end``.
    r_record : int64 (n_rec,)
        Sorted iterations in ``[step0, step_end]`` at which to record the loss.
    state : uint64 (4,)
        xoshiro256++ state (in/out).
    zk, zw, zf, zr
        Ziggurat tables (:func:`volterra_sgd._rng.ziggurat_tables`).
    out : float64 (n_rec, n_cols)
        ``out[m, col]`` receives the loss at ``r_record[m]``.
    col : int
        Column of ``out``.

    Returns
    -------
    int
        0 on success, 1 if a recorded loss is not finite, 2 on invalid input.
    """
    gamma = np.asarray(gamma).ravel()  # a view of an array; a scalar becomes one entry
    batch = np.asarray(batch).ravel()
    k = phi.shape[0]
    n_rec = r_record.shape[0]
    n_h = hyper.shape[1]
    momentum = n_h > 0
    if (lam.shape[0] != k or hyper.shape[0] != 4 or (momentum and psi.shape[0] != k)
            or (n_h > 1 and n_h < step_end)
            or not _check_run(gamma, batch, step0, step_end, r_record, state, out, col)):
        return 2
    last_g = gamma.shape[0] - 1
    last_b = batch.shape[0] - 1
    last_h = n_h - 1
    buf = np.empty(k)
    grad = np.empty(k)
    # gamma(s) * lambda_k and B(s); a schedule updates them below where they change
    g_now = gamma[min(step0, last_g)]
    glam = g_now * lam
    batch_size = batch[min(step0, last_b)]
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    step = step0
    m = 0
    status = 0
    while True:
        while m < n_rec and r_record[m] == step:
            loss = limit_loss
            if momentum:
                for j in range(k):
                    t = phi[j] + read * psi[j]
                    loss += t * t
            else:
                for j in range(k):
                    loss += phi[j] * phi[j]
            if not math.isfinite(loss):
                status = 1
            out[m, col] = loss
            m += 1
        if step == step_end:
            break
        if last_g > 0 and gamma[step] != g_now:
            g_now = gamma[step]
            for j in range(k):
                glam[j] = g_now * lam[j]
        if last_b > 0:
            batch_size = batch[step]
        for b in range(batch_size):
            # zeta ~ N(0, I_k) fused with <zeta, phi>; xi ~ N(0, 1)
            dot = 0.0
            for j in range(k):
                bits, s0, s1, s2, s3 = next_uint64(s0, s1, s2, s3)
                idx, mm = ziggurat_split(bits)
                if abs(mm) < zk[idx]:
                    z = mm * zw[idx]
                else:
                    z, s0, s1, s2, s3 = normal_slow(mm, idx, s0, s1, s2, s3, zk, zw, zf, zr)
                buf[j] = z
                dot += z * phi[j]
            bits, s0, s1, s2, s3 = next_uint64(s0, s1, s2, s3)
            idx, mm = ziggurat_split(bits)
            if abs(mm) < zk[idx]:
                xi = mm * zw[idx]
            else:
                xi, s0, s1, s2, s3 = normal_slow(mm, idx, s0, s1, s2, s3, zk, zw, zf, zr)
            err = dot - noise * xi
            if batch_size == 1 and not momentum:
                for j in range(k):
                    phi[j] -= glam[j] * (buf[j] * err)
            elif b == 0:
                for j in range(k):
                    grad[j] = buf[j] * err
            else:
                for j in range(k):
                    grad[j] += buf[j] * err
        if momentum:
            # generalized momentum, docs/theory.md Eq. (9.3), in the coordinates of phi
            h = min(step, last_h)
            g1 = hyper[0, h]
            g2 = hyper[1, h]
            g3 = hyper[2, h]
            keep = 1.0 - hyper[3, h]
            for j in range(k):
                lg = lam[j] * grad[j]
                psi[j] = keep * psi[j] + g1 * lg
                phi[j] -= g2 * lg + g3 * psi[j]
        elif batch_size > 1:
            for j in range(k):
                phi[j] -= glam[j] * grad[j]
        step += 1
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return status


@njit(parallel=True, nogil=True)
def _sgd_eigen_kernel(lam, noise, limit_loss, n_modes, spec_index, gamma, batch, step0,
                      step_end, r_record, phi, state, zk, zw, zf, zr, out, psi=None,
                      hyper=None, read=0.0):
    r"""Run :func:`_eigen_run` for every run in parallel (``prange`` over runs).

    Parameters (all C-contiguous)
    ----------
    lam : float64 (n_spec, kmax)
        Eigenvalues :math:`\lambda_k` of each spectrum, zero-padded beyond ``n_modes``.
    noise, limit_loss : float64 (n_spec,)
        :math:`\sqrt{F_0}` and :math:`F_0` of each spectrum.
    n_modes : int64 (n_spec,)
        Rank ``k`` of each spectrum.
    spec_index : int64 (n_runs,)
        Spectrum used by each run.
    gamma, batch, step0, step_end, r_record, zk, zw, zf, zr
        As in :func:`_eigen_run` (one entry each for constant hyper-parameters).
    phi : float64 (n_runs, kmax)
        Residuals (in/out).
    state : uint64 (n_runs, 4)
        Generator states (in/out).
    out : float64 (n_rec, n_runs)
        Losses.
    psi : float64 (n_runs, kmax), optional
        Momentum buffers (in/out); with ``hyper``, see :func:`_eigen_core`.
    hyper : float64 (4, n_h), optional
        :math:`\gamma_1, \gamma_2, \gamma_3, \Delta` per step; omitted: plain SGD.
    read : float, default 0
        Readout shift (Nesterov, Eq. (9.10)).

    Returns
    -------
    int
        Largest status of the runs (0 success, 1 non-finite loss, 2 invalid input).
    """
    gamma = np.asarray(gamma).ravel()
    batch = np.asarray(batch).ravel()
    n_runs = phi.shape[0]
    if hyper is None:
        hyp = np.empty((4, 0))
        buf = np.empty((n_runs, 0))
    else:
        hyp = np.ascontiguousarray(hyper)
        buf = np.ascontiguousarray(psi)
        if buf.shape[0] != n_runs or buf.shape[1] != phi.shape[1]:
            return 2
    kmax = phi.shape[1]
    n_spec = lam.shape[0]
    if (state.shape[0] != n_runs or spec_index.shape[0] != n_runs or out.shape[1] != n_runs
            or lam.shape[1] != kmax or noise.shape[0] != n_spec
            or limit_loss.shape[0] != n_spec or n_modes.shape[0] != n_spec):
        return 2
    for i in range(n_runs):
        s = spec_index[i]
        if s < 0 or s >= n_spec or n_modes[s] > kmax or n_modes[s] < 0:
            return 2
    status = np.zeros(n_runs, dtype=np.int64)
    for i in numba.prange(n_runs):
        s = spec_index[i]
        k = n_modes[s]
        status[i] = _eigen_core(lam[s, :k], phi[i, :k],
                                buf[i, :k] if hyp.shape[1] > 0 else buf[i, :0], hyp, read,
                                noise[s], limit_loss[s], gamma, batch, step0, step_end,
                                r_record, state[i], zk, zw, zf, zr, out, i)
    return status.max() if n_runs > 0 else 0


@njit(nogil=True)
def _literal_run(W, sqrt_dvals, dvals, target, gamma, batch, step0, step_end, r_record, theta,
                 state, zk, zw, zf, zr, out, col):
    """Plain noiseless SGD, literally: :func:`_literal_core` without a momentum buffer."""
    return _literal_core(W, sqrt_dvals, dvals, target, gamma, batch, np.empty((4, 0)), 0.0,
                         0.0, step0, step_end, r_record, theta, np.empty(0), state, zk, zw,
                         zf, zr, out, col)


@njit(nogil=True)
def _literal_core(W, sqrt_dvals, dvals, target, gamma, batch, hyper, read, sigma, step0,
                  step_end, r_record, theta, ybuf, state, zk, zw, zf, zr, out, col):
    r"""Advance one run of literal SGD (samples :math:`x \in R^v`) from ``step0`` to ``step_end``.

    Parameters
    ----------
    W : float64 (v, d)
        The embedding.
    sqrt_dvals, dvals, target : float64 (v,)
        :math:`j^{-\alpha}`, :math:`j^{-2\alpha}` and :math:`b_j`.
    gamma : float64 (n_gamma,) or float
        Learning rates :math:`\gamma(s)`, as in :func:`_eigen_run` (one entry: a constant).
    batch : int64 (n_batch,) or int
        Batch sizes :math:`B(s)`, as in :func:`_eigen_run`.
    hyper : float64 (4, n_h)
        :math:`\gamma_1, \gamma_2, \gamma_3, \Delta` (Eq. (9.3)) as in :func:`_eigen_core`;
        ``n_h = 0``: plain SGD with ``gamma`` (bit for bit the SGD code path).
    read : float
        Readout shift: the loss is recorded at :math:`\theta + c\,y` (Eq. (9.10)).
    sigma : float
        Label-noise standard deviation: :math:`y = \langle x, b\rangle + \sigma\epsilon`
        (Eq. (9.1)); no extra normal is drawn when it is 0.
    theta : float64 (d,)
        Parameters (in/out; 0 at ``r = 0``).
    ybuf : float64 (d,) or (0,)
        Momentum buffer :math:`y` (in/out); length 0 for plain SGD.
    step0, step_end, r_record, state, zk, zw, zf, zr, out, col
        As in :func:`_eigen_run`; the loss is :math:`\|D^{1/2}(W\theta - b)\|^2`.

    Returns
    -------
    int
        0 on success, 1 if a recorded loss is not finite, 2 on invalid input.
    """
    gamma = np.asarray(gamma).ravel()
    batch = np.asarray(batch).ravel()
    v = W.shape[0]
    d = W.shape[1]
    n_rec = r_record.shape[0]
    n_h = hyper.shape[1]
    momentum = n_h > 0
    if (theta.shape[0] != d or sqrt_dvals.shape[0] != v or dvals.shape[0] != v
            or target.shape[0] != v or hyper.shape[0] != 4 or (n_h > 1 and n_h < step_end)
            or (momentum and ybuf.shape[0] != d) or not (sigma >= 0.0)
            or not _check_run(gamma, batch, step0, step_end, r_record, state, out, col)):
        return 2
    last_g = gamma.shape[0] - 1
    last_b = batch.shape[0] - 1
    last_h = n_h - 1
    x = np.empty(v)
    g = np.empty(d)
    grad = np.empty(d)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    step = step0
    m = 0
    status = 0
    while True:
        while m < n_rec and r_record[m] == step:
            loss = 0.0
            for j in range(v):
                t = -target[j]
                if momentum:
                    for c in range(d):
                        t += W[j, c] * (theta[c] + read * ybuf[c])
                else:
                    for c in range(d):
                        t += W[j, c] * theta[c]
                loss += dvals[j] * t * t
            if not math.isfinite(loss):
                status = 1
            out[m, col] = loss
            m += 1
        if step == step_end:
            break
        for c in range(d):
            grad[c] = 0.0
        for _b in range(batch[min(step, last_b)]):
            # x = D^(1/2) z, y = <x, b>
            y = 0.0
            for j in range(v):
                bits, s0, s1, s2, s3 = next_uint64(s0, s1, s2, s3)
                idx, mm = ziggurat_split(bits)
                if abs(mm) < zk[idx]:
                    z = mm * zw[idx]
                else:
                    z, s0, s1, s2, s3 = normal_slow(mm, idx, s0, s1, s2, s3, zk, zw, zf, zr)
                xj = sqrt_dvals[j] * z
                x[j] = xj
                y += xj * target[j]
            if sigma > 0.0:  # label noise, Eq. (9.1)
                bits, s0, s1, s2, s3 = next_uint64(s0, s1, s2, s3)
                idx, mm = ziggurat_split(bits)
                if abs(mm) < zk[idx]:
                    z = mm * zw[idx]
                else:
                    z, s0, s1, s2, s3 = normal_slow(mm, idx, s0, s1, s2, s3, zk, zw, zf, zr)
                y += sigma * z
            # features g = W^T x and prediction <g, theta>
            for c in range(d):
                g[c] = 0.0
            for j in range(v):
                xj = x[j]
                for c in range(d):
                    g[c] += xj * W[j, c]
            pred = 0.0
            for c in range(d):
                pred += g[c] * theta[c]
            err = pred - y
            for c in range(d):
                grad[c] += g[c] * err
        if momentum:  # generalized momentum, Eq. (9.3)
            h = min(step, last_h)
            g1 = hyper[0, h]
            g2 = hyper[1, h]
            g3 = hyper[2, h]
            keep = 1.0 - hyper[3, h]
            for c in range(d):
                ybuf[c] = keep * ybuf[c] + g1 * grad[c]
                theta[c] -= g2 * grad[c] + g3 * ybuf[c]
        else:
            learning_rate = gamma[min(step, last_g)]
            for c in range(d):
                theta[c] -= learning_rate * grad[c]
        step += 1
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return status


@njit(parallel=True, nogil=True)
def _sgd_literal_kernel(W, w_index, sqrt_dvals, dvals, target, gamma, batch, step0, step_end,
                        r_record, theta, state, zk, zw, zf, zr, out, ybuf=None, hyper=None,
                        read=0.0, sigma=0.0):
    r"""Run :func:`_literal_run` for every run in parallel (``prange`` over runs).

    Parameters (all C-contiguous)
    ----------
    W : float64 (n_emb, v, d)
        Embeddings; run ``i`` uses ``W[w_index[i]]``.
    w_index : int64 (n_runs,)
    theta : float64 (n_runs, d)
        Parameters (in/out).
    state : uint64 (n_runs, 4)
    out : float64 (n_rec, n_runs)
    ybuf : float64 (n_runs, d), optional
        Momentum buffers (in/out), with ``hyper``.
    hyper, read, sigma
        As in :func:`_literal_core`; ``hyper`` omitted: plain SGD.
    others
        As in :func:`_literal_run` (``gamma``, ``batch``: one entry each, or scalars, for
        constant hyper-parameters).

    Returns
    -------
    int
        Largest status of the runs.
    """
    gamma = np.asarray(gamma).ravel()
    batch = np.asarray(batch).ravel()
    n_runs = theta.shape[0]
    if state.shape[0] != n_runs or w_index.shape[0] != n_runs or out.shape[1] != n_runs:
        return 2
    if hyper is None:
        hyp = np.empty((4, 0))
        yb = np.empty((n_runs, 0))
    else:
        hyp = np.ascontiguousarray(hyper)
        yb = np.ascontiguousarray(ybuf)
        if yb.shape[0] != n_runs or (hyp.shape[1] > 0 and yb.shape[1] != theta.shape[1]):
            return 2
    for i in range(n_runs):
        if w_index[i] < 0 or w_index[i] >= W.shape[0]:
            return 2
    status = np.zeros(n_runs, dtype=np.int64)
    for i in numba.prange(n_runs):
        status[i] = _literal_core(W[w_index[i]], sqrt_dvals, dvals, target, gamma, batch, hyp,
                                  read, sigma, step0, step_end, r_record, theta[i], yb[i],
                                  state[i], zk, zw, zf, zr, out, i)
    return status.max() if n_runs > 0 else 0


# ============================================================================= result
@dataclass(frozen=True)
class SGDRun:
    r"""Result of :func:`simulate_sgd`.

    Attributes
    ----------
    r : ndarray of int64
        Iterations at which the loss was recorded (``0`` is the initialization).
    loss : ndarray
        Mean over runs of :math:`P(\theta_r)` (exact population loss, no factor 1/2).
    stderr : ndarray
        Standard error of ``loss``: sample standard deviation over runs (``ddof=1``)
        divided by :math:`\sqrt{n_{runs}}`; NaN when ``n_runs == 1``.
    losses : ndarray, shape (n_runs, len(r))
        Loss of each run.
    limit_losses : ndarray, shape (n_runs,)
        :math:`F_0 = \min_\theta P(\theta)` of the embedding used by each run.
    n_runs : int
    engine : str
        ``"eigen"`` or ``"literal"``.
    learning_rate : float
        :math:`\gamma`; under a schedule, :math:`\gamma(0)` (see ``learning_rates``).
    batch_size : int
        :math:`B`; under a schedule, :math:`B(0)` (see ``batch_sizes``).
    model : PLRF
    fixed_embedding : bool
        True when one given ``W`` was used for every run; False when each run drew its own.
    seed : int or None
        The ``rng`` argument when it was an int, else None.
    entropy : int
        Entropy of the root :class:`numpy.random.SeedSequence`; run ``i`` used the children
        ``SeedSequence(entropy, spawn_key=(i, 0))`` (its embedding, when drawn) and
        ``(i, 1)`` (its SGD stream).  ``simulate_sgd(..., rng=np.random.SeedSequence(entropy))``
        does *not* reproduce the run; pass the original int seed.
    success : bool
    status : int
        0 on success, 1 if some run produced a non-finite loss.
    message : str
    metadata : dict
        Package version, model parameters, options and seed (JSON-serialisable).  Under a
        schedule, ``metadata["options"]["schedule"]`` is True and ``metadata["schedule"]``
        describes each hyper-parameter (kind, values at the first and last step, min, max).
    learning_rates : ndarray or None
        Under a schedule, :math:`\gamma(s)` for the steps ``s = 0 .. max(r) - 1`` that were
        simulated (the step from ``s`` to ``s + 1`` uses ``learning_rates[s]``); None for
        constant hyper-parameters.
    batch_sizes : ndarray of int64 or None
        Under a schedule, :math:`B(s)` likewise; None for constant hyper-parameters.
    optimizer : optimizer object or None
        The momentum optimizer given as ``optimizer=`` (None for plain SGD, also when given
        as ``vs.SGD``).  ``learning_rate`` is then its immediate step
        :math:`\gamma_2(0) + \gamma_1(0)\gamma_3(0)` (docs/theory.md Eq. (9.4)) and
        ``batch_size`` its batch size.
    noise_variance : float
        :math:`\sigma^2` of the model's label noise (Eq. (9.1)); ``loss`` is the excess risk.
    total_loss : ndarray
        Property: ``loss + noise_variance``, the population error (as
        :attr:`volterra_sgd.LossCurve.total_loss`).

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=200, d=20)
    >>> run = vs.simulate_sgd(model, [0, 10, 100], learning_rate=model.reference_learning_rate(0.5),
    ...                       n_runs=10, rng=0)
    >>> run.losses.shape, run.loss.shape, run.stderr.shape, run.success
    ((10, 3), (3,), (3,), True)
    >>> bool(np.allclose(run.loss, run.losses.mean(axis=0)))
    True
    """

    r: np.ndarray
    loss: np.ndarray
    stderr: np.ndarray
    losses: np.ndarray
    limit_losses: np.ndarray
    n_runs: int
    engine: str
    learning_rate: float
    batch_size: int
    model: PLRF
    fixed_embedding: bool
    seed: int | None
    entropy: int
    success: bool
    status: int
    message: str
    metadata: dict = field(repr=False)
    learning_rates: np.ndarray | None = field(default=None, repr=False)
    batch_sizes: np.ndarray | None = field(default=None, repr=False)
    optimizer: object | None = field(default=None, repr=False)
    noise_variance: float = 0.0

    @property
    def total_loss(self) -> np.ndarray:
        """Population error ``loss + noise_variance`` (docs/theory.md, Eq. (9.1))."""
        return self.loss + self.noise_variance

    @property
    def scheduled(self) -> bool:
        """Whether ``learning_rate`` or ``batch_size`` was a schedule (array or callable)."""
        return self.learning_rates is not None

    def embedding(self, i: int) -> np.ndarray:
        """Re-draw the embedding ``W`` used by run ``i`` (only when ``fixed_embedding`` is False).

        Parameters
        ----------
        i : int
            Run index, ``0 <= i < n_runs``.

        Returns
        -------
        numpy.ndarray
            ``W``, shape ``(v, d)``; identical to the one the run used.
        """
        if self.fixed_embedding:
            raise ValueError("this simulation used one given W for every run; it is not stored")
        i = as_int(i, "i", minimum=0)
        if i >= self.n_runs:
            raise ValueError(f"i must be < n_runs = {self.n_runs}; got {i}")
        return _draw_embedding(self.model, self.entropy, i)


# ====================================================================== friendly layer
def _root_entropy(rng) -> tuple[int | None, int]:
    """Normalise ``rng`` (SPEC 7) and derive 126 bits of root entropy from it."""
    rng = as_rng(rng)
    seed = rng if isinstance(rng, int) else None
    gen = np.random.default_rng(rng)
    hi, lo = (int(x) for x in gen.integers(0, 2**63, size=2, dtype=np.int64))
    return seed, (hi << 63) | lo


def _draw_embedding(model: PLRF, entropy: int, i: int) -> np.ndarray:
    return model.sample_embedding(
        np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(i, 0))))


def _sgd_states(entropy: int, n_runs: int) -> np.ndarray:
    return _rng.seed_states([np.random.SeedSequence(entropy, spawn_key=(i, 1))
                             for i in range(n_runs)])


def _segments(r: np.ndarray, progress: bool, step_work: float = 0.0):
    """``(step0, step_end, lo, hi)``: advance to ``step_end`` recording ``r[lo:hi]``.

    One segment, or 100 with ``progress``; segments longer than ``_CHUNK_WORK / step_work``
    steps are split, so that no kernel call runs for long and Ctrl-C (handled between calls)
    takes effect within a fraction of a second.  Splitting changes no bit: the kernels
    resume from their state arrays exactly where they stopped.
    """
    r_max = int(r[-1])
    if r_max == 0:
        return [(0, 0, 0, r.size)]
    edges = [np.array([0, r_max], dtype=np.int64)]
    if progress:
        edges.append(np.round(np.linspace(0, r_max, 101)).astype(np.int64))
    if step_work > 0:
        max_steps = max(1, int(_CHUNK_WORK // step_work))
        if max_steps < r_max:
            edges.append(np.arange(0, r_max, max_steps, dtype=np.int64))
    edges = np.unique(np.concatenate(edges))
    segs = []
    lo = 0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        hi = int(np.searchsorted(r, b, side="right"))
        segs.append((int(a), int(b), lo, hi))
        lo = hi
    return segs


def _drawn_spectra(model, entropy: int, runs, method: str, check, bar=None,
                   out_W=None) -> list:
    """Draw the embeddings of ``runs`` and compute their spectra, on the package's threads.

    Returns the spectra in the order of ``runs``; with ``out_W`` the embeddings are also
    written to ``out_W[k]``.  Each embedding comes from its own SeedSequence child and each
    spectrum is computed with one BLAS thread (:func:`~volterra_sgd.embedding_spectrum`), so
    nothing depends on the number of threads.  The first run is checked for stability
    before the others are drawn (an unstable learning rate fails at once); the error names
    the first run, in run order, that fails.
    """
    from ._parallel import blas_single_thread, default_workers, run_tasks

    items = list(enumerate(int(i) for i in runs))
    out = [None] * len(items)

    def task(item):
        k, i = item
        W = _draw_embedding(model, entropy, i)
        if out_W is not None:
            out_W[k] = W
        return embedding_spectrum(model, W, method=method)

    def store(k, spec):
        out[k] = spec
        _bar_note(bar, f"embedding {sum(x is not None for x in out)}/{len(out)}")

    with blas_single_thread():
        for k0, k1, workers in ((0, 1, 1), (1, len(items), default_workers())):
            run_tasks(task, items[k0:k1], workers, lambda k, spec, k0=k0: store(k0 + k, spec))
            for k in range(k0, k1):
                _check_drawn(out[k].eigenvalues, check, items[k][1])
    return out


def _run_kernel(kernel, *args):
    """Call a ``prange`` kernel; inside a Dask worker on one Numba thread.

    Dask runs one task per worker thread; a task that spread over all cores as well would
    oversubscribe them.  Elsewhere the kernel uses the calling thread's Numba thread count.
    """
    from ._parallel import in_dask_worker, numba_threads

    if not in_dask_worker():
        return kernel(*args)
    with numba_threads(1):
        return kernel(*args)


def _check_status(status: int) -> None:
    if status == 2:  # pragma: no cover - the friendly layer validates everything
        raise RuntimeError("internal error: the SGD kernel rejected its input")


def _validate_engine(engine) -> str:
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}; got {engine!r}")
    return engine


def _spectrum_method(method, model: PLRF, fixed: bool) -> str:
    """Resolve ``spectrum_method``: None is "eigh" for drawn embeddings with v > d, else "svd"."""
    if method is None:
        return "eigh" if not fixed and int(model.v) > model.d else "svd"
    if not isinstance(method, str) or method not in ("eigh", "svd"):
        raise ValueError(f"spectrum_method must be 'eigh', 'svd' or None; got {method!r}")
    return method


def simulate_sgd(model: PLRF | SpectralModel, r, *, learning_rate=None, batch_size=1,
                 optimizer=None, n_runs: int = 100, rng=None, W=None, engine: str = "eigen",
                 progress: bool = False, throw: bool = True,
                 spectrum_method: str | None = None, max_cost: float | None = None) -> SGDRun:
    r"""Simulate one-pass SGD on the PLRF model and record the exact loss.

    The update is docs/theory.md, Eq. (2.1); the default engine uses Eqs. (5.1)-(5.2).

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model (finite ``v``).
    r : int or array_like of int
        Sorted non-negative iterations at which to record :math:`P(\theta_r)`; ``0`` is the
        initialization :math:`\theta_0 = 0`.
    learning_rate : float, array_like or callable
        :math:`\gamma > 0`, or a schedule :math:`\gamma(s)` as in
        :func:`volterra_sgd.loss_curve`: an array indexed by the step ``s`` (at least
        ``max(r)`` entries; the step from ``s`` to ``s + 1`` uses entry ``s``) or a vectorized
        callable ``f(s_array) -> gamma`` (called once with the float steps
        ``0, 1, ..., max(r) - 1``).  The gradient is summed over the batch
        (docs/theory.md, Eq. (2.1)).
    batch_size : int, array_like or callable, default 1
        :math:`B \ge 1` fresh samples per step, constant or a schedule :math:`B(s)` like
        ``learning_rate`` (whole numbers).
    optimizer : SGD, HeavyBall, Nesterov, GeneralizedMomentum or DANA, optional
        Instead of ``learning_rate``/``batch_size`` (which must then be left at their
        defaults): any method of the generalized momentum family, docs/theory.md Eq. (9.3),
        with its own batch size and possibly time-varying hyper-parameters (evaluated once
        on the steps ``0 .. max(r) - 1``).  ``vs.SGD(g, B)`` is the same as
        ``learning_rate=g, batch_size=B`` (same numbers).  For :class:`~volterra_sgd.Nesterov`
        the recorded loss is that of the iterates :math:`\theta_r`, not of the look-ahead
        points (Eq. (9.10)).  The label noise :math:`\sigma^2` is ``model.noise_variance``
        (Eq. (9.1); any optimizer, also plain SGD).
    n_runs : int, default 100
        Number of independent runs.
    rng : int, numpy.random.Generator or None
        Seed or generator (SPEC 7).  An int gives reproducible results, independent of the
        number of Numba threads; a Generator is advanced.
    W : array_like of shape (v, d), EmbeddingSpectrum, or None
        Embedding used by every run.  ``None`` (default) draws a fresh embedding for each run
        from ``rng`` (re-draw run ``i``'s with :meth:`SGDRun.embedding`).  The eigenbasis
        engine also accepts the :class:`~volterra_sgd.EmbeddingSpectrum` of ``W`` (from
        :func:`~volterra_sgd.embedding_spectrum`), which saves the SVD on repeated calls.
    engine : {"eigen", "literal"}, default "eigen"
        ``"eigen"``: exact-in-law reduction to the eigenbasis of :math:`W^TDW`,
        :math:`O(dB)` per step plus one spectrum of :math:`D^{1/2}W` (:math:`O(vd^2)`) per
        embedding.  ``"literal"``: samples :math:`x\in R^v`, :math:`O(vdB)` per step.
    progress : bool, default False
        Show a ``tqdm.auto`` progress bar (requires the ``progress`` extra).
    throw : bool, default True
        If a run produces a non-finite loss (divergence; not expected once the stability
        check has passed), raise :class:`FloatingPointError`.  With ``throw=False`` the
        result is returned with ``success=False`` and a :class:`RuntimeWarning` is issued.
    spectrum_method : {"eigh", "svd"} or None, default None
        How the spectrum of each embedding is computed (the ``method`` of
        :func:`~volterra_sgd.embedding_spectrum`; unused when ``W`` is an
        ``EmbeddingSpectrum``).  ``"svd"``: SVD of :math:`D^{1/2}W`, the accurate route.
        ``"eigh"``: eigenvalues of the Gram matrix :math:`W^TDW`, several times faster for
        :math:`v \gg d` and ample for Monte Carlo (small eigenvalues only to
        :math:`\epsilon\lambda_{max}/\lambda`; for :math:`v < d` it keeps spurious near-zero
        modes).  None: ``"eigh"`` when ``W`` is None and :math:`v > d` (a spectrum per run,
        where its cost matters), else ``"svd"``.  To reproduce run ``i`` of a ``W=None``
        simulation with ``W=sim.embedding(i)``, pass the method the simulation used
        (``sim.metadata["options"]["spectrum_method"]``).
    max_cost : float, optional
        Limit on the estimated number of kernel steps (default ``10**9``: runs, times steps,
        times ``d B`` for the eigenbasis engine or ``v d B`` for the literal one, plus
        :math:`v d \min(v, d)` per embedding spectrum); larger requests raise ``ValueError``
        before any work.  ``math.inf`` removes the limit; the memory check (against the
        machine's memory) always applies.  See "Cost limits" in docs/curves.md.

    Returns
    -------
    SGDRun
        Per-run losses, their mean and standard error, and metadata.

    Raises
    ------
    TypeError, ValueError
        Bad argument types or values.
    UnstableLearningRateError
        With ``optimizer=`` (other than SGD): the optimizer's own check
        (:meth:`~volterra_sgd.HeavyBall.check_stable`, Eqs. (9.11)-(9.13)) at step 0 and, for
        time-varying hyper-parameters, also at ``max(r)``, as
        :func:`volterra_sgd.expected_loss_given_w` does.  For SGD:
        if :math:`\gamma(B+1)\lambda_{max} \ge 2` or :math:`\|K\| \ge 1` for the embedding
        (for ``W=None``: for any drawn embedding).  Its ``max_learning_rate`` attribute is
        the largest stable learning rate.  Under a schedule the full check applies to the
        values at step 0 (as in :func:`volterra_sgd.expected_loss_given_w`), and every
        simulated step must also satisfy :math:`\gamma(s)(B(s)+1)\lambda_{max} < 2`; the
        message names the first offending step, and ``max_learning_rate`` is
        :math:`2/((B(s)+1)\lambda_{max})` at that step.
    FloatingPointError
        A run produced a non-finite loss and ``throw`` is True.
    RuntimeError
        Internal kernel error.

    Notes
    -----
    The two engines produce different random sequences but the same law; the mean agrees
    with :func:`volterra_sgd.expected_loss_given_w` (for a fixed ``W``) within Monte-Carlo
    error.  With ``W=None`` every run computes the spectrum of its :math:`v\times d`
    embedding (both engines: the stability check needs it; by default from the Gram matrix,
    see ``spectrum_method``), which dominates for short runs.  One kernel per engine reads
    :math:`\gamma(s)` and :math:`B(s)` per step; constant hyper-parameters are passed as
    arrays of one entry.  See docs/sgd.md.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> from volterra_sgd.sgd import simulate_sgd
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=200, d=50)
    >>> W = model.sample_embedding(rng=0)
    >>> g = model.reference_learning_rate(0.5)
    >>> sim = simulate_sgd(model, [0, 10, 100], learning_rate=g, n_runs=20, rng=1, W=W)
    >>> sim.losses.shape
    (20, 3)
    >>> bool(abs(sim.loss[0] - model.initial_loss) < 1e-12 * model.initial_loss)
    True
    >>> exact = vs.expected_loss_given_w(model, W, [100], learning_rate=g).loss[0]
    >>> bool(abs(sim.loss[-1] - exact) < 4 * sim.stderr[-1])
    True

    A decaying learning rate :math:`\gamma(s) = \gamma_0 (1 + s/100)^{-1/2}`:

    >>> sched = lambda s: g * (1 + s / 100) ** -0.5
    >>> sim = simulate_sgd(model, [0, 10, 100], learning_rate=sched, n_runs=20, rng=1, W=W)
    >>> sim.metadata["options"]["schedule"], sim.learning_rates.shape
    (True, (100,))

    Heavy ball with label noise; ``total_loss`` adds :math:`\sigma^2` (Eq. (9.1)):

    >>> noisy = vs.PLRF(alpha=1.0, beta=0.7, v=200, d=50, noise_variance=0.01)
    >>> opt = vs.HeavyBall(learning_rate=g / 10, momentum=0.9)
    >>> sim = simulate_sgd(noisy, [0, 100], optimizer=opt, n_runs=20, rng=1, W=W)
    >>> exact = vs.expected_loss_given_w(noisy, W, [100], optimizer=opt).loss[0]
    >>> bool(abs(sim.loss[-1] - exact) < 4 * sim.stderr[-1]), sim.noise_variance
    (True, 0.01)
    """
    check_model(model)
    if not model.finite:
        raise ValueError("simulate_sgd needs a finite hidden dimension v; this model has v = inf")
    r = as_iterations(r, "r")
    n_runs = as_int(n_runs, "n_runs", minimum=1)
    engine = _validate_engine(engine)
    opt, learning_rate, batch_size = _resolve_optimizer(optimizer, learning_rate, batch_size)
    sigma2 = float(getattr(model, "noise_variance", 0.0))
    check_budget(*sgd_cost(model.v, model.d, int(r[-1]), n_runs, batch_size,
                           learning_rate if opt is None or opt.is_constant else [learning_rate],
                           literal=engine == "literal", n_spectra=1 if W is not None else n_runs),
                 what="simulate_sgd", parameter="max(r), n_runs, batch_size or the model size",
                 max_cost=max_cost)
    if opt is None:
        g, B, gam, bat, sched_meta = _hyper_parameters(learning_rate, batch_size, int(r[-1]))
        hyper, read = None, 0.0

        def check(eigenvalues):
            _check_stability(eigenvalues, g, B, gam, bat)
    else:
        g, B, gam, bat, sched_meta = learning_rate, batch_size, None, None, None
        hyper, read, steps = _momentum_tables(opt, int(r[-1]))

        def check(eigenvalues):
            opt.check_stable(eigenvalues, steps=steps)
    scheduled = gam is not None
    for name, flag in (("progress", progress), ("throw", throw)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool; got {flag!r}")
    progress = bool(progress)
    fixed = W is not None
    given_spec = None
    if isinstance(W, EmbeddingSpectrum):
        if engine != "eigen":
            raise ValueError("W may be an EmbeddingSpectrum only with engine='eigen'; the literal "
                             "engine needs the embedding matrix itself")
        given_spec = W
        if (given_spec.rank > min(int(model.v), model.d)
                or not math.isclose(given_spec.initial_loss, model.initial_loss, rel_tol=1e-12)):
            raise ValueError("W is an EmbeddingSpectrum of a different model (its rank or initial "
                             "loss does not match this model)")
    elif fixed:
        W = model.check_embedding(W)
    spectrum_method = _spectrum_method(spectrum_method, model, fixed)
    seed, entropy = _root_entropy(rng)

    tables = _rng.ziggurat_tables()
    states = _sgd_states(entropy, n_runs)
    n_rec = r.size
    out = np.empty((n_rec, n_runs))
    bar = _progress_bar(progress, n_runs, int(r[-1]), engine, fixed)

    # per-step arrays for the kernels; one entry each for constant hyper-parameters
    gamma = gam if scheduled else np.array([g])
    batch = bat if scheduled else np.array([B], dtype=np.int64)
    if engine == "eigen":
        specs = ([given_spec if given_spec is not None
                  else embedding_spectrum(model, W, method=spectrum_method)] if fixed else [])
        if fixed:
            check(specs[0].eigenvalues)
        else:
            specs = _drawn_spectra(model, entropy, range(n_runs), spectrum_method, check, bar)
        kmax = max(s.rank for s in specs)
        n_spec = len(specs)
        lam = np.zeros((n_spec, kmax))
        phi0 = np.zeros((n_spec, kmax))
        n_modes = np.empty(n_spec, dtype=np.int64)
        f0 = np.empty(n_spec)
        for s, spec in enumerate(specs):
            k = spec.rank
            lam[s, :k] = spec.eigenvalues  # the kernel forms gamma(s) * lambda_k
            phi0[s, :k] = -spec.coefficients
            n_modes[s] = k
            f0[s] = spec.limit_loss
        spec_index = (np.zeros(n_runs, dtype=np.int64) if fixed
                      else np.arange(n_runs, dtype=np.int64))
        phi = np.ascontiguousarray(phi0[spec_index])
        noise = np.sqrt(f0 + sigma2)  # Eq. (9.1): the label noise adds to F_0 in the residual
        extra = () if hyper is None else (np.zeros_like(phi), hyper, read)
        status = 0
        segs = _segments(r, progress, n_runs * kmax * float(np.max(batch)))
        for step0, step_end, lo, hi in segs:
            st = _run_kernel(_sgd_eigen_kernel, lam, noise, f0, n_modes, spec_index, gamma,
                             batch, step0, step_end, r[lo:hi], phi, states, *tables, out[lo:hi],
                             *extra)
            _check_status(st)
            status = max(status, st)
            _bar_update(bar, (step_end - step0) * n_runs)
        limit_losses = f0[spec_index]
    else:
        sqrt_dvals = np.sqrt(model.data_eigenvalues)
        dvals = np.ascontiguousarray(model.data_eigenvalues)
        target = np.ascontiguousarray(model.target)
        if fixed:
            spec = embedding_spectrum(model, W, method=spectrum_method)
            check(spec.eigenvalues)
            chunks = [np.arange(n_runs)]
            limit_losses = np.full(n_runs, spec.limit_loss)
        else:
            per = max(numba.get_num_threads(),
                      _LITERAL_CHUNK_BYTES // (8 * int(model.v) * model.d))
            chunks = [np.arange(a, min(a + per, n_runs)) for a in range(0, n_runs, per)]
            limit_losses = np.empty(n_runs)
        status = 0
        for runs in chunks:
            if fixed:
                Ws = W[None]
                w_index = np.zeros(runs.size, dtype=np.int64)
            else:
                Ws = np.empty((runs.size, int(model.v), model.d))
                drawn = _drawn_spectra(model, entropy, runs, spectrum_method, check, out_W=Ws)
                limit_losses[runs] = [spec.limit_loss for spec in drawn]
                w_index = np.arange(runs.size, dtype=np.int64)
            theta = np.zeros((runs.size, model.d))
            extra = (() if hyper is None and sigma2 == 0.0 else
                     (np.zeros((runs.size, model.d if hyper is not None else 0)),
                      np.empty((4, 0)) if hyper is None else hyper, read, math.sqrt(sigma2)))
            st_chunk = np.ascontiguousarray(states[runs])
            out_chunk = np.empty((n_rec, runs.size))
            segs = _segments(r, progress, runs.size * int(model.v) * model.d
                             * float(np.max(batch)))
            for step0, step_end, lo, hi in segs:
                st = _run_kernel(_sgd_literal_kernel, Ws, w_index, sqrt_dvals, dvals, target,
                                 gamma, batch, step0, step_end, r[lo:hi], theta, st_chunk,
                                 *tables, out_chunk[lo:hi], *extra)
                _check_status(st)
                status = max(status, st)
                _bar_update(bar, (step_end - step0) * runs.size)
            out[:, runs] = out_chunk
    if bar is not None:
        bar.close()

    if status == 1:
        bad = int(np.flatnonzero(~np.all(np.isfinite(out), axis=0))[0])
        msg = (f"simulate_sgd: run {bad} produced a non-finite loss ({STATUS[1]}); "
               f"learning_rate={g!r}, batch_size={B}"
               + (" (values at step 0 of the schedule)" if scheduled else ""))
        if throw:
            raise FloatingPointError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    losses = np.ascontiguousarray(out.T)
    mean = losses.mean(axis=0)
    if n_runs > 1:
        stderr = losses.std(axis=0, ddof=1) / math.sqrt(n_runs)
    else:
        stderr = np.full(n_rec, np.nan)
    for a in (r, mean, stderr, losses, limit_losses) + ((gam, bat) if scheduled else ()):
        a.flags.writeable = False
    from . import __version__

    metadata = {
        "package": "volterra_sgd",
        "version": __version__,
        "function": "simulate_sgd",
        "model": model_metadata(model),
        "options": {"learning_rate": g, "batch_size": B, "n_runs": n_runs, "engine": engine,
                    "optimizer": None if opt is None else repr(opt),
                    "fixed_embedding": fixed, "schedule": scheduled,
                    "spectrum_method": None if given_spec is not None else spectrum_method},
        "seed": seed,
        "entropy": str(entropy),
        "rng": "xoshiro256++ / ziggurat-1024, SeedSequence(entropy, spawn_key=(run, 1))",
    }
    if scheduled:
        metadata["schedule"] = sched_meta
    return SGDRun(
        r=r, loss=mean, stderr=stderr, losses=losses, limit_losses=limit_losses,
        n_runs=n_runs, engine=engine, learning_rate=g, batch_size=B, model=model,
        fixed_embedding=fixed, seed=seed, entropy=entropy, success=status == 0, status=status,
        message=STATUS[status], metadata=metadata,
        learning_rates=gam if scheduled else None, batch_sizes=bat if scheduled else None,
        optimizer=opt, noise_variance=sigma2,
    )


def _resolve_optimizer(optimizer, learning_rate, batch_size):
    r"""``(opt, learning_rate, batch_size)``: ``opt`` None runs the SGD path (also for vs.SGD).

    For a momentum optimizer ``learning_rate`` becomes the immediate step
    :math:`s_0 = \gamma_2(0) + \gamma_1(0)\gamma_3(0)` (docs/theory.md Eq. (9.4)) and
    ``batch_size`` the optimizer's.
    """
    from .optimizers import SGD, check_optimizer

    if optimizer is None:
        if learning_rate is None:
            raise TypeError("simulate_sgd needs learning_rate= (plain SGD) or optimizer=")
        return None, learning_rate, batch_size
    if learning_rate is not None:
        raise TypeError("give either optimizer= or learning_rate= (the optimizer carries its "
                        "own learning rate), not both")
    if not (isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
            and batch_size == 1):
        raise TypeError("batch_size belongs to the optimizer: use e.g. "
                        f"vs.HeavyBall(..., batch_size={batch_size!r})")
    opt = check_optimizer(optimizer)
    if type(opt) is SGD:  # the SGD engine itself, bit for bit
        return None, opt.learning_rate, opt.batch_size
    g1, g2, g3, _ = (float(a[0]) for a in opt.hyperparameters(np.zeros(1, dtype=np.int64)))
    return opt, g2 + g1 * g3, int(opt.batch_size)


def _momentum_tables(opt, r_max: int):
    r"""``(hyper, read, steps)`` for the kernels: the rows gamma1, gamma2, gamma3, Delta.

    One column for constant hyper-parameters, else one per step ``0 .. r_max - 1``; ``read``
    is the readout shift :math:`c` with :math:`(c_A, c_C, c_E) = (1, 2c, c^2)` (Eq. (9.10));
    ``steps`` are the steps at which stability is checked (as :mod:`volterra_sgd.momentum`).
    """
    n = 1 if opt.is_constant else max(r_max, 1)
    hyper = np.ascontiguousarray(np.vstack(opt.hyperparameters(np.arange(n, dtype=np.int64))),
                                 dtype=np.float64)
    c_a, c_c, c_e = opt.readout
    read = 0.5 * c_c
    if c_a != 1.0 or not math.isclose(c_e, read * read, rel_tol=1e-12, abs_tol=0.0):
        raise ValueError(f"simulate_sgd: readout {opt.readout} of {opt!r} is not the loss of a "
                         "shifted iterate theta + c y")  # pragma: no cover - no such optimizer
    steps = (0,) if opt.is_constant else (0, r_max)
    return hyper, read, steps


def _is_schedule(value) -> bool:
    """Tell schedules (callables, array-likes of dimension >= 1) from scalars."""
    if callable(value):
        return True
    if isinstance(value, (str, bytes)):
        return False
    try:
        return np.ndim(value) >= 1
    except Exception:  # noqa: BLE001 - odd objects are left to the scalar validators
        return False


def _shape_checked(value, name: str):
    """Wrap a schedule callable so that a result of the wrong shape gets a clear message."""
    if not callable(value):
        return value

    def func(s):
        out = np.asarray(value(s))
        if out.shape not in ((), np.shape(s)):
            raise ValueError(f"the {name} schedule must return one value per step (an array "
                             f"of the shape of its argument, {np.shape(s)}); got shape "
                             f"{out.shape}")
        return out
    return func


def _describe_schedule(value, values: np.ndarray) -> dict:
    kind = "callable" if callable(value) else ("array" if _is_schedule(value) else "constant")
    cast = int if values.dtype.kind == "i" else float
    return {"kind": kind, "first": cast(values[0]), "last": cast(values[-1]),
            "min": cast(values.min()), "max": cast(values.max())}


def _hyper_parameters(learning_rate, batch_size, r_max: int):
    """Validate ``learning_rate`` and ``batch_size`` (constants or schedules).

    Returns ``(g0, B0, gam, bat, meta)``: the values at step 0 and, under a schedule, the
    per-step arrays ``gam`` (float64) and ``bat`` (int64) for the steps ``0 .. r_max - 1``
    (one entry when ``r_max == 0``) and a JSON description; ``gam = bat = meta = None`` for
    constants (the kernels then get arrays of one entry).
    """
    from .schedule import as_schedule

    lr_sched = _is_schedule(learning_rate)
    bs_sched = _is_schedule(batch_size)
    g = None if lr_sched else as_positive_real(learning_rate, "learning_rate")
    B = None if bs_sched else as_int(batch_size, "batch_size", minimum=1)
    if not (lr_sched or bs_sched):
        return g, B, None, None, None
    steps = np.arange(max(r_max, 1), dtype=np.float64)
    gfun, _ = as_schedule(_shape_checked(learning_rate, "learning_rate") if lr_sched else g,
                          "learning_rate")
    bfun, _ = as_schedule(_shape_checked(batch_size, "batch_size") if bs_sched else B,
                          "batch_size", integer=True)
    gam = np.ascontiguousarray(gfun(steps), dtype=np.float64)
    bat_f = np.asarray(bfun(steps), dtype=np.float64)
    if gam.shape != steps.shape or bat_f.shape != steps.shape:  # pragma: no cover - as_schedule
        raise ValueError("learning_rate and batch_size schedules must give one value per step")
    if np.max(bat_f) > 2**40:
        s = int(np.argmax(bat_f))
        raise ValueError(f"batch_size schedule: B({s}) = {bat_f[s]:.6g} is too large")
    bat = np.ascontiguousarray(bat_f.astype(np.int64))
    meta = {"steps": int(r_max),
            "learning_rate": _describe_schedule(learning_rate, gam),
            "batch_size": _describe_schedule(batch_size, bat)}
    return float(gam[0]), int(bat[0]), gam, bat, meta


def _check_stability(eigenvalues, g: float, B: int, gam=None, bat=None) -> None:
    """Stability check: the full one at step 0, and gamma(s)(B(s)+1)lambda_max < 2 per step."""
    from .exceptions import UnstableLearningRateError

    check_learning_rate(eigenvalues, g, B)
    if gam is None or gam.size == 0:
        return
    lam_max = float(np.max(eigenvalues)) if np.size(eigenvalues) else 0.0
    factor = gam * (bat + 1.0) * lam_max  # gamma(s) (B(s) + 1) lambda_max
    bad = np.flatnonzero(~(factor < 2.0))
    if bad.size:
        s = int(bad[0])
        gmax = 2.0 / ((bat[s] + 1.0) * lam_max)
        raise UnstableLearningRateError(
            f"the schedule is unstable at step s = {s} (and {bad.size - 1} later steps): "
            f"gamma(s)*(B(s)+1)*lambda_max = {factor[s]:.6g} >= 2 with gamma(s) = "
            f"{gam[s]!r}, B(s) = {int(bat[s])}, lambda_max = {lam_max:.6g}; every step needs "
            f"gamma(s) < 2/((B(s)+1)*lambda_max), here {gmax:.10g}", gmax)


def _check_drawn(eigenvalues, check, i: int) -> None:
    from .exceptions import UnstableLearningRateError

    try:
        check(eigenvalues)
    except UnstableLearningRateError as exc:
        raise UnstableLearningRateError(
            f"for the embedding drawn for run {i}: {exc}", exc.max_learning_rate) from None


def _progress_bar(progress: bool, n_runs: int, r_max: int, engine: str, fixed: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm  # lazy: optional extra

    return tqdm(total=n_runs * r_max, desc=f"SGD ({engine})", unit="step", unit_scale=True)


def _bar_update(bar, n: int) -> None:
    if bar is not None:
        bar.update(n)


def _bar_note(bar, text: str) -> None:
    if bar is not None:
        bar.set_postfix_str(text)


def _warmup() -> None:
    """Compile (or load from cache) the SGD kernels with tiny inputs.

    Constants and schedules use the same compiled kernels (per-step arrays of any length);
    the momentum buffer (and, literally, label noise) is a second specialization per engine.
    """
    from .optimizers import HeavyBall

    model = PLRF(1.0, 0.5, 4, 2)
    noisy = PLRF(1.0, 0.5, 4, 2, noise_variance=0.01)
    W = model.sample_embedding(0)
    for engine in ENGINES:
        simulate_sgd(model, [0, 2], learning_rate=[0.05, 0.04], batch_size=[1, 2], n_runs=2,
                     rng=0, W=W, engine=engine)
        simulate_sgd(noisy, [0, 2], optimizer=HeavyBall(0.01, 0.5), n_runs=2, rng=0, W=W,
                     engine=engine)
