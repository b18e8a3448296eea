"""Tests of volterra_sgd.phases (phase diagram, exponents, asymptotic parts) and the phase plot.

Reference values come from tests/phase_table.py, written by hand from docs/theory.md, Eq. (11.3).
"""

import math
import warnings

import numpy as np
import pytest
from phase_table import (
    A_C,
    BOUNDARY_SAMPLES,
    NUMERICAL_POINTS,
    REF_ETA,
    REF_XI,
    SURROGATE_POINTS,
    TRAVERSAL_ALPHA_07,
    TRAVERSAL_BOUNDARY,
    ref_phase,
)

import volterra_sgd as vs
from volterra_sgd import phases as ph
from volterra_sgd.exceptions import UnstableLearningRateError

# ----------------------------------------------------------------------------- phases


def _grid_points():
    pts = []
    for a in np.linspace(0.02, 1.6, 27):
        for b in np.linspace(-0.6, 1.9, 27):
            a, b = float(a), float(b)
            dist = min(abs(2 * a - 1), abs(2 * b - 1), abs(b - a), abs(a - 0.25),
                       abs(a - A_C), abs(2 * (a + b) - 1))
            if ref_phase(a, b) is not None and dist > 1e-3:
                pts.append((a, b))
    return pts


def test_phase_and_exponents_match_hand_table_on_grid():
    pts = _grid_points()
    assert len(pts) >= 200
    seen = set()
    for a, b in pts:
        ref = ref_phase(a, b)
        seen.add(ref)
        assert ph.phase(a, b) == ref, (a, b)
        info = ph.phase_info(a, b)
        assert not info.on_boundary and info.neighbours == (ref,) and info.boundaries == ()
        ex = ph.phase_exponents(a, b)
        assert ex.phase == ref
        assert ex.xi == pytest.approx(REF_XI[ref](a, b), rel=1e-13, abs=1e-15)
        assert ex.eta == pytest.approx(REF_ETA[ref](a, b), rel=1e-13, abs=1e-15)
    assert seen == set(ph.PHASES)


def test_vectorised_codes_agree_with_phase():
    pts = _grid_points()
    a = np.array([p[0] for p in pts])
    b = np.array([p[1] for p in pts])
    code, xi, eta = ph._exponent_arrays(a, b)
    for k, (ai, bi) in enumerate(pts):
        ex = ph.phase_exponents(ai, bi)
        assert ph.PHASES[code[k]] == ex.phase
        assert xi[k] == pytest.approx(ex.xi) and eta[k] == pytest.approx(ex.eta)
    assert ph._phase_codes(0.1, 0.2) == -1 and ph._phase_codes(-0.1, 2.0) == -1


@pytest.mark.parametrize("beta,phase_name,xi,eta", TRAVERSAL_ALPHA_07)
def test_alpha_07_traversal_theory_section_C(beta, phase_name, xi, eta):
    ex = vs.phase_exponents(0.7, beta) if hasattr(vs, "phase_exponents") else \
        ph.phase_exponents(0.7, beta)
    assert ex.phase == phase_name
    assert round(ex.xi, 4) == pytest.approx(xi, abs=1e-12)
    assert round(ex.eta, 4) == pytest.approx(eta, abs=1e-12)


@pytest.mark.parametrize("alpha,beta,label,neighbours,xi,eta", TRAVERSAL_BOUNDARY)
def test_boundary_points_of_the_reproduction_table(alpha, beta, label, neighbours, xi, eta):
    with pytest.warns(ph.PhaseBoundaryWarning, match="boundary"):
        assert ph.phase(alpha, beta) == label          # contract: phase(0.7, 0.5) -> "II"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ph.phase(alpha, beta, boundary="assign") == label
        assert ph.phase(alpha, beta, boundary="join") == "/".join(neighbours)
        ex = ph.phase_exponents(alpha, beta)
    with pytest.raises(ValueError, match="boundary"):
        ph.phase(alpha, beta, boundary="raise")
    assert ex.phase == label and ex.on_boundary and ex.neighbours == neighbours
    assert round(ex.xi, 4) == xi and round(ex.eta, 4) == eta
    assert set(ex.xi_limits) == set(neighbours)


