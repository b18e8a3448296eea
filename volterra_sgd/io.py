"""Saving and loading results: NPZ with JSON metadata, or CSV with a JSON sidecar.

NPZ archives hold the arrays plus a ``meta`` entry with a JSON string (file format version,
package version, model, parameters, solver options), so ``numpy.load(path,
allow_pickle=False)`` works.  CSV files hold one column per array; ``PATH.json`` next to
``PATH`` (``curve.csv.json`` for ``curve.csv``) holds the metadata, the column names, the
number of rows and the SHA-256 of the CSV.

Every file is written atomically: to a temporary file in the same folder, flushed and
``fsync``-ed, then moved over the target with :func:`os.replace`, so an interrupted write
(even ``SIGKILL``) leaves the previous file intact.  Loading checks the format version (a
newer major version is refused), the field types, the array shapes, dtypes and finiteness and
the iterations; a corrupt file raises a ``ValueError`` naming the file and the field.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import MISSING, asdict, fields, is_dataclass

import numpy as np

__all__ = ["save_curve", "load_curve", "load_spectrum"]

_ARRAYS = ("r", "loss", "forcing", "kernel", "loss_error")
_PARTS = ("Fo", "Fpp", "Fac", "Kpp", "Kac")
#: Version of the file layout (major, minor): a reader accepts every minor version of its
#: major version; files without the key predate it and have the layout of 1.0.
FORMAT_VERSION = (1, 0)


# ============================================================================ writing
def _atomic_write(files: dict) -> None:
    """Write ``{path: bytes}`` atomically: temporary files in the same folders, then replace.

    Every temporary file is written, flushed and ``fsync``-ed before the first
    :func:`os.replace`, so a pair (CSV + sidecar) is replaced within microseconds of each
    other; on any error the temporary files are removed and the targets are untouched.
    """
    staged = []
    try:
        for path, data in files.items():
            path = os.fspath(path)
            folder = os.path.dirname(os.path.abspath(path))
            tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for folder in {os.path.dirname(os.path.abspath(p)) for _, p in staged}:
        with contextlib.suppress(OSError, AttributeError):  # make the renames durable (POSIX)
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def _save_figure(fig, path, **kwargs) -> None:
    """Write a matplotlib figure atomically; the format comes from the suffix of ``path``."""
    buf = io.BytesIO()
    fig.savefig(buf, format=os.path.splitext(os.fspath(path))[1][1:].lower(), **kwargs)
    _atomic_write({path: buf.getvalue()})


def _json_safe(obj):
    """``obj`` with NumPy scalars as Python numbers and non-finite floats as None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(x) for x in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _json_bytes(obj, indent=None) -> bytes:
    """Strict JSON (no bare NaN/Infinity) of ``obj`` as UTF-8 bytes."""
    return json.dumps(_json_safe(obj), indent=indent, allow_nan=False).encode("utf-8")


def _npz_bytes(meta: dict, arrays: dict) -> bytes:
    """Return an uncompressed NPZ archive of ``arrays`` plus ``meta`` (a JSON string) as bytes."""
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta, allow_nan=False)), **arrays)
    return buf.getvalue()


def _format_meta() -> dict:
    from . import __version__

    return {"format_version": "{}.{}".format(*FORMAT_VERSION), "version": __version__}


def _csv_with_sidecar(path: str, columns: dict, meta: dict) -> dict:
    """``{path: csv_bytes, path + ".json": sidecar_bytes}`` for :func:`_atomic_write`.

    The sidecar is ``meta`` plus ``columns`` (names, or a dict of names to descriptions),
    ``rows`` and ``csv_sha256``.
    """
    names = list(columns)
    data = np.column_stack([np.asarray(columns[k], dtype=np.float64) for k in names])
    buf = io.BytesIO()
    np.savetxt(buf, data.reshape(-1, len(names)), delimiter=",", header=",".join(names),
               comments="", fmt="%.17g")
    text = buf.getvalue()
    side = dict(meta)
    side.setdefault("columns", names)
    side["rows"] = int(data.shape[0])
    side["csv_sha256"] = hashlib.sha256(text).hexdigest()
    return {path: text, path + ".json": _json_bytes(side, indent=1)}


