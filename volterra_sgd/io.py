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

__all__ = ["save_curve", "load_curve", "load_spectrum"]

_ARRAYS = ("r", "loss", "forcing", "kernel", "loss_error")
_PARTS = ("Fo", "Fpp", "Fac", "Kpp", "Kac")


def _model_meta(m, model_metadata) -> dict:
    """Model description; a SpectralModel also stores its (head) eigenvalues and targets."""
    out = model_metadata(m)
    if out.get("kind") == "SpectralModel":
        out["eigenvalues"] = [float(x) for x in m.head_eigenvalues]
        out["target"] = [float(x) for x in m.head_target]
    return out


def _model_from_meta(mm: dict):
    """Rebuild the model of :func:`_model_meta` (a SpectralModel is checked by its SHA-256)."""
    import math

    from .model import PLRF, SpectralModel

    v = math.inf if mm["v"] == "inf" else int(mm["v"])
    if mm.get("kind") != "SpectralModel":
        return PLRF(alpha=mm["alpha"], beta=mm["beta"], v=v, d=int(mm["d"]))
    lam = np.array(mm["eigenvalues"], dtype=np.float64)
    b = np.array(mm["target"], dtype=np.float64)
    if math.isinf(v):  # the head is all the model uses of its callables
        model = SpectralModel(lambda j: lam[np.asarray(j, dtype=np.int64) - 1],
                              lambda j: b[np.asarray(j, dtype=np.int64) - 1], int(mm["d"]),
                              tail_power=mm["tail_power"],
                              target_tail_power=mm["target_tail_power"],
                              n_explicit=int(mm["n_explicit"]))
    else:
        model = SpectralModel(lam, b, int(mm["d"]))
    if model.key != mm["sha256"]:
        raise ValueError("the stored SpectralModel does not reproduce its SHA-256")
    return model


def _meta(curve) -> dict:
    from . import __version__
    from .model import model_metadata

    return {
        "kind": "LossCurve", "version": __version__,
        "model": _model_meta(curve.model, model_metadata),
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

    Examples
    --------
    >>> import os, tempfile, numpy as np, volterra_sgd as vs
    >>> model = vs.PLRF(1.0, 0.7, 2000, 200)
    >>> c = vs.loss_curve(model, [0, 10, 100], learning_rate=model.reference_learning_rate(0.5))
    >>> path = vs.save_curve(c, os.path.join(tempfile.mkdtemp(), "c.csv"))
    >>> back = vs.load_curve(path)
    >>> back.model == model, bool(np.allclose(back.loss, c.loss, rtol=1e-15))
    (True, True)
    """
    from .curve import LossCurve, SolverInfo

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
    model = _model_from_meta(meta["model"])
    return LossCurve(
        r=np.asarray(cols["r"]).astype(np.int64), loss=cols["loss"], forcing=cols["forcing"],
        kernel=cols["kernel"], parts={k: cols[k] for k in _PARTS}, loss_error=cols["loss_error"],
        kernel_norm=meta["kernel_norm"], limit_loss=meta["limit_loss"], model=model,
        learning_rate=meta["learning_rate"], batch_size=meta["batch_size"],
        info=SolverInfo(**meta["info"]), options=meta["options"],
    )


def load_spectrum(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    r"""Read data eigenvalues and target coefficients from a CSV or NPZ file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz`` with arrays ``eigenvalues`` and ``target``; or a text file (``.csv``, or any
        other suffix) with two columns :math:`\lambda_j, b_j`, separated by commas or
        whitespace, one row per ``j``, with an optional header line (``#`` comments allowed).

    Returns
    -------
    (ndarray, ndarray)
        The eigenvalues and the targets (not yet validated: pass them to
        :class:`~volterra_sgd.SpectralModel`, which checks them).

    Raises
    ------
    ValueError
        If the file lacks the arrays, the columns are not two, or a value is not a number.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from volterra_sgd.io import load_spectrum
    >>> path = os.path.join(tempfile.mkdtemp(), "s.csv")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("eigenvalue,target\n1.0,1.0\n0.25,0.5\n")
    >>> load_spectrum(path)
    (array([1.  , 0.25]), array([1. , 0.5]))
    """
    path = os.fspath(path)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("eigenvalues", "target") if k not in z.files]
            if missing:
                raise ValueError(f"{path!r} must hold arrays 'eigenvalues' and 'target'; "
                                 f"missing {missing}")
            return (np.asarray(z["eigenvalues"], dtype=np.float64).ravel(),
                    np.asarray(z["target"], dtype=np.float64).ravel())
    rows = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            fields = [f for f in text.replace(",", " ").split() if f]
            try:
                vals = [float(f) for f in fields]
            except ValueError:
                if not rows:  # a header line
                    continue
                raise ValueError(f"{path!r} line {lineno}: not a number: {text!r}") from None
            if len(vals) != 2:
                raise ValueError(f"{path!r} line {lineno}: expected two columns "
                                 f"(eigenvalue, target); got {len(vals)}")
            rows.append(vals)
    if not rows:
        raise ValueError(f"{path!r} holds no data rows")
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0].copy(), arr[:, 1].copy()