@pytest.mark.parametrize("alpha,beta,phase_name,xi,eta", SURROGATE_POINTS)
def test_surrogate_column_predictions(alpha, beta, phase_name, xi, eta):
    ex = ph.phase_exponents(alpha, beta)
    assert ex.phase == phase_name
    assert ex.xi == pytest.approx(xi, abs=6e-4) and ex.eta == pytest.approx(eta, abs=6e-4)


def test_contract_examples():
    assert ph.phase(0.7, 0.5, boundary="assign") == "II"
    ex = ph.phase_exponents(0.7, 0.5)
    assert (ex.xi, ex.eta) == pytest.approx((5 / 12, 7 / 12))
    assert ex.dominant_terms == ("Fpp", "Fac", "Fo")
    assert ex.xi_status == "derived" and ex.eta_status == "derived"
    assert ph.phase_exponents(1.0, 2.0).dominant_terms == ("noise", "Fac", "Fo")
    assert ph.phase_exponents(0.45, 1.0).universal and not ph.phase_exponents(0.27, 1).universal


@pytest.mark.parametrize("point,labels", [
    ((0.5, 0.5), ("Ia", "Ib", "II", "III", "IVb")),
    ((0.25, 0.5), ("Ib", "Ic", "IVa")),
    ((A_C, 0.5), ("Ib", "IVa", "IVb")),
    ((0.5, 0.2), ("Ia", "Ib")),
    ((0.25, 1.0), ("Ic", "IVa")),
])
def test_neighbours_at_boundaries_and_triple_points(point, labels):
    info = ph.phase_info(*point)
    assert info.on_boundary and info.neighbours == labels
    assert info.label == "/".join(labels)
    assert info.phase in labels


def test_lines_that_are_not_boundaries():
    # alpha = 1/4 and alpha = 1 - 1/sqrt2 inside Ib; beta = alpha for alpha < 1/2
    for a, b in [(0.25, 0.4), (A_C, 0.3), (0.4, 0.4)]:
        info = ph.phase_info(a, b)
        assert not info.on_boundary and info.phase == "Ib"


def test_boundary_tolerance():
    assert ph.phase_info(0.7, 0.5 + 1e-13).on_boundary
    assert not ph.phase_info(0.7, 0.5 + 1e-9).on_boundary
    assert ph.phase_info(0.7, 0.5 + 1e-9, tol=1e-8).on_boundary
    assert ph.phase(0.7, 0.5 - 1e-9) == "Ia"


@pytest.mark.parametrize("alpha,beta", [(0.1, 0.2), (0.3, 0.2), (0.0, 1.0), (-0.2, 2.0),
                                        (1.0, -0.5)])
def test_outside_admissible_region_raises(alpha, beta):
    with pytest.raises(ValueError, match="alpha"):
        ph.phase(alpha, beta)
    with pytest.raises(ValueError):
        ph.phase_exponents(alpha, beta)


def test_bad_arguments():
    with pytest.raises(TypeError):
        ph.phase("0.7", 0.5)
    with pytest.raises(ValueError, match="finite"):
        ph.phase(math.nan, 0.5)
    with pytest.raises(ValueError, match="boundary must be"):
        ph.phase(1.0, 0.7, boundary="nearest")
    with pytest.raises(ValueError, match="tol"):
        ph.phase_info(1.0, 0.7, tol=-1.0)


@pytest.mark.parametrize("point,direction,sides", BOUNDARY_SAMPLES)
def test_eta_continuous_across_every_boundary(point, direction, sides):
    a0, b0 = point
    da, db = direction
    for eps in (1e-3, 1e-5, 1e-7):
        lo = ph.phase_exponents(a0 - eps * da, b0 - eps * db)
        hi = ph.phase_exponents(a0 + eps * da, b0 + eps * db)
        assert (lo.phase, hi.phase) == sides
        assert abs(hi.eta - lo.eta) <= 20 * eps            # Lipschitz: continuous
        if sides != ("IVa", "IVb") or b0 == 0.5:
            assert abs(hi.xi - lo.xi) <= 20 * eps
    on = ph.phase_exponents(a0, b0)
    assert on.on_boundary and set(sides) <= set(on.neighbours)
    assert max(on.eta_limits.values()) - min(on.eta_limits.values()) < 1e-12


