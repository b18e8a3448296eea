"""Compute-optimal exponents from deterministic loss curves vs the phase theory (docs/theory.md).

Two studies with :func:`volterra_sgd.compute_optimal` (sweep of deterministic loss curves over a
geometric grid of model sizes, IsoFLOP frontier, bootstrap intervals):

1. The paper's Fig. 3 analogue at the Phase II/III boundary alpha = beta = 0.7: loss against
   compute for every d with the frontier, IsoFLOP slices, d*(f) with its fit; measured
   (xi, eta) against the theory (0.5, 0.6429) (paper: eta measured 0.648).
2. The alpha = 0.7 traversal (paper's Fig. 4b): beta = 0.3 (Ia), 0.6 (II), 0.9 (III), measured
   (xi, eta) against docs/theory.md, Eq. (11.3), and the drift of the measured exponents as the
   range of model sizes grows (nested sub-grids d <= d_max of the same sweep).

Full: 17 sizes 256..65536 (sqrt(2) apart), v = 10 d, g = 0.5, B = 1, f <= 1e13.
Quick: 13 sizes 64..4096.

Run: python -m volterra_sgd.validation.compute_optimal_study [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import time

import volterra_sgd as vs
from volterra_sgd.compute_optimal import (
    DEFAULT_D_VALUES,
    extrapolate_exponents,
    isoflop_frontier,
)
from volterra_sgd.validation._common import markdown_table

ALPHA = 0.7
BETAS = (0.3, 0.5, 0.6, 0.7, 0.9)
#: Full: the default 17 sizes plus two (92682, 131072) for the d -> inf extrapolation.
FULL = {"d_values": DEFAULT_D_VALUES + (92682, 131072), "cuts": (4096, 16384, 65536, 131072),
        "n_boot": 400, "betas": BETAS}
QUICK = {"d_values": tuple(int(round(64 * 2 ** (k / 2))) for k in range(13)),
         "cuts": (1024, 2048, 4096), "n_boot": 200, "betas": (0.3, 0.6, 0.7, 0.9)}
#: |measured - theory| allowed: eta at alpha = beta = 0.7 within 0.03, else 0.06; the d -> inf
#: extrapolation within 0.01, 0.03 on the Ia/II boundary beta = 0.5 (logarithmic corrections).
TOL = {"eta_boundary": 0.03, "default": 0.06, "extrapolated": 0.01, "extrapolated_ia_ii": 0.03}


def study(beta, plan):
    """One sweep + frontier at (ALPHA, beta) and the exponents on nested sub-grids."""
    co = vs.compute_optimal(ALPHA, beta, plan["d_values"], n_boot=plan["n_boot"],
                            chinchilla=(beta == 0.7))
    curves = co.sweep.curves()
    try:
        extra = extrapolate_exponents(curves)
    except ValueError:  # quick grids are too short for 4 nested windows of 1.5 decades
        extra = None
    co = dataclasses.replace(co, extrapolated=extra)
    drift = []
    for cut in plan["cuts"]:
        sub = [c for c in curves if c[0] <= cut]
        fr = isoflop_frontier(sub, n_boot=0)
        # local exponents over the last 1.5 decades of the window
        top = isoflop_frontier(sub, n_boot=0, window=(fr.window[1] / 10**1.5, fr.window[1]))
        drift.append({"d_max": cut, "n_sizes": len(sub), "xi": fr.params_fit.exponent,
                      "eta": fr.loss_fit.exponent, "window": list(fr.window),
                      "xi_top": top.params_fit.exponent, "eta_top": top.loss_fit.exponent})
    return co, drift


def plot_traversal(results, path):
    from volterra_sgd.plotting import plot_exponent_traversal

    ax = plot_exponent_traversal(alpha=ALPHA, beta_range=(0.2, 1.0))
    for beta, (co, drift) in results.items():
        for key, est, ci, color in (("xi", co.params_exponent, co.params_exponent_ci,
                                     "#4c78a8"),
                                    ("eta", co.loss_exponent, co.loss_exponent_ci, "#f58518")):
            ax.errorbar([beta], [est], yerr=[[est - ci[0]], [ci[1] - est]], fmt="o",
                        color=color, ms=5, capsize=3)
            ax.plot([beta] * len(drift), [d[key] for d in drift], "x", color=color, ms=4,
                    alpha=0.6)
    ax.set_title("alpha = 0.7: measured (o, 95% CI; x: smaller d ranges) vs theory",
                 fontsize=9)
    ax.figure.savefig(path, dpi=130)


def run(out, quick=False):
    """Protocol entry point of ``volterra-sgd validate``."""
    t0 = time.perf_counter()
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = QUICK if quick else FULL
    results = {beta: study(beta, plan) for beta in plan["betas"]}
    comps, rows, drift_rows, extra_rows, numbers = [], [], [], [], {}
    for beta, (co, drift) in results.items():
        th = co.theory
        num = {"phase": th["phase"], "xi": co.params_exponent,
               "xi_ci": list(co.params_exponent_ci), "eta": co.loss_exponent,
               "eta_ci": list(co.loss_exponent_ci), "xi_theory": th["xi"],
               "eta_theory": th["eta"], "window": list(co.window), "drift": drift,
               "seconds": co.seconds}
        numbers[f"beta={beta}"] = num
        for key, est, ci in (("xi", co.params_exponent, co.params_exponent_ci),
                             ("eta", co.loss_exponent, co.loss_exponent_ci)):
            tol = TOL["eta_boundary"] if (beta == 0.7 and key == "eta" and not quick) \
                else TOL["default"]
            err = abs(est - th[key])
            comps.append({
                "name": f"alpha=0.7, beta={beta} ({th['phase']}): |{key} - theory|",
                "value": err, "tolerance": tol, "passed": bool(err <= tol),
                "detail": f"{key} = {est:.4f} (95% CI [{ci[0]:.4f}, {ci[1]:.4f}]) vs "
                          f"{th[key]:.4f}; window f in [{co.window[0]:.3g}, "
                          f"{co.window[1]:.3g}], d = {co.sweep.d_values[0]}.."
                          f"{co.sweep.d_values[-1]}"})
        rows.append([beta, th["phase"], f"{co.params_exponent:.4f}",
                     f"[{co.params_exponent_ci[0]:.4f}, {co.params_exponent_ci[1]:.4f}]",
                     f"{th['xi']:.4f}", f"{co.loss_exponent:.4f}",
                     f"[{co.loss_exponent_ci[0]:.4f}, {co.loss_exponent_ci[1]:.4f}]",
                     f"{th['eta']:.4f}", f"{co.window[0]:.2g}..{co.window[1]:.2g}"])
        a2, ex = co.approach2, co.extrapolated
        if a2 is not None:
            num["approach2"] = a2.to_dict()
        if ex is not None:
            num["extrapolated"] = ex.to_dict()
            for key, est, ci in (("xi", ex.params_exponent, ex.params_exponent_ci),
                                 ("eta", ex.loss_exponent, ex.loss_exponent_ci)):
                tol = (TOL["default"] if quick else TOL["extrapolated_ia_ii"] if beta == 0.5
                       else TOL["extrapolated"])  # quick grids stop at d = 4096
                err = abs(est - th[key])
                comps.append({
                    "name": f"alpha=0.7, beta={beta} ({th['phase']}): |{key} (d -> inf) - "
                            "theory|", "value": err, "tolerance": tol,
                    "passed": bool(err <= tol),
                    "detail": f"{key}_inf = {est:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] vs "
                              f"{th[key]:.4f} (covered: {ci[0] <= th[key] <= ci[1]}); drift "
                              f"{ex.d_max.size} nested grids d_max = {ex.d_max[0]:.0f}.."
                              f"{ex.d_max[-1]:.0f}"})
            extra_rows.append([beta, th["phase"], f"{ex.params_exponent:.4f}",
                               "[{:.4f}, {:.4f}]".format(*ex.params_exponent_ci),
                               f"{th['xi']:.4f}", f"{ex.loss_exponent:.4f}",
                               "[{:.4f}, {:.4f}]".format(*ex.loss_exponent_ci),
                               f"{th['eta']:.4f}",
                               "—" if a2 is None else f"{a2.params_exponent:.4f} / "
                               f"{a2.loss_exponent:.4f}"])
        for d in drift:
            drift_rows.append([beta, d["d_max"], d["n_sizes"], f"{d['xi']:.4f}",
                               f"{d['xi_top']:.4f}", f"{th['xi']:.4f}", f"{d['eta']:.4f}",
                               f"{d['eta_top']:.4f}", f"{th['eta']:.4f}",
                               f"{d['window'][0]:.2g}..{d['window'][1]:.2g}"])
    tables = [
        markdown_table(["beta", "phase", "xi", "xi 95% CI", "xi theory", "eta", "eta 95% CI",
                        "eta theory", "window f"], rows),
        markdown_table(["beta", "d_max", "sizes", "xi", "xi (top 1.5 dec.)", "xi theory",
                        "eta", "eta (top 1.5 dec.)", "eta theory", "window f"], drift_rows),
    ]
    if extra_rows:
        tables.append(markdown_table(
            ["beta", "phase", "xi (d -> inf)", "interval", "xi theory", "eta (d -> inf)",
             "interval", "eta theory", "Approach 2 xi / eta"], extra_rows))
    co7 = results[0.7][0]
    kap, ch = co7.kaplan, co7.chinchilla
    tables.append(markdown_table(
        ["fit (alpha = beta = 0.7)", "measured", "95% CI", "theory"],
        [["Kaplan alpha_N (L(d) at convergence)", f"{kap.loss_vs_params.exponent:.4f}",
          "[{:.4f}, {:.4f}]".format(*kap.loss_vs_params.exponent_ci),
          f"{kap.theory['alpha_N']:.4f}"],
         ["Kaplan alpha_D (L(B r) at d = max)", f"{kap.loss_vs_data.exponent:.4f}",
          "[{:.4f}, {:.4f}]".format(*kap.loss_vs_data.exponent_ci),
          f"{kap.theory['alpha_D']:.4f}"],
         ["Kaplan alpha_C = eta", f"{kap.loss_vs_compute.exponent:.4f}",
          "[{:.4f}, {:.4f}]".format(*kap.loss_vs_compute.exponent_ci),
          f"{kap.theory['alpha_C']:.4f}"],
         ["Chinchilla b/(a+b) (N* ~ C^.)", f"{ch.params_exponent:.4f}",
          "[{:.4f}, {:.4f}]".format(*ch.ci["params_exponent"]), f"{co7.theory['xi']:.4f}"],
         ["Chinchilla ab/(a+b) (L* - E ~ C^-.)", f"{ch.loss_exponent:.4f}",
          "[{:.4f}, {:.4f}]".format(*ch.ci["loss_exponent"]), f"{co7.theory['eta']:.4f}"]]))
    numbers["kaplan_0.7"] = {k: getattr(kap, k).to_dict() for k in
                             ("loss_vs_params", "loss_vs_data")}
    numbers["chinchilla_0.7"] = ch.to_dict()
    from volterra_sgd.plotting import (
        plot_compute_optimal_curves,
        plot_isoflop_slices,
        plot_optimal_size,
    )

    figures = []
    for name, fn in (("compute_optimal_loss_vs_flops.png", plot_compute_optimal_curves),
                     ("compute_optimal_optimal_size.png", plot_optimal_size),
                     ("compute_optimal_isoflop_slices.png", plot_isoflop_slices)):
        ax = fn(co7)
        ax.set_title("PLRF alpha = beta = 0.7 (Phase II/III boundary)", fontsize=10)
        ax.figure.savefig(out / name, dpi=130)
        figures.append(name)
    plot_traversal(results, out / "compute_optimal_traversal.png")
    figures.append("compute_optimal_traversal.png")
    with open(out / "compute_optimal_study.json", "w") as fh:
        json.dump({"version": vs.__version__, "quick": quick, "alpha": ALPHA,
                   "plan": {k: list(v) if isinstance(v, tuple) else v for k, v in plan.items()},
                   "numbers": numbers}, fh, indent=1)
    grid = plan["d_values"]
    desc = (f"Deterministic loss curves (`vs.compute_optimal`: v = 10 d, g = 0.5, B = 1, "
            f"f up to 1e13) for {len(grid)} model sizes d = {grid[0]}..{grid[-1]} "
            "(sqrt(2) apart); the IsoFLOP frontier (docs/theory.md, Eq. (12.1)) gives xi "
            "(d* ~ f^xi) and eta (P* ~ f^-eta) with 95% bootstrap intervals over the d grid; "
            "compared with the phase theory (docs/theory.md, Eq. (11.3)) at alpha = beta = 0.7 "
            "(paper's Fig. 3; the paper measured eta = 0.648) and along alpha = 0.7 (Fig. 4b). "
            "The intervals measure the grid sensitivity, not the finite-size bias: the "
            "exponents approach the theory slowly as d grows (second table: nested sub-grids "
            "d <= d_max, fitted over "
            "their whole window and over its last 1.5 decades of compute).")
    return {"title": "Compute-optimal exponents (IsoFLOP) vs phase theory",
            "description": desc, "figures": figures, "tables": tables, "comparisons": comps,
            "numbers": numbers, "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = parser.parse_args()
    res = run(args.out, quick=args.quick)
    for t in res["tables"]:
        print(t, "\n")
    for c in res["comparisons"]:
        print(("PASS" if c["passed"] else "FAIL"), c["name"], f"{c['value']:.4f}",
              f"<= {c['tolerance']:.4f}", "|", c["detail"])
    print(f"{res['seconds']:.1f} s")
