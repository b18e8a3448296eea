"""Command-line interface: ``volterra-sgd SUBCOMMAND ...`` (also ``python -m volterra_sgd``).

Each subcommand has a ``_add_<name>(subparsers)`` function that declares its
arguments and a ``_run_<name>(args) -> int`` function that does the work.  Bad
input exits with status 2 and a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from .exceptions import VolterraSGDError

__all__ = ["main"]

_FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


# ------------------------------------------------------------- argument types
# Each runs while argparse reads the command line, so that a mistake is reported (one line,
# exit status 2) before any computation starts.
def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _finite_float(text: str) -> float:
    x = _number(text)
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return x


def _positive_float(text: str) -> float:
    x = _finite_float(text)
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return x


def _integer(text: str, minimum: int | None = None) -> int:
    """Parse an integer; integral floats such as ``1e3`` or ``1000.0`` are accepted too."""
    try:
        value = int(text)
    except ValueError:
        x = _number(text)
        if not (math.isfinite(x) and x == int(x)):
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        value = int(x)
    if minimum is not None and value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1)


def _nonneg_int(text: str) -> int:
    return _integer(text, 0)


def _existing_file(text: str) -> str:
    """Return ``text`` if it names an existing file that can be read (checked by opening it)."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory, not a file")
    try:
        with open(text, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {exc.strerror}") from None
    return text


def _check_folder(folder: str, what: str) -> None:
    folder = folder or "."
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder {folder!r} of {what} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"the folder {folder!r} of {what} is not writable")


def _output_file(*suffixes: str, ignore_case: bool = False):
    """Type of an output file: one of ``suffixes``, in an existing writable folder."""
    def check(text: str) -> str:
        if not (text.lower() if ignore_case else text).endswith(suffixes):
            raise argparse.ArgumentTypeError(f"{text!r} must end in {' or '.join(suffixes)}")
        if os.path.isdir(text):
            raise argparse.ArgumentTypeError(f"{text!r} is a directory")
        _check_folder(os.path.dirname(text), repr(text))
        return text
    check.__name__ = "output file"
    return check


