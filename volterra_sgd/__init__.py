"""volterra_sgd: loss curves of one-pass SGD on power-law random features.

The expected loss of SGD solves a discrete convolution-type Volterra equation
``P(r) = F(r) + sum_{s<r} K(r-1-s) P(s)`` (docs/theory.md; THEORY.md §3.1).
This package computes it exactly for a given embedding, deterministically from
the resolvent's deterministic equivalent, and checks both against simulated SGD.

Importing the package compiles nothing; see :func:`warmup`.
"""

from __future__ import annotations

from ._numba import warmup
from .exceptions import (
    ConvergenceError,
    ConvergenceWarning,
    UnstableLearningRateError,
    VolterraSGDError,
)
from .contour import (
    SpectralDensities,
    SpectralMeasure,
    SpectralSupport,
    spectral_densities,
    spectral_measure,
    spectral_support,
)
from .exact import (
    EmbeddingSpectrum,
    ExpectedLoss,
    check_learning_rate,
    embedding_spectrum,
    expected_loss_given_w,
    kernel_norm,
    max_stable_learning_rate,
)
from .forcing import ForcingKernel, forcing_and_kernel
from .model import PLRF
from .resolvent import limit_loss, tau
from .volterra import solve_volterra

__version__ = "0.1.0"

__all__ = [
    "PLRF",
    "EmbeddingSpectrum",
    "ExpectedLoss",
    "check_learning_rate",
    "embedding_spectrum",
    "expected_loss_given_w",
    "kernel_norm",
    "max_stable_learning_rate",
    "solve_volterra",
    "ForcingKernel",
    "SpectralDensities",
    "SpectralMeasure",
    "SpectralSupport",
    "forcing_and_kernel",
    "limit_loss",
    "spectral_densities",
    "spectral_measure",
    "spectral_support",
    "tau",
    "ConvergenceError",
    "ConvergenceWarning",
    "UnstableLearningRateError",
    "VolterraSGDError",
    "__version__",
    "warmup",
]
