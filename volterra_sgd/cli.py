"""Command-line interface: ``volterra-sgd SUBCOMMAND ...`` (also ``python -m volterra_sgd``).

Each subcommand has a ``_add_<name>(subparsers)`` function that declares its
arguments and a ``_run_<name>(args) -> int`` function that does the work.  Bad
input exits with status 2 and a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


# ------------------------------------------------------------------------- demo
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="predicted loss curve against simulated SGD (table + figure)")
    p.add_argument("--out", default="volterra_sgd_demo.png",
                   help="figure file (PNG or PDF); default %(default)s")
    p.add_argument("--runs", type=_positive_int, default=100,
                   help="simulated SGD runs (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo

    run_demo(out=args.out, n_runs=args.runs, seed=args.seed)
    return 0


# ----------------------------------------------------------------------- phases
def _add_phases(sub) -> None:
    p = sub.add_parser(
        "phases", help="4+3 phase diagram: phase, exponents xi and eta, dominant terms",
        description="Without --alpha/--beta: print the table of all phases (region, xi, eta, "
                    "dominant terms). With both: the phase of (alpha, beta), xi (d* ~ f^xi), "
                    "eta (P* ~ f^-eta) and the dominant terms (docs/theory.md, Sec. 11).")
    p.add_argument("--alpha", type=float, help="data exponent alpha > 0")
    p.add_argument("--beta", type=float, help="target exponent beta, 2(alpha+beta) > 1")
    p.add_argument("--plot", metavar="FILE",
                   help="write the phase diagram to FILE (.png or .pdf) and to FILE with the "
                        "other suffix")
    p.add_argument("--heatmap", choices=("none", "eta", "xi"), default="none",
                   help="colour the diagram by an exponent instead of by phase "
                        "(default %(default)s)")
    p.set_defaults(run=_run_phases)


def _run_phases(args) -> int:
    from .phases import PHASE_DESCRIPTIONS, phase_exponents, phase_info

    if (args.alpha is None) != (args.beta is None):
        raise ValueError("give both --alpha and --beta, or neither (for the table)")
    point = None
    if args.alpha is not None:
        point = (args.alpha, args.beta)
        info = phase_info(*point)
        ex = phase_exponents(*point)
        print(f"alpha = {ex.alpha:g}, beta = {ex.beta:g}")
        print(f"phase: {ex.phase}  [region: {ex.region_status}]")
        if info.on_boundary:
            print(f"  on the boundary {' and '.join(info.boundaries)} between "
                  f"{', '.join(info.neighbours)}; assigned to {ex.phase} (each region "
                  "contains its lower edges)")
        print(f"xi  = {ex.xi:.6g}   (d* ~ f^xi;   xi = {ex.xi_formula})  [{ex.xi_status}]")
        print(f"eta = {ex.eta:.6g}   (P* ~ f^-eta; eta = {ex.eta_formula})  [{ex.eta_status}]")
        if len(set(round(x, 12) for x in ex.xi_limits.values())) > 1:
            lims = ", ".join(f"{p}: {x:.6g}" for p, x in ex.xi_limits.items())
            print(f"  xi jumps across this boundary (one-sided limits {lims}); eta is continuous")
        print(f"dominant terms: {' + '.join(ex.dominant_terms)}")
        print(f"trade-off at the optimum: {ex.tradeoff}")
    else:
        print("The 4+3 phases of compute-optimal scaling "
              "(docs/theory.md, Eq. (11.3); exponents [derived]).")
        print("d* ~ f^xi and P* ~ f^-eta at compute f = d*B*r; terms: Fo = limit level F0, "
              "Fpp = outliers,")
        print("Fac = bulk, noise = Kpp * sum of Fpp (SGD noise).  All regions lie inside "
              "2(alpha+beta) > 1.")
        for d in PHASE_DESCRIPTIONS.values():
            ex = phase_exponents(*d.representative)
            print(f"\n{d.name:4s} {d.region}   [region: {d.region_status}]")
            print(f"     xi  = {d.xi}")
            print(f"     eta = {d.eta}")
            print(f"     dominant terms: {' + '.join(d.dominant_terms)};  trade-off: {d.tradeoff}")
            print(f"     e.g. (alpha, beta) = {d.representative}: xi = {ex.xi:.4g}, "
                  f"eta = {ex.eta:.4g}")
    if args.plot:
        _write_phase_plot(args.plot, None if args.heatmap == "none" else args.heatmap, point)
    return 0


def _write_phase_plot(file: str, heatmap, point) -> None:
    from pathlib import Path

    from .plotting import plot_phase_diagram

    path = Path(file)
    other = {".png": ".pdf", ".pdf": ".png"}.get(path.suffix.lower())
    if other is None:
        raise ValueError(f"--plot FILE must end in .png or .pdf; got {file!r}")
    ax = plot_phase_diagram(heatmap=heatmap, mark=point)
    for out in (path, path.with_suffix(other)):
        ax.figure.savefig(out, dpi=150)
        print(f"wrote {out}")


# ------------------------------------------------------------------------ curve
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _v_value(text: str):
    if text.lower() in ("inf", "infinity"):
        import math

        return math.inf
    return _positive_int(text)


def _add_curve(sub) -> None:
    p = sub.add_parser("curve", help="deterministic loss curve P(r) with its parts",
                       description="Deterministic loss curve of one-pass SGD on PLRF "
                       "(docs/theory.md §6-7), or on a general spectrum read with --spectrum "
                       "(docs/spectral_models.md): prints a table, writes NPZ or CSV (+JSON), "
                       "optionally a log-log figure.")
    p.add_argument("--alpha", type=float, default=None,
                   help="data exponent alpha (PLRF; required unless --spectrum)")
    p.add_argument("--beta", type=float, default=None,
                   help="target exponent beta (PLRF; required unless --spectrum)")
    p.add_argument("--spectrum", metavar="FILE", default=None,
                   help="general diagonal model: eigenvalues lambda_j and targets b_j from a "
                        "CSV (two columns, header optional) or an NPZ (arrays 'eigenvalues', "
                        "'target'); excludes --alpha/--beta/--v")
    p.add_argument("--d", type=_positive_int, required=True, help="number of parameters d")
    p.add_argument("--v", type=_v_value, default=None,
                   help="hidden dimension v (integer or 'inf'); default 10 d")
    p.add_argument("--batch-size", type=_positive_int, default=1, help="B (default 1)")
    lr = p.add_mutually_exclusive_group()
    lr.add_argument("--learning-rate", type=float, default=None, help="gamma")
    lr.add_argument("--lr-scale", type=float, default=None,
                    help="g in gamma = g / tr D / B, tr D = sum_j lambda_j (default 0.5)")
    it = p.add_mutually_exclusive_group()
    it.add_argument("--iterations", type=int, nargs="+", default=None,
                    help="explicit iterations r")
    it.add_argument("--max-iter", type=float, default=None,
                    help="largest iteration of a log-spaced grid (default 1e6)")
    p.add_argument("--points", type=_positive_int, default=100,
                   help="points of the log-spaced grid (default 100)")
    p.add_argument("--out", default=None, help="output file (.npz or .csv)")
    p.add_argument("--plot", default=None, help="figure file (.png or .pdf)")
    p.add_argument("--cache-dir", default=None,
                   help="on-disk cache of the spectral stage (default: $VOLTERRA_SGD_CACHE, "
                   "else none)")
    p.set_defaults(run=_run_curve)


def _run_curve(args) -> int:
    import numpy as np

    from .curve import loss_curve
    from .model import PLRF, SpectralModel

    if args.spectrum is not None:
        if args.alpha is not None or args.beta is not None or args.v is not None:
            raise ValueError("--spectrum excludes --alpha, --beta and --v")
        model = SpectralModel.from_file(args.spectrum, d=args.d)
        label = f"SpectralModel({args.spectrum}), v={model.v}, d={model.d}"
    else:
        if args.alpha is None or args.beta is None:
            raise ValueError("give --alpha and --beta (PLRF), or --spectrum FILE")
        v = args.v if args.v is not None else 10 * args.d
        model = PLRF(alpha=args.alpha, beta=args.beta, v=v, d=args.d)
        label = f"PLRF alpha={model.alpha}, beta={model.beta}, v={model.v}, d={model.d}"
    if args.learning_rate is not None:
        gamma = args.learning_rate
    else:
        g = 0.5 if args.lr_scale is None else args.lr_scale
        gamma = model.reference_learning_rate(g) / args.batch_size
    if args.iterations is not None:
        r = np.asarray(args.iterations)
    else:
        rmax = 1e6 if args.max_iter is None else args.max_iter
        if not rmax >= 1:
            raise ValueError(f"--max-iter must be >= 1; got {rmax}")
        r = np.unique(np.r_[0, np.round(np.logspace(0, np.log10(rmax), args.points))])
    import os

    cache = args.cache_dir or os.environ.get("VOLTERRA_SGD_CACHE") or None
    curve = loss_curve(model, r, learning_rate=gamma, batch_size=args.batch_size,
                       cache_dir=cache)
    print(f"{label}, "
          f"B={args.batch_size}, gamma={gamma:.6g}: ||K|| = {curve.kernel_norm:.6f}, "
          f"P(inf) = {curve.limit_loss:.6e}")
    print(f"{'r':>14} {'P(r)':>12} {'F(r)':>12} {'K(r)':>12} {'Fpp':>11} {'Fac':>11} "
          f"{'Kpp':>11}")
    show = np.unique(np.linspace(0, curve.r.size - 1, min(12, curve.r.size)).astype(int))
    for i in show:
        pp = curve.parts
        print(f"{curve.r[i]:>14d} {curve.loss[i]:>12.5e} {curve.forcing[i]:>12.5e} "
              f"{curve.kernel[i]:>12.5e} {pp['Fpp'][i]:>11.3e} {pp['Fac'][i]:>11.3e} "
              f"{pp['Kpp'][i]:>11.3e}")
    if args.out:
        from .io import save_curve

        print(f"written {save_curve(curve, args.out)}")
    if args.plot:
        from .plotting import plot_loss_curve

        ax = plot_loss_curve(curve)
        ax.set_title(label)
        ax.figure.savefig(args.plot, dpi=120)
        print(f"figure written to {args.plot}")
    return 0


# ------------------------------------------------------------------------ ridge
def _nonneg_float(text: str) -> float:
    import math

    x = float(text)
    if not (math.isfinite(x) and x >= 0.0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text!r}")
    return x


def _add_ridge(sub) -> None:
    p = sub.add_parser("ridge", help="test loss of ridge / least squares on N random features "
                       "trained on T samples",
                       description="Deterministic equivalent of the test loss of ridge "
                       "regression (min-norm least squares at --ridge 0) on N random features "
                       "of the PLRF data, trained on T samples (docs/ridge.md); optionally "
                       "checked by simulation (--runs).  Several N and T give a table.")
    p.add_argument("--alpha", type=float, required=True, help="data exponent alpha")
    p.add_argument("--beta", type=float, required=True, help="target exponent beta")
    p.add_argument("--n-features", type=_positive_int, nargs="+", required=True,
                   help="number(s) of random features N")
    p.add_argument("--n-samples", type=_positive_int, nargs="+", required=True,
                   help="number(s) of training samples T")
    p.add_argument("--ridge", type=_nonneg_float, default=0.0,
                   help="ridge lambda >= 0 in (1/T)|Z theta - y|^2 + lambda |theta|^2 "
                        "(default 0: min-norm least squares)")
    p.add_argument("--v", type=_v_value, default=None,
                   help="hidden dimension v (integer or 'inf', which needs 2 alpha > 1 and "
                        "no --runs; default 10 max(N, T))")
    p.add_argument("--runs", type=int, default=0,
                   help="simulated runs per point (fresh W and samples; default 0: none)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.set_defaults(run=_run_ridge)


def _run_ridge(args) -> int:
    from .model import PLRF
    from .ridge import ridge_equivalent, simulate_ridge

    if args.runs < 0:
        raise ValueError(f"--runs must be >= 0; got {args.runs}")
    v = args.v if args.v is not None else 10 * max(max(args.n_features), max(args.n_samples))
    if args.runs and v == float("inf"):
        raise ValueError("--runs (simulation) needs a finite --v")
    print(f"PLRF alpha={args.alpha}, beta={args.beta}, v={v}, ridge={args.ridge:g}"
          + (f", {args.runs} simulated runs per point" if args.runs else ""))
    head = f"{'N':>8} {'T':>8} {'N/T':>7} {'loss (DE)':>12} {'kappa':>11}"
    if args.runs:
        head += f" {'simulation':>12} {'std.err':>10} {'sim/DE-1':>9}"
    print(head)
    for n in args.n_features:
        model = PLRF(alpha=args.alpha, beta=args.beta, v=v, d=n)
        for t in args.n_samples:
            eq = ridge_equivalent(model, t, args.ridge)
            line = f"{n:>8d} {t:>8d} {n / t:>7.3g} {eq.loss:>12.5e} {eq.kappa:>11.4e}"
            if args.runs:
                sim = simulate_ridge(model, t, args.ridge, n_runs=args.runs, rng=args.seed)
                line += (f" {sim.loss:>12.5e} {sim.stderr:>10.2e} "
                         f"{sim.loss / eq.loss - 1:>+9.4f}")
            print(line)
    return 0


# --------------------------------------------------------------------- validate
def _add_validate(sub) -> None:
    p = sub.add_parser(
        "validate", help="run the validation scripts and write a report (report.md, "
        "summary.json, figures)",
        description="Run every script in volterra_sgd.validation (deterministic curves vs "
                    "SGD and vs draws of W, spectra, asymptotic parts, finite-size effects, "
                    "compute-optimal exponents, timings) and write DIR/report.md with the "
                    "figures beside it and DIR/summary.json with every number.  Exit status "
                    "0 when every comparison is within its tolerance, 1 otherwise "
                    "(docs/validation.md).")
    p.add_argument("--out", metavar="DIR", help="report directory (created; required unless "
                   "--list)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few draws (minutes instead of up to an hour)")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                   help="run only these scripts (module names in volterra_sgd.validation)")
    p.add_argument("--list", action="store_true", help="list the scripts and exit")
    p.set_defaults(run=_run_validate)


def _run_validate(args) -> int:
    from .validate import available_scripts, run_validation

    if args.list:
        for name in available_scripts():
            print(name)
        return 0
    if args.out is None:
        raise ValueError("--out DIR is required")
    import shlex

    command = ("volterra-sgd validate" + (" --quick" if args.quick else "")
               + f" --out {shlex.quote(args.out)}"
               + (" --only " + " ".join(map(shlex.quote, args.only)) if args.only else ""))
    try:
        rep = run_validation(args.out, quick=args.quick, only=args.only, command=command,
                             echo=lambda line: print(line, flush=True))
    except ImportError as exc:
        print(f"volterra-sgd validate: error: {exc}", file=sys.stderr)
        return 2
    print(f"{'all checks passed' if rep.success else 'SOME CHECKS FAILED'}: {rep.message}")
    print(f"wrote {rep.report_path} and {rep.summary_path}")
    return rep.status


# -------------------------------------------------------------- compute-optimal
def _add_compute_optimal(sub) -> None:
    p = sub.add_parser(
        "compute-optimal", help="IsoFLOP frontier: xi, eta with intervals, Kaplan/Chinchilla fits",
        description="Sweep deterministic loss curves over a geometric grid of model sizes d, "
                    "extract the compute-optimal frontier d*(f), P*(f) at compute f = d*B*r "
                    "and fit xi and eta with bootstrap 95%% intervals (docs/theory.md, "
                    "Eqs. (11.1), (12.1); docs/compute_optimal.md). Writes frontier.csv (+ .json), "
                    "compute_optimal.json, result.npz and figures into --out.")
    p.add_argument("--alpha", type=float, required=True, help="data exponent alpha")
    p.add_argument("--beta", type=float, required=True, help="target exponent beta")
    p.add_argument("--d-min", type=_positive_int, default=256, help="smallest d (default 256)")
    p.add_argument("--d-max", type=_positive_int, default=65536,
                   help="largest d (default 65536)")
    p.add_argument("--points", type=_positive_int, default=17,
                   help="number of model sizes, geometric (default 17)")
    p.add_argument("--batch-size", type=_positive_int, default=1, help="B (default 1)")
    p.add_argument("--lr-scale", type=float, default=0.5,
                   help="g in gamma = g / sum_j j^(-2 alpha) / B (default 0.5)")
    p.add_argument("--v-ratio", type=float, default=10.0,
                   help="v = v_ratio * d; 'inf' for v = infinity (default 10)")
    p.add_argument("--max-flops", type=float, default=1e13,
                   help="compute at the end of every curve (default 1e13)")
    p.add_argument("--window", type=float, nargs=2, metavar=("F_LO", "F_HI"), default=None,
                   help="flops window of the fits (default: where d* is inside the grid)")
    p.add_argument("--n-boot", type=int, default=400, help="bootstrap draws (default 400)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="local worker processes (default min(2, cpus))")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="Dask scheduler address (e.g. tcp://host:8786); needs the 'dist' extra")
    p.add_argument("--cache-dir", default=None,
                   help="resumable per-d cache of the sweep (default: $VOLTERRA_SGD_CACHE, "
                   "else none)")
    p.add_argument("--no-chinchilla", action="store_true", help="skip the Chinchilla fit")
    p.add_argument("--no-plots", action="store_true", help="do not write figures")
    p.add_argument("--progress", action="store_true", help="progress bar (needs tqdm)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(run=_run_compute_optimal)


def _run_compute_optimal(args) -> int:
    import json
    import os
    from pathlib import Path

    import numpy as np

    from .compute_optimal import compute_optimal

    if not 2 <= args.d_min < args.d_max:
        raise ValueError(f"--d-min must be >= 2 and below --d-max; got {args.d_min}, "
                         f"{args.d_max}")
    if args.points < 3:
        raise ValueError(f"--points must be >= 3; got {args.points}")
    d_values = np.unique(np.round(np.geomspace(args.d_min, args.d_max, args.points))
                         .astype(np.int64))
    cache = args.cache_dir or os.environ.get("VOLTERRA_SGD_CACHE") or None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    co = compute_optimal(args.alpha, args.beta, d_values, args.batch_size,
                         client=args.scheduler, lr_scale=args.lr_scale, v_ratio=args.v_ratio,
                         max_flops=args.max_flops, window=args.window, n_boot=args.n_boot,
                         rng=args.seed, chinchilla=not args.no_chinchilla, n_jobs=args.jobs,
                         progress=args.progress, cache_dir=cache)
    summ = co.summary()
    fr = co.isoflop
    tab = co.frontier
    inwin = fr.in_window[fr.interior].astype(float)
    csv = out / "frontier.csv"
    np.savetxt(csv, np.column_stack([tab["flops"], tab["d_opt"], tab["loss_opt"], inwin]),
               delimiter=",", header="flops,d_opt,loss_opt,in_window", comments="",
               fmt="%.17g")
    with open(str(csv) + ".json", "w") as fh:
        json.dump(summ, fh, indent=1)
    with open(out / "compute_optimal.json", "w") as fh:
        json.dump(summ, fh, indent=1)
    co.save(out / "result.npz")
    th = co.theory
    print(f"PLRF alpha={co.alpha:g}, beta={co.beta:g}, B={co.batch_size}: "
          f"{d_values.size} model sizes {d_values[0]}..{d_values[-1]}, "
          f"phase {th['phase']}")
    lo, hi = co.window
    print(f"window f in [{lo:.3g}, {hi:.3g}]")
    print(f"eta = {co.loss_exponent:.4f}  95% [{co.loss_exponent_ci[0]:.4f}, "
          f"{co.loss_exponent_ci[1]:.4f}]   theory {th['eta']:.4f}")
    print(f"xi  = {co.params_exponent:.4f}  95% [{co.params_exponent_ci[0]:.4f}, "
          f"{co.params_exponent_ci[1]:.4f}]   theory {th['xi']:.4f}")
    kap = co.kaplan
    print(f"Kaplan: alpha_N = {kap.loss_vs_params.exponent:.4f} (theory "
          f"{kap.theory.get('alpha_N', float('nan')):.4f}), alpha_D = "
          f"{kap.loss_vs_data.exponent:.4f} (theory {kap.theory.get('alpha_D', float('nan')):.4f})")
    if co.chinchilla is not None:
        ch = co.chinchilla
        print(f"Chinchilla: E={ch.E:.3g} A={ch.A:.3g} a={ch.a:.4f} B={ch.B:.3g} b={ch.b:.4f}; "
              f"N* ~ C^{ch.params_exponent:.4f}, L*-E ~ C^-{ch.loss_exponent:.4f}")
    s = co.seconds
    print(f"time: sweep {s['sweep']:.1f} s (spectral {s['spectral']:.1f} s, solver "
          f"{s['solver']:.1f} s summed over workers), fits {s['fits']:.1f} s")
    print(f"wrote {csv}, {csv}.json, {out / 'compute_optimal.json'}, {out / 'result.npz'}")
    if not args.no_plots:
        from .plotting import plot_compute_optimal_curves, plot_isoflop_slices, plot_optimal_size

        for name, fn in (("loss_vs_flops", plot_compute_optimal_curves),
                         ("optimal_size", plot_optimal_size),
                         ("isoflop_slices", plot_isoflop_slices)):
            ax = fn(co)
            ax.set_title(f"PLRF α={co.alpha:g}, β={co.beta:g}")
            for ext in ("png", "pdf"):
                ax.figure.savefig(out / f"{name}.{ext}", dpi=130)
        print(f"wrote figures loss_vs_flops, optimal_size, isoflop_slices (.png, .pdf) in {out}")
    return 0


_SUBCOMMANDS = [_add_demo, _add_curve, _add_phases, _add_ridge, _add_validate,
                _add_compute_optimal]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``volterra-sgd`` command."""
    from . import __version__

    parser = _Parser(prog="volterra-sgd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Library errors caused by bad input (``ValueError``, ``TypeError``) are reported as a
    single line on stderr with exit status 2.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 2 on bad input.

    Examples
    --------
    >>> from volterra_sgd.cli import main
    >>> main(["phases", "--alpha", "0.7", "--beta", "0.6"])  # doctest: +ELLIPSIS
    alpha = 0.7, beta = 0.6
    phase: II  [region: derived]
    xi  = 0.461538 ...
    eta = 0.615385 ...
    0
    >>> main(["phases", "--alpha", "0.1", "--beta", "0.1"])   # inadmissible: 2(alpha+beta) <= 1
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError) as exc:
        print(f"volterra-sgd {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