# ======================================================================= validation
class _Reader:
    """Checks of a file being loaded; every failure is a ValueError naming file and field."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, field: str, why: str):
        raise ValueError(f"cannot load {self.path!r}: field {field!r}: {why}")

    # ----------------------------------------------------------------- containers
    def npz(self) -> tuple[dict, dict]:
        """``(meta, arrays)`` of an NPZ archive with a JSON ``meta`` entry."""
        with open(self.path, "rb") as fh:  # a missing file stays FileNotFoundError
            arrays, key = {}, None
            try:  # BadZipFile, EOFError, zlib.error, pickled or truncated arrays, ...
                with np.load(fh, allow_pickle=False) as z:
                    if not hasattr(z, "files"):
                        raise ValueError("a single .npy array, not an archive")
                    for key in z.files:
                        arrays[key] = z[key]
            except Exception as exc:
                where = f"field {key!r}: unreadable" if key is not None else \
                    "not a valid .npz archive"
                raise ValueError(f"cannot load {self.path!r}: {where} "
                                 f"({type(exc).__name__}: {exc})") from None
        if "meta" not in arrays:
            self.fail("meta", "missing (not written by volterra_sgd)")
        m = arrays.pop("meta")
        if m.shape != () or m.dtype.kind != "U":
            self.fail("meta", f"must be a JSON string; got dtype {m.dtype}, shape {m.shape}")
        return self.json_text(str(m), "meta"), arrays

    def json_file(self, path: str, field: str) -> dict:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            self.fail(field, f"the sidecar {path!r} is missing")
        try:
            return self.json_text(raw.decode("utf-8"), field)
        except UnicodeDecodeError as exc:
            self.fail(field, f"{path!r} is not UTF-8 text ({exc})")

    def json_text(self, text: str, field: str) -> dict:
        try:
            meta = json.loads(text)
        except ValueError as exc:
            self.fail(field, f"not valid JSON ({exc})")
        if not isinstance(meta, dict):
            self.fail(field, f"must be a JSON object; got {type(meta).__name__}")
        return meta

    # ---------------------------------------------------------------------- fields
    def version(self, meta: dict, kind: str) -> None:
        """Check ``kind`` and the format version (a newer major version is refused)."""
        self.string(meta, "kind")
        if meta["kind"] != kind:
            self.fail("kind", f"expected {kind!r}; got {meta['kind']!r}")
        fv = meta.get("format_version", "1.0")
        parts = fv.split(".") if isinstance(fv, str) else []
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            self.fail("format_version", f"must be a string 'MAJOR.MINOR'; got {fv!r}")
        if int(parts[0]) > FORMAT_VERSION[0]:
            self.fail("format_version", f"file format {fv} is newer than this volterra_sgd "
                      f"reads ({FORMAT_VERSION[0]}.x); upgrade volterra_sgd")
        if int(parts[0]) < FORMAT_VERSION[0]:
            self.fail("format_version", f"file format {fv} is no longer supported")
        self.string(meta, "version")

    def get(self, meta: dict, key: str, field: str | None = None):
        if not isinstance(meta, dict) or key not in meta:
            self.fail(field or key, "missing")
        return meta[key]

    def string(self, meta, key, field=None) -> str:
        x = self.get(meta, key, field)
        if not isinstance(x, str):
            self.fail(field or key, f"must be a string; got {x!r}")
        return x

    def boolean(self, meta, key, field=None) -> bool:
        x = self.get(meta, key, field)
        if not isinstance(x, bool):
            self.fail(field or key, f"must be true or false; got {x!r}")
        return x

    def integer(self, meta, key, field=None, *, minimum=None) -> int:
        x = self.get(meta, key, field)
        if isinstance(x, bool) or not isinstance(x, int):
            self.fail(field or key, f"must be an integer; got {x!r}")
        if minimum is not None and x < minimum:
            self.fail(field or key, f"must be >= {minimum}; got {x}")
        return x

    def real(self, meta, key, field=None, *, lower=None, upper=None, nan_ok=False) -> float:
        x = self.get(meta, key, field)
        if x is None and nan_ok:
            return math.nan
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            self.fail(field or key, f"must be a number; got {x!r}")
        x = float(x)
        if not math.isfinite(x) and not (nan_ok and math.isnan(x)):
            self.fail(field or key, f"must be finite; got {x!r}")
        if (lower is not None and x < lower) or (upper is not None and x > upper):
            self.fail(field or key, f"must be in [{lower}, {upper}]; got {x!r}")
        return x

    def mapping(self, meta, key, field=None) -> dict:
        x = self.get(meta, key, field)
        if not isinstance(x, dict):
            self.fail(field or key, f"must be a JSON object; got {x!r}")
        return x

    def array(self, arr, field: str, *, kind: str = "f", ndim: int = 1, size=None,
              finite: bool = True) -> np.ndarray:
        """Check dtype kind (``"f"`` float64, ``"i"`` int64, ``"b"`` bool), shape, finiteness."""
        if not isinstance(arr, np.ndarray):
            self.fail(field, "missing")
        want = {"f": np.float64, "i": np.int64, "b": np.bool_}[kind]
        if arr.dtype != want:
            self.fail(field, f"must have dtype {np.dtype(want)}; got {arr.dtype}")
        if arr.ndim != ndim:
            self.fail(field, f"must be {ndim}-dimensional; got shape {arr.shape}")
        if size is not None and arr.shape[0] != size:
            self.fail(field, f"must have {size} entries (as 'r'); got {arr.shape[0]}")
        if finite and kind == "f" and not np.all(np.isfinite(arr)):
            i = int(np.flatnonzero(~np.isfinite(arr.ravel()))[0])
            self.fail(field, f"must be finite; got {arr.ravel()[i]!r} at index {i}")
        return arr

    def iterations(self, arr, field: str = "r") -> np.ndarray:
        """Check iterations (finite, integral, non-negative, sorted); return them as int64."""
        if not isinstance(arr, np.ndarray):
            self.fail(field, "missing")
        if arr.dtype.kind == "f":
            self.array(arr, field)
            if not np.all(arr == np.round(arr)) or np.any(np.abs(arr) > 2.0**62):
                self.fail(field, "must hold whole numbers")
            arr = arr.astype(np.int64)
        self.array(arr, field, kind="i")
        if arr.size and arr.min() < 0:
            self.fail(field, f"must be >= 0; got {arr.min()}")
        if np.any(np.diff(arr) < 0):
            i = int(np.flatnonzero(np.diff(arr) < 0)[0])
            self.fail(field, f"must be sorted; got {field}[{i + 1}] = {arr[i + 1]} < "
                      f"{field}[{i}] = {arr[i]}")
        return arr

    # ------------------------------------------------------------------------ CSV
    def csv(self, side: dict) -> dict:
        """Columns of a CSV file described by its sidecar ``side`` (names, rows, SHA-256)."""
        names = self.get(side, "columns", "columns")
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            self.fail("columns", f"must be a list of column names; got {names!r}")
        rows = self.integer(side, "rows", minimum=0) if "rows" in side else None
        with open(self.path, "rb") as fh:
            raw = fh.read()
        if "csv_sha256" in side:
            self.string(side, "csv_sha256")
            if hashlib.sha256(raw).hexdigest() != side["csv_sha256"]:
                self.fail("csv_sha256", "the CSV does not match the SHA-256 in its sidecar "
                          "(modified or truncated file)")
        try:
            lines = raw.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            self.fail("header", f"not UTF-8 text ({exc})")
        if not lines or lines[0].strip().split(",") != names:
            self.fail("header", f"expected {','.join(names)!r}; got "
                      f"{(lines[0] if lines else '')[:80]!r}")
        body = [ln for ln in lines[1:] if ln.strip()]
        if rows is not None and len(body) != rows:
            self.fail("rows", f"the sidecar says {rows} rows; the CSV has {len(body)}")
        cells = [line.split(",") for line in body]
        try:  # fast path; on failure the loop below finds the bad cell
            data = np.array(cells, dtype=np.float64).reshape(len(body), len(names))
        except ValueError:
            for i, fields in enumerate(cells):
                if len(fields) != len(names):
                    self.fail(f"line {i + 2}", f"expected {len(names)} columns; got "
                              f"{len(fields)}")
                for j, text in enumerate(fields):
                    try:
                        float(text)
                    except ValueError:
                        self.fail(names[j], f"line {i + 2}: not a number: {text!r}")
            self.fail("rows", "not a table of numbers")
        return {k: data[:, j].copy() for j, k in enumerate(names)}


# ===================================================================== result trees
def _save_packed(obj, path) -> str:
    """Write the dataclass tree of ``obj`` (:func:`_pack`) atomically to an ``.npz`` file.

    The archive's ``meta`` holds ``kind`` (the class name), the format version and the JSON
    tree; arrays are stored under path-like keys; no pickles.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"path must end in .npz; got {path!r}")
    arrays = {}
    meta = {"kind": type(obj).__name__, **_format_meta(), "result": _pack(obj, "", arrays)}
    _atomic_write({path: _npz_bytes(meta, arrays)})
    return path


