"""Helpers shared by the validation scripts (not a script itself: the name starts with _)."""

from __future__ import annotations

import numpy as np


def ratio_check(ratio, rel_se, bias, k=3.0, mask=None):
    """Statistical comparison of ``ratio`` (prediction / Monte-Carlo mean) with 1.

    The tolerance at each point is ``bias + k * rel_se`` (a stated allowance for known
    finite-size or discretisation effects plus ``k`` relative standard errors of the mean).
    Returns the point where ``|ratio - 1| - tolerance`` is largest: its index, ``value``
    ``|ratio - 1|``, ``tolerance``, ``passed``, and the overall worst ``|ratio - 1|``.
    """
    ratio = np.atleast_1d(np.asarray(ratio, dtype=float))
    rel_se = np.broadcast_to(np.asarray(rel_se, dtype=float), ratio.shape)
    sel = np.ones(ratio.shape, bool) if mask is None else np.asarray(mask, bool)
    sel = sel & np.isfinite(ratio)
    idx = np.flatnonzero(sel)
    if idx.size == 0:
        return {"index": None, "value": float("nan"), "tolerance": float(bias),
                "passed": False, "worst": float("nan")}
    dev = np.abs(ratio[idx] - 1.0)
    tol = bias + k * np.where(np.isfinite(rel_se[idx]), rel_se[idx], 0.0)
    j = int(np.argmax(dev - tol))
    return {"index": int(idx[j]), "value": float(dev[j]), "tolerance": float(tol[j]),
            "passed": bool(dev[j] <= tol[j]), "worst": float(dev.max())}


def markdown_table(header, rows):
    """A markdown table from a header list and rows of already formatted cells."""
    esc = [[str(c).replace("|", "\\|") for c in row] for row in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines)


def protocol_main(doc, run, out, argv=None):
    """Command-line entry point of a validation script that follows the ``validate`` protocol.

    Parses ``--quick`` and ``--out`` (default ``out``), calls ``run(out, quick=...)`` and prints
    its tables, one PASS/FAIL line per comparison (with its detail, else its tolerance) and the
    wall time.

    Parameters
    ----------
    doc : str
        The script's module docstring (its first line describes the command).
    run : callable
        ``run(out, quick=False) -> dict`` with "tables", "comparisons" and "seconds".
    out : str
        Default output folder.
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        The result of ``run``.
    """
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=out)
    args = ap.parse_args(argv)
    res = run(args.out, quick=args.quick)
    for t in res["tables"]:
        print(t, "\n")
    for c in res["comparisons"]:
        print(("PASS " if c["passed"] else "FAIL ") + c["name"], f"{c['value']:.4g}",
              c.get("detail", f"(tolerance {c['tolerance']:.4g})"))
    print(f"{res['seconds']:.1f} s")
    return res
