"""Saving and loading results: NPZ with JSON metadata, or CSV with a JSON sidecar.

NPZ archives hold the arrays plus a ``meta`` entry with a JSON string (package version,
model, parameters, solver options), so ``numpy.load(path, allow_pickle=False)`` works.
CSV files hold one column per array; ``PATH.json`` next to them holds the metadata.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict

import numpy as np

__all__ = ["save_curve", "load_curve"]

_ARRAYS = ("r", "loss", "forcing", "kernel", "loss_error")
_PARTS = ("Fo", "Fpp", "Fac", "Kpp", "Kac")


def _meta(curve) -> dict:
    from . import __version__

    m = curve.model
    return {
        "kind": "LossCurve", "version": __version__,
        "model": {"alpha": m.alpha, "beta": m.beta, "v": "inf" if not m.finite else int(m.v),
                  "d": m.d},
        "learning_rate": curve.learning_rate, "batch_size": curve.batch_size,
        "kernel_norm": curve.kernel_norm, "limit_loss": curve.limit_loss,
        "info": asdict(curve.info), "options": dict(curve.options),
    }


def save_curve(curve, path: str | os.PathLike) -> str:
    """Save a :class:`~volterra_sgd.curve.LossCurve` to ``.npz`` or ``.csv`` (+ ``.json``).

    Parameters
    ----------
    curve : LossCurve
        The curve.
    path : str or os.PathLike
        File name ending in ``.npz`` or ``.csv``.

    Returns
    -------
    str
        The path written.

    Examples
    --------
    >>> import os, tempfile, volterra_sgd as vs
    >>> model = vs.PLRF(1.0, 0.7, 2000, 200)
    >>> c = vs.loss_curve(model, [0, 10, 100], learning_rate=model.reference_learning_rate(0.5))
    >>> path = vs.save_curve(c, os.path.join(tempfile.mkdtemp(), "c.npz"))
    >>> bool((vs.load_curve(path).loss == c.loss).all())
    True
    """
    path = os.fspath(path)
    meta = _meta(curve)
    cols = {k: np.asarray(getattr(curve, k)) for k in _ARRAYS}
    cols.update({k: np.asarray(curve.parts[k]) for k in _PARTS})
    if path.endswith(".npz"):
        np.savez(path, meta=np.array(json.dumps(meta)), **cols)
    elif path.endswith(".csv"):
        header = ",".join(cols)
        data = np.column_stack([cols[k].astype(np.float64) for k in cols])
        np.savetxt(path, data, delimiter=",", header=header, comments="", fmt="%.17g")
        with open(path + ".json", "w") as fh:
            json.dump(meta, fh, indent=1)
    else:
        raise ValueError(f"path must end in .npz or .csv; got {path!r}")
    return path


def load_curve(path: str | os.PathLike):
    """Load a curve written by :func:`save_curve` (``.npz``, or ``.csv`` with its ``.json``).

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    LossCurve
        The curve, with the model rebuilt from the metadata.
    """
    import math

    from .curve import LossCurve, SolverInfo
    from .model import PLRF

    path = os.fspath(path)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            cols = {k: z[k] for k in z.files if k != "meta"}
    elif path.endswith(".csv"):
        with open(path + ".json") as fh:
            meta = json.load(fh)
        data = np.genfromtxt(path, delimiter=",", names=True)
        cols = {k: np.asarray(data[k], dtype=np.float64) for k in data.dtype.names}
    else:
        raise ValueError(f"path must end in .npz or .csv; got {path!r}")
    if meta.get("kind") != "LossCurve":
        raise ValueError(f"{path!r} does not hold a LossCurve")
    mm = meta["model"]
    v = math.inf if mm["v"] == "inf" else int(mm["v"])
    model = PLRF(alpha=mm["alpha"], beta=mm["beta"], v=v, d=int(mm["d"]))
    return LossCurve(
        r=np.asarray(cols["r"]).astype(np.int64), loss=cols["loss"], forcing=cols["forcing"],
        kernel=cols["kernel"], parts={k: cols[k] for k in _PARTS}, loss_error=cols["loss_error"],
        kernel_norm=meta["kernel_norm"], limit_loss=meta["limit_loss"], model=model,
        learning_rate=meta["learning_rate"], batch_size=meta["batch_size"],
        info=SolverInfo(**meta["info"]), options=meta["options"],
    )
