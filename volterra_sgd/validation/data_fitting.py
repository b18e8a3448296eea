"""Spectra from data: power-law recovery with coverage, and scikit-learn's digits.

(a) Recovery and coverage (docs/theory.md, Sec. 14): Gaussian data x ~ N(0, diag(j^-2alpha)),
    y = <x, b>, b_j = j^-beta, at several (alpha, beta) in different phases; ``fit_power_laws``
    with its first-order bootstrap; |alpha_hat - alpha|, |beta_hat - beta| and the fraction
    of 95 % intervals that cover the truth over repetitions.  Full: v = 2000, n = 2e4, 20
    repetitions per point; quick: v = 400, n = 4000, 5 repetitions, two points.
(b) Digits (1797 x 64 images, shipped with scikit-learn; no network): the population is the
    empirical distribution of the rows (centred, pixels / 16) and the target is the
    least-squares linear part of the digit value, so the model built by
    ``SpectralModel.from_data(..., tail="none")`` is exact except for the Gaussianity of the
    features.  One-pass SGD that samples rows with replacement (a Numba loop, fresh embedding W
    per run) is compared with (i) the exact Gaussian expected loss for the *same* W's
    (``expected_loss_given_w``, docs/theory.md, Eq. (3.4)) and (ii) the deterministic curve
    (``loss_curve``).  (i) isolates the fourth moments of the data; the SGD-noise factor
    rho = E_data[e^2 z^T H z] / E_Gauss[e^2 z^T H z] at theta = 0 and at the limit (least
    squares in the span of W) measures them; (1 - |K|)/(1 - rho |K|) - 1 is the late-time
    level they imply if the whole SGD-noise term scales by rho (docs/fitting.md).  Done on
    the raw pixels (v = 61 non-constant) and on p = 512 random ReLU features of them (the
    feature map of ``feature_spectrum``: F_jk ~ N(0, 1/tr C), phi = relu(F^T x)/sqrt(p),
    centred), which extends the spectrum past 64.

Writes DIR/data_fitting.json and data_fitting.png.
Run: python -m volterra_sgd.validation.data_fitting [--quick] [--out DIR]
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings

import numpy as np

import volterra_sgd as vs
from volterra_sgd._numba import njit
from volterra_sgd.fitting import FittingWarning
from volterra_sgd.validation._common import protocol_main

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")

#: (alpha, beta) of the recovery study: phases II, Ia, III, IVb.
CASES = ((1.0, 0.7), (0.7, 0.3), (1.5, 2.0), (0.35, 0.8))
TOL_EXPONENT = 0.05      # issue 14: alpha, beta within 0.05
COVERAGE_MIN = 0.90      # issue 14: intervals cover the truth in >= 90 % of repetitions
G_LR = 0.5               # learning rate 0.5 / tr D (docs/theory.md, Eq. (2.2))


# ------------------------------------------------------------------- (a) recovery
def recovery_study(cases=CASES, v=2000, n=20000, reps=20, n_boot=200, seed=0):
    """Fit Gaussian data of known (alpha, beta) ``reps`` times per case."""
    rng = np.random.default_rng(seed)
    j = np.arange(1, v + 1.0)
    rows = []
    for alpha, beta in cases:
        est = []
        t0 = time.perf_counter()
        for _ in range(reps):
            X = rng.standard_normal((n, v)) * j**-alpha
            fit = vs.fit_power_laws(X, X @ j**-beta, n_boot=n_boot, rng=rng)
            est.append((fit.alpha, *fit.alpha_ci, fit.beta, *fit.beta_ci, fit.window[1],
                        fit.target_window[1], fit.phase == vs.phase(alpha, beta)))
            del X
        e = np.array(est, dtype=float)
        rows.append({
            "alpha": alpha, "beta": beta, "phase": vs.phase(alpha, beta), "v": v, "n": n,
            "reps": reps,
            "alpha_mean": float(e[:, 0].mean()), "alpha_sd": float(e[:, 0].std()),
            "alpha_maxerr": float(np.abs(e[:, 0] - alpha).max()),
            "alpha_coverage": float(np.mean((e[:, 1] <= alpha) & (alpha <= e[:, 2]))),
            "alpha_width": float(np.mean(e[:, 2] - e[:, 1])),
            "beta_mean": float(e[:, 3].mean()), "beta_sd": float(e[:, 3].std()),
            "beta_maxerr": float(np.abs(e[:, 3] - beta).max()),
            "beta_coverage": float(np.mean((e[:, 4] <= beta) & (beta <= e[:, 5]))),
            "beta_width": float(np.mean(e[:, 5] - e[:, 4])),
            "window": float(e[:, 6].mean()), "target_window": float(e[:, 7].mean()),
            "phase_correct": float(e[:, 8].mean()), "seconds": time.perf_counter() - t0})
    return rows


# ---------------------------------------------------------------------- (b) digits
def load_digits_data():
    """Digits images (pixels / 16) and labels from scikit-learn (lazy import)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the digits study needs scikit-learn: pip install "
                          "'volterra-sgd[data]'") from exc
    d = load_digits()
    return d.data / 16.0, d.target.astype(np.float64)


