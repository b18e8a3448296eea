"""Runtime behaviour (issue 12): imports without a writable cache, threads, Ctrl-C, reproducibility.

The subprocess tests run real interpreters: a read-only install with no writable cache
location, a guard-less script that uses the default parallelism and is interrupted with
SIGINT, and the same simulation under two BLAS thread counts.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

import volterra_sgd as vs
from volterra_sgd import _parallel, exact, sgd
from volterra_sgd.compute_optimal import sweep_loss_curves

PKG = Path(vs.__file__).resolve().parent


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "OPENBLAS_"))}
    env.update(extra)
    return env


# ----------------------------------------------------------- read-only install (item 2)
def test_imports_and_computes_without_a_writable_numba_cache(tmp_path):
    # A copy of the package where no Numba cache locator works: as root, chmod does not stop
    # writes, so every __pycache__ and the home directory are *files* (makedirs fails like
    # on a read-only file system); the tree is made read-only too, for ordinary users.
    site = tmp_path / "site"
    shutil.copytree(PKG, site / "volterra_sgd",
                    ignore=shutil.ignore_patterns("__pycache__", "out", "*.nbi", "*.nbc"))
    dirs = [p for p in (site / "volterra_sgd").rglob("*") if p.is_dir()]
    for d in [site / "volterra_sgd", *dirs]:
        (d / "__pycache__").touch()
    home = tmp_path / "home"
    home.touch()
    code = textwrap.dedent("""
        import warnings, json
        warnings.simplefilter("always")
        import volterra_sgd as vs
        model = vs.PLRF(alpha=1.0, beta=0.7, v=40, d=8)
        res = vs.expected_loss_given_w(model, model.sample_embedding(rng=0), [0, 3, 50],
                                       learning_rate=0.2, method="recursion")
        print(json.dumps({"file": vs.__file__, "loss": res.loss.tolist()}))
    """)
    for p in [site, *site.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
            timeout=300, env=_env(HOME=str(home), XDG_CACHE_HOME=str(home),
                                  PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1"))
    finally:
        for p in [site, *site.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(site))
    model = vs.PLRF(alpha=1.0, beta=0.7, v=40, d=8)
    ref = vs.expected_loss_given_w(model, model.sample_embedding(rng=0), [0, 3, 50],
                                   learning_rate=0.2, method="recursion")
    np.testing.assert_allclose(out["loss"], ref.loss, rtol=1e-14, atol=0)
    # one warning, naming the variable that fixes it
    assert proc.stderr.count("NUMBA_CACHE_DIR") == 1, proc.stderr
    assert "NumbaCacheWarning" in proc.stderr


# ------------------------------------------------------------------ Ctrl-C (item 3)
_WARM = {
    "sgd": "vs.simulate_sgd(model, [0, 5], learning_rate=g, n_runs=2, rng=0)",
    "recursion": "vs.expected_loss_given_w(model, W, [0, 5], learning_rate=g, "
                 "method='recursion')",
    "sweep": "vs.sweep_loss_curves(0.7, 0.7, [16, 23, 32], max_flops=1e6)",
    "serial sweep": "vs.sweep_loss_curves(0.7, 0.7, [16, 23, 32], max_flops=1e6, n_jobs=1)",
}
def test_import_loads_no_submodule_until_a_name_is_used():
    # import volterra_sgd must stay cheap (no Numba, no SciPy); names and submodules load on use
    code = textwrap.dedent("""
        import sys
        import volterra_sgd as vs
        before = sorted(m for m in ("numba", "scipy", "volterra_sgd.curve") if m in sys.modules)
        names = (vs.PLRF.__name__, vs.exact.__name__, "loss_curve" in dir(vs))
        print(before, "numba" in sys.modules, names)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=_env(), cwd=PKG.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "True", "('PLRF',", "'volterra_sgd.exact',", "True)"]
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        vs.nonexistent  # noqa: B018


