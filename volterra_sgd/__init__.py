"""volterra_sgd: loss curves of one-pass SGD on power-law random features.

The expected loss of SGD solves a discrete convolution-type Volterra equation
``P(r) = F(r) + sum_{s<r} K(r-1-s) P(s)`` (docs/theory.md, Eq. (3.4)).
This package computes it exactly for a given embedding, deterministically from
the resolvent's deterministic equivalent, and checks both against simulated SGD.

Importing the package compiles nothing; see :func:`warmup`.  The full resolvent result
(m, residual, status) is :func:`volterra_sgd.resolvent.resolvent`; it is not re-exported here
so that ``volterra_sgd.resolvent`` stays the module.
"""

from __future__ import annotations

from ._numba import warmup
from .calibration import CurveFit, CurveFrontier, CurvePrediction, fit_loss_curves
from .compute_optimal import (
    ChinchillaFit,
    ComputeOptimalResult,
    CurveSweep,
    ExtrapolatedExponents,
    IsoFLOPFrontier,
    IsoFLOPProfiles,
    KaplanFits,
    PowerLawFit,
    chinchilla_fit,
    compute_optimal,
    extrapolate_exponents,
    isoflop_frontier,
    isoflop_profiles,
    kaplan_fits,
    load_compute_optimal,
    sweep_loss_curves,
)
from .contour import (
    SpectralDensities,
    SpectralMeasure,
    SpectralSupport,
    compress_measure,
    spectral_densities,
    spectral_measure,
    spectral_support,
)
from .critical_batch import CriticalBatchResult, critical_batch_size
from .curve import LossCurve, SolverInfo, loss_curve
from .exact import (
    EmbeddingSpectrum,
    ExpectedLoss,
    check_learning_rate,
    embedding_spectrum,
    expected_loss_given_w,
    kernel_norm,
    max_stable_learning_rate,
)
from .exceptions import (
    ConvergenceError,
    ConvergenceWarning,
    NumbaCacheWarning,
    UnstableLearningRateError,
    VolterraSGDError,
)
from .features import FeatureSpectrum, feature_spectrum
from .fitting import (
    EmpiricalSpectrum,
    FittingWarning,
    SpectrumFit,
    empirical_spectrum,
    fit_power_laws,
)
from .forcing import ForcingKernel, forcing_and_kernel
from .io import load_curve, save_curve
from .learning_curve_law import LearningCurveLawFit, fit_learning_curve_law
from .model import PLRF, SpectralModel
from .momentum import MomentumLoss, momentum_loss
from .optimizers import DANA, SGD, GeneralizedMomentum, HeavyBall, Nesterov
from .phases import (
    AsymptoticParts,
    PhaseExponents,
    PhaseInfo,
    asymptotic_parts,
    phase,
    phase_exponents,
    phase_info,
)
from .resolvent import ResolventResult, forcing_transform, limit_loss, resolvent_m, tau
from .data_limited import (
    DataLimitedExponents,
    DataLimitedFrontier,
    KaplanOverfittingFit,
    data_limited_exponents,
    data_limited_frontier,
    kaplan_overfitting_fit,
)
from .ridge import (
    BestFeatures,
    OptimalRidge,
    RidgeEquivalent,
    RidgeExponents,
    RidgeRun,
    RidgeSurface,
    best_n_features,
    optimal_ridge,
    ridge_equivalent,
    ridge_loss_surface,
    ridge_scaling_exponents,
    ridge_test_loss,
    simulate_ridge,
)
from .sgd import SGDRun, simulate_sgd
from .volterra import solve_volterra

__version__ = "0.1.0"

__all__ = [
    "PLRF",
    "SpectralModel",
    # exact loss for a given embedding
    "EmbeddingSpectrum",
    "ExpectedLoss",
    "embedding_spectrum",
    "expected_loss_given_w",
    "check_learning_rate",
    "kernel_norm",
    "max_stable_learning_rate",
    # optimizers beyond plain SGD (docs/optimizers.md)
    "SGD",
    "HeavyBall",
    "Nesterov",
    "GeneralizedMomentum",
    "DANA",
    "MomentumLoss",
    "momentum_loss",
    # generic Volterra solver
    "solve_volterra",
    # simulated SGD
    "SGDRun",
    "simulate_sgd",
    # deterministic equivalent
    "tau",
    "limit_loss",
    "ResolventResult",
    "resolvent_m",
    "forcing_transform",
    "SpectralDensities",
    "SpectralMeasure",
    "SpectralSupport",
    "spectral_densities",
    "spectral_measure",
    "compress_measure",
    "spectral_support",
    "ForcingKernel",
    "forcing_and_kernel",
    # loss curves
    "LossCurve",
    "SolverInfo",
    "loss_curve",
    "load_curve",
    "save_curve",
    # compute-optimal scaling
    "compute_optimal",
    "ComputeOptimalResult",
    "load_compute_optimal",
    "CurveSweep",
    "sweep_loss_curves",
    "IsoFLOPFrontier",
    "PowerLawFit",
    "isoflop_frontier",
    "IsoFLOPProfiles",
    "isoflop_profiles",
    "ExtrapolatedExponents",
    "extrapolate_exponents",
    "KaplanFits",
    "kaplan_fits",
    "ChinchillaFit",
    "chinchilla_fit",
    "CriticalBatchResult",
    "critical_batch_size",
    "LearningCurveLawFit",
    "fit_learning_curve_law",
    # data-limited model: ridge / least squares on random features
    "FeatureSpectrum",
    "feature_spectrum",
    "BestFeatures",
    "RidgeEquivalent",
    "RidgeExponents",
    "RidgeRun",
    "RidgeSurface",
    "best_n_features",
    "ridge_equivalent",
    "ridge_loss_surface",
    "ridge_scaling_exponents",
    "ridge_test_loss",
    "simulate_ridge",
    "OptimalRidge",
    "optimal_ridge",
    "DataLimitedExponents",
    "DataLimitedFrontier",
    "KaplanOverfittingFit",
    "data_limited_exponents",
    "data_limited_frontier",
    "kaplan_overfitting_fit",
    # spectra and power laws from data (docs/fitting.md)
    "EmpiricalSpectrum",
    "FittingWarning",
    "SpectrumFit",
    "empirical_spectrum",
    "fit_power_laws",
    # calibration on measured loss curves (docs/fitting.md)
    "CurveFit",
    "CurveFrontier",
    "CurvePrediction",
    "fit_loss_curves",
    # phases and asymptotics
    "AsymptoticParts",
    "PhaseExponents",
    "PhaseInfo",
    "asymptotic_parts",
    "phase",
    "phase_exponents",
    "phase_info",
    # errors
    "ConvergenceError",
    "ConvergenceWarning",
    "NumbaCacheWarning",
    "UnstableLearningRateError",
    "VolterraSGDError",
    "__version__",
    "warmup",
]
