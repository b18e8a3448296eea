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
    p.add_argument("--runs", type=int, default=200, help="simulated SGD runs (default %(default)s)")
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
                    "eta (P* ~ f^-eta) and the dominant terms (THEORY.md section 5).")
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
        print("The 4+3 phases of compute-optimal scaling (THEORY.md 5.3; exponents [derived]).")
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


_SUBCOMMANDS = [_add_demo, _add_phases]


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