def relu_features(X, p, rng):
    """Random ReLU features with the feature map of ``feature_spectrum`` (centred)."""
    Xc = X - X.mean(axis=0)
    trace = float(np.sum(Xc * Xc) / Xc.shape[0])
    F = rng.standard_normal((X.shape[1], p)) / math.sqrt(trace)
    phi = np.maximum(Xc @ F, 0.0) / math.sqrt(p)
    return phi - phi.mean(axis=0)


@njit
def _sgd_rows(Z, y, H, g, y2, idx, lr, r_rec, out):
    """One-pass SGD on rows Z[idx[s]]; records theta^T H theta - 2 g.theta + y2 at r_rec."""
    d = Z.shape[1]
    theta = np.zeros(d)
    k = 0
    for s in range(idx.size + 1):
        while k < r_rec.size and r_rec[k] == s:
            acc = y2
            for a in range(d):
                ha = 0.0
                for b in range(d):
                    ha += H[a, b] * theta[b]
                acc += theta[a] * ha - 2.0 * g[a] * theta[a]
            out[k] = acc
            k += 1
        if s == idx.size:
            break
        i = idx[s]
        e = -y[i]
        for a in range(d):
            e += Z[i, a] * theta[a]
        for a in range(d):
            theta[a] -= lr * e * Z[i, a]
    return 0


def _noise_factor(xi, lam, W, theta, b):
    """rho = E_data[e^2 z^T H z] / E_Gauss[...] at theta (eigen-coordinates, Isserlis)."""
    a = W @ theta - b
    H = W.T @ (lam[:, None] * W)
    M = W @ H @ W.T
    e = xi @ a
    data = float(np.mean(e * e * np.einsum("ij,jk,ik->i", xi, M, xi)))
    Da = lam * a
    gauss = float(a @ Da) * float(np.sum(lam * np.diag(M))) + 2.0 * float(Da @ M @ Da)
    return data / gauss


