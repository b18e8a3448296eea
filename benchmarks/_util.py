"""Small helpers shared by the benchmark scripts: timing medians and table printing."""

from __future__ import annotations

import statistics
import time


def median_time(fn, repeats: int = 5) -> tuple[float, list[float]]:
    """Run ``fn()`` ``repeats`` times; return the median wall time and all times (seconds)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def timed(fn, repeats: int):
    """Median wall and CPU seconds of ``fn()`` over ``repeats`` runs, and its last result."""
    wall, cpu = [], []
    out = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), out


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    """Print a plain-text table."""
    cells = [header] + [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in row]
                        for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
