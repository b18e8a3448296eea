"""Files that never lie (io.py): atomic writes, validated loading, corrupt cache entries.

Every corrupted file must raise a ValueError naming the file and the field; a SIGKILL in the
middle of a save must leave the previous file loadable.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd.compute_optimal import (
    ComputeOptimalResult,
    CurveSweep,
    isoflop_frontier,
    kaplan_fits,
    load_compute_optimal,
)
from volterra_sgd.curve import LossCurve, SolverInfo
from volterra_sgd.io import _ARRAYS, _PARTS

MODEL = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)


def _curve(n=6, level=1.0):
    """A LossCurve with synthetic arrays (no solver run): every array equals ``level``."""
    r = np.arange(n, dtype=np.int64) * 10
    a = np.full(n, float(level))
    return LossCurve(r=r, loss=a, forcing=a.copy(), kernel=a.copy(),
                     parts={k: a.copy() for k in _PARTS}, loss_error=a * 1e-9, kernel_norm=0.3,
                     limit_loss=0.01, model=MODEL, learning_rate=0.3, batch_size=1,
                     info=SolverInfo(True, 0, "success", 1e-9, 10), options={"rtol": 1e-11})


def _result():
    """A small ComputeOptimalResult from synthetic curves L = 1/d + (f/d)^(-1/2)."""
    d = np.array([10, 20, 40, 80, 160], dtype=np.int64)
    r = tuple(np.unique(np.round(np.logspace(0, 8, 60))).astype(np.int64) for _ in d)
    loss = tuple(1 / di + ri.astype(float) ** -0.5 for di, ri in zip(d, r, strict=True))
    sweep = CurveSweep(d_values=d, r=r, loss=loss, loss_error=tuple(x * 0 for x in loss),
                       limit_loss=1.0 / d, kernel_norm=np.full(5, 0.3),
                       learning_rate=np.full(5, 0.1), v_values=np.full(5, np.inf),
                       seconds_spectral=np.zeros(5), seconds_solver=np.zeros(5),
                       params={"batch_size": 1})
    curves = sweep.curves()
    fr = isoflop_frontier(curves, n_boot=0)
    return ComputeOptimalResult(alpha=0.7, beta=0.7, batch_size=1, sweep=sweep, isoflop=fr,
                                kaplan=kaplan_fits(curves, fr, n_boot=0), chinchilla=None,
                                theory={"phase": "III", "xi": 0.5, "eta": 0.64},
                                seconds={"sweep": 0.0})


# ------------------------------------------------------------------- corruption helpers
def _npz_parts(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def _rewrite_npz(path, meta=None, arrays=None, *, raw_meta=None, drop=(), pickle=None):
    """Rewrite an archive with changed metadata/arrays (``meta``/``arrays`` are updates)."""
    m, a = _npz_parts(path)
    if meta:
        meta(m)
    if arrays:
        a.update(arrays)
    for k in drop:
        a.pop(k, None)
    out = {} if "meta" in drop else {"meta": np.array(raw_meta if raw_meta is not None
                                                        else json.dumps(m))}
    out.update(a)
    if pickle:
        out[pickle] = np.array([{"x": 1}], dtype=object)
    np.savez(path, **out)


def _set(keys, value):
    """A metadata editor setting ``meta[k1][k2]... = value`` (``value`` None deletes)."""
    def edit(m):
        for k in keys[:-1]:
            m = m[k]
        if value is _DELETE:
            del m[keys[-1]]
        else:
            m[keys[-1]] = value
    return edit


_DELETE = object()


def _truncate(frac):
    def go(path):
        data = open(path, "rb").read()
        open(path, "wb").write(data[:int(len(data) * frac)])
    return go


def _flip(where):
    """Flip one bit at a relative position (``where`` < 0 counts from the end)."""
    def go(path):
        data = bytearray(open(path, "rb").read())
        i = int(len(data) * where) if where >= 0 else len(data) + int(where)
        data[i] ^= 0x10
        open(path, "wb").write(bytes(data))
    return go


def _write(text):
    def go(path):
        open(path, "wb").write(text)
    return go


def _flip_data(path):
    """Flip a bit inside the stored bytes of the 'loss' array (checked by the zip CRC)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("loss.npy")
    data = bytearray(open(path, "rb").read())
    i = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 4
    data[i] ^= 0x01
    open(path, "wb").write(bytes(data))


