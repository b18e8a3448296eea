"""Tests of volterra_sgd.resolvent (THEORY.md §3.3, §7, §B.5, §C)."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from mp_reference import limit_loss_mp, tau_mp

from volterra_sgd.model import PLRF
from volterra_sgd.resolvent import _scaled_power_sum, limit_loss, tau

INF = math.inf


# ------------------------------------------------------------------ power sums (tail)
@pytest.mark.parametrize(
    "s, J, v",
    [(2.0, 32, INF), (0.6, 100, 2000), (1.0, 50, 1000), (3.7, 40, INF), (150.0, 32, INF),
     (1.4, 1000, 1e7), (1.0 + 1e-9, 64, 1e6), (2.2, 500, 501), (2.2, 500, 520)],
)
def test_scaled_power_sum_against_hurwitz_zeta(s, J, v):
    # reference: J^s (zeta(s, J+1) - zeta(s, v+1)) at 30 digits (harmonic numbers at s = 1)
    with mp.workdps(30):
        if s == 1.0:
            ref = J * (mp.harmonic(v) - mp.harmonic(J))
        else:
            ref = mp.mpf(J) ** s * (mp.zeta(s, J + 1) - (0 if v == INF else mp.zeta(s, v + 1)))
        ref = float(ref)
    got = _scaled_power_sum(s, float(J), float(v))
    assert got == pytest.approx(ref, rel=2e-15, abs=0)


def test_scaled_power_sum_empty():
    assert _scaled_power_sum(2.0, 100.0, 100.0) == 0.0


# ------------------------------------------------------------------ tau and F0
def test_tau_and_limit_loss_reference_numbers():
    # THEORY.md §C: v = 2000, d = 200, alpha = 1, beta = 0.7
    m = PLRF(1.0, 0.7, 2000, 200)
    assert tau(m) / 200**2 == pytest.approx(0.44414, abs=5e-6)
    assert limit_loss(m) == pytest.approx(1.5355e-4, abs=5e-9)


@pytest.mark.parametrize(
    "alpha, ratio, kappa",
    [(1.0, 4, 0.5152), (0.7, 4, 0.4625), (0.4, 4, 0.4110), (1.0, 10, 0.4418)],
)
def test_kappa_finite_ratio(alpha, ratio, kappa):
    # THEORY.md §C gives the d -> inf continuum kappa(v/d) to 4 digits; at d = 2e4 the
    # discrete tau differs from it by O(1/d).
    d = 20000
    k = tau(PLRF(alpha, 1.0, ratio * d, d)) / d ** (2 * alpha)
    assert k == pytest.approx(kappa, abs=1.5e-4)


@pytest.mark.parametrize("alpha, kappa", [(1.0, 0.40528), (0.7, 0.22852)])
def test_kappa_infinite_v(alpha, kappa):
    # kappa_inf = c^(-2 alpha), c = (pi/2a)/sin(pi/2a) (THEORY.md §3.3), approached as O(1/d)
    c = (math.pi / (2 * alpha)) / math.sin(math.pi / (2 * alpha))
    assert c ** (-2 * alpha) == pytest.approx(kappa, abs=5e-6)
    errs = []
    for d in (1000, 10000, 100000):
        errs.append(abs(tau(PLRF(alpha, 1.0, INF, d)) / d ** (2 * alpha) - c ** (-2 * alpha)))
    assert errs[2] < 1e-5
    # first-order convergence in 1/d
    slopes = np.diff(np.log(errs)) / np.diff(np.log([1000, 10000, 100000]))
    assert np.all((slopes < -0.9) & (slopes > -1.1))


TAU_CASES = [
    (1.0, 0.7, 2000, 200),
    (0.3, 0.6, 1500, 150),
    (0.7, 0.3, INF, 100),
    (1.5, 0.2, INF, 150),
    (1.5, -0.5, INF, 150),
    (0.7, 0.0, 101, 100),  # v = d + 1: tau is huge
    (0.25, 0.5, 8000, 100),
    (0.6, 0.4, 10**7, 100),
    (2.5, 1.0, 10**6, 120),
]


@pytest.mark.parametrize("alpha, beta, v, d", TAU_CASES)
def test_tau_limit_loss_against_mpmath(alpha, beta, v, d):
    # reference: tests/mp_reference.py at 30 digits, e.g.
    #   with mp.workdps(30): tau_mp(1.0, 2000, 200), limit_loss_mp(1.0, 0.7, 2000, 200)
    model = PLRF(alpha, beta, v, d)
    with mp.workdps(30):
        t_ref = float(tau_mp(alpha, v, d))
        f_ref = float(limit_loss_mp(alpha, beta, v, d))
    assert tau(model) == pytest.approx(t_ref, rel=1e-13)
    assert limit_loss(model) == pytest.approx(f_ref, rel=1e-13)


@pytest.mark.parametrize("v", [50, 99, 100])
def test_tau_no_solution_when_v_le_d(v):
    model = PLRF(1.0, 0.7, v, 100)
    assert tau(model) == INF
    assert limit_loss(model) == 0.0


def test_limit_loss_below_initial_loss_and_monotone_in_d():
    prev = math.inf
    for d in (10, 50, 200, 800):
        model = PLRF(1.0, 0.7, 4000, d)
        f0 = limit_loss(model)
        assert 0.0 < f0 < model.initial_loss
        assert f0 < prev
        prev = f0


def test_tau_and_limit_loss_reject_non_models():
    with pytest.raises(TypeError, match="PLRF"):
        tau((1.0, 0.7, 2000, 200))
    with pytest.raises(TypeError, match="PLRF"):
        limit_loss("model")
