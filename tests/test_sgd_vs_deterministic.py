"""Deterministic loss curve against simulated SGD (slow; ``pytest -m slow``).

Acceptance criterion of the loss-curve issue: against simulated SGD (same model, a new
embedding per run, >= 100 runs), ``loss_curve`` is within 5% over ``r in [0, 1e5]`` at
``d = 400`` for ``alpha = beta = 0.7``, ``B = 1``.

A 5% criterion is only meaningful where the Monte-Carlo error is well below 5%.  The per-run
relative standard deviation of :math:`P(\theta_r)` is about 0.55 at ``r ~ 10`` (single-sample
noise dominates early) but 0.15-0.3 for ``r >= 50``, so reaching a relative standard error of
1.25% at *every* ``r`` with one embedding per run would take ~2100 runs, each paying an SVD of
its 4000 x 400 embedding (~0.1 s on a quiet core, serial) plus 1e5 steps: over 6 minutes.
Instead the test has two tiers, each with its own honest standard error:

* **main tier**: ``simulate_sgd(..., W=None)``, one new embedding per run, ``N_MAIN`` runs,
  every ``r`` up to 1e5;
* **early tier** (``r <= R_EARLY``): ``M_EARLY`` new embeddings with ``K_EARLY`` SGD runs each
  (``W=`` the embedding's spectrum).  This estimates the same :math:`E[P(\theta_r)]` (average
  over embeddings and SGD noise); the standard error is that of the ``M_EARLY``
  embedding-level means, so it includes the embedding-to-embedding variation.  At early ``r``
  that variation is small (relative std ~0.1 against ~0.6 for the SGD noise), so ``K_EARLY``
  runs per SVD buy the precision cheaply.

Assertions, per tier: ``|z| <= 4`` at every ``r > 0`` and ``|ratio - 1| <= 5%`` wherever the
tier's relative standard error is <= 1.25%; and every ``r > 0`` is covered (relative SE
<= 1.25%) by at least one tier, so the 5% criterion is checked at every recorded iteration.
"""

import math
import time

import numpy as np
import pytest

import volterra_sgd as vs

pytestmark = pytest.mark.slow

MODEL = vs.PLRF(alpha=0.7, beta=0.7, v=4000, d=400)
R = np.r_[0, np.unique(np.round(np.logspace(0, 5, 25)).astype(np.int64))]
N_MAIN = 600
R_EARLY = 400
M_EARLY = 200
K_EARLY = 30
REL_SE_MAX = 0.0125
TOL = 0.05


def _check_tier(name, sim_mean, sim_se, det, r):
    """z-scores and ratios of one tier (r > 0); returns the printed summary."""
    keep = r > 0
    ratio = sim_mean[keep] / det[keep]
    rel_se = sim_se[keep] / sim_mean[keep]
    z = (sim_mean[keep] - det[keep]) / sim_se[keep]
    tight = rel_se <= REL_SE_MAX
    summary = (f"{name}: worst |ratio-1| = {np.max(np.abs(ratio - 1)):.4f} (all r), "
               f"{np.max(np.abs(ratio[tight] - 1), initial=0):.4f} where rel SE <= "
               f"{REL_SE_MAX:.2%} ({tight.sum()}/{keep.sum()} points); max |z| = "
               f"{np.max(np.abs(z)):.2f}; rel SE {rel_se.min():.4f}..{rel_se.max():.4f}")
    print(summary)
    assert np.all(np.abs(z) <= 4), f"{name}: z = {np.round(z, 2)} at r = {r[keep]}"
    assert np.all(np.abs(ratio[tight] - 1) <= TOL), (
        f"{name}: ratio - 1 = {np.round(ratio - 1, 4)} at r = {r[keep]}")
    return tight