def _load_packed(path, kind: str, classes: dict):
    """Read a file of :func:`_save_packed` of class ``kind``: ``(result, reader)``.

    Only the dataclasses named in ``classes`` are rebuilt; the reader's checks name the file
    and the field on error.
    """
    rd = _Reader(os.fspath(path))
    meta, arrays = rd.npz()
    rd.version(meta, kind)
    return _unpack(rd.mapping(meta, "result"), arrays, rd, classes), rd


def _pack(obj, prefix, arrays):
    """JSON tree of a (nested) result; arrays go to ``arrays`` under path-like keys."""
    if is_dataclass(obj):
        return {"__dataclass__": type(obj).__name__,
                **{f.name: _pack(getattr(obj, f.name), f"{prefix}{f.name}.", arrays)
                   for f in fields(obj)}}
    if isinstance(obj, np.ndarray):
        key = prefix.rstrip(".") or "array"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(x, f"{prefix}{i}.", arrays) for i, x in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(x, f"{prefix}{i}.", arrays) for i, x in enumerate(obj)]
    if isinstance(obj, Mapping):  # dict, or a read-only view (loaded as a dict)
        return {str(k): _pack(v, f"{prefix}{k}.", arrays) for k, v in obj.items()}
    if isinstance(obj, (np.floating, float)):
        x = float(obj)  # strict JSON: NaN and infinities as tagged strings
        return x if math.isfinite(x) else {"__float__": repr(x)}
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    return obj