def test_xi_jumps_between_IVa_and_IVb_except_at_beta_half():
    for b in (0.6, 0.8, 1.0, 2.0):
        ex = ph.phase_exponents(A_C, b)
        jump = ex.xi_limits["IVa"] - ex.xi_limits["IVb"]
        assert jump == pytest.approx(REF_XI["IVa"](A_C, b) - 0.5)
        assert jump > 0.05
        assert ex.eta_limits["IVa"] == pytest.approx(ex.eta_limits["IVb"], abs=1e-14)
    ex = ph.phase_exponents(A_C, 0.5)
    assert ex.xi_limits["IVa"] == pytest.approx(0.5) == ex.xi_limits["IVb"]


# ------------------------------------------------------- numerical confirmation (4 terms)


@pytest.mark.parametrize("alpha,beta,phase_name", NUMERICAL_POINTS)
def test_numerical_minimisation_confirms_exponents(alpha, beta, phase_name):
    assert ref_phase(alpha, beta) == phase_name
    num = ph.numerical_phase_exponents(alpha, beta)
    assert num.success
    # slopes fitted over log10 f in [80, 120]; convergence is slowest in IVa (~1e-4 here)
    assert num.xi == pytest.approx(REF_XI[phase_name](alpha, beta), abs=1e-3)
    assert num.eta == pytest.approx(REF_ETA[phase_name](alpha, beta), abs=1e-3)
    assert num.xi_error < 5e-3 and num.eta_error < 5e-3
    assert np.all(np.diff(num.log10_d_star) > 0) and np.all(np.diff(num.log10_loss_star) < 0)


def test_numerical_slopes_converge_in_IVa():
    # the two competing terms have close exponents in IVa: slopes approach the closed form
    early = ph.numerical_phase_exponents(0.27, 1.0, log10_flops=(10, 30), num=5)
    late = ph.numerical_phase_exponents(0.27, 1.0, log10_flops=(80, 160), num=5)
    ref = REF_XI["IVa"](0.27, 1.0)
    assert abs(late.xi - ref) < abs(early.xi - ref)
    assert abs(late.xi - ref) < 3e-4


def test_four_term_loss_interface():
    P = ph.four_term_loss(1.0, 2.0, [10.0, 1e3, 1e5], 1e8)
    assert P.shape == (3,) and np.all(P > 0)
    with pytest.raises(ValueError, match="log-divergent"):
        ph.four_term_loss(1.0, 0.5, 10.0, 1e3)
    with pytest.raises(ValueError, match="d <= flops"):
        ph.four_term_loss(1.0, 0.7, 1e4, 1e3)
    with pytest.raises(ValueError, match="log10_flops"):
        ph.numerical_phase_exponents(1.0, 0.7, log10_flops=(10, 5))


# ----------------------------------------------------------------- special functions


def test_upper_gamma_against_mpmath():
    # mpmath references:  import mpmath; mpmath.mp.dps = 30
    #   [float(mpmath.gammainc(s, x)) for s, x in CASES]
    cases = [(2.5, 0.3, 1.3133926142981467), (0.5, 2.0, 0.08064711796031769),
             (0.0, 0.7, 0.3737688432335092), (-0.4, 0.05, 4.836795825789785),
             (-1.0, 1.5, 0.04873385769232057), (-2.6, 3.0, 0.00046721099246460607),
             (-0.75, 40.0, 6.403784286418288e-21)]
    for s, x, ref in cases:
        assert float(ph._upper_gamma(s, np.array([x]))[0]) == pytest.approx(ref, rel=1e-12)
        assert float(ph._log_upper_gamma(s, np.array([x]))[0]) == pytest.approx(
            math.log(ref), rel=1e-12)
    # both sides of the switch to the asymptotic series at x = 500, and far out:
    # float(mpmath.log(mpmath.gammainc(1.7, 499))), ... (1.7, 501), (-0.3, 2000)
    lg = ph._log_upper_gamma(1.7, np.array([499.0, 501.0]))
    np.testing.assert_allclose(lg, [-494.6497747503803, -496.6469803321603], rtol=1e-13)
    assert ph._log_upper_gamma(-0.3, np.array([2000.0]))[0] == pytest.approx(-2009.881822661992,
                                                                          rel=1e-13)