NPZ_CASES = {
    "empty file": (_write(b""), "npz archive"),
    "text file": (_write(b"r,loss\n1,2\n"), "npz archive"),
    "a single .npy": (lambda p: np.save(open(p, "wb"), np.arange(3.0)), "npz archive"),
    "truncated at 50%": (_truncate(0.5), "npz archive"),
    "truncated at 99%": (_truncate(0.99), "npz archive"),
    "bit flip in array data": (_flip_data, "'loss'"),
    "bit flip in the zip directory offset": (_flip(-5), "unreadable"),
    "no meta": (lambda p: _rewrite_npz(p, drop=("meta",)), "'meta'"),
    "meta not JSON": (lambda p: _rewrite_npz(p, raw_meta='{"kind": "LossCurve",'), "'meta'"),
    "meta a JSON list": (lambda p: _rewrite_npz(p, raw_meta="[1, 2]"), "'meta'"),
    "meta not a string": (lambda p: _rewrite_npz(p, drop=("meta",), arrays={
        "meta": np.arange(3)}), "'meta'"),
    "other kind": (lambda p: _rewrite_npz(p, _set(["kind"], "SGDRun")), "'kind'"),
    "newer major format": (lambda p: _rewrite_npz(p, _set(["format_version"], "2.0")),
                           "'format_version'"),
    "garbled format": (lambda p: _rewrite_npz(p, _set(["format_version"], 1)),
                       "'format_version'"),
    "missing array": (lambda p: _rewrite_npz(p, drop=("loss",)), "'loss'"),
    "missing part": (lambda p: _rewrite_npz(p, drop=("Kac",)), "'Kac'"),
    "float32 array": (lambda p: _rewrite_npz(p, arrays={"forcing": np.ones(6, np.float32)}),
                      "'forcing'"),
    "string array": (lambda p: _rewrite_npz(p, arrays={"kernel": np.array(["a"] * 6)}),
                     "'kernel'"),
    "pickled object array": (lambda p: _rewrite_npz(p, pickle="loss_error"), "'loss_error'"),
    "2-d array": (lambda p: _rewrite_npz(p, arrays={"loss": np.ones((6, 1))}), "'loss'"),
    "short array": (lambda p: _rewrite_npz(p, arrays={"Fpp": np.ones(5)}), "'Fpp'"),
    "NaN in loss": (lambda p: _rewrite_npz(p, arrays={"loss": np.r_[1.0, np.nan, 1, 1, 1, 1]}),
                    "'loss'"),
    "inf in a part": (lambda p: _rewrite_npz(p, arrays={"Fac": np.r_[np.inf, 1, 1, 1, 1, 1]}),
                      "'Fac'"),
    "unsorted r": (lambda p: _rewrite_npz(p, arrays={"r": np.array([0, 20, 10, 30, 40, 50])}),
                   "'r'"),
    "fractional r": (lambda p: _rewrite_npz(p, arrays={"r": np.arange(6) + 0.5}), "'r'"),
    "NaN in r": (lambda p: _rewrite_npz(p, arrays={"r": np.r_[0.0, 1, 2, 3, 4, np.nan]}),
                 "'r'"),
    "negative r": (lambda p: _rewrite_npz(p, arrays={"r": np.arange(6) - 1}), "'r'"),
    "learning rate a string": (lambda p: _rewrite_npz(p, _set(["learning_rate"], "0.3")),
                               "'learning_rate'"),
    "batch size 1.5": (lambda p: _rewrite_npz(p, _set(["batch_size"], 1.5)), "'batch_size'"),
    "kernel norm above 1": (lambda p: _rewrite_npz(p, _set(["kernel_norm"], 1.5)),
                            "'kernel_norm'"),
    "limit loss NaN": (lambda p: _rewrite_npz(p, _set(["limit_loss"], float("nan"))),
                       "'limit_loss'"),
    "info without success": (lambda p: _rewrite_npz(p, _set(["info", "success"], _DELETE)),
                             "'info.success'"),
    "info message a number": (lambda p: _rewrite_npz(p, _set(["info", "message"], 3)),
                              "'info.message'"),
    "model without d": (lambda p: _rewrite_npz(p, _set(["model", "d"], _DELETE)),
                        "'model.d'"),
    "model alpha a string": (lambda p: _rewrite_npz(p, _set(["model", "alpha"], "1")),
                             "'model.alpha'"),
    "invalid model (alpha < 0)": (lambda p: _rewrite_npz(p, _set(["model", "alpha"], -1.0)),
                                  "'model'"),
    "options not an object": (lambda p: _rewrite_npz(p, _set(["options"], [1])), "'options'"),
}