_LONG = {
    "sgd": "vs.simulate_sgd(model, [0, 10**10], learning_rate=g, n_runs=4, rng=0)",
    "recursion": "vs.expected_loss_given_w(model, W, [0, 10**12], learning_rate=g, "
                 "method='recursion')",
    "sweep": "vs.compute_optimal(0.7, 0.7)",
    "serial sweep": "vs.compute_optimal(0.7, 0.7, n_jobs=1)",  # d = 65536 first: long kernels
}


@pytest.mark.parametrize("what", ["sgd", "recursion", "sweep", "serial sweep"])
def test_ctrl_c_stops_long_computations(tmp_path, what):
    # a plain script: no `if __name__ == "__main__":` guard (the sweep uses the default,
    # parallel, n_jobs), interrupted 2 s into a computation that would run for hours
    script = tmp_path / "long.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import volterra_sgd as vs
        model = vs.PLRF(alpha=1.0, beta=0.7, v=400, d=100)
        W = model.sample_embedding(rng=0)
        g = model.reference_learning_rate(0.5)
        {_WARM[what]}
        try:  # lift the up-front cost limit, where there is one
            from volterra_sgd._validation import cost_limit
            unlimited = cost_limit(float("inf"))
        except ImportError:
            import contextlib
            unlimited = contextlib.nullcontext()
        print("ready", flush=True)
        with unlimited:
            {_LONG[what]}
        print("finished", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(2.0)
        assert proc.poll() is None
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        latency = time.perf_counter() - t0
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert "KeyboardInterrupt" in err, err
    assert "finished" not in proc.stdout.read()
    print(f"{what}: exited {latency:.2f} s after SIGINT")
    # the interpreter's own exit after a KeyboardInterrupt takes ~1 s on a loaded 2-core machine
    assert latency < 5.0, f"exited {latency:.2f} s after SIGINT"


# --------------------------------------------- threads: same bits as serial (item 3)
def test_thread_pool_sweep_is_bit_identical_to_serial():
    kw = dict(max_flops=1e7, points_per_decade=10)
    d = [16, 23, 32, 45]
    serial = sweep_loss_curves(0.7, 0.7, d, n_jobs=1, **kw)
    threaded = sweep_loss_curves(0.7, 0.7, d, n_jobs=2, **kw)
    for a, b in zip(serial.loss, threaded.loss, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(serial.limit_loss, threaded.limit_loss)


def test_default_parallelism_inside_a_dask_worker_is_serial():
    from dask import distributed

    kw = dict(max_flops=1e6, points_per_decade=10)
    ref = sweep_loss_curves(0.7, 0.7, [16, 23, 32], n_jobs=1, **kw)
    model = vs.PLRF(alpha=1.0, beta=0.7, v=60, d=12)
    sgd_kw = dict(learning_rate=model.reference_learning_rate(0.5), n_runs=6, rng=1)
    sim = vs.simulate_sgd(model, [0, 10, 50], **sgd_kw)
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=2,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        n_workers = client.submit(_parallel.default_workers, pure=False).result()
        on_worker = client.submit(sweep_loss_curves, 0.7, 0.7, [16, 23, 32], **kw).result()
        sim_worker = client.submit(vs.simulate_sgd, model, [0, 10, 50], **sgd_kw).result()
    assert n_workers == 1 and _parallel.default_workers() == numba.get_num_threads()
    for a, b in zip(ref.loss, on_worker.loss, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sim.losses, sim_worker.losses)


def test_run_tasks_results_errors_and_nesting():
    got = {}
    _parallel.run_tasks(lambda x: (x * x, _parallel.default_workers()), list(range(7)), 3,
                        got.__setitem__)
    assert got == {i: (i * i, 1) for i in range(7)}  # nested pools are serial

    def boom(x):
        if x == 2:
            raise ZeroDivisionError("task 2")
        return x

    with pytest.raises(ZeroDivisionError, match="task 2"):
        _parallel.run_tasks(boom, list(range(5)), 2, lambda i, r: None)


def _blas_threads():
    return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"}


def test_blas_single_thread_is_counted_across_threads():
    before = _blas_threads()
    entered = [threading.Event(), threading.Event()]
    leave = [threading.Event(), threading.Event()]

    def work(k):
        with _parallel.blas_single_thread():
            entered[k].set()
            leave[k].wait(10)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t, e in zip(threads, entered, strict=True):
        t.start()
        e.wait(10)
    assert set(_blas_threads().values()) == {1}
    leave[0].set()
    threads[0].join()
    assert set(_blas_threads().values()) == {1}  # the other thread is still inside
    leave[1].set()
    threads[1].join()
    assert _blas_threads() == before


# ----------------------------------------------------- chunked kernels: same bits
@pytest.mark.parametrize("engine", ["eigen", "literal"])
def test_chunked_simulation_is_bit_identical(monkeypatch, engine):
    model = vs.PLRF(alpha=1.0, beta=0.7, v=60, d=12)
    g = model.reference_learning_rate(0.5)
    r = [0, 3, 17, 40, 41, 90]
    sched = np.where(np.arange(90) < 30, 1, 3)
    kw = dict(learning_rate=g / 2, batch_size=sched, n_runs=5, rng=7, engine=engine)
    ref = sgd.simulate_sgd(model, r, **kw)
    monkeypatch.setattr(sgd, "_CHUNK_WORK", 1.0)  # one step per kernel call
    assert len(sgd._segments(np.array(r), False, 5.0)) == 90
    np.testing.assert_array_equal(sgd.simulate_sgd(model, r, **kw).losses, ref.losses)


def test_chunked_recursion_is_bit_identical(monkeypatch):
    model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30)
    W = model.sample_embedding(rng=0)
    r = [0, 1, 5, 100, 1000, 1001, 7000]
    ref = vs.expected_loss_given_w(model, W, r, learning_rate=0.5, method="recursion")
    monkeypatch.setattr(exact, "_RECURSION_CHUNK", 30 * 7)  # 7 steps per kernel call
    assert len(exact._progress_chunks(np.array(r), False, 30)) > 1000
    res = vs.expected_loss_given_w(model, W, r, learning_rate=0.5, method="recursion")
    np.testing.assert_array_equal(res.loss, ref.loss)


# ------------------------------------------------------- reproducibility (item 6)
def test_embedding_spectrum_sign_convention():
    model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30)
    W = model.sample_embedding(rng=0)
    for method in ("svd", "eigh"):
        spec = vs.embedding_spectrum(model, W, method=method)
        assert np.all(spec.coefficients >= 0)
    a = vs.embedding_spectrum(model, W, method="svd").coefficients
    b = vs.embedding_spectrum(model, W, method="eigh").coefficients
    np.testing.assert_allclose(a, b, rtol=1e-8)  # both routes now give the same a_k