def _unpack(tree, arrays, rd, classes, where="result"):
    """Inverse of :func:`_pack`; ``rd`` (a :class:`_Reader`) names the file and field on error.

    ``classes`` maps the dataclass names allowed in the file to their classes.
    """
    if isinstance(tree, dict):
        if "__array__" in tree:
            key = tree["__array__"]
            if not isinstance(key, str) or key not in arrays:
                rd.fail(where, f"the array {key!r} is missing from the archive")
            return arrays[key]
        if "__float__" in tree:
            if tree["__float__"] not in ("nan", "inf", "-inf"):
                rd.fail(where, f"not a number: {tree['__float__']!r}")
            return float(tree["__float__"])
        if "__tuple__" in tree:
            if not isinstance(tree["__tuple__"], list):
                rd.fail(where, "must be a list")
            return tuple(_unpack(x, arrays, rd, classes, f"{where}.{i}")
                         for i, x in enumerate(tree["__tuple__"]))
        if "__dataclass__" in tree:
            cls = classes.get(tree["__dataclass__"])
            if cls is None:
                rd.fail(where, f"unknown class {tree['__dataclass__']!r}")
            kw = {k: _unpack(v, arrays, rd, classes, f"{where}.{k}") for k, v in tree.items()
                  if k != "__dataclass__"}
            names = {f.name for f in fields(cls)}
            required = {f.name for f in fields(cls) if f.default is f.default_factory is MISSING}
            if set(kw) - names or required - set(kw):
                rd.fail(where, f"{cls.__name__} fields: missing {sorted(required - set(kw))}, "
                        f"unknown {sorted(set(kw) - names)}")
            return cls(**kw)
        return {k: _unpack(v, arrays, rd, classes, f"{where}.{k}") for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unpack(x, arrays, rd, classes, f"{where}.{i}") for i, x in enumerate(tree)]
    return tree


