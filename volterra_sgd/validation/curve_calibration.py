"""Calibration on simulated SGD curves and extrapolation of the compute-optimal frontier.

For (alpha, beta) in four phases (II, IVb, Ia, III), one-pass SGD is simulated
(``simulate_sgd``, fresh embedding per run, learning rate 0.5 / tr D, v = 10 d) at small
model sizes; ``fit_loss_curves`` recovers (alpha, beta) and the nuisance scales from the
mean curves (docs/theory.md, Sec. 16); ``CurveFit.compute_optimal`` then predicts the IsoFLOP
frontier at model sizes 8-32 times beyond the data, compared with ``compute_optimal`` at the
true (alpha, beta) on the same sizes (the deterministic truth).

Full: d = 32 ... 512 (factor 2), 100 runs each, r <= 1e5 (60 points); frontier on
d = 4096 ... 16384 (sqrt 2 apart), f <= 1e12; criteria |alpha_hat - alpha| <= 0.05,
|beta_hat - beta| <= 0.05, |eta_pred - eta_true| <= 0.03, and the frontier loss at
d* >= 8192 within 20 %.  Quick: one case, d = 32 ... 128, 40 runs, r <= 3e4, frontier on
d = 512 ... 2048 (loss at d* >= 1024).

Writes DIR/curve_calibration.json and curve_calibration.png.
Run: python -m volterra_sgd.validation.curve_calibration [--quick] [--out DIR]
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings

import numpy as np

import volterra_sgd as vs
from volterra_sgd.fitting import FittingWarning
from volterra_sgd.validation._common import protocol_main

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")

CASES = ((1.0, 0.7), (0.4, 0.8), (0.8, 0.4), (0.6, 1.2))   # phases II, IVb, Ia, III
TOL_EXPONENT = 0.05     # alpha, beta
TOL_ETA = 0.03          # predicted eta vs the deterministic study at the truth
TOL_FRONTIER = 0.20     # relative frontier loss at the large sizes
G_LR = 0.5


def simulate(alpha, beta, sizes, n_runs, r_max, seed):
    """Simulated SGD mean curves (SGDRun objects) at each size."""
    r = np.unique(np.round(np.logspace(0, math.log10(r_max), 60))).astype(np.int64)
    runs = []
    for k, d in enumerate(sizes):
        m = vs.PLRF(alpha, beta, 10 * d, d)
        runs.append(vs.simulate_sgd(m, r, learning_rate=m.reference_learning_rate(G_LR),
                                    n_runs=n_runs, rng=seed + k))
    return runs


def frontier_deviation(pred, truth, d_min):
    """Largest |pred / truth - 1| of the frontier loss at the truth's points with d* >= d_min."""
    fr = truth.frontier
    sel = fr["d_opt"] >= d_min
    if not np.any(sel):
        return math.nan, 0
    lf = np.log(fr["flops"][sel])
    inside = (lf >= np.log(pred.flops[0])) & (lf <= np.log(pred.flops[-1]))
    if not np.any(inside):
        return math.nan, 0
    p = np.exp(np.interp(lf[inside], np.log(pred.flops), np.log(pred.loss_opt)))
    dev = np.abs(p / fr["loss_opt"][sel][inside] - 1.0)
    return float(dev.max()), int(inside.sum())


