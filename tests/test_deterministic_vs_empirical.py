"""Deterministic equivalent against averages over draws of W (slow; statistical).

Criteria of the deterministic-equivalent and loss-curve issues at d = 200, v = 10 d:
F(r) within 3 % for r in [0, 1e9], K(r) within 3 % where K(r) > 1e-5 K(0), F0 within 3 %,
and the loss curve P(r) within 4 % for r <= 4e5, each up to 3 standard errors of the
average over 200 draws (stated statistical tolerance: at small r and large beta a single top
eigenvalue carries F, and the relative standard error of the average reaches ~3 %; elsewhere
it is below 1 %).  The d = 800 study is validation/deterministic_vs_empirical.py and
validation/curve_vs_exact.py.
"""

import numpy as np
import pytest

import volterra_sgd as vs

CASES = {"Ia": (0.75, 0.25), "II": (1.25, 0.75), "III": (1.0, 2.0), "Ib": (0.35, 0.45),
         "IVb": (0.45, 1.0)}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_deterministic_matches_w_average_d200(name):
    alpha, beta = CASES[name]
    model = vs.PLRF(alpha=alpha, beta=beta, v=2000, d=200)
    g = model.reference_learning_rate(0.5)
    r = np.unique(np.r_[0, np.round(np.logspace(0, 9, 50))].astype(np.int64))
    rp = r[r <= 400_000]
    fk = vs.forcing_and_kernel(model, r, learning_rate=g)
    curve = vs.loss_curve(model, rp, learning_rate=g)
    rng = np.random.default_rng(2024)
    F, K, P, F0 = [], [], [], []
    for _ in range(200):
        spec = vs.embedding_spectrum(model, model.sample_embedding(rng))
        res = vs.expected_loss_given_w(model, spec, r, learning_rate=g)
        F.append(res.forcing)
        K.append(res.kernel)
        P.append(res.loss[: rp.size])
        F0.append(spec.limit_loss)

    def check(pred, samples, tol, mask=slice(None)):
        samples = np.asarray(samples)[:, mask]    # mask first: K underflows to 0 late
        mean = samples.mean(axis=0)
        rel_se = samples.std(axis=0, ddof=1) / np.sqrt(len(samples)) / mean
        dev = np.abs(np.asarray(pred)[mask] / mean - 1)
        assert np.all(dev <= tol + 3 * rel_se), (dev.max(), rel_se.max())
        return float(dev.max())

    check(fk.forcing, F, 0.03)
    check(fk.kernel, K, 0.03, fk.kernel > 1e-5 * fk.kernel[0])
    check(np.array([fk.measure.limit_loss]), np.array(F0)[:, None], 0.03)
    check(curve.loss, P, 0.04)