def _output_dir(text: str) -> str:
    """Return ``text`` if it is an existing directory or can be created under a writable one."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
    parent = os.path.abspath(text)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"cannot create {text!r}: {parent!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{parent!r} is not writable")
    return text


def _save_figure(fig, path, **kwargs) -> None:
    from .io import _save_figure

    _save_figure(fig, path, **kwargs)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


# ------------------------------------------------------------------------- demo
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="predicted loss curve against simulated SGD (table + figure)")
    p.add_argument("--out", default="volterra_sgd_demo.png",
                   type=_output_file(*_FIGURE_SUFFIXES, ignore_case=True),
                   help="figure file (.png, .pdf or .svg); default %(default)s")
    p.add_argument("--runs", type=_positive_int, default=100,
                   help="simulated SGD runs (default %(default)s)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default %(default)s)")
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
                    "eta (P* ~ f^-eta) and the dominant terms (documentation: Theory, Sec. 11).")
    p.add_argument("--alpha", type=_finite_float, help="data exponent alpha > 0")
    p.add_argument("--beta", type=_finite_float, help="target exponent beta, 2(alpha+beta) > 1")
    p.add_argument("--plot", metavar="FILE", type=_output_file(".png", ".pdf", ignore_case=True),
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
        info = phase_info(*point)  # refuses an inadmissible point before printing
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
              "(documentation: Theory, Eq. (11.3); exponents [derived]).")
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
    other = {".png": ".pdf", ".pdf": ".png"}[path.suffix.lower()]
    ax = plot_phase_diagram(heatmap=heatmap, mark=point)
    for out in (path, path.with_suffix(other)):
        _save_figure(ax.figure, out, dpi=150)
        print(f"wrote {out}")


# ------------------------------------------------------------------------ curve
def _v_value(text: str):
    if text.lower() in ("inf", "infinity"):
        return math.inf
    return _positive_int(text)


def _max_iter(text: str) -> float:
    x = _finite_float(text)
    if x < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return x


_OPTIMIZERS = ("sgd", "heavy-ball", "nesterov", "dana-constant", "dana-decaying")


def _momentum(text: str) -> float:
    x = _finite_float(text)
    if not 0.0 <= x < 1.0:
        raise argparse.ArgumentTypeError(f"expected a momentum in [0, 1), got {text!r}")
    return x


def _add_optimizer_args(p, lr_flag: str) -> None:
    """``--optimizer`` and ``--momentum`` (curve and compute-optimal)."""
    p.add_argument("--optimizer", choices=_OPTIMIZERS, default="sgd",
                   help="optimizer with its d-scaling rule (documentation: Optimizers): "
                        "heavy-ball/nesterov use gamma = (1 - mu) * the SGD rate; dana-* use "
                        f"the rules (9.17) with c2 = {lr_flag} (default %(default)s)")
    p.add_argument("--momentum", type=_momentum, default=None, metavar="MU",
                   help="momentum mu in [0, 1) of heavy-ball and nesterov (default 0.9)")


def _check_optimizer_args(args) -> None:
    """Refuse flag combinations that the chosen optimizer does not use (before computing)."""
    if args.momentum is not None and args.optimizer not in ("heavy-ball", "nesterov"):
        raise ValueError(f"--momentum is only used by --optimizer heavy-ball or nesterov; got "
                         f"--optimizer {args.optimizer}")
    if getattr(args, "learning_rate", None) is not None and args.optimizer.startswith("dana"):
        raise ValueError(f"--learning-rate does not apply to --optimizer {args.optimizer} "
                         "(its rates follow Eq. (9.17)); use --lr-scale for c2")


def _add_curve(sub) -> None:
    p = sub.add_parser("curve", help="deterministic loss curve P(r) with its parts",
                       description="Deterministic loss curve of one-pass SGD on PLRF "
                       "(documentation: Theory, Secs. 6-7), or on a general spectrum read with "
                       "--spectrum (documentation: Spectral models): prints a table, writes NPZ "
                       "or CSV (+JSON), "
                       "optionally a log-log figure.")
    p.add_argument("--alpha", type=_finite_float, default=None,
                   help="data exponent alpha (PLRF; required unless --spectrum)")
    p.add_argument("--beta", type=_finite_float, default=None,
                   help="target exponent beta (PLRF; required unless --spectrum)")
    p.add_argument("--spectrum", metavar="FILE", default=None, type=_existing_file,
                   help="general diagonal model: eigenvalues lambda_j and targets b_j from a "
                        "CSV (two columns, header optional) or an NPZ (arrays 'eigenvalues', "
                        "'target'); excludes --alpha/--beta/--v")
    p.add_argument("--d", type=_positive_int, required=True, help="number of parameters d")
    p.add_argument("--v", type=_v_value, default=None,
                   help="hidden dimension v (integer or 'inf'); default 10 d")
    p.add_argument("--batch-size", type=_positive_int, default=1, help="B (default 1)")
    lr = p.add_mutually_exclusive_group()
    lr.add_argument("--learning-rate", type=_positive_float, default=None, help="gamma")
    lr.add_argument("--lr-scale", type=_positive_float, default=None,
                    help="g in gamma = g / tr D / B, tr D = sum_j lambda_j (default 0.5)")
    _add_optimizer_args(p, "--lr-scale")
    p.add_argument("--noise-variance", type=_nonneg_float, default=0.0, metavar="S2",
                   help="label-noise variance sigma^2 >= 0 of the PLRF (Eq. (9.1)); when > 0 "
                        "the table and the output file also hold total_loss = P(r) + S2 "
                        "(default 0)")
    it = p.add_mutually_exclusive_group()
    it.add_argument("--iterations", type=_nonneg_int, nargs="+", default=None,
                    help="explicit iterations r")
    it.add_argument("--max-iter", type=_max_iter, default=None,
                    help="largest iteration of a log-spaced grid (default 1e6)")
    p.add_argument("--points", type=_positive_int, default=100,
                   help="points of the log-spaced grid (default 100)")
    p.add_argument("--out", default=None, type=_output_file(".npz", ".csv"),
                   help="output file (.npz, or .csv with a .csv.json sidecar)")
    p.add_argument("--plot", default=None, type=_output_file(*_FIGURE_SUFFIXES, ignore_case=True),
                   help="figure file (.png, .pdf or .svg)")
    p.add_argument("--cache-dir", default=None, type=_output_dir,
                   help="on-disk cache of the spectral stage (default: $VOLTERRA_SGD_CACHE, "
                   "else none)")
    p.set_defaults(run=_run_curve)


def _run_curve(args) -> int:
    import numpy as np

    from .curve import loss_curve
    from .model import PLRF, SpectralModel

    _check_optimizer_args(args)
    if args.spectrum is not None:
        if args.alpha is not None or args.beta is not None or args.v is not None:
            raise ValueError("--spectrum excludes --alpha, --beta and --v")
        if args.noise_variance > 0:
            raise ValueError("--noise-variance needs a PLRF (--alpha/--beta), not --spectrum")
        if args.optimizer.startswith("dana"):
            raise ValueError(f"--optimizer {args.optimizer} needs a PLRF (--alpha/--beta): "
                             "its rules (9.17) use the exponents alpha and beta")
        model = SpectralModel.from_file(args.spectrum, d=args.d)
        label = f"SpectralModel({args.spectrum}), v={model.v}, d={model.d}"
    else:
        if args.alpha is None or args.beta is None:
            raise ValueError("give --alpha and --beta (PLRF), or --spectrum FILE")
        v = args.v if args.v is not None else 10 * args.d
        model = PLRF(alpha=args.alpha, beta=args.beta, v=v, d=args.d,
                     noise_variance=args.noise_variance)
        label = f"PLRF alpha={model.alpha}, beta={model.beta}, v={model.v}, d={model.d}"
        if args.noise_variance > 0:
            label += f", sigma^2={model.noise_variance:g}"
    g = 0.5 if args.lr_scale is None else args.lr_scale
    optimizer = None
    if args.optimizer != "sgd":
        from .compute_optimal import optimizer_for_model
        from .optimizers import HeavyBall, Nesterov

        if args.learning_rate is not None:  # heavy-ball or nesterov at the given gamma
            cls = HeavyBall if args.optimizer == "heavy-ball" else Nesterov
            optimizer = cls(args.learning_rate, 0.9 if args.momentum is None else args.momentum,
                            args.batch_size)
        else:
            optimizer = optimizer_for_model(args.optimizer, model, args.batch_size,
                                            lr_scale=g, momentum=args.momentum)
    if args.learning_rate is not None:
        gamma = args.learning_rate
    else:
        gamma = model.reference_learning_rate(g) / args.batch_size
    if args.iterations is not None:
        r = np.asarray(args.iterations)
    else:
        rmax = 1e6 if args.max_iter is None else args.max_iter
        r = np.unique(np.r_[0, np.round(np.logspace(0, np.log10(rmax), args.points))])
    cache = _cache_dir(args.cache_dir)
    if optimizer is None:
        curve = loss_curve(model, r, learning_rate=gamma, batch_size=args.batch_size,
                           cache_dir=cache)
        opt_text = f"B={args.batch_size}, gamma={gamma:.6g}"
    else:
        curve = loss_curve(model, r, optimizer=optimizer, cache_dir=cache)
        opt_text = f"{optimizer!r}"
    noisy = model.noise_variance > 0
    print(f"{label}, {opt_text}: ||K|| = {curve.kernel_norm:.6f}, "
          f"P(inf) = {curve.limit_loss:.6e}")
    print(f"{'r':>14} {'P(r)':>12} {'F(r)':>12} {'K(r)':>12} {'Fpp':>11} {'Fac':>11} "
          f"{'Kpp':>11}" + (f" {'total_loss':>12}" if noisy else ""))
    show = np.unique(np.linspace(0, curve.r.size - 1, min(12, curve.r.size)).astype(int))
    pp = curve.parts
    for i in show:
        print(f"{curve.r[i]:>14d} {curve.loss[i]:>12.5e} {curve.forcing[i]:>12.5e} "
              f"{curve.kernel[i]:>12.5e} {pp.get('Fpp', curve.loss * math.nan)[i]:>11.3e} "
              f"{pp.get('Fac', curve.loss * math.nan)[i]:>11.3e} "
              f"{pp.get('Kpp', curve.loss * math.nan)[i]:>11.3e}"
              + (f" {curve.total_loss[i]:>12.5e}" if noisy else ""))
    if args.out:
        print(f"written {_save_curve(curve, args.out, total_loss=noisy)}")
    if args.plot:
        from .plotting import plot_loss_curve

        ax = plot_loss_curve(curve)
        ax.set_title(label)
        _save_figure(ax.figure, args.plot, dpi=120)
        print(f"figure written to {args.plot}")
    return 0


def _save_curve(curve, path: str, *, total_loss: bool) -> str:
    """:func:`save_curve`, with a ``total_loss`` column (Eq. (9.1)) when asked.

    :func:`load_curve` ignores the extra column (it rebuilds ``total_loss`` from the stored
    ``noise_variance``).
    """
    from .io import save_curve

    if not total_loss:
        return save_curve(curve, path)
    from . import io

    meta = io._json_safe(io._meta(curve))
    cols = {k: getattr(curve, k) for k in io._ARRAYS}
    cols.update({k: curve.parts[k] for k in io._PARTS})
    cols["total_loss"] = curve.total_loss
    io._atomic_write({path: io._npz_bytes(meta, cols)} if path.endswith(".npz")
                     else io._csv_with_sidecar(path, cols, meta))
    return path


# ------------------------------------------------------------------------ ridge
def _cache_dir(given):
    """Return ``--cache-dir``, else ``$VOLTERRA_SGD_CACHE`` (checked), else None."""
    if given:
        return given
    env = os.environ.get("VOLTERRA_SGD_CACHE") or None
    if env is not None:
        try:
            _output_dir(env)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"$VOLTERRA_SGD_CACHE: {exc}") from None
    return env


def _nonneg_float(text: str) -> float:
    x = _finite_float(text)
    if not x >= 0.0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text!r}")
    return x


def _add_ridge(sub) -> None:
    p = sub.add_parser("ridge", help="test loss of ridge / least squares on N random features "
                       "trained on T samples",
                       description="Deterministic equivalent of the test loss of ridge "
                       "regression (min-norm least squares at --ridge 0) on N random features "
                       "of the PLRF data, trained on T samples (documentation: Ridge); optionally "
                       "checked by simulation (--runs).  Several N and T give a table.  "
                       "--frontier prints the compute-optimal N and T under C = N T instead.")
    p.add_argument("--alpha", type=_finite_float, required=True, help="data exponent alpha")
    p.add_argument("--beta", type=_finite_float, required=True, help="target exponent beta")
    p.add_argument("--n-features", type=_positive_int, nargs="+",
                   help="number(s) of random features N (required unless --frontier)")
    p.add_argument("--n-samples", type=_positive_int, nargs="+",
                   help="number(s) of training samples T (required unless --frontier)")
    p.add_argument("--ridge", type=_nonneg_float, default=0.0,
                   help="ridge lambda >= 0 in (1/T)|Z theta - y|^2 + lambda |theta|^2 "
                        "(default 0: min-norm least squares)")
    p.add_argument("--v", type=_v_value, default=None,
                   help="hidden dimension v (integer or 'inf', which needs 2 alpha > 1 and "
                        "no --runs; default 10 max(N, T))")
    p.add_argument("--runs", type=_nonneg_int, default=0,
                   help="simulated runs per point (fresh W and samples; default 0: none)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--noise-variance", type=_nonneg_float, default=0.0,
                   help="label-noise variance sigma^2 >= 0 of the training targets; the loss "
                        "printed is the excess risk (default 0)")
    p.add_argument("--frontier", action="store_true",
                   help="compute-optimal N and T under C = N T with the optimal ridge, for C "
                        "from 1e5 to 1e9, and the fitted exponents beside the derived ones "
                        "(--v defaults to inf here)")
    p.set_defaults(run=_run_ridge)


def _run_ridge(args) -> int:
    from .model import PLRF
    from .ridge import ridge_equivalent, simulate_ridge

    if args.frontier:
        return _run_ridge_frontier(args)
    if not (args.n_features and args.n_samples):
        raise ValueError("--n-features and --n-samples are required unless --frontier")
    v = args.v if args.v is not None else 10 * max(max(args.n_features), max(args.n_samples))
    if args.runs and v == float("inf"):
        raise ValueError("--runs (simulation) needs a finite --v")
    print(f"PLRF alpha={args.alpha}, beta={args.beta}, v={v}, ridge={args.ridge:g}"
          + (f", sigma^2={args.noise_variance:g}" if args.noise_variance else "")
          + (f", {args.runs} simulated runs per point" if args.runs else ""))
    head = f"{'N':>8} {'T':>8} {'N/T':>7} {'loss (DE)':>12} {'kappa':>11}"
    if args.runs:
        head += f" {'simulation':>12} {'std.err':>10} {'sim/DE-1':>9}"
    print(head)
    models = [PLRF(alpha=args.alpha, beta=args.beta, v=v, d=n,
                   noise_variance=args.noise_variance) for n in args.n_features]
    for n, model in zip(args.n_features, models, strict=True):
        for t in args.n_samples:
            eq = ridge_equivalent(model, t, args.ridge)
            line = f"{n:>8d} {t:>8d} {n / t:>7.3g} {eq.loss:>12.5e} {eq.kappa:>11.4e}"
            if args.runs:
                sim = simulate_ridge(model, t, args.ridge, n_runs=args.runs, rng=args.seed)
                # a zero or infinite prediction (N >= v, or the N = T peak) has no ratio
                rel = (f"{sim.loss / eq.loss - 1:>+9.4f}" if 0 < eq.loss < math.inf
                       else f"{'n/a':>9}")
                line += f" {sim.loss:>12.5e} {sim.stderr:>10.2e} {rel}"
            print(line)
    return 0


def _run_ridge_frontier(args) -> int:
    from .data_limited import data_limited_frontier
    from .model import PLRF

    v = args.v if args.v is not None else math.inf
    model = PLRF(alpha=args.alpha, beta=args.beta, v=v, d=1,
                 noise_variance=args.noise_variance)
    fr = data_limited_frontier(model, rng=args.seed)
    print(f"PLRF alpha={args.alpha}, beta={args.beta}, v={v}"
          + (f", sigma^2={args.noise_variance:g}" if args.noise_variance else "")
          + ": compute-optimal N, T under C = N T, optimal ridge")
    print(f"{'C':>10} {'N*':>11} {'T*':>11} {'N*/T*':>8} {'ridge*':>11} {'loss*':>12}")
    for row in zip(fr.compute, fr.n_features, fr.n_samples, fr.ridge, fr.loss, strict=True):
        c, n, t, r, loss = row
        print(f"{c:>10.3g} {n:>11.5g} {t:>11.5g} {n / t:>8.3g} {r:>11.4e} {loss:>12.5e}")
    th = fr.theory
    for name, fit, key in (("N* ~ C^xi_N", fr.params_fit, "params"),
                           ("T* ~ C^xi_T", fr.data_fit, "data"),
                           ("L* ~ C^-eta", fr.loss_fit, "loss")):
        lo, hi = fit.exponent_ci
        line = f"{name}: {fit.exponent:.4f} [{lo:.4f}, {hi:.4f}]"
        if th is not None:
            line += f"  derived {getattr(th, key):.4f}"
        print(line)
    if th is not None:
        print(f"regime {th.regime} (a = {th.features:g}, c = {th.samples:g}); the additive "
              f"form alone would give xi_N = {th.additive_params:.4f}, "
              f"eta = {th.additive_loss:.4f}")
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
                    "(documentation: Validation).")
    p.add_argument("--out", metavar="DIR", type=_output_dir,
                   help="report directory (created; required unless --list)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few draws (minutes instead of up to an hour)")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                   help="run only these scripts (module names in volterra_sgd.validation)")
    p.add_argument("--jobs", type=_nonneg_int, default=None,
                   help="scripts run in worker processes, this many at a time (default "
                        "min(2, cores)); 0 runs them one after the other in this process")
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
               + (" --only " + " ".join(map(shlex.quote, args.only)) if args.only else "")
               + (f" --jobs {args.jobs}" if args.jobs is not None else ""))
    try:
        rep = run_validation(args.out, quick=args.quick, only=args.only, command=command,
                             echo=lambda line: print(line, flush=True), jobs=args.jobs)
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
                    "and fit xi and eta with bootstrap 95% intervals (documentation: Theory, "
                    "Eqs. (11.1), (12.1); Compute-optimal scaling). Writes frontier.csv (+ .json), "
                    "compute_optimal.json, result.npz and figures into --out.")
    p.add_argument("--alpha", type=_finite_float, required=True, help="data exponent alpha")
    p.add_argument("--beta", type=_finite_float, required=True, help="target exponent beta")
    p.add_argument("--d-min", type=_positive_int, default=256, help="smallest d (default 256)")
    p.add_argument("--d-max", type=_positive_int, default=65536,
                   help="largest d (default 65536)")
    p.add_argument("--points", type=_positive_int, default=17,
                   help="number of model sizes, geometric (default 17)")
    p.add_argument("--batch-size", type=_positive_int, default=1, help="B (default 1)")
    p.add_argument("--lr-scale", type=_positive_float, default=0.5,
                   help="g in gamma = g / sum_j j^(-2 alpha) / B (default 0.5)")
    _add_optimizer_args(p, "--lr-scale")
    p.add_argument("--v-ratio", type=_v_ratio, default=10.0,
                   help="v = v_ratio * d, > 1; 'inf' for v = infinity (default 10)")
    p.add_argument("--max-flops", type=_positive_float, default=1e13,
                   help="compute at the end of every curve (default 1e13)")
    p.add_argument("--window", type=_positive_float, nargs=2, metavar=("F_LO", "F_HI"),
                   default=None,
                   help="flops window of the fits, 0 < F_LO < F_HI <= --max-flops (default: "
                        "where d* is inside the grid)")
    p.add_argument("--n-boot", type=_positive_int, default=400,
                   help="bootstrap draws, >= 1 (default 400)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="local worker threads (default: the cores)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="Dask scheduler address (e.g. tcp://host:8786); needs the 'dist' extra")
    p.add_argument("--cache-dir", default=None, type=_output_dir,
                   help="resumable per-d cache of the sweep (default: $VOLTERRA_SGD_CACHE, "
                   "else none)")
    p.add_argument("--no-chinchilla", action="store_true", help="skip the Chinchilla fit")
    p.add_argument("--approach2", action=argparse.BooleanOptionalAction, default=True,
                   help="Chinchilla Approach 2: parabolas through the IsoFLOP profiles "
                        "(default: on)")
    p.add_argument("--schedule", choices=("constant", "cosine", "wsd", "power"), default=None,
                   help="learning-rate schedule with each run's own length as horizon; every "
                        "IsoFLOP point is a separately scheduled run (SGD only)")
    p.add_argument("--extrapolate", action="store_true",
                   help="also extrapolate xi and eta to d -> infinity from nested grids "
                        "(needs >= 10 model sizes; the library's default for this is "
                        "--d-max 131072 --points 19)")
    p.add_argument("--no-plots", action="store_true", help="do not write figures")
    p.add_argument("--progress", action="store_true", help="progress bar (needs tqdm)")
    p.add_argument("--out", required=True, type=_output_dir,
                   help="output directory (created if missing)")
    p.set_defaults(run=_run_compute_optimal)


def _v_ratio(text: str) -> float:
    if text.lower() in ("inf", "infinity"):
        return math.inf
    x = _finite_float(text)
    if not x > 1:
        raise argparse.ArgumentTypeError(f"expected a number > 1 or 'inf', got {text!r}")
    return x


def _run_compute_optimal(args) -> int:
    from pathlib import Path

    import numpy as np

    from .compute_optimal import compute_optimal
    from .io import _atomic_write, _csv_with_sidecar, _format_meta, _json_bytes
    from .phases import phase_info

    _check_optimizer_args(args)
    if not 2 <= args.d_min < args.d_max:
        raise ValueError(f"--d-min must be >= 2 and below --d-max; got {args.d_min}, "
                         f"{args.d_max}")
    if args.points < 3:
        raise ValueError(f"--points must be >= 3; got {args.points}")
    if args.window is not None and not args.window[0] < args.window[1] <= args.max_flops:
        raise ValueError(f"--window F_LO F_HI must satisfy F_LO < F_HI <= --max-flops "
                         f"({args.max_flops:g}); got {args.window[0]:g} {args.window[1]:g}")
    phase_info(args.alpha, args.beta)  # an inadmissible (alpha, beta) is refused here
    d_values = np.unique(np.round(np.geomspace(args.d_min, args.d_max, args.points))
                         .astype(np.int64))
    cache = _cache_dir(args.cache_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    co = compute_optimal(args.alpha, args.beta, d_values, args.batch_size,
                         client=args.scheduler, lr_scale=args.lr_scale, v_ratio=args.v_ratio,
                         max_flops=args.max_flops, window=args.window, n_boot=args.n_boot,
                         rng=args.seed, chinchilla=not args.no_chinchilla, n_jobs=args.jobs,
                         progress=args.progress, cache_dir=cache, optimizer=args.optimizer,
                         momentum=args.momentum, approach2=args.approach2,
                         schedule=args.schedule, extrapolate=args.extrapolate)
    summ = co.summary()
    fr = co.isoflop
    tab = co.frontier
    inwin = fr.in_window[fr.interior].astype(float)
    csv = out / "frontier.csv"
    side = {"kind": "IsoFLOPFrontierTable", **_format_meta(),
            "description": "compute-optimal frontier: at each compute f (log-spaced grid), the "
                           "model size d* minimising the loss and that loss",
            "columns": ["flops", "d_opt", "loss_opt", "in_window"],
            "units": {"flops": "compute f = d * B * r", "d_opt": "optimal model size d*(f) "
                      "(interpolated between grid sizes)", "loss_opt": "optimal loss P*(f)",
                      "in_window": "1 if the point is inside the fit window, else 0"},
            "alpha": co.alpha, "beta": co.beta, "batch_size": co.batch_size,
            "optimizer": co.optimizer, "window": list(co.window), "summary": "compute_optimal.json"}
    files = _csv_with_sidecar(str(csv), {"flops": tab["flops"], "d_opt": tab["d_opt"],
                                         "loss_opt": tab["loss_opt"], "in_window": inwin}, side)
    files[str(out / "compute_optimal.json")] = _json_bytes(summ, indent=1)  # NaN -> null
    _atomic_write(files)
    co.save(out / "result.npz")
    th = co.theory
    print(f"PLRF alpha={co.alpha:g}, beta={co.beta:g}, B={co.batch_size}, "
          f"optimizer {co.optimizer}: "
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
    for label, fit in (("Approach 2 (profiles)", co.approach2),
                       ("d -> inf (extrapolated)", co.extrapolated)):
        if fit is not None:
            print(f"{label}: eta = {fit.loss_exponent:.4f} [{fit.loss_exponent_ci[0]:.4f}, "
                  f"{fit.loss_exponent_ci[1]:.4f}], xi = {fit.params_exponent:.4f} "
                  f"[{fit.params_exponent_ci[0]:.4f}, {fit.params_exponent_ci[1]:.4f}]")
    if co.constant_rate is not None:
        c0 = co.constant_rate
        print(f"schedule {args.schedule}: {co.seconds['n_runs']} runs; constant rate on the "
              f"same grid: eta = {c0['eta']:.4f}, xi = {c0['xi']:.4f}")
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
                _save_figure(ax.figure, out / f"{name}.{ext}", dpi=130)
        print(f"wrote figures loss_vs_flops, optimal_size, isoflop_slices (.png, .pdf) in {out}")
    return 0


# -------------------------------------------------------------------------- fit
def _unit_interval(text: str) -> float:
    x = _finite_float(text)
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return x


def _add_fit(sub) -> None:
    p = sub.add_parser(
        "fit", help="fit alpha, beta (with intervals) and the phase to a dataset or to "
                    "measured loss curves",
        description="Fit from data (spectrum route, --data): the sample covariance spectrum "
                    "of the features and the least-squares target coefficients of the labels "
                    "(documentation: Theory, Sec. 14), power laws alpha and beta fitted on bin "
                    "sums (Eq. (14.2)) with bootstrap intervals over samples (Eq. (14.3)), the "
                    "phase, its boundary distance and the compute-optimal exponents "
                    "(Eq. (11.3)); optionally a figure of the fits and of the predicted SGD "
                    "loss curve of SpectralModel.from_data (documentation: Fitting).  "
                    "Fit from loss curves (curve route, --curves): alpha, beta, a loss scale, "
                    "a time scale (when the CSV gives no learning rate) and an irreducible "
                    "loss minimising the log-loss misfit to deterministic curves (Sec. 16, "
                    "Eq. (16.1)) with bootstrap intervals (Eq. (16.3)); optionally a figure of "
                    "the data and the fitted curves.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=_existing_file, metavar="FILE",
                     help="NPZ with arrays X (samples x features) and y, or CSV whose last "
                          "column is y and the others X (header line optional)")
    src.add_argument("--curves", type=_existing_file, metavar="FILE.csv",
                     help="CSV of loss curves with columns d, r, loss and optionally stderr "
                          "and learning_rate (a header line naming them, in any order; "
                          "without one, d, r, loss[, stderr]); one curve per distinct d, two "
                          "or more sizes")
    p.add_argument("--no-irreducible", action="store_true",
                   help="curve route: fit without an irreducible loss (E = 0)")
    p.add_argument("--fit-time-scale", choices=("auto", "yes", "no"), default="auto",
                   help="curve route: fit the time scale tau (auto: only when the CSV has no "
                        "learning_rate column; Sec. 16)")
    p.add_argument("--window", type=_positive_int, nargs=2, metavar=("K_MIN", "K_MAX"),
                   default=None, help="1-based eigenvalue range of the fits (default: the "
                                      "trusted eigenvalues)")
    p.add_argument("--trust", type=_positive_float, default=0.03,
                   help="threshold on the bias scale of Eq. (14.1) (default %(default)s)")
    p.add_argument("--standardize", action="store_true",
                   help="divide each feature by its standard deviation")
    p.add_argument("--no-center", action="store_true", help="do not centre X and y")
    p.add_argument("--n-boot", type=_nonneg_int, default=200,
                   help="bootstrap replicates (default %(default)s; 0: no intervals)")
    p.add_argument("--ci", type=_unit_interval, default=0.95,
                   help="interval level (default %(default)s)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--d", type=_positive_int, default=None,
                   help="model size of the predicted loss curve (default: a quarter of the "
                        "number of features)")
    p.add_argument("--lr-scale", type=_unit_interval, default=0.5,
                   help="g of the learning rate g / tr D (default %(default)s)")
    p.add_argument("--max-iter", type=_positive_float, default=1e6,
                   help="last iteration of the predicted curve (default %(default)g)")
    p.add_argument("--plot", metavar="FILE", default=None,
                   type=_output_file(*_FIGURE_SUFFIXES, ignore_case=True),
                   help="write the figure (spectrum fits and predicted loss curve)")
    p.add_argument("--save", metavar="FILE.npz", default=None, type=_output_file(".npz"),
                   help="curve route: save the fit with its curves (read back with "
                        "volterra_sgd.load_curve_fit)")
    p.set_defaults(run=_run_fit)


def _load_xy(path: str):
    import numpy as np

    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("X", "y") if k not in z.files]
            if missing:
                raise ValueError(f"{path}: the NPZ archive needs arrays X and y; missing "
                                 f"{', '.join(missing)} (has {', '.join(z.files) or 'none'})")
            return z["X"], z["y"]
    if path.endswith(".csv"):
        try:
            data = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError:
            try:
                data = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1)
            except ValueError as exc:
                raise ValueError(f"{path}: not a numeric CSV table ({exc})") from None
        if data.shape[1] < 2:
            raise ValueError(f"{path}: needs at least two columns (features..., label); got "
                             f"{data.shape[1]}")
        return data[:, :-1], data[:, -1]
    raise ValueError(f"--data must end in .npz or .csv; got {path!r}")


def _load_curves(path: str) -> list:
    import numpy as np

    if not path.endswith(".csv"):
        raise ValueError(f"--curves must end in .csv; got {path!r}")
    with open(path) as fh:
        first = fh.readline()
    names = ["d", "r", "loss", "stderr"]
    header = any(c.isalpha() for c in first.replace("e", "").replace("E", ""))
    if header:
        names = [n.strip().strip('"').lower() for n in first.split(",")]
        need = {"d", "r", "loss"}
        if not need <= set(names) or not set(names) <= need | {"stderr", "learning_rate"}:
            raise ValueError(f"{path}: the header must name the columns d, r, loss and "
                             f"optionally stderr, learning_rate; got {', '.join(names)}")
    try:
        data = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1 if header else 0)
    except ValueError as exc:
        raise ValueError(f"{path}: not a numeric CSV table ({exc})") from None
    if (header and data.shape[1] != len(names)) or (not header and data.shape[1] not in (3, 4)):
        raise ValueError(f"{path}: needs {len(names) if header else '3 or 4'} columns "
                         f"({', '.join(names) if header else 'd, r, loss[, stderr]'}); got "
                         f"{data.shape[1]}")
    cols = {n: data[:, k] for k, n in enumerate(names[:data.shape[1]])}
    runs = []
    for d in np.unique(cols["d"]):
        m = cols["d"] == d
        order = np.argsort(cols["r"][m], kind="stable")
        run = {"d": int(d) if d == round(d) else d, "r": cols["r"][m][order],
               "loss": cols["loss"][m][order]}
        if "stderr" in cols:
            run["stderr"] = cols["stderr"][m][order]
        if "learning_rate" in cols:
            lr = np.unique(cols["learning_rate"][m])
            if lr.size != 1:
                raise ValueError(f"{path}: the curve at d = {run['d']} has {lr.size} different "
                                 "learning rates; one per curve")
            run["learning_rate"] = float(lr[0])
        runs.append(run)
    return runs


def _run_fit_curves(args) -> int:
    import numpy as np

    from .calibration import fit_loss_curves

    runs = _load_curves(args.curves)
    fit = fit_loss_curves(runs, irreducible=not args.no_irreducible, lr_scale=args.lr_scale,
                          n_bootstrap=args.n_boot, ci_level=args.ci, rng=args.seed,
                          fit_time_scale={"auto": None, "yes": True,
                                          "no": False}[args.fit_time_scale])
    ds = ", ".join(str(r["d"]) for r in runs)
    print(f"{args.curves}: {len(runs)} curves (d = {ds}), {fit.n_points} points; "
          f"{fit.n_stages} spectral stages")
    print(fit.summary())
    if args.save:
        print(f"wrote {fit.save(args.save)}")
    if args.plot:
        from .plotting import plot_curve_fit

        top = max(r["r"][-1] for r in runs)
        rr = np.unique(np.round(np.logspace(0, math.log10(max(top, 10)), 120)).astype(np.int64))
        preds = [fit.predict(r["d"], rr) for r in runs]
        ax = plot_curve_fit(runs, preds, title=f"alpha = {fit.alpha:.3f}, beta = "
                                               f"{fit.beta:.3f} (phase {fit.phase_label})")
        _save_figure(ax.figure, args.plot, dpi=120)
        print(f"wrote {args.plot}")
    return 0


def _run_fit(args) -> int:
    import numpy as np

    from .curve import loss_curve
    from .fitting import empirical_spectrum, fit_power_laws

    if args.curves is not None:
        return _run_fit_curves(args)
    if args.save:
        raise ValueError("--save: only the curve route (--curves) saves its fit")
    X, y = _load_xy(args.data)
    es = empirical_spectrum(X, y, center=not args.no_center, standardize=args.standardize,
                            trust=args.trust)
    fit = fit_power_laws(X, y, window=args.window, trust=args.trust,
                         center=not args.no_center, standardize=args.standardize,
                         n_boot=args.n_boot, ci=args.ci, rng=args.seed)
    print(f"{args.data}: n = {es.n_samples} samples, v = {es.n_features} features"
          + (f" ({len(es.dropped_columns)} constant dropped)" if es.dropped_columns else "")
          + f", rank {es.rank}, {es.n_trusted} trusted eigenvalues (bias scale <= "
            f"{args.trust:g})")
    print(f"explained variance {es.explained_variance:.4g}, residual variance "
          f"{es.residual_variance:.4g} ({es.residual_variance / es.target_variance:.1%} of "
          "the labels' variance)")
    print(fit.summary())
    if args.plot:
        d = args.d if args.d is not None else max(1, es.n_features // 4)
        sm = es.model(d)
        lr = sm.reference_learning_rate(args.lr_scale)
        r = np.unique(np.round(np.logspace(0, math.log10(args.max_iter), 80)).astype(np.int64))
        curve = loss_curve(sm, np.concatenate([[0], r]), learning_rate=lr)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
        j = np.arange(1, es.rank + 1.0)
        a1.loglog(j, es.eigenvalues, ".", ms=3, label="eigenvalues")
        a1.loglog(j, np.maximum(es.forcing_coefficients, 1e-300), ".", ms=3,
                  label="target mass c_j^2")
        k1, k2 = fit.window
        jj = np.arange(k1, k2 + 1.0)
        a1.loglog(jj, fit.eigenvalue_scale * jj ** (-2 * fit.alpha), "k-",
                  label=f"alpha = {fit.alpha:.3f}")
        t1, t2 = fit.target_window
        jt = np.arange(t1, t2 + 1.0)
        a1.loglog(jt, fit.target_scale * jt ** (-2 * (fit.alpha + fit.beta)), "k--",
                  label=f"beta = {fit.beta:.3f}")
        a1.axvline(es.n_trusted, color="0.6", lw=0.8)
        a1.set_xlabel("j")
        a1.legend(fontsize=8)
        a1.set_title(f"spectrum ({es.n_trusted} trusted)")
        a2.loglog(curve.r[1:], curve.loss[1:], "-")
        a2.set_xlabel("iteration r")
        a2.set_ylabel("predicted loss")
        a2.set_title(f"SGD on SpectralModel.from_data, d = {d}, g = {args.lr_scale:g}")
        fig.tight_layout()
        _save_figure(fig, args.plot, dpi=120)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return 0


# ------------------------------------------------------------------ critical-batch
def _add_critical_batch(sub) -> None:
    p = sub.add_parser(
        "critical-batch", help="critical batch size B_crit(L) from exact curves (Kaplan-style)",
        description="For each batch size B, tune the learning rate over fractions of the "
                    "largest stable rate, read the steps S(B) to each target loss off the "
                    "deterministic curve, fit the hyperbola (S/S_min - 1)(E/E_min - 1) = 1 "
                    "with E = B S and report B_crit = E_min/S_min and its power law in the "
                    "loss (documentation: Theory, Sec. 18; Scaling laws).  Writes "
                    "critical_batch.csv (+ .json), critical_batch.json and figures into --out.")
    p.add_argument("--alpha", type=_finite_float, required=True, help="data exponent alpha")
    p.add_argument("--beta", type=_finite_float, required=True, help="target exponent beta")
    p.add_argument("--d", type=_positive_int, required=True, help="model size d")
    p.add_argument("--v", type=_positive_int, default=None, help="hidden dimension v > d "
                   "(default 10 d)")
    p.add_argument("--targets", type=_positive_float, nargs="+", required=True,
                   help="target losses L (below the initial loss, above the limit loss)")
    p.add_argument("--batch-sizes", type=_positive_int, nargs="+", default=None,
                   help="batch sizes, at least 3 (default 1 2 4 ... 1024)")
    p.add_argument("--lr-fractions", type=_unit_interval, nargs="+", default=None,
                   help="learning rates as fractions in (0, 1) of the largest stable rate "
                        "(default 0.05 0.1 0.2 ... 0.9 0.95)")
    p.add_argument("--max-steps", type=_positive_float, default=1e10,
                   help="horizon of each curve (default 1e10)")
    p.add_argument("--no-plots", action="store_true", help="do not write figures")
    p.add_argument("--out", required=True, type=_output_dir,
                   help="output directory (created if missing)")
    p.set_defaults(run=_run_critical_batch)


def _run_critical_batch(args) -> int:
    from pathlib import Path

    import numpy as np

    from .critical_batch import critical_batch_size
    from .io import _atomic_write, _csv_with_sidecar, _format_meta, _json_bytes
    from .model import PLRF

    model = PLRF(alpha=args.alpha, beta=args.beta, v=10 * args.d if args.v is None else args.v,
                 d=args.d)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        res = critical_batch_size(model, args.targets, batch_sizes=args.batch_sizes,
                                  lr_fractions=args.lr_fractions, max_steps=args.max_steps)
    except ValueError as exc:  # name the options, not the Python parameters
        text = str(exc)
        for name, opt in (("target_losses", "--targets"), ("lr_fractions", "--lr-fractions"),
                          ("max_steps", "--max-steps"), ("batch_sizes", "--batch-sizes")):
            text = text.replace(name, opt)
        raise ValueError(text) from None
    nt, nb = res.steps.shape
    csv = out / "critical_batch.csv"
    side = {"kind": "CriticalBatchTable", **_format_meta(),
            "description": "steps S and examples E = B S to each target loss at each batch "
                           "size, with the tuned learning rate",
            "units": {"target_loss": "L", "batch_size": "B", "steps": "S(B), real-valued",
                      "examples": "E = B S", "learning_rate": "tuned gamma"},
            "model": {"alpha": model.alpha, "beta": model.beta, "v": model.v, "d": model.d},
            "summary": "critical_batch.json"}
    files = _csv_with_sidecar(str(csv), {
        "target_loss": np.repeat(res.target_losses, nb),
        "batch_size": np.tile(res.batch_sizes, nt),
        "steps": res.steps.ravel(), "examples": res.examples.ravel(),
        "learning_rate": res.learning_rates.ravel()}, side)
    files[str(out / "critical_batch.json")] = _json_bytes(
        {**_format_meta(), "model": side["model"], **res.summary()}, indent=1)
    _atomic_write(files)
    print(f"PLRF alpha={model.alpha:g}, beta={model.beta:g}, v={model.v}, d={model.d}: "
          f"{nb} batch sizes {res.batch_sizes[0]}..{res.batch_sizes[-1]}, "
          f"{res.lr_fractions.size} learning rates per batch size")
    print(f"{'L':>10} {'S_min':>11} {'E_min':>11} {'B_crit':>8} {'hyperbola rms':>14}")
    for i in range(nt):
        print(f"{res.target_losses[i]:>10.4g} {res.min_steps[i]:>11.5g} "
              f"{res.min_examples[i]:>11.5g} {res.critical_batch_size[i]:>8.4g} "
              f"{res.hyperbola_residual[i]:>14.3g}")
    if math.isfinite(res.exponent):
        lo, hi = res.exponent_ci
        print(f"B_crit ~ L^-b: b = {res.exponent:.4f}  95% [{lo:.4f}, {hi:.4f}]")
    print(f"time {res.seconds:.1f} s; wrote {csv}, {csv}.json, {out / 'critical_batch.json'}")
    if not args.no_plots:
        from .plotting import plot_critical_batch, plot_critical_batch_size

        for name, fn in (("critical_batch", plot_critical_batch),
                         ("critical_batch_size", plot_critical_batch_size)):
            ax = fn(res)
            ax.set_title(f"PLRF α={model.alpha:g}, β={model.beta:g}, d={model.d}")
            for ext in ("png", "pdf"):
                _save_figure(ax.figure, out / f"{name}.{ext}", dpi=130)
        print(f"wrote figures critical_batch, critical_batch_size (.png, .pdf) in {out}")
    return 0


_SUBCOMMANDS = [_add_demo, _add_curve, _add_phases, _add_ridge, _add_validate,
                _add_compute_optimal, _add_fit, _add_critical_batch]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``volterra-sgd`` command."""
    from . import __version__

    parser = _Parser(prog="volterra-sgd",
                     description="Deterministic loss curves of one-pass SGD on power-law "
                     "random features, phases, ridge and compute-optimal scaling.  Run "
                     "'volterra-sgd SUBCOMMAND --help' for the options of a subcommand "
                     "(also 'python -m volterra_sgd').")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Bad input is reported as a single line on stderr with exit status 2, before any
    computation when the arguments show it: argument errors, library errors caused by the
    input (``ValueError``, ``TypeError``), file errors (``OSError``), a missing optional
    dependency (``ImportError``) and an output pipe closed by its reader
    (``BrokenPipeError``).  Without arguments the usage is printed.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success (and for ``--help``), 2 on bad input (also for the
        argument errors that argparse reports), 1 when ``validate`` finds a failed check.

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
    as_command = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a parse error (status 2, message printed), --help or --version
        return exc.code if isinstance(exc.code, int) else 0
    try:
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        if as_command:  # silence the final flush at exit (not in a caller's process)
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):  # stdout without a descriptor
                pass
        print(f"volterra-sgd {args.command}: error: output pipe closed before the end "
              "(broken pipe)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"volterra-sgd {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError) as exc:  # ImportError: a missing extra
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"volterra-sgd {args.command}: error: {text}", file=sys.stderr)
        return 2
    except VolterraSGDError as exc:  # numerical failure (e.g. ConvergenceError): status 1
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"volterra-sgd {args.command}: error: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