# ============================================================================== curves
def _model_meta(m, model_metadata) -> dict:
    """Model description; a SpectralModel also stores its (head) eigenvalues and targets."""
    out = model_metadata(m)
    if out.get("kind") == "SpectralModel":
        out["eigenvalues"] = [float(x) for x in m.head_eigenvalues]
        out["target"] = [float(x) for x in m.head_target]
    return out


def _model_from_meta(mm: dict, rd: _Reader | None = None):
    """Rebuild the model of :func:`_model_meta` (a SpectralModel is checked by its SHA-256)."""
    from .model import PLRF, SpectralModel

    rd = rd or _Reader("<metadata>")
    v = mm.get("v") if isinstance(mm, dict) else None
    if v == "inf":
        v = math.inf
    else:
        v = rd.integer(mm, "v", "model.v", minimum=1)
    d = rd.integer(mm, "d", "model.d", minimum=1)
    s2 = (rd.real(mm, "noise_variance", "model.noise_variance", lower=0.0)
          if isinstance(mm, dict) and "noise_variance" in mm else 0.0)  # label noise, Eq. (9.1)
    try:
        if mm.get("kind") != "SpectralModel":
            return PLRF(alpha=rd.real(mm, "alpha", "model.alpha"),
                        beta=rd.real(mm, "beta", "model.beta"), v=v, d=d, noise_variance=s2)
        lam = np.array(rd.get(mm, "eigenvalues", "model.eigenvalues"), dtype=np.float64)
        b = np.array(rd.get(mm, "target", "model.target"), dtype=np.float64)
        if math.isinf(v):  # the head is all the model uses of its callables
            model = SpectralModel(
                lambda j: lam[np.asarray(j, dtype=np.int64) - 1],
                lambda j: b[np.asarray(j, dtype=np.int64) - 1], d,
                tail_power=rd.real(mm, "tail_power", "model.tail_power"),
                target_tail_power=rd.real(mm, "target_tail_power", "model.target_tail_power"),
                n_explicit=rd.integer(mm, "n_explicit", "model.n_explicit", minimum=1),
                noise_variance=s2)
        else:
            model = SpectralModel(lam, b, d, noise_variance=s2)
    except (TypeError, ValueError) as exc:
        if str(exc).startswith("cannot load"):
            raise
        rd.fail("model", f"does not describe a valid model ({exc})")
    if model.key != rd.string(mm, "sha256", "model.sha256"):
        rd.fail("model.sha256", "the stored SpectralModel does not reproduce its SHA-256")
    return model


def _meta(curve) -> dict:
    from .model import model_metadata

    return {
        "kind": "LossCurve", **_format_meta(),
        "model": _model_meta(curve.model, model_metadata),
        "learning_rate": curve.learning_rate, "batch_size": curve.batch_size,
        "kernel_norm": curve.kernel_norm, "limit_loss": curve.limit_loss,
        "info": asdict(curve.info), "options": dict(curve.options),
    }


