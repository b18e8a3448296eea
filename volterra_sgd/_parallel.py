"""Local parallelism of the package: a thread pool over ``nogil`` kernels, and thread budgets.

Why threads.  Every kernel is compiled with ``nogil=True`` (:mod:`volterra_sgd._numba`), so
kernels run side by side in threads of one process: no pickling, no process start-up, no
``if __name__ == "__main__":`` guard, and it works in notebooks and inside Dask workers
(whose daemonic processes may not start child processes).

Budgets.  The pool never oversubscribes the cores:

* it starts ``n_workers`` threads (default :func:`default_workers`: ``numba.get_num_threads()``
  threads, or 1 inside a Dask worker or inside one of the pool's own threads);
* each worker thread gives its ``prange`` kernels ``numba.get_num_threads() // n_workers``
  Numba threads (``numba.set_num_threads`` is thread-local);
* BLAS runs single-threaded in the package's parallel sections (:func:`blas_single_thread`,
  via threadpoolctl), which also makes their results independent of the BLAS thread count.

Interrupts.  The calling thread only waits (in short timed waits), so Ctrl-C reaches it at
once; outstanding tasks are then dropped and the workers stop after their current task.
They are daemon threads, so a script that dies of the ``KeyboardInterrupt`` exits at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading

import numba

__all__ = ["available_cores", "blas_single_thread", "default_workers", "in_dask_worker",
           "numba_threads", "run_tasks"]

_local = threading.local()  # .worker is True in the pool's own threads

_blas_lock = threading.Lock()
_blas_depth = 0
_blas_limiter = None
_controller = None


def available_cores() -> int:
    """Return the number of cores this process may run on (its affinity mask, if any)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def in_dask_worker() -> bool:
    """Whether the calling thread runs a task of a Dask distributed worker."""
    if "distributed" not in sys.modules:
        return False
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def default_workers() -> int:
    """Default number of worker threads: Numba's thread count; 1 when nested or under Dask.

    Inside a Dask worker the parallelism is Dask's (one task per worker thread, and Dask sets
    the BLAS/OpenMP thread counts of its workers to 1); inside the package's own pool a
    nested pool would oversubscribe the cores.
    """
    if getattr(_local, "worker", False) or in_dask_worker():
        return 1
    return max(1, numba.get_num_threads())


@contextlib.contextmanager
def numba_threads(n: int):
    """Run the ``prange`` kernels of the calling thread on ``n`` Numba threads (thread-local)."""
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


@contextlib.contextmanager
def blas_single_thread():
    """Limit BLAS/LAPACK to one thread while any thread of the process is inside this block.

    threadpoolctl's limits are process-wide, so nested and concurrent uses are counted: the
    first thread to enter sets the limit and the last to leave restores the original one
    (a plain ``threadpool_limits`` per thread would restore too early).
    """
    global _blas_depth, _blas_limiter, _controller
    with _blas_lock:
        if _blas_depth == 0:
            if _controller is None:
                import scipy.linalg  # noqa: F401 - load SciPy's BLAS before looking for it
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
            _release_openblas()
            _blas_limiter = _controller.limit(limits=1, user_api="blas")
        _blas_depth += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                _release_openblas()
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
                _release_openblas()


def _release_openblas() -> None:
    """Give the calling thread the right to set OpenBLAS's thread limit.

    threadpoolctl gives that right to one thread and silently ignores the others; the first
    entry into and the last exit from :func:`blas_single_thread` may be different threads.
    """
    import threadpoolctl

    ctl = getattr(threadpoolctl, "OpenBLASController", None)
    if ctl is not None and hasattr(ctl, "clear_controlling_thread"):
        ctl.clear_controlling_thread(force=True)


def run_tasks(fn, items, n_workers: int, on_result, *, poll: float = 0.1,
              inline: bool = True) -> None:
    """Call ``fn(item)`` for every item on ``n_workers`` threads.

    ``on_result(i, result)`` is called in the calling thread as results arrive (in completion
    order; a result never depends on the order).  With ``n_workers == 1`` (or one item) and
    ``inline`` the tasks run in the calling thread, in order; with ``inline=False`` they run
    in one worker thread while the calling thread waits, so that Ctrl-C is not held up by a
    long kernel call.  The first exception of a task, or a ``KeyboardInterrupt`` while
    waiting, cancels the tasks not yet started and is re-raised; tasks already running
    finish in their (daemon) threads and their results are dropped.

    Parameters
    ----------
    fn : callable
        The task; must be thread-safe (the package's kernels are ``nogil`` and pure).
    items : sequence
        Task arguments, in the preferred start order (e.g. slowest first).
    n_workers : int
        Number of threads.
    on_result : callable
        ``on_result(i, result)`` with ``i`` the index in ``items``.
    poll : float
        Seconds between checks for an interrupt while waiting.
    inline : bool
        Run a single worker's tasks in the calling thread.
    """
    n = len(items)
    n_workers = max(1, min(int(n_workers), n))
    if n == 0:
        return
    if n_workers == 1 and inline:
        for i, item in enumerate(items):
            on_result(i, fn(item))
        return
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for i in range(n):
        todo.put(i)
    done: queue.SimpleQueue = queue.SimpleQueue()
    cancel = threading.Event()
    # a Dask task's threads stay on one Numba thread, like the task itself (Dask's thread-local
    # worker state is not visible from the pool's threads)
    per_thread = 1 if in_dask_worker() else max(1, numba.get_num_threads() // n_workers)

    def worker():
        _local.worker = True
        numba.set_num_threads(per_thread)
        while not cancel.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((i, True, fn(items[i])))
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                done.put((i, False, exc))

    threads = [threading.Thread(target=worker, name=f"volterra_sgd-{k}", daemon=True)
               for k in range(n_workers)]
    try:
        for t in threads:
            t.start()
        remaining = n
        while remaining:
            try:
                i, ok, res = done.get(timeout=poll)
            except queue.Empty:
                continue
            remaining -= 1
            if not ok:
                raise res
            on_result(i, res)
    finally:
        cancel.set()