def run(out=OUT, quick=False):
    """Run the study; return the validation-report dict."""
    os.makedirs(out, exist_ok=True)
    t_start = time.perf_counter()
    if quick:
        cases, sizes, n_runs, r_max = CASES[:1], (32, 64, 128), 40, 3e4
        large = (512, 724, 1024, 1448, 2048)
    else:
        cases, sizes, n_runs, r_max = CASES, (32, 64, 128, 256, 512), 100, 1e5
        large = (4096, 5793, 8192, 11585, 16384)
    d_min = large[2]
    co_opts = dict(max_flops=1e12, n_boot=100, chinchilla=False)
    rows, comps, numbers, keep = [], [], {"cases": []}, None
    for k, (alpha, beta) in enumerate(cases):
        t0 = time.perf_counter()
        runs = simulate(alpha, beta, sizes, n_runs, r_max, seed=1000 * k)
        t_sim = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FittingWarning)
            fit = vs.fit_loss_curves(runs, n_bootstrap=400, rng=k)
        t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
        fr = fit.compute_optimal(large, intervals=(k == 0), **co_opts)
        truth = vs.compute_optimal(alpha, beta, large, lr_scale=G_LR, v_ratio=10, **co_opts)
        dev, n_dev = frontier_deviation(fr, truth, d_min)
        ea, eb = fit.alpha - alpha, fit.beta - beta
        deta = fr.eta - truth.loss_exponent
        case = {"alpha": alpha, "beta": beta, "phase": vs.phase(alpha, beta),
                "alpha_hat": fit.alpha, "alpha_ci": fit.alpha_ci, "beta_hat": fit.beta,
                "beta_ci": fit.beta_ci, "loss_scale": fit.loss_scale,
                "time_scale": fit.time_scale, "irreducible_loss": fit.irreducible_loss,
                "status": fit.status, "n_stages": fit.n_stages, "chi2": fit.chi2,
                "n_points": fit.n_points, "seconds_simulation": t_sim,
                "seconds_fit": t_fit, "cpu_seconds_fit": c_fit,
                "eta_predicted": fr.eta, "eta_ci": fr.eta_ci, "eta_true": truth.loss_exponent,
                "xi_predicted": fr.xi, "xi_ci": fr.xi_ci, "xi_true": truth.params_exponent,
                "eta_theory_fit": fit.exponents.eta if fit.exponents else None,
                "frontier_loss_max_rel_dev": dev, "frontier_points": n_dev,
                "large_d": list(large)}
        numbers["cases"].append(case)
        rows.append([f"({alpha}, {beta}) {case['phase']}",
                     f"{fit.alpha:.3f} [{fit.alpha_ci[0]:.3f}, {fit.alpha_ci[1]:.3f}]",
                     f"{fit.beta:.3f} [{fit.beta_ci[0]:.3f}, {fit.beta_ci[1]:.3f}]",
                     f"{fr.eta:.4f} / {truth.loss_exponent:.4f}",
                     f"{fr.xi:.4f} / {truth.params_exponent:.4f}",
                     f"{dev:.3f} ({n_dev})", f"{t_fit:.0f} s / {c_fit:.0f} CPU s"])
        tag = f"({alpha}, {beta})"
        comps += [
            {"name": f"{tag}: |alpha_hat - alpha|", "value": abs(ea),
             "tolerance": TOL_EXPONENT, "passed": abs(ea) <= TOL_EXPONENT},
            {"name": f"{tag}: |beta_hat - beta|", "value": abs(eb),
             "tolerance": TOL_EXPONENT, "passed": abs(eb) <= TOL_EXPONENT},
            {"name": f"{tag}: |eta predicted - eta of the deterministic study| at "
                     f"d = {large[0]}..{large[-1]}", "value": abs(deta),
             "tolerance": TOL_ETA, "passed": abs(deta) <= TOL_ETA},
            {"name": f"{tag}: frontier loss at d* >= {d_min}, max relative deviation",
             "value": dev, "tolerance": TOL_FRONTIER,
             "passed": bool(np.isfinite(dev) and dev <= TOL_FRONTIER)},
        ]
        if k == 0:
            keep = (runs, fit, fr, truth)
    figures = []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from volterra_sgd.plotting import plot_curve_fit

        runs, fit, fr, truth = keep
        data = [{"d": r.model.d, "r": r.r, "loss": r.loss, "stderr": r.stderr} for r in runs]
        rr = np.unique(np.round(np.logspace(0, math.log10(r_max), 100))).astype(np.int64)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
        plot_curve_fit(data, [fit.predict(r.model.d, rr) for r in runs], ax=a1,
                       title=f"SGD (mean of {n_runs} runs) and the calibrated model")
        tf = truth.frontier
        a2.loglog(tf["flops"], tf["loss_opt"], "k-", lw=2, label="truth (deterministic)")
        a2.loglog(fr.flops, fr.loss_opt, "--", color="C3", label="predicted from the fit")
        if np.all(np.isfinite(fr.loss_opt_band)):
            a2.fill_between(fr.flops, *fr.loss_opt_band, color="C3", alpha=0.25, lw=0)
        a2.set_xlabel("compute f = d r")
        a2.set_ylabel("compute-optimal loss")
        a2.set_title(f"frontier at d = {large[0]}..{large[-1]}: eta {fr.eta:.3f} vs "
                     f"{truth.loss_exponent:.3f}")
        a2.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "curve_calibration.png"), dpi=110)
        plt.close(fig)
        figures.append("curve_calibration.png")
    except ImportError:  # pragma: no cover - matplotlib is optional
        pass
    from volterra_sgd.validation._common import markdown_table

    table = markdown_table(["(alpha, beta) phase", "alpha_hat [95%]", "beta_hat [95%]",
                            "eta predicted / true", "xi predicted / true",
                            "frontier loss dev (points)", "fit time"], rows)
    numbers["seconds"] = time.perf_counter() - t_start
    with open(os.path.join(out, "curve_calibration.json"), "w") as fh:
        json.dump(numbers, fh, indent=1, default=float)
    return {"title": "Calibration on SGD curves and frontier extrapolation",
            "description": __doc__.split("\n\n")[1], "figures": figures, "tables": [table],
            "comparisons": comps, "numbers": numbers, "seconds": numbers["seconds"]}


def main():
    """Command-line entry point."""
    protocol_main(__doc__, run, OUT)


if __name__ == "__main__":
    main()
