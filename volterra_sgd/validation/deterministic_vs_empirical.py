"""Deterministic F(r), K(r), F0 against averages over draws of the embedding W.

For each (alpha, beta) case and model size d (v = 10 d) this draws ``--draws`` embeddings,
computes the exact given-W forcing and kernel (docs/theory.md eq. 3.3) and averages them, and
compares with the deterministic-equivalent forcing_and_kernel (contour integrals collapsed on
the real axis).  It writes validation/out/deterministic_vs_empirical.json (worst ratios per
case) and, with --plot, a figure of the ratios.

Run: python validation/deterministic_vs_empirical.py [--draws 50] [--d 200 800] [--plot]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import volterra_sgd as vs
from volterra_sgd.exact import embedding_spectrum
from volterra_sgd.forcing import forcing_and_kernel

CASES = {  # phase: (alpha, beta)
    "Ia": (0.75, 0.25),
    "II": (1.25, 0.75),
    "III": (1.0, 2.0),
    "II/III": (0.7, 0.7),
    "Ib": (0.35, 0.45),
    "IVa": (0.3, 1.0),
    "IVb": (0.45, 1.0),
}


def empirical(model, r, gamma, B, draws, seed):
    rng = np.random.default_rng(seed)
    F = np.zeros(r.size)
    K = np.zeros(r.size)
    F0 = []
    lmin = []
    rr = r.astype(float)
    for _ in range(draws):
        spec = embedding_spectrum(model, model.sample_embedding(rng))
        lam = spec.eigenvalues
        logq = np.log1p(-gamma * B * lam * (2.0 - gamma * (B + 1) * lam))
        E = np.exp(np.multiply.outer(rr, logq))
        F += spec.limit_loss + E @ spec.weights
        K += E @ (gamma * gamma * B * lam * lam)
        F0.append(spec.limit_loss)
        lmin.append(lam[-1])
    return F / draws, K / draws, np.array(F0), np.array(lmin)


def compare(alpha, beta, d, draws, seed=0, g=0.5, B=1, r_max=1e9, points=61):
    model = vs.PLRF(alpha=alpha, beta=beta, v=10 * d, d=d)
    gamma = model.reference_learning_rate(g) / B
    r = np.unique(np.r_[0, np.round(np.logspace(0, np.log10(r_max), points))].astype(np.int64))
    t0 = time.perf_counter()
    fk = forcing_and_kernel(model, r, learning_rate=gamma, batch_size=B)
    t_det = time.perf_counter() - t0
    F, K, F0, lmin = empirical(model, r, gamma, B, draws, seed)
    kmask = fk.kernel > 1e-5 * fk.kernel[0]
    ratio_F = fk.forcing / F
    ratio_K = fk.kernel / K
    f0_se = F0.std(ddof=1) / np.sqrt(draws)
    return {
        "alpha": alpha, "beta": beta, "d": d, "v": 10 * d, "draws": draws, "gamma": gamma,
        "B": B, "r": r.tolist(),
        "ratio_F": ratio_F.tolist(), "ratio_K": ratio_K.tolist(),
        "worst_F": float(np.max(np.abs(ratio_F - 1))),
        "worst_K_head": float(np.max(np.abs(ratio_K[kmask] - 1))),
        "worst_K_tail": float(np.nanmax(np.abs(ratio_K[~kmask] - 1))) if np.any(~kmask) else None,
        "F0_det": fk.measure.limit_loss, "F0_emp": float(F0.mean()), "F0_stderr": float(f0_se),
        "ratio_F0": float(fk.measure.limit_loss / F0.mean()),
        "lambda_min_det": fk.measure.support.lower_edge, "lambda_min_emp": float(lmin.mean()),
        "seconds_deterministic": t_det,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=50)
    ap.add_argument("--d", type=int, nargs="+", default=[200, 800])
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    ap.add_argument("--plot", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    results = []
    print(f"{'case':>7} {'d':>5} {'worst|F/Femp-1|':>16} {'worst|K/Kemp-1|':>16} "
          f"{'K tail':>8} {'F0 det/emp':>10} {'F0 se%':>7}")
    for name in args.cases:
        alpha, beta = CASES[name]
        for d in args.d:
            res = compare(alpha, beta, d, args.draws)
            res["case"] = name
            results.append(res)
            tail = f"{res['worst_K_tail']:.3f}" if res["worst_K_tail"] is not None else "-"
            print(f"{name:>7} {d:>5} {res['worst_F']:>16.4f} {res['worst_K_head']:>16.4f} "
                  f"{tail:>8} {res['ratio_F0']:>10.4f} "
                  f"{100 * res['F0_stderr'] / res['F0_emp']:>7.2f}", flush=True)
    path = os.path.join(args.out, "deterministic_vs_empirical.json")
    with open(path, "w") as fh:
        json.dump({"version": vs.__version__, "results": results}, fh, indent=1)
    print(f"written {path}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for res in results:
            r = np.maximum(np.array(res["r"]), 0.5)
            lab = f"{res['case']} d={res['d']}"
            axes[0].semilogx(r, res["ratio_F"], label=lab)
            axes[1].semilogx(r, res["ratio_K"], label=lab)
        for ax, t in zip(axes, ["F det / F emp", "K det / K emp"]):
            ax.axhline(1.03, color="k", ls=":")
            ax.axhline(0.97, color="k", ls=":")
            ax.set_title(t)
            ax.set_xlabel("r")
            ax.set_ylim(0.8, 1.2)
        axes[1].legend(fontsize=6)
        fig.savefig(os.path.join(args.out, "deterministic_vs_empirical.png"), dpi=120)


if __name__ == "__main__":
    main()