_REPRO = textwrap.dedent("""
    import json
    import volterra_sgd as vs
    out = {}
    for v, d in ((400, 100), (2000, 200)):
        m = vs.PLRF(alpha=1.0, beta=0.7, v=v, d=d)
        g = m.reference_learning_rate(0.5)
        for method in ("eigh", "svd"):
            s = vs.simulate_sgd(m, [0, 100, 1000], learning_rate=g, n_runs=4, rng=3,
                                spectrum_method=method)
            out[f"{v}/{method}"] = [x.hex() for x in s.losses.ravel().tolist()]
        spec = vs.embedding_spectrum(m, m.sample_embedding(rng=1))
        out[f"{v}/fixed"] = [x.hex() for x in spec.eigenvalues.tolist()
                             + spec.coefficients.tolist()]
    print(json.dumps(out))
""")


def test_simulation_is_identical_across_blas_and_numba_thread_counts():
    runs = []
    for blas, nb in (("1", "1"), ("2", "2")):
        proc = subprocess.run([sys.executable, "-c", _REPRO], capture_output=True, text=True,
                              timeout=600, env=_env(OPENBLAS_NUM_THREADS=blas,
                                                    NUMBA_NUM_THREADS=nb))
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert runs[0].keys() == runs[1].keys()
    for key in runs[0]:
        assert runs[0][key] == runs[1][key], key
