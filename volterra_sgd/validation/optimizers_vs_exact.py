"""Momentum methods and label noise: deterministic curves vs W-averaged exact loss and simulation.

PLRF(alpha=1.0, beta=0.7, v=800, d=200) without label noise and with sigma^2 = 0.02, for SGD,
heavy ball and Nesterov (mu = 0.9, gamma = (1 - mu) g / trD, i.e. the effective rate of SGD at
g = 0.5), DANA-decaying and DANA-constant (``vs.DANA.decaying(model)``, ``.constant(model)``,
Eq. (9.17)):

(a) the deterministic curve ``loss_curve(m, r, optimizer=opt)`` (Eq. (9.19)) against the
    average over independent embeddings W of the exact ``expected_loss_given_w(m, W, r,
    optimizer=opt)`` (Eq. (9.9)), 30 log-spaced r <= 2e4.  Criterion: within 3 %,
    tolerance = 3 % + 3 standard errors of the W-average (spread over the embeddings / sqrt(n)).
(b) ``simulate_sgd(m, r, optimizer=opt, W=W)`` against the exact loss of the same W:
    |z| <= 4, z = (simulated mean - exact) / simulated standard error.
(c) heavy ball (gamma, mu = 0.9) against SGD at gamma / (1 - mu), small rate
    (gamma / (1 - mu) * trD = 0.05), deterministic curves: late-time ratio (r = 1e4 .. 1e6)
    within 1 % (Eq. (9.14)).
(d) exponent table: compute-optimal exponents (IsoFLOP fits of deterministic curves,
    ``compute_optimal(alpha, beta, optimizer=...)``) of SGD, heavy ball, DANA-decaying and
    DANA-constant at (alpha, beta) = (0.7, 0.7), (1.0, 0.7), (0.75, 0.25), (1.0, 2.0)
    (quick mode: (1.0, 0.7), smaller sizes), with the local exponents on the lower and upper
    half of the IsoFLOP window (the drift with d) and the time-change heuristic of Sec. 9.
    SGD against Eq. (11.3) within 0.06; DANA-decaying must beat SGD in the loss exponent.

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
        # DANA's aggressive early steps make the per-run loss heavy-tailed:
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


#: (alpha, beta) of the exponent table, with the time-change heuristic's (xi, eta) per
#: optimizer (Sec. 9): with the SGD optimum at T* ~ d^A, P* ~ d^-E (Eq. (11.3)) and
#: p = 2 - 1/(2 alpha), SGD xi = 1/(1 + A), eta = E/(1 + A); DANA-decaying xi = p/(p + A),
#: eta = E p/(p + A); DANA-constant xi = 2/(A + 3), eta = 2E/(A + 3) if A > 1, else SGD's.
HEURISTIC = {
    (0.7, 0.7): {"sgd": (0.5000, 0.6429), "dana-decaying": (0.5625, 0.7232),
                 "dana-constant": (0.5000, 0.6429)},
    (1.0, 0.7): {"sgd": (0.4118, 0.7059), "dana-decaying": (0.5122, 0.8780),
                 "dana-constant": (0.4516, 0.7742)},
    (0.75, 0.25): {"sgd": (0.4000, 0.4000), "dana-decaying": (0.4706, 0.4706),
                   "dana-constant": (0.4444, 0.4444)},
    (1.0, 2.0): {"sgd": (0.5000, 0.7500), "dana-decaying": (0.6000, 0.9000),
                 "dana-constant": (0.5000, 0.7500)},
}
EXP_OPTIMIZERS = ("sgd", "heavy-ball", "dana-decaying", "dana-constant")
#: model sizes and compute of the exponent table: full and quick mode
EXP_FULL = (tuple(int(round(64 * 2 ** (k / 2))) for k in range(13)), 1e10)
EXP_QUICK = (tuple(int(round(32 * 2 ** (k / 2))) for k in range(9)), 1e8)


def _local_slopes(fr):
    """(xi, eta) fitted on the lower and on the upper half of the window's frontier points."""
    m = fr.in_window
    lf, ld, lp = np.log(fr.flops[m]), np.log(fr.d_opt[m]), np.log(fr.loss_opt[m])
    h = lf.size // 2
    out = {}
    for name, sl in (("lower", slice(0, h)), ("upper", slice(h, None))):
        out[name] = (float(np.polyfit(lf[sl], ld[sl], 1)[0]),
                     float(-np.polyfit(lf[sl], lp[sl], 1)[0]))
    return out


def _verdict(heur, value, ci, lower, upper):
    """Compare a heuristic exponent with a measurement and its drift over the window."""
    half = 0.5 * (ci[1] - ci[0])
    drift = upper - lower
    gap = heur - value
    if abs(gap) <= half + abs(drift):
        return "consistent"
    if drift * gap > 0:
        return "not reached (drifting toward it)"
    return "refuted at these sizes"


