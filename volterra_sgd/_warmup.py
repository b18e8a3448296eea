"""Compile every Numba kernel once with tiny inputs (called by :func:`volterra_sgd.warmup`)."""

from __future__ import annotations


def run() -> None:
    """Call each kernel once so that Numba compiles it or loads it from its on-disk cache."""
    import numpy as np

    from . import sgd
    from .curve import loss_curve
    from .exact import expected_loss_given_w
    from .model import PLRF
    from .volterra import _volterra_block_kernel, solve_volterra

    model = PLRF(alpha=1.0, beta=0.7, v=40, d=8)
    W = model.sample_embedding(rng=0)
    for method in ("closed_form", "recursion"):
        expected_loss_given_w(model, W, [0, 3], learning_rate=0.2, method=method)
    for n, method in ((3, "direct"), (3000, "fft")):
        solve_volterra(np.ones(n), np.full(n, 0.1 / n), method=method)
    _volterra_block_kernel(np.full(4, 0.1), np.ones(4), 0, 2, 2, 4)
    sgd._warmup()
    loss_curve(model, [0, 3], learning_rate=0.2)
    from .ridge import ridge_test_loss

    ridge_test_loss(model, n_samples=20, ridge=1e-3)
    from .momentum import momentum_forcing_kernel, momentum_loss
    from .optimizers import DANA, HeavyBall

    x, f = np.array([0.5, 0.05]), np.array([1.0, 0.5])
    for opt in (HeavyBall(0.05, 0.9), DANA(1.0, 0.1, 0.05, 0.5, 5.0)):
        for method in ("recursion", "closed_form" if opt.is_constant else "blocks"):
            momentum_loss(x, f, 0.01, [0, 3, 2000], opt, method=method)
        momentum_forcing_kernel(x, f, 0.01, [0, 2000], opt)