def _write_csv(path, text, *, fix_sha=True):
    """Replace the CSV body and keep the sidecar's SHA-256 consistent (so that field checks,
    not the checksum, must catch the problem)."""
    open(path, "wb").write(text)
    if fix_sha:
        side = json.loads(open(path + ".json").read())
        side["csv_sha256"] = hashlib.sha256(text).hexdigest()
        open(path + ".json", "w").write(json.dumps(side))


def _csv_rows(path, edit):
    lines = open(path, "rb").read().decode().splitlines()
    _write_csv(path, ("\n".join(edit(lines)) + "\n").encode())


def _sidecar(edit):
    def go(path):
        side = json.loads(open(path + ".json").read())
        edit(side)
        open(path + ".json", "w").write(json.dumps(side))
    return go


NAN_ROW = ",".join(["nan"] * 10)
CSV_CASES = {
    "empty CSV": (lambda p: _write_csv(p, b""), "'header'"),
    "empty CSV, stale checksum": (lambda p: _write_csv(p, b"", fix_sha=False), "'csv_sha256'"),
    "truncated mid-row": (_truncate(0.7), "'csv_sha256'"),
    "bit flip in a digit": (_flip(0.8), "'csv_sha256'"),
    "sidecar missing": (lambda p: os.remove(p + ".json"), "'sidecar'"),
    "sidecar empty": (lambda p: open(p + ".json", "w").close(), "'sidecar'"),
    "sidecar truncated": (lambda p: _truncate(0.5)(p + ".json"), "'sidecar'"),
    "sidecar not UTF-8": (lambda p: open(p + ".json", "wb").write(b"\xff\xfe{"), "'sidecar'"),
    "sidecar newer major format": (_sidecar(_set(["format_version"], "9.1")),
                                   "'format_version'"),
    "newer format with other columns": (_sidecar(lambda s: s.update(
        format_version="2.0", columns=["t", "loss"])), "upgrade volterra_sgd"),
    "sidecar rows a string": (_sidecar(_set(["rows"], "6")), "'rows'"),
    "row count against sidecar": (_sidecar(_set(["rows"], 7)), "'rows'"),
    "sidecar without columns": (_sidecar(_set(["columns"], _DELETE)), "'columns'"),
    "wrong header": (lambda p: _csv_rows(p, lambda ls: ["a,b"] + ls[1:]), "'header'"),
    "a row of nan": (lambda p: _csv_rows(p, lambda ls: ls[:-1] + [NAN_ROW]), "'r'"),
    "a missing row": (lambda p: _csv_rows(p, lambda ls: ls[:-1]), "'rows'"),
    "a short row": (lambda p: _csv_rows(p, lambda ls: ls[:-1] + [ls[-1].rsplit(",", 1)[0]]),
                    "'line 7'"),
    "a non-number": (lambda p: _csv_rows(p, lambda ls: ls[:-1] + ["x" + ls[-1][1:]]), "'r'"),
    "unsorted r": (lambda p: _csv_rows(p, lambda ls: [ls[0], ls[2], ls[1]] + ls[3:]), "'r'"),
    "NaN loss": (lambda p: _csv_rows(p, lambda ls: ls[:-1] + [ls[-1].replace(",1,", ",nan,", 1)]),
                 "'loss'"),
    "not UTF-8": (lambda p: _write_csv(p, b"r,loss\xff\n"), "'header'"),
}