def exponent_table(quick: bool) -> dict:
    """Part (d): compute-optimal exponents per optimizer and (alpha, beta)."""
    d_values, max_flops = EXP_QUICK if quick else EXP_FULL
    cases = [(1.0, 0.7)] if quick else list(HEURISTIC)
    names = ("sgd", "dana-decaying") if quick else EXP_OPTIMIZERS
    rows, results = [], []
    for ab in cases:
        for name in names:
            t0, c0 = time.perf_counter(), time.process_time()
            co = vs.compute_optimal(*ab, d_values=d_values, max_flops=max_flops, optimizer=name,
                                    n_boot=200, chinchilla=False, approach2=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            fr = co.isoflop
            loc = _local_slopes(fr)
            heur = HEURISTIC[ab].get(name, HEURISTIC[ab]["sgd"])
            res = {"alpha": ab[0], "beta": ab[1], "optimizer": name,
                   "xi": co.params_exponent, "xi_ci": list(co.params_exponent_ci),
                   "eta": co.loss_exponent, "eta_ci": list(co.loss_exponent_ci),
                   "xi_lower": loc["lower"][0], "xi_upper": loc["upper"][0],
                   "eta_lower": loc["lower"][1], "eta_upper": loc["upper"][1],
                   "window": [float(w) for w in fr.window], "theory": co.theory,
                   "heuristic_xi": heur[0], "heuristic_eta": heur[1],
                   "wall_seconds": wall, "cpu_seconds": cpu,
                   "frontier_flops": fr.flops[fr.in_window].tolist(),
                   "frontier_loss": fr.loss_opt[fr.in_window].tolist(),
                   "frontier_d": fr.d_opt[fr.in_window].tolist()}
            res["verdict_xi"] = _verdict(heur[0], res["xi"], res["xi_ci"], res["xi_lower"],
                                         res["xi_upper"])
            res["verdict_eta"] = _verdict(heur[1], res["eta"], res["eta_ci"],
                                          res["eta_lower"], res["eta_upper"])
            results.append(res)
            rows.append([f"{ab[0]}, {ab[1]}", name,
                         f"{res['xi']:.4f} [{res['xi_ci'][0]:.4f}, {res['xi_ci'][1]:.4f}]",
                         f"{res['xi_lower']:.4f} → {res['xi_upper']:.4f}", f"{heur[0]:.4f}",
                         res["verdict_xi"],
                         f"{res['eta']:.4f} [{res['eta_ci'][0]:.4f}, {res['eta_ci'][1]:.4f}]",
                         f"{res['eta_lower']:.4f} → {res['eta_upper']:.4f}", f"{heur[1]:.4f}",
                         res["verdict_eta"], f"{res['window'][0]:.2g} … {res['window'][1]:.2g}",
                         f"{wall:.0f} / {cpu:.0f}"])
    table = markdown_table(["α, β", "optimizer", "ξ (95% CI)", "ξ lower → upper half",
                            "ξ heuristic", "ξ verdict", "η (95% CI)", "η lower → upper half",
                            "η heuristic", "η verdict", "window f", "wall / CPU s"], rows)
    return {"results": results, "table": table, "d_values": list(d_values),
            "max_flops": max_flops}


def plot_fronts(study, curves, path):
    """Loss curves of the optimizers at one size, and their compute-optimal fronts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, (r, loss) in curves["curves"].items():
        ax0.loglog(r, loss, label=name)
    ax0.set_xlabel("iteration r")
    ax0.set_ylabel("loss (deterministic equivalent)")
    ax0.set_title(f"PLRF α={curves['alpha']}, β={curves['beta']}, d={curves['d']}, v=10d")
    ax0.legend(fontsize=8)
    ab = (curves["alpha"], curves["beta"])
    for res in study["results"]:
        if (res["alpha"], res["beta"]) != ab:
            continue
        ax1.loglog(res["frontier_flops"], res["frontier_loss"],
                   label=f"{res['optimizer']}: η = {res['eta']:.3f}, ξ = {res['xi']:.3f}")
    ax1.set_xlabel("compute f = d·B·r")
    ax1.set_ylabel("compute-optimal loss P*(f)")
    ax1.set_title(f"IsoFLOP fronts, d = {study['d_values'][0]} … {study['d_values'][-1]}")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def optimizer_curves(alpha=1.0, beta=0.7, d=1024):
    """Deterministic curves of SGD, heavy ball and DANA at one size (the figure's left panel)."""
    from volterra_sgd.compute_optimal import optimizer_for_model

    m = vs.PLRF(alpha=alpha, beta=beta, v=10 * d, d=d)
    r = np.unique(np.round(np.logspace(0, 9, 120)).astype(np.int64))
    out = {}
    for name in EXP_OPTIMIZERS:
        out[name] = (r, vs.loss_curve(m, r, optimizer=optimizer_for_model(name, m)).loss)
    return {"alpha": alpha, "beta": beta, "d": d, "curves": out}


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
    study = exponent_table(quick)
    plot_fronts(study, optimizer_curves(d=256 if quick else 1024), out / "optimizer_fronts.png")
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
    by = {(x["alpha"], x["beta"], x["optimizer"]): x for x in study["results"]}
    for (a_, b_, name), x in by.items():
        if name == "sgd":
            th = x["theory"]
            dev = max(abs(x["eta"] - th["eta"]), abs(x["xi"] - th["xi"]))
            comps.append({"name": f"(d) SGD exponents vs Eq. (11.3), alpha={a_}, beta={b_}",
                          "value": dev, "tolerance": 0.06, "passed": bool(dev <= 0.06),
                          "detail": f"eta {x['eta']:.4f} (theory {th['eta']:.4f}), xi "
                                    f"{x['xi']:.4f} (theory {th['xi']:.4f})"})
        if name == "dana-decaying":
            gain = x["eta"] - by[(a_, b_, "sgd")]["eta"]
            comps.append({"name": f"(d) DANA-decaying loss exponent above SGD's, alpha={a_}, "
                                  f"beta={b_}",
                          "value": gain, "tolerance": 0.0, "passed": bool(gain > 0.0),
                          "detail": f"eta {x['eta']:.4f} vs SGD "
                                    f"{by[(a_, b_, 'sgd')]['eta']:.4f} (passes if positive)"})
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
               "draws": draws, "n_runs": n_runs, "quick": quick,
               "exponents": [{k: v for k, v in x.items() if not k.startswith("frontier")}
                             for x in study["results"]]}
    with open(out / "optimizers_vs_exact.json", "w") as fh:
        json.dump({"version": vs.__version__, "cases": cases, "heavy_ball_vs_sgd": hb,
                   "exponents": study, "wall_seconds": wall, "cpu_seconds": cpu}, fh, indent=1)
    desc = (f"PLRF(α = 1, β = 0.7, v = 800, d = 200), σ² = 0 and 0.02; SGD, heavy ball and "
            f"Nesterov (μ = 0.9, γ = (1 − μ)·0.5/trD), DANA-decaying"
            f"{' and DANA-constant' if dana_constant else ''} (Eq. (9.17)).  "
            f"(a) deterministic curve (Eq. (9.19)) vs the average over {draws} embeddings of the "
            f"exact given-W loss (Eq. (9.9)), 30 log-spaced r ≤ 2·10⁴; criterion "
            f"3 % + 3 standard errors of the W-average"
            f"{' (quick mode: 20 embeddings, DANA-constant left out)' if quick else ''}.  "
            f"(b) simulation ({n_runs} runs, one W, r ≤ {int(r_sim_max)}) vs the exact loss of "
            f"that W, |z| ≤ 4.  "
            f"(c) heavy ball vs SGD at γ/(1 − μ), γ/(1 − μ)·trD = 0.05, r = 10⁴–10⁶, within 1 % "
            f"(Eq. (9.14)).  (d) compute-optimal exponents (IsoFLOP fits of deterministic "
            f"curves, d = {study['d_values'][0]} … {study['d_values'][-1]}, f ≤ "
            f"{study['max_flops']:.0e}) of SGD, heavy ball and DANA against Eq. (11.3) and "
            f"the time-change heuristic, with the local exponents on the lower and upper half "
            f"of the IsoFLOP window.  "
            f"Cost of this run: {wall:.1f} s wall, {cpu:.1f} s CPU (this process).")
    return {"title": "Momentum methods and label noise vs exact loss",
            "description": desc, "figures": ["optimizers_vs_exact.png", "optimizer_fronts.png"],
            "tables": [table, study["table"]],
            "comparisons": comps, "numbers": numbers, "seconds": wall}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join("validation", "out"))
    ap.add_argument("--exponents-only", action="store_true",
                    help="run only the exponent table (d) and its figure")
    a = ap.parse_args()
    if a.exponents_only:
        t0, c0 = time.perf_counter(), time.process_time()
        os.makedirs(a.out, exist_ok=True)
        st = exponent_table(a.quick)
        plot_fronts(st, optimizer_curves(d=256 if a.quick else 1024),
                    pathlib.Path(a.out) / "optimizer_fronts.png")
        with open(pathlib.Path(a.out) / "optimizer_exponents.json", "w") as fh:
            json.dump({"version": vs.__version__, **st}, fh, indent=1)
        print(st["table"])
        print(f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU, "
              f"load {os.getloadavg()[0]:.1f}")
        raise SystemExit(0)
    res = run(a.out, quick=a.quick)
    for t in res["tables"]:
        print(t, end="\n\n")
    for c in res["comparisons"]:
        print(f"{'PASS' if c['passed'] else 'FAIL'}  {c['name']}: {c['value']:.3g} "
              f"(tol {c['tolerance']:.3g})  {c['detail']}")
    print(f"{res['seconds']:.1f} s wall, {res['numbers']['cpu_seconds']:.1f} s CPU")
