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