def test_power_sum_against_mpmath():
    # mpmath.mp.dps = 30; float(mpmath.zeta(1.4) - mpmath.zeta(1.4, 10**7 + 1)),
    # float(mpmath.zeta(1.4)), float(mpmath.zeta(0.6, 5) - mpmath.zeta(0.6, 10**6 + 1))
    assert ph._power_sum(1.4, 1, 10**7) == pytest.approx(3.101585045075673, rel=1e-13)
    assert ph._power_sum(1.4, 1, math.inf) == pytest.approx(3.105547277977581, rel=1e-13)
    assert ph._power_sum(0.6, 5, 10**6) == pytest.approx(623.4067609284739, rel=1e-13)
    with pytest.raises(ValueError, match="diverges"):
        ph._power_sum(0.9, 1, math.inf)


def test_kappa_reference_values_theory_section_C():
    assert ph.kappa(1.0) == pytest.approx(0.40528, abs=5e-6)
    assert ph.kappa(0.7) == pytest.approx(0.22852, abs=5e-6)
    assert ph.kappa(1.0, 4.0) == pytest.approx(0.5152, abs=5e-5)
    assert ph.kappa(0.7, 4.0) == pytest.approx(0.4625, abs=5e-5)
    assert ph.kappa(0.4, 4.0) == pytest.approx(0.4110, abs=5e-5)
    assert ph.kappa(1.0, 10.0) == pytest.approx(0.4418, abs=5e-5)
    with pytest.raises(ValueError):
        ph.kappa(0.4)            # v/d = inf needs 2 alpha > 1


# ----------------------------------------------------------------------- asymptotics


def _exact_sums(model, lr, B, r):
    """Fpp_sum = sum_j j^-2(a+b) q_j^r and Kpp_sum = lr^2 B sum_j j^-4a q_j^r (naive)."""
    lam = model.data_eigenvalues[::-1]
    log_q = np.log1p(-lr * B * lam * (2 - lr * (B + 1) * lam))   # q^r without rounding 1 - p
    w = model.scaled_target[::-1] ** 2
    F = np.array([np.sum(w * np.exp(int(k) * log_q)) for k in r])
    K = np.array([lr * lr * B * np.sum(lam * lam * np.exp(int(k) * log_q)) for k in r])
    return F, K


@pytest.mark.parametrize("alpha,beta,B", [(1.0, 0.7, 1), (0.75, 0.25, 4), (0.6, 1.5, 1),
                                          (2.0, 1.0, 2), (0.4, 0.45, 1), (1.5, -0.3, 1)])