CO_CASES = {
    "truncated": (_truncate(0.6), "npz archive"),
    "newer major format": (lambda p: _rewrite_npz(p, _set(["format_version"], "3.0")),
                           "'format_version'"),
    "other kind": (lambda p: _rewrite_npz(p, _set(["kind"], "LossCurve")), "'kind'"),
    "result not an object": (lambda p: _rewrite_npz(p, _set(["result"], [])), "'result'"),
    "missing array": (lambda p: _rewrite_npz(p, drop=("sweep.d_values",)),
                      "'result.sweep.d_values'"),
    "unknown class": (lambda p: _rewrite_npz(p, _set(["result", "kaplan", "__dataclass__"],
                                                      "Evil")), "'result.kaplan'"),
    "missing dataclass field": (lambda p: _rewrite_npz(p, _set(["result", "alpha"], _DELETE)),
                                "'result'"),
    "alpha a string": (lambda p: _rewrite_npz(p, _set(["result", "alpha"], "0.7")),
                       "'result.alpha'"),
    "NaN in a curve": (lambda p: _rewrite_npz(p, arrays={"sweep.loss.2": np.full(60, np.nan)}),
                       "'result.sweep.loss.2'"),
    "unsorted iterations": (lambda p: _rewrite_npz(p, arrays={"sweep.r.1": np.arange(60)[::-1]}),
                            "'result.sweep.r.1'"),
    "curve of another length": (lambda p: _rewrite_npz(p, arrays={
        "sweep.loss_error.0": np.zeros(3)}), "'result.sweep.loss_error.0'"),
    "float mask": (lambda p: _rewrite_npz(p, arrays={"isoflop.interior": np.zeros(3)}),
                   "'result.isoflop.interior'"),
    "log_loss of the wrong shape": (lambda p: _rewrite_npz(p, arrays={
        "isoflop.log_loss": np.zeros((5, 2))}), "'result.isoflop.log_loss'"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Pristine files: the curve as NPZ and CSV, the compute-optimal result as NPZ."""
    base = tmp_path_factory.mktemp("pristine")
    c = _curve()
    return {"npz": vs.save_curve(c, base / "c.npz"), "csv": vs.save_curve(c, base / "c.csv"),
            "co": _result().save(base / "co.npz")}


def _copy(src, dst):
    dst = str(dst)
    open(dst, "wb").write(open(src, "rb").read())
    if os.path.exists(src + ".json"):
        open(dst + ".json", "wb").write(open(src + ".json", "rb").read())
    return str(dst)


@pytest.mark.parametrize("case", list(NPZ_CASES) + [f"csv: {k}" for k in CSV_CASES]
                         + [f"co: {k}" for k in CO_CASES])
def test_corrupted_file_raises_valueerror_naming_file_and_field(case, files, tmp_path):
    if case.startswith("csv: "):
        corrupt, field = CSV_CASES[case[5:]]
        path, load = _copy(files["csv"], tmp_path / "c.csv"), vs.load_curve
    elif case.startswith("co: "):
        corrupt, field = CO_CASES[case[4:]]
        path, load = _copy(files["co"], tmp_path / "co.npz"), load_compute_optimal
    else:
        corrupt, field = NPZ_CASES[case]
        path, load = _copy(files["npz"], tmp_path / "c.npz"), vs.load_curve
    load(path)  # the pristine copy loads
    corrupt(path)
    with pytest.raises(ValueError) as exc:
        load(path)
    msg = str(exc.value)
    assert repr(path) in msg and field in msg, msg
    assert "\n" not in msg


def test_roundtrips_and_legacy_files(files, tmp_path):
    c = _curve()
    for key in ("npz", "csv"):
        back = vs.load_curve(files[key])
        assert back.r.dtype == np.int64 and np.array_equal(back.r, c.r)
        assert all(np.array_equal(getattr(back, k), getattr(c, k)) for k in _ARRAYS[1:])
        assert back.model == MODEL and back.info == c.info
    side = json.loads(open(files["csv"] + ".json").read())
    assert side["rows"] == 6 and side["columns"] == [*_ARRAYS, *_PARTS]
    assert side["format_version"] == "1.0"
    # files written before the format version (no version, sha, rows, columns) still load
    legacy = _copy(files["csv"], tmp_path / "old.csv")
    _sidecar(lambda s: [s.pop(k) for k in ("format_version", "csv_sha256", "rows", "columns")])(
        legacy)
    assert np.array_equal(vs.load_curve(legacy).loss, c.loss)
    old = _copy(files["npz"], tmp_path / "old.npz")
    _rewrite_npz(old, _set(["format_version"], _DELETE))
    assert np.array_equal(vs.load_curve(old).loss, c.loss)
    # a newer minor version is read
    newer = _copy(files["npz"], tmp_path / "minor.npz")
    _rewrite_npz(newer, _set(["format_version"], "1.7"))
    vs.load_curve(newer)
    # a result with NaN intervals (no bootstrap) round-trips through strict JSON
    co = load_compute_optimal(files["co"])
    assert np.isnan(co.loss_exponent_ci[0]) and co.theory["phase"] == "III"
    assert "NaN" not in str(np.load(files["co"])["meta"])


def test_failed_save_leaves_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = vs.save_curve(_curve(level=1.0), tmp_path / "c.csv")
    calls = []

    def full_disk(fd):
        calls.append(fd)
        if len(calls) == 2:  # the CSV is staged, its sidecar fails
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        vs.save_curve(_curve(level=2.0), path)
    monkeypatch.undo()
    assert vs.load_curve(path).loss[0] == 1.0
    assert sorted(os.listdir(tmp_path)) == ["c.csv", "c.csv.json"]


_KILL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_io import _curve
    import volterra_sgd as vs

    path, mode = sys.argv[1], sys.argv[2]
    n = 200_000 if path.endswith(".npz") else 40_000  # CSV text is slow to format
    if mode == "in_fsync":  # stop inside the save, after the temporary file is written
        real = os.fsync
        def fsync(fd):
            real(fd)
            print("in fsync", flush=True)
            time.sleep(60)
        os.fsync = fsync
        vs.save_curve(_curve(n, level=7.0), path)
        print("saved without fsync", flush=True)  # not atomic: the test fails
    else:  # overwrite as fast as possible
        k = 1
        while True:
            vs.save_curve(_curve(n, level=float(k)), path)
            print(k, flush=True)
            k += 1
""")


@pytest.mark.parametrize("suffix", ["npz", "csv"])
def test_sigkill_mid_write_leaves_previous_file(tmp_path, suffix):
    path = str(tmp_path / f"big.{suffix}")
    vs.save_curve(_curve(200_000 if suffix == "npz" else 40_000, level=0.0), path)
    script = tmp_path / "writer.py"
    script.write_text(_KILL_SCRIPT.format(tests=os.path.dirname(__file__)))
    for mode in ("in_fsync", "loop"):
        proc = subprocess.Popen([sys.executable, str(script), path, mode],
                                stdout=subprocess.PIPE, text=True)
        first = proc.stdout.readline()  # the first temporary file is on disk, or one save done
        if mode == "loop":
            time.sleep(0.2)  # now kill at an arbitrary moment of a later save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert first.strip(), "the writer did not start"
        back = vs.load_curve(path)
        levels = np.unique(np.r_[back.loss, back.parts["Kac"]])
        assert levels.size == 1
        if mode == "in_fsync":
            assert levels[0] == 0.0  # the previous file, untouched
            assert any(n.endswith(".tmp") for n in os.listdir(tmp_path))  # killed mid-write


def test_corrupt_cache_entries_are_misses_and_rewritten(tmp_path):
    from volterra_sgd.compute_optimal import _cache_load, _cache_store, _task_key
    from volterra_sgd.forcing import deterministic_measure

    model = vs.PLRF(alpha=1.0, beta=0.7, v=200, d=20)
    good = deterministic_measure(model, cache_dir=tmp_path)
    (entry,) = [p for p in tmp_path.iterdir() if p.suffix == ".npz"]
    size = entry.stat().st_size
    for corrupt in (_truncate(0.5), _write(b""), _flip(-60)):
        corrupt(str(entry))
        again = deterministic_measure(model, cache_dir=tmp_path)
        assert np.array_equal(again.nodes, good.nodes)
        assert entry.stat().st_size == size  # rewritten
        assert np.array_equal(deterministic_measure(model, cache_dir=tmp_path).nodes,
                              good.nodes)

    task = {"d": 8, "alpha": 1.0}
    res = {"r": np.arange(5), "loss": np.ones(5), "loss_error": np.zeros(5), "limit_loss": 0.1,
           "kernel_norm": 0.2, "learning_rate": 0.3}
    _cache_store(tmp_path, task, res)
    assert _cache_load(tmp_path, task)["loss"].tolist() == [1.0] * 5
    path = str(tmp_path / (_task_key(task) + ".npz"))
    for corrupt in (_truncate(0.5), _write(b"junk")):
        corrupt(path)
        assert _cache_load(tmp_path, task) is None
    _cache_store(tmp_path, task, {**res, "loss": np.r_[1.0, np.nan, 1, 1, 1]})
    assert _cache_load(tmp_path, task) is None
