"""Momentum methods and label noise: deterministic curves vs W-averaged exact loss and simulation.

PLRF(alpha=1.0, beta=0.7, v=800, d=200) without label noise and with sigma^2 = 0.02, for SGD,
heavy ball and Nesterov (mu = 0.9, gamma = (1 - mu) g / trD, i.e. the effective rate of SGD at
g = 0.5), DANA-decaying and DANA-constant (``vs.DANA.decaying(model)``, ``.constant(model)``,
Eq. (9.17) of docs/theory.md):

(a) the deterministic curve ``loss_curve(m, r, optimizer=opt)`` (Eq. (9.19)) against the
    average over independent embeddings W of the exact ``expected_loss_given_w(m, W, r,
    optimizer=opt)`` (Eq. (9.9)), 30 log-spaced r <= 2e4.  Criterion (issue 13): within 3 %,
    tolerance = 3 % + 3 standard errors of the W-average (spread over the embeddings / sqrt(n)).
(b) ``simulate_sgd(m, r, optimizer=opt, W=W)`` against the exact loss of the same W:
    |z| <= 4, z = (simulated mean - exact) / simulated standard error.
(c) heavy ball (gamma, mu = 0.9) against SGD at gamma / (1 - mu), small rate
    (gamma / (1 - mu) * trD = 0.05), deterministic curves: late-time ratio (r = 1e4 .. 1e6)
    within 1 % (Eq. (9.14)).

Run: python -m volterra_sgd.validation.optimizers_vs_exact [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

import numpy as np

import volterra_sgd as vs
from volterra_sgd.validation._common import markdown_table, ratio_check

ALPHA, BETA, V, D = 1.0, 0.7, 800, 200
NOISES = (0.0, 0.02)
MU = 0.9
#: simulated runs of the DANA optimizers in (b) (heavy early tail)
DANA_RUNS = 20000
G = 0.5
R_MAX = 2e4


def optimizers(model, dana_constant: bool):
    """The optimizers compared, by name (SGD, heavy ball, Nesterov at the same effective rate)."""
    g = model.reference_learning_rate(G)
    opts = {"SGD": vs.SGD(g),
            "heavy ball": vs.HeavyBall((1 - MU) * g, MU),
            "Nesterov": vs.Nesterov((1 - MU) * g, MU),
            "DANA-decaying": vs.DANA.decaying(model)}
    if dana_constant:
        opts["DANA-constant"] = vs.DANA.constant(model)
    return opts


def compare_noise(noise: float, draws: int, n_runs: int, r_sim_max: float, dana_constant: bool,
                  seed: int):
    """Parts (a) and (b) for one noise level."""
    m = vs.PLRF(alpha=ALPHA, beta=BETA, v=V, d=D, noise_variance=noise)
    r = np.unique(np.round(np.logspace(0, np.log10(R_MAX), 30)).astype(np.int64))
    opts = optimizers(m, dana_constant)
    out = {}
    t0 = time.perf_counter()
    det = {k: vs.loss_curve(m, r, optimizer=o) for k, o in opts.items()}
    t_det = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    acc = {k: np.zeros(r.size) for k in opts}
    acc2 = {k: np.zeros(r.size) for k in opts}
    t0 = time.perf_counter()
    W0 = None
    for i in range(draws):
        W = m.sample_embedding(rng)
        if i == 0:
            W0 = W
        spec = vs.embedding_spectrum(m, W, method="eigh")
        for k, o in opts.items():
            # DANA: unit-step recursion (exact, and cheaper than the blocks at r <= 2e4)
            meth = "recursion" if k.startswith("DANA") else "auto"
            p = vs.expected_loss_given_w(m, spec, r, optimizer=o, method=meth).loss
            acc[k] += p
            acc2[k] += p * p
    t_avg = time.perf_counter() - t0
    t0 = time.perf_counter()
    for j, (k, o) in enumerate(opts.items()):
        emp = acc[k] / draws
        var = np.maximum(acc2[k] / draws - emp * emp, 0.0) * draws / (draws - 1)
        rel_se = np.sqrt(var / draws) / emp
        ratio = det[k].loss / emp
        # (b): simulation with the first embedding against its exact loss
        # DANA's aggressive early steps make the per-run loss heavy-tailed (docs/optimizers.md):
        # 1000 runs underestimate the standard error there (|z| = 4.4 at r = 15), so DANA gets
        # DANA_RUNS runs (eigen engine, a few seconds) on the heavy early stretch r <= 300
        # (the cost is runs x r)
        dana = k.startswith("DANA")
        rs = r[r <= (min(r_sim_max, 300) if dana else r_sim_max)]
        runs = DANA_RUNS if dana else n_runs
        ex = vs.expected_loss_given_w(m, W0, rs, optimizer=o)
        sim = vs.simulate_sgd(m, rs, optimizer=o, W=W0, n_runs=runs, rng=seed + 100 + j)
        z = (sim.loss - ex.loss) / sim.stderr
        iw = int(np.argmax(np.abs(ratio - 1)))
        iz = int(np.nanargmax(np.abs(z)))
        out[k] = {"r": r.tolist(), "det": det[k].loss.tolist(), "avg": emp.tolist(),
                  "ratio": ratio.tolist(), "rel_se": rel_se.tolist(),
                  "worst": float(abs(ratio[iw] - 1)), "ratio_at_worst": float(ratio[iw]),
                  "r_worst": int(r[iw]), "max_rel_se": float(rel_se.max()),
                  "det_error_estimate": float(np.max(det[k].loss_error / det[k].loss)),
                  "r_sim": rs.tolist(), "z": z.tolist(), "max_abs_z": float(abs(z[iz])),
                  "r_max_z": int(rs[iz]),
                  "n_runs": runs, "draws": draws}
    t_sim = time.perf_counter() - t0
    return {"noise_variance": noise, "results": out, "seconds_curves": t_det,
            "seconds_embeddings": t_avg, "seconds_simulation": t_sim}


def heavy_ball_vs_sgd(noise: float, geff: float = 0.05):
    """Part (c): deterministic heavy ball at (gamma, mu) vs SGD at gamma / (1 - mu)."""
    m = vs.PLRF(alpha=ALPHA, beta=BETA, v=V, d=D, noise_variance=noise)
    g = geff / m.trace_data_covariance
    r = np.array([10**4, 3 * 10**4, 10**5, 3 * 10**5, 10**6], dtype=np.int64)
    hb = vs.loss_curve(m, r, optimizer=vs.HeavyBall((1 - MU) * g, MU)).loss
    sgd = vs.loss_curve(m, r, optimizer=vs.SGD(g)).loss
    ratio = hb / sgd
    return {"noise_variance": noise, "geff_trD": geff, "r": r.tolist(), "ratio": ratio.tolist(),
            "worst": float(np.max(np.abs(ratio - 1)))}


def plot(cases, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cases), figsize=(11, 4.2), squeeze=False)
    for ax, case in zip(axes[0], cases, strict=True):
        for k, o in case["results"].items():
            if k == "Nesterov":
                continue
            r = np.asarray(o["r"], float)
            avg = np.asarray(o["avg"])
            se = np.asarray(o["rel_se"]) * avg
            line, = ax.loglog(r, o["det"], label=f"{k} (deterministic)")
            ax.fill_between(r, avg - 3 * se, avg + 3 * se, alpha=0.25, color=line.get_color(),
                            lw=0)
            ax.loglog(r, avg, ls=":", color=line.get_color())
        ax.set_xlabel("iteration r")
        ax.set_ylabel("excess risk E[P(θ_r)] − σ²")
        ax.set_title(f"PLRF α=1, β=0.7, v=800, d=200, σ²={case['noise_variance']}")
        ax.legend(fontsize=8, title=f"dotted/band: W-average ± 3 SE "
                  f"({next(iter(case['results'].values()))['draws']} W)", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(out, quick: bool = False) -> dict:
    """Protocol entry point of ``volterra-sgd validate``."""
    t_start, c_start = time.perf_counter(), time.process_time()
    out = pathlib.Path(out)
    os.makedirs(out, exist_ok=True)
    draws = 20 if quick else 100
    # The per-run loss is heavy-tailed at early r: a few hundred runs underestimate the
    # standard error there (|z| ~ 5-6 at r = 85 for heavy ball with 100-200 runs, |z| <= 2.7
    # with 2000), so the quick mode keeps 1000 runs and shortens the horizon instead.
    n_runs = 1000
    r_sim_max = 300 if quick else R_MAX
    dana_constant = not quick
    cases = [compare_noise(s2, draws, n_runs, r_sim_max, dana_constant, seed=10 * i)
             for i, s2 in enumerate(NOISES)]
    hb = [heavy_ball_vs_sgd(s2) for s2 in NOISES]
    plot(cases, out / "optimizers_vs_exact.png")
    comps, rows = [], []
    for case in cases:
        s2 = case["noise_variance"]
        for k, o in case["results"].items():
            rr = np.asarray(o["r"])
            c = ratio_check(o["ratio"], o["rel_se"], 0.03)
            comps.append({"name": f"(a) {k}, sigma^2={s2}: |P_det/avg_W - 1|",
                          "value": c["value"], "tolerance": c["tolerance"],
                          "passed": c["passed"],
                          "detail": f"tolerance 3 % + 3 SE at r = {rr[c['index']]}; worst "
                                    f"|P_det/avg - 1| = {o['worst']:.4f} at r = {o['r_worst']} "
                                    f"({o['draws']} embeddings)"})
            comps.append({"name": f"(b) {k}, sigma^2={s2}: max |z| simulation vs exact (same W)",
                          "value": o["max_abs_z"], "tolerance": 4.0,
                          "passed": bool(o["max_abs_z"] <= 4.0),
                          "detail": f"at r = {o['r_max_z']}; {o['n_runs']} runs, one W, "
                                    f"{len(o['r_sim'])} r <= {o['r_sim'][-1]}"})
            rows.append([s2, k, f"{o['ratio_at_worst']:.4f}", o["r_worst"],
                         f"{o['max_rel_se']:.4f}", f"{o['max_abs_z']:.2f}", o["r_max_z"]])
    for h in hb:
        comps.append({"name": f"(c) heavy ball (mu={MU}) / SGD(gamma/(1-mu)), "
                              f"sigma^2={h['noise_variance']}, r >= 1e4",
                      "value": h["worst"], "tolerance": 0.01, "passed": bool(h["worst"] <= 0.01),
                      "detail": f"gamma/(1-mu)*trD = {h['geff_trD']}; ratios "
                                + ", ".join(f"{x:.5f}" for x in h["ratio"])
                                + f" at r = {h['r']}"})
    table = markdown_table(["sigma^2", "optimizer", "worst P_det/avg_W", "at r", "max rel. SE",
                            "max |z| sim", "at r"], rows)
    cpu = time.process_time() - c_start
    wall = time.perf_counter() - t_start
    numbers = {"cases": [{"noise_variance": c["noise_variance"],
                          "seconds_curves": c["seconds_curves"],
                          "seconds_embeddings": c["seconds_embeddings"],
                          "seconds_simulation": c["seconds_simulation"],
                          "results": {k: {kk: vv for kk, vv in o.items()
                                          if kk not in ("r", "det", "avg", "ratio", "rel_se", "z",
                                                        "r_sim")}
                                      for k, o in c["results"].items()}} for c in cases],
               "heavy_ball_vs_sgd": hb, "wall_seconds": wall, "cpu_seconds": cpu,
               "draws": draws, "n_runs": n_runs, "quick": quick}
    with open(out / "optimizers_vs_exact.json", "w") as fh:
        json.dump({"version": vs.__version__, "cases": cases, "heavy_ball_vs_sgd": hb,
                   "wall_seconds": wall, "cpu_seconds": cpu}, fh, indent=1)
    desc = (f"PLRF(α = 1, β = 0.7, v = 800, d = 200), σ² = 0 and 0.02; SGD, heavy ball and "
            f"Nesterov (μ = 0.9, γ = (1 − μ)·0.5/trD), DANA-decaying"
            f"{' and DANA-constant' if dana_constant else ''} (docs/theory.md, Eq. (9.17)).  "
            f"(a) deterministic curve (Eq. (9.19)) vs the average over {draws} embeddings of the "
            f"exact given-W loss (Eq. (9.9)), 30 log-spaced r ≤ 2·10⁴; criterion (issue 13) "
            f"3 % + 3 standard errors of the W-average"
            f"{' (quick mode: 20 embeddings, DANA-constant left out)' if quick else ''}.  "
            f"(b) simulation ({n_runs} runs, one W, r ≤ {int(r_sim_max)}) vs the exact loss of "
            f"that W, |z| ≤ 4.  "
            f"(c) heavy ball vs SGD at γ/(1 − μ), γ/(1 − μ)·trD = 0.05, r = 10⁴–10⁶, within 1 % "
            f"(Eq. (9.14)).  Cost of this run: {wall:.1f} s wall, {cpu:.1f} s CPU (this process).")
    return {"title": "Momentum methods and label noise vs exact loss",
            "description": desc, "figures": ["optimizers_vs_exact.png"], "tables": [table],
            "comparisons": comps, "numbers": numbers, "seconds": wall}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join("validation", "out"))
    a = ap.parse_args()
    res = run(a.out, quick=a.quick)
    print(res["tables"][0])
    for c in res["comparisons"]:
        print(f"{'PASS' if c['passed'] else 'FAIL'}  {c['name']}: {c['value']:.3g} "
              f"(tol {c['tolerance']:.3g})  {c['detail']}")
    print(f"{res['seconds']:.1f} s wall, {res['numbers']['cpu_seconds']:.1f} s CPU")