def test_Fpp_Kpp_closed_forms_match_sums_in_stated_ranges(alpha, beta, B):
    v = 100_000
    model = vs.PLRF(alpha, beta, v, v // 2)
    lr = model.reference_learning_rate(0.5) / B
    ranges = ph.asymptotic_parts(model, [1], learning_rate=lr, batch_size=B,
                                 limit="asymptotic").ranges
    checked = 0
    for key in ("Fpp", "Kpp"):
        lo, hi = ranges[key]
        if not lo < hi or (key == "Kpp" and alpha <= 0.25):
            continue
        T = np.geomspace(lo, min(hi, 1e16), 7)
        r = np.unique(np.ceil(T / (2 * lr * B)).astype(np.int64))
        r = r[2 * lr * B * r <= hi]
        asym = ph.asymptotic_parts(model, r, learning_rate=lr, batch_size=B,
                                   limit="asymptotic")
        F, K = _exact_sums(model, lr, B, r)
        exact = F if key == "Fpp" else K
        np.testing.assert_allclose(asym[key] / exact, 1.0, atol=0.01)
        checked += r.size
    assert checked >= 5


def test_Fpp_range_is_not_vacuous():
    # below the stated lower edge the closed form is off by more than 1%
    model = vs.PLRF(2.0, 1.0, 100_000, 50_000)
    lr = model.reference_learning_rate(0.5)
    lo = ph.asymptotic_parts(model, [1], learning_rate=lr, limit="asymptotic").ranges["Fpp"][0]
    r = np.array([int(lo / 30 / (2 * lr))])
    F, _ = _exact_sums(model, lr, 1, r)
    assert abs(ph.asymptotic_parts(model, r, learning_rate=lr, limit="asymptotic")["Fpp"][0]
               / F[0] - 1) > 0.01


def _tau_by_bisection(alpha, v, d):
    """Private cross-check only: solve sum_j tau/(j^2a + tau) = d (finite v)."""
    from scipy.optimize import brentq

    j2a = np.arange(1, v + 1, dtype=float) ** (2 * alpha)
    return brentq(lambda t: np.sum(t / (j2a + t)) - d, 1e-12, 1e30, rtol=1e-15)


@pytest.mark.parametrize("model", [vs.PLRF(1.0, 0.7, 2000, 200), vs.PLRF(1.0, 0.7, math.inf, 300),
                                   vs.PLRF(0.4, 0.9, 4000, 1000), vs.PLRF(0.7, 0.3, 10**7, 3000),
                                   vs.PLRF(0.75, -0.1, math.inf, 500),
                                   # tau ~ 1e12: the tail series once overflowed in tau^n
                                   vs.PLRF(2.0, 1.0, math.inf, 1000),
                                   vs.PLRF(1.25, 0.75, math.inf, 100000)])
def test_Fo_from_tau_matches_deterministic_limit_loss(model):
    from volterra_sgd import resolvent
    lr = model.reference_learning_rate(0.25)
    Fo = ph.asymptotic_parts(model, [10], learning_rate=lr)["Fo"][0]
    assert Fo == pytest.approx(resolvent.limit_loss(model), rel=1e-8)
    if math.isfinite(model.v) and model.v <= 4000:
        t = _tau_by_bisection(model.alpha, int(model.v), model.d)
        ref = ph._limit_loss_from_tau(model.alpha, model.beta, model.v, t)
        assert Fo == pytest.approx(ref, rel=1e-9)


def test_Fo_theory_reference_and_asymptotic_form():
    model = vs.PLRF(1.0, 0.7, 2000, 200)
    lr = model.reference_learning_rate(0.5)
    exact = ph.asymptotic_parts(model, [10], learning_rate=lr)["Fo"][0]
    assert exact == pytest.approx(1.5355e-4, rel=5e-5)                   # Eq. (13.1)
    asym = ph.asymptotic_parts(model, [10], learning_rate=lr, limit="asymptotic")["Fo"][0]
    # With c_beta = zeta(2 beta) the leading form (docs/theory.md, Eq. (10.5)) would be 14% off
    # at d = 200; with the finite-v c_beta = sum_{j<=v} j^(-2 beta) used here it is 10% off.
    assert asym / exact == pytest.approx(1.10, abs=0.01)
    # the asymptotic form converges with d (both 2 beta > 1 and 2 beta < 1)
    for beta in (0.7, 0.3):
        ratios = []
        for d in (200, 3200):
            m = vs.PLRF(1.0, beta, 10 * d, d)
            lr = m.reference_learning_rate(0.5)
            f_tau = ph.asymptotic_parts(m, [10], learning_rate=lr)["Fo"][0]
            f_asy = ph.asymptotic_parts(m, [10], learning_rate=lr, limit="asymptotic")["Fo"][0]
            ratios.append(abs(f_asy / f_tau - 1))
        assert ratios[1] < ratios[0]


def test_kernel_norm_closed_form():
    model = vs.PLRF(1.0, 0.7, 2000, 200)
    lr = model.reference_learning_rate(0.5)
    asym = ph.asymptotic_parts(model, [10], learning_rate=lr, batch_size=2)
    assert asym.kernel_norm == pytest.approx(
        vs.kernel_norm(model.data_eigenvalues, lr, 2), rel=1e-13)
    big = vs.PLRF(1.0, 0.7, 400_000, 200)
    inf = vs.PLRF(1.0, 0.7, math.inf, 200)
    kb = ph._kernel_norm_closed_form(1.0, big.v, lr, 1)
    assert kb == pytest.approx(vs.kernel_norm(big.data_eigenvalues, lr, 1), rel=1e-12)
    assert ph._kernel_norm_closed_form(1.0, inf.v, lr, 1) == pytest.approx(kb, rel=1e-5)
    # the reference learning rate gives ||K|| ~ g/2 for small g
    assert ph._kernel_norm_closed_form(1.0, 2000, model.reference_learning_rate(0.05), 1) \
        == pytest.approx(0.025, rel=0.05)


def test_unstable_learning_rate_is_refused():
    model = vs.PLRF(1.0, 0.7, math.inf, 200)
    with pytest.raises(UnstableLearningRateError, match="largest stable") as exc:
        ph.asymptotic_parts(model, [10], learning_rate=1.5)
    gmax = exc.value.max_learning_rate
    assert ph._kernel_norm_closed_form(1.0, math.inf, gmax, 1) == pytest.approx(1.0, rel=1e-9)


def test_asymptotic_parts_mapping_and_values():
    model = vs.PLRF(1.0, 0.7, 2000, 200)
    lr = model.reference_learning_rate(0.5)
    r = np.array([100, 1000, 10_000])
    asym = ph.asymptotic_parts(model, r, learning_rate=lr)
    assert set(asym) == {"Fo", "Fpp", "Fac", "Kpp", "noise", "loss_sum", "loss_max"}
    assert len(asym) == 7 and dict(asym).keys() == set(asym)
    for key in asym:
        assert asym[key].shape == r.shape and not asym[key].flags.writeable
    with pytest.raises(KeyError):
        asym["F0"]
    T = 2 * lr * r
    g = 1 + (2 * 0.7 - 1) / 2
    assert np.allclose(asym["Fpp"], math.gamma(g) / 2 * T ** (-g), rtol=1e-14)
    assert np.allclose(asym["Kpp"], lr ** 2 * math.gamma(1.5) / 2 * T ** (-1.5), rtol=1e-14)
    c_beta = float(np.sum(np.arange(1, 2001.0) ** -1.4))
    assert np.allclose(asym["Fac"], c_beta / (2 * 200) * math.gamma(0.5) * T ** -0.5,
                       rtol=1e-12)
    kn = asym.kernel_norm
    parts = np.array([asym[k] for k in ("Fo", "Fpp", "Fac", "noise")])
    assert np.allclose(asym["loss_sum"], parts.sum(axis=0) / (1 - kn))
    assert np.allclose(asym["loss_max"], parts.max(axis=0) / (1 - kn))
    assert np.all(asym["loss_max"] <= asym["loss_sum"])
    assert np.all(asym["loss_sum"] <= 4 * asym["loss_max"])
    # sum_{s<r} Fpp(s) = sum_j j^-2(a+b) (1 - q_j^r)/(1 - q_j), naive, vs two-term form
    lam = model.data_eigenvalues
    p = lr * lam * (2 - 2 * lr * lam)
    naive = [np.sum(model.scaled_target ** 2 * -np.expm1(k * np.log1p(-p)) / p) for k in r]
    np.testing.assert_allclose(asym.Fpp_cumulative, naive, rtol=2e-3)
    assert "AsymptoticParts(" in repr(asym)


def test_cutoff_agrees_with_closed_forms_for_small_T_and_switches_off():
    for alpha, beta in [(1.0, 0.7), (0.75, 1.5), (0.4, 0.9), (0.2, 1.0)]:
        d = 2000
        model = vs.PLRF(alpha, beta, 4 * d, d)
        lr = model.reference_learning_rate(0.5)
        x = np.array([1e-7, 1e-6, 30.0])     # T / d^(2 alpha)
        r = np.maximum(1, np.round(x * d ** (2 * alpha) / (2 * lr))).astype(np.int64)
        kw = dict(learning_rate=lr, limit="asymptotic")
        plain = ph.asymptotic_parts(model, r, **kw)
        cut = ph.asymptotic_parts(model, r, cutoff=True, **kw)
        T = cut.T
        if T[0] > 50 and 2 * alpha > 1:
            assert cut["Fpp"][0] == pytest.approx(plain["Fpp"][0], rel=1e-3)
            assert cut["Fac"][0] == pytest.approx(plain["Fac"][0], rel=0.02)
        if alpha > 0.25 and T[0] > 50:
            assert cut["Kpp"][0] == pytest.approx(plain["Kpp"][0], rel=0.02)
        # beyond the edge everything but Fo is switched off
        assert cut["Fpp"][-1] < 1e-6 * cut["Fo"][-1]
        assert cut["loss_sum"][-1] == pytest.approx(cut["Fo"][-1] / (1 - cut.kernel_norm),
                                                    rel=1e-6)
    # alpha < 1/4: Kpp is the bulk plateau lr^2 B sum_{j<=d} j^-4a in both modes
    model = vs.PLRF(0.2, 1.0, 8000, 2000)
    lr = model.reference_learning_rate(0.5)
    plain = ph.asymptotic_parts(model, [1000], learning_rate=lr, limit="asymptotic")
    plateau = lr * lr * np.sum(np.arange(1, 2001.0) ** -0.8)
    assert plain["Kpp"][0] == pytest.approx(plateau, rel=1e-12)
    cut = ph.asymptotic_parts(model, [10], learning_rate=lr, limit="asymptotic", cutoff=True)
    assert cut["Kpp"][0] == pytest.approx(plateau, rel=0.25)   # integral vs sum at d = 2000


def test_asymptotic_parts_input_errors():
    model = vs.PLRF(1.0, 0.7, 2000, 200)
    with pytest.raises(TypeError):
        ph.asymptotic_parts("model", [1], learning_rate=0.1)
    with pytest.raises(ValueError, match="limit"):
        ph.asymptotic_parts(model, [1], learning_rate=0.1, limit="exact")
    with pytest.raises(ValueError, match="r must be"):
        ph.asymptotic_parts(model, [10, 1], learning_rate=0.1)
    with pytest.raises(ValueError, match="2\\*\\(alpha \\+ beta\\) > 1"):
        ph.asymptotic_parts(vs.PLRF(0.3, 0.1, 100, 10), [1], learning_rate=0.1)
    with pytest.raises(ValueError, match="2\\*beta = 1"):
        ph.asymptotic_parts(vs.PLRF(1.0, 0.5, 100, 10), [1], learning_rate=0.1,
                            limit="asymptotic")


# -------------------------------------------------- against the deterministic equivalent


def test_parts_ratio_to_contour_parts_tends_to_one_as_d_grows():
    from volterra_sgd import forcing
    alpha, beta = 1.0, 0.7
    errs = {"F": [], "K": [], "Fpp": [], "Kpp": []}
    for d in (100, 400, 1600):
        model = vs.PLRF(alpha, beta, 4 * d, d)
        lr = model.reference_learning_rate(0.5)
        r = np.array([round(d ** (alpha / 2) / (2 * lr))], dtype=np.int64)   # T = d^(a/2)
        fk = forcing.forcing_and_kernel(model, r, learning_rate=lr)
        asym = ph.asymptotic_parts(model, r, learning_rate=lr)
        p = fk.parts
        assert asym["Fo"][0] == pytest.approx(p["Fo"][0], rel=1e-8)
        errs["F"].append(abs((asym["Fpp"] + asym["Fac"]) / (p["Fpp"] + p["Fac"]) - 1)[0])
        errs["K"].append(abs(asym["Kpp"] / (p["Kpp"] + p["Kac"]) - 1)[0])
        errs["Fpp"].append(abs(asym["Fpp"] / p["Fpp"] - 1)[0])
        errs["Kpp"].append(abs(asym["Kpp"] / p["Kpp"] - 1)[0])
    for key, e in errs.items():
        assert e[0] > e[1] > e[2], (key, e)
        assert e[2] < 0.02, (key, e)


def _exact_deterministic_loss(model, lr, r):
    """Deterministic Volterra solution with the contour F, K (sum of exponentials)."""
    from volterra_sgd import forcing
    from volterra_sgd import numba_api
    meas = forcing.deterministic_measure(model)
    x = meas.nodes
    q = np.ascontiguousarray(1.0 - lr * x * (2.0 - 2.0 * lr * x))
    c = np.ascontiguousarray(lr * lr * meas.kernel_weights)
    out = np.empty(r.size)
    status = numba_api.mode_recursion(q, c, float(meas.limit_loss),
                                      np.array(meas.forcing_weights, dtype=float), 0, r, out)
    assert status == 0
    return out


@pytest.mark.parametrize("alpha,beta,d", [(0.75, 0.25, 100), (0.7, 0.7, 100), (1.0, 2.0, 100),
                                          (1.25, 0.75, 40)])
def test_approximate_loss_within_factor_two_of_deterministic_curve(alpha, beta, d):
    model = vs.PLRF(alpha, beta, 4 * d, d)
    lr = model.reference_learning_rate(0.5)
    R = int(20 * d ** (2 * alpha) / lr)
    r = np.unique(np.round(np.geomspace(1, R, 120)).astype(np.int64))
    exact = _exact_deterministic_loss(model, lr, r)
    asym = ph.asymptotic_parts(model, r, learning_rate=lr, cutoff=True)
    sel = asym.T >= 10                                   # the forms are for T >> 1
    ratio = exact[sel] / asym["loss_sum"][sel]
    assert 0.5 < ratio.min() and ratio.max() < 2.0, (ratio.min(), ratio.max())


# ------------------------------------------------------------------------ plot and CLI


def test_phase_diagram_plot():
    import matplotlib  # noqa: F401  (test extra)
    from volterra_sgd.plotting import plot_exponent_traversal, plot_phase_diagram

    ax = plot_phase_diagram(resolution=40, mark=(0.7, 0.5))
    assert ax.get_xlabel().startswith("alpha") and ax.get_ylabel().startswith("beta")
    texts = {t.get_text() for t in ax.texts}
    assert set(ph.PHASES) <= texts
    ax2 = plot_phase_diagram(resolution=30, heatmap="eta", legend=False)
    assert len(ax2.figure.axes) == 2                              # colour bar
    with pytest.raises(ValueError, match="heatmap"):
        plot_phase_diagram(heatmap="zeta")
    ax3 = plot_exponent_traversal(num=60)
    assert {t.get_text() for t in ax3.texts} == {"Ia", "II", "III"}


def test_cli_phases_point(capsys):
    from volterra_sgd.cli import main

    assert main(["phases", "--alpha", "0.7", "--beta", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "phase: II" in out and "0.416667" in out and "0.583333" in out
    assert "Fpp + Fac + Fo" in out and "boundary 2*beta = 1" in out
    assert main(["phases", "--alpha", "0.7"]) == 2
    assert main(["phases", "--alpha", "0.1", "--beta", "0.2"]) == 2


def test_cli_phases_table_and_plot(capsys, tmp_path):
    import matplotlib  # noqa: F401  (test extra)
    from volterra_sgd.cli import main

    out_file = tmp_path / "diagram.png"
    assert main(["phases", "--plot", str(out_file)]) == 0
    out = capsys.readouterr().out
    for p in ph.PHASES:
        assert f"\n{p} " in out
    assert out_file.stat().st_size > 10_000
    assert (tmp_path / "diagram.pdf").stat().st_size > 5_000
    assert main(["phases", "--plot", str(tmp_path / "diagram.svg")]) == 2


def test_part_ratios_tend_to_one_as_d_grows():
    """Closed-form / contour parts at the midpoint of each part's window (validation table
    in docs/phases.md): |ratio - 1| shrinks from d = 1e3 to 1e4 and Fpp, Kpp are within 7%."""
    from volterra_sgd.validation.phase_exponents import ratio_convergence_study

    small, large = ratio_convergence_study(cases=((1.0, 0.7),), ds=(1000, 10000))
    for part in ("Fpp", "Kpp", "Fac"):
        assert abs(large[part]["ratio"] - 1) < abs(small[part]["ratio"] - 1), part
    assert abs(large["Fpp"]["ratio"] - 1) < 0.07 and abs(large["Kpp"]["ratio"] - 1) < 0.07
    assert large["Fo"] < 1e-8 and small["Fo"] < 1e-8