def save_curve(curve, path: str | os.PathLike) -> str:
    """Save a :class:`~volterra_sgd.curve.LossCurve` to ``.npz`` or ``.csv`` (+ ``.csv.json``).

    The file is replaced atomically (temporary file in the same folder, then
    :func:`os.replace`): an interrupted save leaves the previous file intact.

    Parameters
    ----------
    curve : LossCurve
        The curve.
    path : str or os.PathLike
        File name ending in ``.npz`` or ``.csv``; a CSV gets its metadata in the sidecar
        ``path + ".json"``.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        If the suffix is neither ``.npz`` nor ``.csv``.

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
    if not path.endswith((".npz", ".csv")):
        raise ValueError(f"path must end in .npz or .csv; got {path!r}")
    meta = _json_safe(_meta(curve))
    cols = {k: np.asarray(getattr(curve, k)) for k in _ARRAYS}
    cols.update({k: np.asarray(curve.parts[k]) for k in _PARTS})
    if path.endswith(".npz"):
        _atomic_write({path: _npz_bytes(meta, cols)})
    else:
        _atomic_write(_csv_with_sidecar(path, cols, meta))
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

    Raises
    ------
    ValueError
        If the file is corrupt, incomplete or of a newer format: the message names the file
        and the field (format version, metadata types, array dtypes and shapes, non-finite
        values, unsorted or fractional iterations, CSV rows against the sidecar).
    FileNotFoundError
        If the file does not exist.

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
    rd = _Reader(path)
    if path.endswith(".npz"):
        meta, cols = rd.npz()
    elif path.endswith(".csv"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file: {path!r}")
        meta = rd.json_file(path + ".json", "sidecar")
        rd.version(meta, "LossCurve")  # before reading columns a newer format may change
        if "format_version" not in meta:  # written before sidecars described their columns
            meta["columns"] = [*_ARRAYS, *_PARTS]
        cols = rd.csv(meta)
    else:
        raise ValueError(f"path must end in .npz or .csv; got {path!r}")
    rd.version(meta, "LossCurve")
    r = rd.iterations(cols.get("r"))
    arrays = {k: rd.array(cols.get(k), k, size=r.size) for k in (*_ARRAYS[1:], *_PARTS)}
    info = rd.mapping(meta, "info")
    info = SolverInfo(
        success=rd.boolean(info, "success", "info.success"),
        status=rd.integer(info, "status", "info.status"),
        message=rd.string(info, "message", "info.message"),
        error_estimate=rd.real(info, "error_estimate", "info.error_estimate", nan_ok=True),
        n_modes=rd.integer(info, "n_modes", "info.n_modes", minimum=0) if "n_modes" in info
        else 0)
    return LossCurve(
        r=r, loss=arrays["loss"], forcing=arrays["forcing"], kernel=arrays["kernel"],
        parts={k: arrays[k] for k in _PARTS}, loss_error=arrays["loss_error"],
        kernel_norm=rd.real(meta, "kernel_norm", lower=0.0, upper=1.0),
        limit_loss=rd.real(meta, "limit_loss", lower=0.0),
        model=_model_from_meta(rd.mapping(meta, "model"), rd),
        learning_rate=rd.real(meta, "learning_rate", lower=0.0),
        batch_size=rd.integer(meta, "batch_size", minimum=1), info=info,
        options=rd.mapping(meta, "options"))


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
        If the file is not a readable archive or text file, lacks the arrays, the columns are
        not two, or a value is not a number.

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
        with open(path, "rb") as fh:
            try:
                with np.load(fh, allow_pickle=False) as z:
                    missing = [k for k in ("eigenvalues", "target") if k not in z.files]
                    if missing:
                        raise ValueError(f"{path!r} must hold arrays 'eigenvalues' and "
                                         f"'target'; missing {missing}")
                    lam, b = z["eigenvalues"], z["target"]
            except ValueError as exc:
                if str(exc).startswith(repr(path)):
                    raise
                raise ValueError(f"{path!r} is not a valid .npz archive ({exc})") from None
            except Exception as exc:  # BadZipFile, EOFError, ...
                raise ValueError(f"{path!r} is not a valid .npz archive "
                                 f"({type(exc).__name__}: {exc})") from None
        if lam.dtype.kind not in "iuf" or b.dtype.kind not in "iuf":
            raise ValueError(f"{path!r}: 'eigenvalues' and 'target' must be real arrays; got "
                             f"dtypes {lam.dtype}, {b.dtype}")
        return np.asarray(lam, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    rows = []
    with open(path, encoding="utf-8", errors="strict") as fh:
        try:
            lines = fh.readlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path!r} is not a text file ({exc})") from None
    for lineno, line in enumerate(lines, start=1):
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
