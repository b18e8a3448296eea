"""Deterministic loss curves against the W-averaged exact expected loss, and against SGD.

1. For each (alpha, beta) phase representative, d in {200, 800} (v = 10 d) and B in {1, 4}:
   average the exact given-W expected loss E[P(theta_r) | W] (docs/theory.md, Eq. (3.4)) over
   ``--draws`` embeddings and compare with the deterministic curve P(r) (Eq. (7.3)) for
   r <= 4e5.  Criterion (loss-curve issue): within 4 % at d = 200 and 3 % at d = 800.
2. ``--sgd``: deterministic curve against simulated SGD (fresh embedding per run) at d = 400,
   alpha = beta = 0.7, B = 1, r in [0, 1e5]; criterion 5 %.

Writes validation/out/curve_vs_exact.json.  Run with OPENBLAS_NUM_THREADS=1 on a busy machine.
Run: python validation/curve_vs_exact.py [--draws 40] [--d 200 800] [--sgd]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import volterra_sgd as vs
from volterra_sgd.validation._common import markdown_table, ratio_check

CASES = {"Ia": (0.75, 0.25), "Ib": (0.35, 0.45), "II": (1.25, 0.75), "III": (1.0, 2.0),
         "II/III": (0.7, 0.7), "IVa": (0.3, 1.0), "IVb": (0.45, 1.0)}


def compare(alpha, beta, d, B, draws, seed=0, g=0.5, r_max=4e5, points=60, method="svd"):
    model = vs.PLRF(alpha=alpha, beta=beta, v=10 * d, d=d)
    gamma = model.reference_learning_rate(g) / B
    r = np.unique(np.r_[0, np.round(np.logspace(0, np.log10(r_max), points))].astype(np.int64))
    det = vs.loss_curve(model, r, learning_rate=gamma, batch_size=B)
    rng = np.random.default_rng(seed)
    acc = np.zeros(r.size)
    acc2 = np.zeros(r.size)
    for _ in range(draws):
        spec = vs.embedding_spectrum(model, model.sample_embedding(rng), method=method)
        p = vs.expected_loss_given_w(model, spec, r, learning_rate=gamma, batch_size=B).loss
        acc += p
        acc2 += p * p
    emp = acc / draws
    var = np.maximum(acc2 / draws - emp * emp, 0.0) * draws / max(draws - 1, 1)
    rel_se = np.sqrt(var / draws) / emp
    ratio = det.loss / emp
    return {"alpha": alpha, "beta": beta, "d": d, "v": 10 * d, "B": B, "draws": draws,
            "gamma": gamma, "r": r.tolist(), "ratio": ratio.tolist(),
            "rel_se": rel_se.tolist(),
            "worst": float(np.max(np.abs(ratio - 1))),

            "r_worst": int(r[np.argmax(np.abs(ratio - 1))])}


def compare_sgd(runs=200, seed=0):
    model = vs.PLRF(alpha=0.7, beta=0.7, v=4000, d=400)
    gamma = model.reference_learning_rate(0.5)
    r = np.unique(np.r_[0, np.round(np.logspace(0, 5, 30))].astype(np.int64))
    det = vs.loss_curve(model, r, learning_rate=gamma)
    sim = vs.simulate_sgd(model, r, learning_rate=gamma, n_runs=runs, rng=seed)
    ratio = sim.loss / det.loss
    keep = r > 0
    z = (sim.loss - det.loss)[keep] / sim.stderr[keep]
    return {"runs": runs, "r": r.tolist(), "ratio": ratio.tolist(),
            "stderr_rel": (sim.stderr / det.loss).tolist(),
            "worst": float(np.max(np.abs(ratio - 1))),
            "max_abs_z": float(np.max(np.abs(z)))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=40)
    ap.add_argument("--d", type=int, nargs="+", default=[200, 800])
    ap.add_argument("--B", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--sgd", action="store_true")
    ap.add_argument("--spectrum-method", choices=("svd", "eigh"), default="svd",
                    help="embedding_spectrum method of the draws (eigh: Gram matrix, faster)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    res = {"version": vs.__version__, "exact": [], "sgd": None}
    print(f"{'case':>7} {'d':>5} {'B':>3} {'worst |det/avg - 1|':>20} {'at r':>8} {'limit':>6}")
    for name in args.cases:
        for d in args.d:
            for B in args.B:
                out = compare(*CASES[name], d, B, args.draws, method=args.spectrum_method)
                out["case"] = name
                out["limit"] = 0.04 if d <= 200 else 0.03
                res["exact"].append(out)
                print(f"{name:>7} {d:>5} {B:>3} {out['worst']:>20.4f} {out['r_worst']:>8d} "
                      f"{out['limit']:>6.2f}", flush=True)
    if args.sgd:
        res["sgd"] = compare_sgd()
        print(f"SGD (d=400, alpha=beta=0.7, {res['sgd']['runs']} runs): worst |SGD/det - 1| = "
              f"{res['sgd']['worst']:.4f} (limit 0.05)")
    path = os.path.join(args.out, "curve_vs_exact.json")
    with open(path, "w") as fh:
        json.dump(res, fh, indent=1)
    print(f"written {path}")


# ------------------------------------------------------------ volterra-sgd validate protocol
def _limit(d):
    return 0.04 if d <= 200 else 0.03  # loss-curve issue: 4 % at d = 200, 3 % at d = 800


def plot_ratios(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = sorted({r["d"] for r in results})
    fig, axes = plt.subplots(1, len(ds), figsize=(5.5 * len(ds), 4), sharey=True,
                             squeeze=False)
    for ax, d in zip(axes[0], ds, strict=True):
        for res in (r for r in results if r["d"] == d):
            rr = np.maximum(np.array(res["r"]), 0.5)
            ax.semilogx(rr, res["ratio"], ls="-" if res["B"] == 1 else "--",
                        label=f"{res['case']} B={res['B']}")
        for y in (1 - _limit(d), 1 + _limit(d)):
            ax.axhline(y, color="k", ls=":", lw=0.8)
        ax.set_title(f"deterministic P / W-averaged E[P | W], d = {d}")
        ax.set_xlabel("r")
        ax.set_ylim(0.9, 1.1)
    axes[0][-1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(out, quick=False):
    """Protocol entry point of ``volterra-sgd validate`` (see volterra_sgd/validate.py)."""
    t_start = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    plan = [(200, 20)] if quick else [(200, 100), (800, 20)]  # (d, draws)
    res = {"version": vs.__version__, "exact": [], "sgd": None}
    for name in CASES:
        for d, draws in plan:
            for B in (1, 4):
                o = compare(*CASES[name], d, B, draws, method="eigh")
                o["case"] = name
                o["limit"] = _limit(d)
                res["exact"].append(o)
    if not quick:
        res["sgd"] = compare_sgd()
    with open(os.path.join(out, "curve_vs_exact.json"), "w") as fh:
        json.dump(res, fh, indent=1)
    plot_ratios(res["exact"], os.path.join(out, "curve_vs_exact.png"))
    comps = []
    rows = []
    for o in res["exact"]:
        c = ratio_check(o["ratio"], o["rel_se"], o["limit"])
        comps.append({"name": f"{o['case']} (alpha={o['alpha']}, beta={o['beta']}), d={o['d']}, "
                              f"B={o['B']}: |P/avg - 1|",
                      "value": c["value"], "tolerance": c["tolerance"], "passed": c["passed"],
                      "detail": f"tolerance {o['limit']:.0%} + 3 SE, at r = {o['r'][c['index']]}; "
                                f"worst |P/avg - 1| = {o['worst']:.4f} at r = {o['r_worst']} "
                                f"({o['draws']} draws)"})
        rows.append([o["case"], o["d"], o["B"], o["draws"], f"{o['worst']:.4f}", o["r_worst"],
                     f"{max(o['rel_se']):.4f}"])
    table = markdown_table(["case", "d", "B", "draws", "worst |P/avg - 1|", "at r",
                            "max rel. SE"], rows)
    if res["sgd"] is not None:
        sg = res["sgd"]
        rr = np.asarray(sg["r"])
        c = ratio_check(sg["ratio"], sg["stderr_rel"], 0.05, mask=rr > 0)
        comps.append({"name": "SGD (d=400, alpha=beta=0.7, new W per run): |SGD/P - 1|",
                      "value": c["value"], "tolerance": c["tolerance"], "passed": c["passed"],
                      "detail": f"tolerance 5 % + 3 SE, at r = {rr[c['index']]}; {sg['runs']} "
                                f"runs, r <= 1e5; worst |SGD/P - 1| = {sg['worst']:.4f}, "
                                f"max |z| = {sg['max_abs_z']:.2f}"})
    desc = ("Deterministic loss curve P(r) (`loss_curve`, docs/theory.md, Eq. (7.3)) against the "
            "W-average of the exact given-W expected loss E[P(theta_r) | W] (Eq. (3.4)), for the "
            "seven phase representatives, v = 10 d, B = 1 and 4, gamma = 0.5 / sum_j "
            "j^(-2 alpha) / B, r <= 4e5.  Each row shows |P/avg - 1| at the r where it comes "
            "closest to (or exceeds) its tolerance: the loss-curve issue's criterion (4 % at "
            "d = 200, 3 % at d = 800) plus 3 standard errors of the W-average."
            + ("" if quick else "  Also the deterministic curve against simulated SGD at "
               "d = 400 (5 % criterion)."))
    return {"title": "Loss curves vs the W-averaged exact expected loss", "description": desc,
            "figures": ["curve_vs_exact.png"], "tables": [table],
            "comparisons": comps,
            "numbers": {"exact": [{k: v for k, v in o.items()
                                   if k not in ("ratio", "rel_se", "r")}
                                  for o in res["exact"]],
                        "sgd": None if res["sgd"] is None else
                        {k: v for k, v in res["sgd"].items()
                         if k not in ("ratio", "stderr_rel", "r")}},
            "seconds": time.perf_counter() - t_start}


if __name__ == "__main__":
    main()
