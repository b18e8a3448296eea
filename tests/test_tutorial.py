"""Execute the tutorial (docs/tutorial.md) and the README example as a reader would.

The ```python blocks of the tutorial run in order, in one namespace, in a temporary
directory; the test then checks that every figure the tutorial shows was written and that
its numbers are sane against independent facts: the loss curve starts at P(0) =
sum_j j^(-2(alpha+beta)) (a direct sum here), decreases, and stays above its limit
F0/(1 - ||K||) (recomputed from tau); simulated SGD agrees with it within its standard
errors; the measured compute-optimal slope is close to the phase prediction.
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python_blocks(path: pathlib.Path) -> list[str]:
    """The ```python fenced blocks of a markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    return re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.S | re.M)


def test_python_blocks_extraction():
    blocks = python_blocks(ROOT / "docs" / "tutorial.md")
    assert len(blocks) >= 5
    assert all("```" not in b for b in blocks)


def test_tutorial_runs_and_reproduces_its_figures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__tutorial__"}
    for i, block in enumerate(python_blocks(ROOT / "docs" / "tutorial.md")):
        exec(compile(block, f"docs/tutorial.md[block {i}]", "exec"), ns)

    # The figures shown on the page (docs/img/tutorial_*.png) are the ones written here.
    figures = tmp_path / "tutorial_figures"
    for name in ("loss_curve", "sgd_comparison", "phase_diagram", "compute_optimal"):
        png = figures / f"{name}.png"
        assert png.is_file() and png.stat().st_size > 10_000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("loss_curve", "sgd_comparison", "compute_optimal"):
        assert (ROOT / "docs" / "img" / f"tutorial_{name}.png").is_file()

    # Section 4: the loss curve.
    model, curve = ns["model"], ns["curve"]
    a, b, v = model.alpha, model.beta, model.v
    j = np.arange(1, v + 1, dtype=float)
    p0 = np.sum(j ** (-2 * (a + b)))
    assert model.initial_loss == pytest.approx(p0, rel=1e-12)
    assert curve.r[0] == 1 and curve.loss[0] < p0
    assert np.all(np.diff(curve.loss) <= 1e-15 * p0), "the loss curve must not increase"
    assert np.all(curve.loss > curve.limit_loss)
    assert curve.loss[-1] < 1.05 * curve.limit_loss   # r = 1e5 is close to the limit
    # limit loss F0 / (1 - ||K||), F0 from the tau equation sum_j tau/(j^2a + tau) = d.
    from scipy.optimize import brentq
    tau = brentq(lambda t: np.sum(t / (j ** (2 * a) + t)) - model.d, 1e-6, 1e12, xtol=1e-14,
                 rtol=1e-14)
    f0 = np.sum(j ** (-2 * (a + b)) / (1 + tau * j ** (-2 * a)))
    assert curve.limit_loss == pytest.approx(f0 / (1 - curve.kernel_norm), rel=1e-8)
    assert curve.flops.tolist() == (model.d * ns["r"]).astype(float).tolist()

    # Section 5: SGD against the prediction (fixed seed; 40 runs).
    z = ns["z"]
    assert np.isfinite(z).all()
    assert np.abs(z).mean() < 1.5
    assert np.abs(z).max() < 4.0

    # Section 6: phase and exponent.
    ex = ns["ex"]
    assert ex.phase == "III"
    assert ex.eta == pytest.approx(9 / 14, abs=1e-12)   # phase III: eta = 1 - 1/(4 alpha)
    assert ns["inside"].sum() >= 20
    assert abs(ns["eta_measured"] - ex.eta) < 0.06


def test_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) == 1
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 12, "the README example should stay ~10 lines"
    ns: dict = {"__name__": "__readme__"}
    exec(compile(code, "README.md", "exec"), ns)
    curve, sim = ns["curve"], ns["sim"]
    n = len(sim.r)
    assert np.all(np.abs(sim.loss - curve.loss[:n]) <= 4 * sim.stderr + 1e-12 * curve.loss[:n])


def _run_page(path: pathlib.Path, tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": f"__{path.stem}__"}
    blocks = python_blocks(path)
    assert blocks, f"{path} has no ```python blocks"
    for i, block in enumerate(blocks):
        exec(compile(block, f"{path.relative_to(ROOT)}[block {i}]", "exec"), ns)
    return ns


# The how-to pages: every ```python block runs, in order; the blocks assert their own results
# against independent references (closed forms, direct solutions, the exact given-W loss).
# Blocks that are only shown (cluster set-up, minutes-long studies) use ```{code-block} python.
HOWTO = ROOT / "docs" / "howto"


@pytest.mark.parametrize("page", ["curve", "compare_sgd", "phase_diagram", "custom_spectra",
                                  "compute_optimal"])
def test_howto_page_runs(page, tmp_path, monkeypatch):
    ns = _run_page(HOWTO / f"{page}.md", tmp_path, monkeypatch)
    if page == "curve":
        assert (tmp_path / "curve.npz").is_file()
        c8 = ns["curve8"]
        assert c8.loss[-1] >= c8.limit_loss * (1 - 1e-12)
        assert c8.flops[-1] == pytest.approx(8 * c8.model.d * 1e12, rel=1e-15)
    if page == "compare_sgd":
        assert (tmp_path / "comparison.png").stat().st_size > 10_000
    if page == "compute_optimal":
        co = ns["co"]
        assert co.theory["eta"] == pytest.approx(9 / 14, abs=1e-12)   # 1 - 1/(4 alpha)
        lo, hi = co.loss_exponent_ci
        assert lo <= co.loss_exponent <= hi
        assert 0.5 < co.loss_exponent < 0.7 and 0.45 < co.params_exponent < 0.6
    if page == "phase_diagram":
        assert (tmp_path / "phase_diagram.png").stat().st_size > 10_000
        eta = ns["eta"]
        assert np.nanmin(eta) >= 0 and np.nanmax(eta) <= 1


@pytest.mark.slow
def test_howto_numba_page_runs(tmp_path, monkeypatch):
    # Slow only because it compiles a parallel @njit function defined on the page (~25 s).
    ns = _run_page(HOWTO / "numba.md", tmp_path, monkeypatch)
    assert ns["P"].shape == (4, 4)
    # r = 0 is the initialization: P(0) = ||D^(1/2) b||^2 for every rate.
    assert np.allclose(ns["P"][:, 0], ns["spec"].initial_loss, rtol=1e-13)
