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


_SUBCOMMANDS = [_add_demo]


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