def digits_case(name, X, y, ds, r, runs, rng, g=G_LR):
    """SGD on the rows of (X, y_lin) against the Gaussian exact and deterministic curves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FittingWarning)   # constant pixels are dropped
        es = vs.empirical_spectrum(X, y)
    Xc = np.delete(X, list(es.dropped_columns), axis=1) - es.mean
    xi = Xc @ es.eigenvectors                  # rows in eigen-coordinates
    lam, b = es.eigenvalues, es.target
    ylin = xi @ b                              # the linear part of y (no residual)
    res = {"name": name, "n_rows": int(X.shape[0]), "v": int(lam.size),
           "label_residual_fraction": es.residual_variance / es.target_variance,
           "kurtosis_top": [float(np.mean(xi[:, k] ** 4) / lam[k] ** 2) for k in range(5)],
           "kurtosis_median": float(np.median(np.mean(xi**4, axis=0) / lam**2)),
           "d": []}
    for d in ds:
        sm = vs.SpectralModel(lam, b, d)
        lr = g / sm.trace_data_covariance     # docs/theory.md, Eq. (2.2); g may exceed 1
        det = vs.loss_curve(sm, r, learning_rate=lr).loss
        sgd = np.empty((runs, r.size))
        gauss = np.empty((runs, r.size))
        rho = []
        r_rec = r.astype(np.int64)
        for k in range(runs):
            W = sm.sample_embedding(rng)
            Z = np.ascontiguousarray(xi @ W)
            H = Z.T @ Z / Z.shape[0]
            gz = Z.T @ ylin / Z.shape[0]
            idx = rng.integers(0, Z.shape[0], int(r_rec[-1]))
            _sgd_rows(Z, ylin, H, gz, float(ylin @ ylin / ylin.size), idx, lr, r_rec, sgd[k])
            gauss[k] = vs.expected_loss_given_w(sm, W, r, learning_rate=lr).loss
            if k < 10:  # SGD-noise factor at the start and at the limit theta = LS in span W
                th_ls = np.linalg.lstsq(Z, ylin, rcond=None)[0]
                rho_ls = _noise_factor(xi, lam, W, th_ls, b)
                kn = vs.kernel_norm(vs.embedding_spectrum(sm, W).eigenvalues, lr)
                # stationary level with the noise scaled by rho: (1-|K|)/(1-rho|K|) - 1
                rho.append((_noise_factor(xi, lam, W, np.zeros(d), b), rho_ls,
                            (1.0 - kn) / (1.0 - rho_ls * kn) - 1.0))
        m_sgd, se = sgd.mean(0), sgd.std(0, ddof=1) / math.sqrt(runs)
        m_gauss = gauss.mean(0)
        dev_g = m_sgd / m_gauss - 1.0
        dev_d = m_sgd / det - 1.0
        # paired: the same W in both, so the spread over embeddings cancels in the difference
        rel_se = (sgd - gauss).std(0, ddof=1) / math.sqrt(runs) / m_gauss
        holds = np.abs(dev_g) <= 0.05 + 2 * rel_se
        # late-time level (r >= r_max/100): per-run average of the paired difference
        late = r >= r[-1] / 100
        diff = (sgd[:, late] - gauss[:, late]).mean(1) / m_gauss[late].mean()
        first_bad = int(np.argmax(~holds)) if (~holds).any() else r.size
        res["d"].append({
            "d": d, "g": g, "learning_rate": lr, "runs": runs, "r": r.tolist(),
            "sgd": m_sgd.tolist(), "stderr": se.tolist(), "gauss_exact": m_gauss.tolist(),
            "deterministic": det.tolist(),
            "dev_vs_gauss": dev_g.tolist(), "dev_vs_det": dev_d.tolist(),
            "max_abs_dev_vs_gauss": float(np.max(np.abs(dev_g))),
            "r_at_max_dev": int(r[int(np.argmax(np.abs(dev_g)))]),
            "max_abs_dev_vs_det": float(np.max(np.abs(dev_d))),
            "max_abs_gauss_vs_det": float(np.max(np.abs(m_gauss / det - 1.0))),
            "max_rel_se": float(np.max(rel_se)), "paired_rel_se": rel_se.tolist(),
            "max_abs_z": float(np.max(np.abs(dev_g[1:]) / np.maximum(rel_se[1:], 1e-300))),
            "holds_within_5pct_up_to_r": int(r[first_bad - 1]) if first_bad > 0 else 0,
            "noise_factor_start": float(np.mean([x[0] for x in rho])),
            "noise_factor_limit": float(np.mean([x[1] for x in rho])),
            "late_dev_from_rho": float(np.mean([x[2] for x in rho])),
            "final_dev_vs_gauss": float(dev_g[-1]),
            "late_dev_vs_gauss": float(diff.mean()),
            "late_dev_se": float(diff.std(ddof=1) / math.sqrt(runs))})
    return res


def plot(digits, path):
    """Digits: SGD on the data vs Gaussian exact and deterministic, and the deviations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(digits), figsize=(6 * len(digits), 8), squeeze=False)
    for c, case in enumerate(digits):
        ax, ax2 = axes[0, c], axes[1, c]
        for k, row in enumerate(case["d"]):
            col = f"C{k}"
            r = np.array(row["r"])
            ax.loglog(r, row["sgd"], "o", ms=3, color=col, label=f"SGD on data, d={row['d']}")
            ax.loglog(r, row["gauss_exact"], "-", color=col, lw=1)
            ax.loglog(r, row["deterministic"], "--", color=col, lw=1)
            ax2.semilogx(r, row["dev_vs_gauss"], "-", color=col, label=f"d={row['d']}")
            band = 2 * np.array(row["paired_rel_se"])
            ax2.fill_between(r, -band, band, color=col, alpha=0.15)
        ax.set_title(f"digits, {case['name']} (v = {case['v']}): dots SGD on rows, "
                     "lines Gaussian exact (same W), dashed deterministic", fontsize=8)
        ax.set_xlabel("iteration r")
        ax.set_ylabel("population loss")
        ax.legend(fontsize=7)
        ax2.axhline(0, color="k", lw=0.5)
        ax2.set_xlabel("iteration r")
        ax2.set_ylabel("SGD on data / Gaussian exact - 1 (band: 2 paired SE)")
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(out, quick=False):
    """Protocol entry point of ``volterra-sgd validate`` (see volterra_sgd/validate.py)."""
    t_start = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    if quick:
        rec = recovery_study(cases=CASES[:2], v=400, n=4000, reps=5, n_boot=100)
    else:
        rec = recovery_study()
    X, labels = load_digits_data()
    rng = np.random.default_rng(14)
    r = np.unique(np.round(np.logspace(0, 4.5 if quick else 5, 30 if quick else 50)))
    r = np.concatenate([[0], r]).astype(np.int64)
    runs = 20 if quick else 100
    digits = [digits_case("raw pixels", X, labels, (8, 16, 32) if not quick else (16,),
                          r, runs, rng)]
    phi = relu_features(X, 256 if quick else 512, rng)
    digits.append(digits_case(f"{phi.shape[1]} ReLU features", phi, labels,
                              (64, 128, 256) if not quick else (64,), r, runs, rng))
    if not quick:   # a large learning rate: SGD noise, hence the fourth moments, matter more
        digits.append(digits_case("raw pixels, g = 1", X, labels, (16,), r, runs, rng,
                                  g=1.0))
        digits.append(digits_case("512 ReLU features, g = 1", phi, labels, (128,), r,
                                  runs, rng, g=1.0))
    comps = []
    rows = ["| alpha | beta | phase | v | n | reps | alpha: mean (sd) | max err | coverage | "
            "beta: mean (sd) | max err | coverage | window |", "|" + "---|" * 13]
    for x in rec:
        for p in ("alpha", "beta"):
            comps.append({"name": f"recovery of {p} at (alpha, beta) = ({x['alpha']}, "
                                  f"{x['beta']}), v = {x['v']}, n = {x['n']}: max error",
                          "value": x[f"{p}_maxerr"], "tolerance": TOL_EXPONENT,
                          "passed": x[f"{p}_maxerr"] <= TOL_EXPONENT,
                          "detail": f"mean {x[f'{p}_mean']:.4f}, sd {x[f'{p}_sd']:.4f} over "
                                    f"{x['reps']} repetitions"})
            if not quick:
                comps.append({"name": f"95 % interval of {p} covers the truth at ({x['alpha']}, "
                                      f"{x['beta']}): 1 - coverage",
                              "value": 1.0 - x[f"{p}_coverage"],
                              "tolerance": 1.0 - COVERAGE_MIN,
                              "passed": x[f"{p}_coverage"] >= COVERAGE_MIN,
                              "detail": f"coverage {x[f'{p}_coverage']:.2f} of {x['reps']}, "
                                        f"mean width {x[f'{p}_width']:.4f}"})
        rows.append(f"| {x['alpha']} | {x['beta']} | {x['phase']} | {x['v']} | {x['n']} | "
                    f"{x['reps']} | {x['alpha_mean']:.4f} ({x['alpha_sd']:.4f}) | "
                    f"{x['alpha_maxerr']:.4f} | {x['alpha_coverage']:.2f} | "
                    f"{x['beta_mean']:.4f} ({x['beta_sd']:.4f}) | {x['beta_maxerr']:.4f} | "
                    f"{x['beta_coverage']:.2f} | {x['window']:.0f} |")
    drows = ["| features | v | d | g | runs | max abs(SGD/Gauss - 1) (at r) | final | max rel SE | "
             "holds (5 %) up to r | late level (SE) | max abs(SGD/det - 1) | "
             "max abs(Gauss/det - 1) | rho start | rho limit | late level from rho |",
             "|" + "---|" * 15]
    for case in digits:
        for x in case["d"]:
            drows.append(f"| {case['name']} | {case['v']} | {x['d']} | {x['g']} | {x['runs']} | "
                         f"{x['max_abs_dev_vs_gauss']:.3f} ({x['r_at_max_dev']}) | "
                         f"{x['final_dev_vs_gauss']:+.3f} | {x['max_rel_se']:.3f} | "
                         f"{x['holds_within_5pct_up_to_r']} | {x['late_dev_vs_gauss']:+.4f} "
                         f"({x['late_dev_se']:.4f}) | {x['max_abs_dev_vs_det']:.3f} | "
                         f"{x['max_abs_gauss_vs_det']:.3f} | {x['noise_factor_start']:.2f} | "
                         f"{x['noise_factor_limit']:.3f} | {x['late_dev_from_rho']:+.4f} |")
            # Gaussian exact (same W) against its own deterministic equivalent: the part of
            # the comparison that does not depend on the data's fourth moments (g = 0.5; at
            # g = 1 and d = 16 some embeddings are near the stability edge, an illustration).
            if x["g"] != G_LR:
                continue
            comps.append({"name": f"digits {case['name']}, d = {x['d']}: deterministic vs "
                                  "Gaussian exact (same W's), max abs ratio - 1",
                          "value": x["max_abs_gauss_vs_det"], "tolerance": 0.10,
                          "passed": x["max_abs_gauss_vs_det"] <= 0.10,
                          "detail": f"{x['runs']} embeddings"})
    figures = []
    try:
        plot(digits, os.path.join(out, "data_fitting.png"))
        figures.append("data_fitting.png")
    except ImportError:  # matplotlib is optional
        pass
    numbers = {"recovery": rec, "digits": digits}
    with open(os.path.join(out, "data_fitting.json"), "w") as fh:
        json.dump(numbers, fh, indent=1, default=float)
    desc = ("(a) `fit_power_laws` on Gaussian data of known (alpha, beta): errors and the "
            "coverage of the 95 % bootstrap intervals.  (b) scikit-learn's digits as the "
            "population: one-pass SGD that samples rows against the Gaussian model built by "
            "`SpectralModel.from_data` (exact for the same embeddings, and deterministic); the "
            "deviation is the effect of the data's fourth moments (rho: SGD-noise factor, 1 "
            "for Gaussian data).  Reported, not asserted (docs/fitting.md).")
    return {"title": "Spectra from data: power-law fits and the digits dataset",
            "description": desc, "figures": figures,
            "tables": ["\n".join(rows), "\n".join(drows)], "comparisons": comps,
            "numbers": json.loads(json.dumps(numbers, default=float)),
            "seconds": time.perf_counter() - t_start}


def main():
    """Command-line entry point."""
    protocol_main(__doc__, run, OUT)


if __name__ == "__main__":
    main()