def test_loss_curve_within_5_percent_of_sgd_d400():
    g = MODEL.reference_learning_rate(0.5)
    t0 = time.perf_counter()
    det = vs.loss_curve(MODEL, R, learning_rate=g)
    assert det.info.success
    t_det = time.perf_counter() - t0

    # main tier: a new embedding per run
    t0 = time.perf_counter()
    sim = vs.simulate_sgd(MODEL, R, learning_rate=g, n_runs=N_MAIN, rng=2024, W=None)
    t_main = time.perf_counter() - t0
    assert sim.success and not sim.fixed_embedding
    # r = 0: theta_0 = 0, P(0) = sum_j j^(-2(alpha+beta)) in every run and in the curve
    np.testing.assert_allclose(sim.losses[:, 0], MODEL.initial_loss, rtol=1e-12)
    assert det.loss[0] == pytest.approx(MODEL.initial_loss, rel=1e-9)
    tight_main = _check_tier(f"main ({N_MAIN} runs, one embedding each)", sim.loss, sim.stderr,
                             det.loss, R)

    # early tier: M embeddings x K SGD runs, standard error over embedding-level means
    t0 = time.perf_counter()
    r_early = R[R <= R_EARLY]
    means = np.empty((M_EARLY, r_early.size))
    for i, child in enumerate(np.random.SeedSequence(77).spawn(M_EARLY)):
        emb_seq, sgd_seq = child.spawn(2)
        W = MODEL.sample_embedding(np.random.default_rng(emb_seq))
        spec = vs.embedding_spectrum(MODEL, W)
        means[i] = vs.simulate_sgd(MODEL, r_early, learning_rate=g, n_runs=K_EARLY,
                                   rng=np.random.default_rng(sgd_seq), W=spec).loss
    t_early = time.perf_counter() - t0
    early_mean = means.mean(axis=0)
    early_se = means.std(axis=0, ddof=1) / math.sqrt(M_EARLY)
    tight_early = _check_tier(f"early ({M_EARLY} embeddings x {K_EARLY} runs, r <= {R_EARLY})",
                              early_mean, early_se, det.loss[: r_early.size], r_early)

    # every r > 0 is checked at <= 1.25% relative standard error by at least one tier
    covered = tight_main.copy()
    covered[: tight_early.size] |= tight_early
    assert np.all(covered), f"uncovered r: {R[1:][~covered]}"
    print(f"times: loss_curve {t_det:.1f} s, main tier {t_main:.1f} s, "
          f"early tier {t_early:.1f} s")


def test_fixed_w_schedule_matches_expected_loss_d400():
    # A schedule at the size of the acceptance test, on one fixed embedding: SGD (eigenbasis
    # engine) against the exact E[P | W] from the step recursion (docs/theory.md, Sec. 8), within
    # 4 standard errors.  gamma(s) = gamma0 (1 + s/100)^(-1/2), B = 1 up to s = 2000 then 2.
    model = MODEL
    W = model.sample_embedding(rng=5)
    spec = vs.embedding_spectrum(model, W)
    g0 = model.reference_learning_rate(0.5)
    r_max = 20_000
    s = np.arange(r_max)
    B = np.where(s < 2000, 1, 2)
    lr = g0 * (1.0 + s / 100.0) ** -0.5
    r = np.unique(np.r_[0, np.round(np.logspace(0, np.log10(r_max), 20)).astype(np.int64),
                        1999, 2000, 2001, 2100])
    t0 = time.perf_counter()
    sim = vs.simulate_sgd(model, r, learning_rate=lr, batch_size=B, n_runs=400, rng=31,
                          W=spec)
    t_sim = time.perf_counter() - t0
    ref = vs.expected_loss_given_w(model, spec, r, learning_rate=lr, batch_size=B).loss
    keep = r > 0
    z = (sim.loss - ref)[keep] / sim.stderr[keep]
    print(f"fixed W, schedule: max |z| = {np.max(np.abs(z)):.2f}, worst |ratio-1| = "
          f"{np.max(np.abs(sim.loss[keep] / ref[keep] - 1)):.4f}; simulation {t_sim:.1f} s")
    assert np.all(np.abs(z) < 4), np.round(z, 2)
    # power: the constant-gamma0, B = 1 expectation is rejected by the same criterion
    const = vs.expected_loss_given_w(model, spec, r, learning_rate=g0).loss
    assert np.max(np.abs((sim.loss - const)[keep] / sim.stderr[keep])) > 4
