"""volterra_sgd: loss curves of one-pass SGD on power-law random features.

The expected loss of SGD solves a discrete convolution-type Volterra equation
``P(r) = F(r) + sum_{s<r} K(r-1-s) P(s)`` (docs/theory.md, Eq. (3.4)).
This package computes it exactly for a given embedding, deterministically from
the resolvent's deterministic equivalent, and checks both against simulated SGD.

Importing the package compiles nothing and loads no submodule: each public name imports
its submodule (and with it NumPy, SciPy, Numba) on first use; see :func:`warmup`.  The full
resolvent result (m, residual, status) is :func:`volterra_sgd.resolvent.resolvent`; it is not
re-exported here so that ``volterra_sgd.resolvent`` stays the module.
"""

from __future__ import annotations

import importlib
import sys
import types

#: Submodule -> the public names it defines.  A submodule is imported when one of its names is
#: first used (:func:`__getattr__`), so that ``import volterra_sgd`` loads neither Numba nor SciPy.
_EXPORTS = {
    "_numba": (
        "warmup",
    ),
    "calibration": (
        "CurveFit", "CurveFrontier", "CurvePrediction", "fit_loss_curves", "load_curve_fit",
    ),
    "compute_optimal": (
        "ChinchillaFit", "ComputeOptimalResult", "CurveSweep", "ExtrapolatedExponents",
        "IsoFLOPFrontier", "IsoFLOPProfiles", "KaplanFits", "PowerLawFit", "chinchilla_fit",
        "compute_optimal", "extrapolate_exponents", "isoflop_frontier", "isoflop_profiles",
        "kaplan_fits", "load_compute_optimal", "sweep_loss_curves",
    ),
    "contour": (
        "SpectralDensities", "SpectralMeasure", "SpectralSupport", "compress_measure",
        "spectral_densities", "spectral_measure", "spectral_support",
    ),
    "critical_batch": (
        "CriticalBatchResult", "critical_batch_size",
    ),
    "curve": (
        "LossCurve", "SolverInfo", "loss_curve",
    ),
    "exact": (
        "EmbeddingSpectrum", "ExpectedLoss", "check_learning_rate", "embedding_spectrum",
        "expected_loss_given_w", "kernel_norm", "max_stable_learning_rate",
    ),
    "exceptions": (
        "ConvergenceError", "ConvergenceWarning", "NumbaCacheWarning",
        "UnstableLearningRateError", "VolterraSGDError",
    ),
    "features": (
        "FeatureSpectrum", "feature_spectrum",
    ),
    "fitting": (
        "EmpiricalSpectrum", "FittingWarning", "SpectrumFit", "empirical_spectrum",
        "fit_power_laws",
    ),
    "forcing": (
        "ForcingKernel", "forcing_and_kernel",
    ),
    "io": (
        "load_curve", "save_curve",
    ),
    "learning_curve_law": (
        "LearningCurveLawFit", "fit_learning_curve_law",
    ),
    "model": (
        "PLRF", "SpectralModel",
    ),
    "momentum": (
        "MomentumLoss", "momentum_loss",
    ),
    "optimizers": (
        "DANA", "SGD", "GeneralizedMomentum", "HeavyBall", "Nesterov",
    ),
    "phases": (
        "AsymptoticParts", "PhaseExponents", "PhaseInfo", "asymptotic_parts", "phase",
        "phase_exponents", "phase_info",
    ),
    "resolvent": (
        "ResolventResult", "forcing_transform", "limit_loss", "resolvent_m", "tau",
    ),
    "data_limited": (
        "DataLimitedExponents", "DataLimitedFrontier", "KaplanOverfittingFit",
        "data_limited_exponents", "data_limited_frontier", "kaplan_overfitting_fit",
    ),
    "ridge": (
        "BestFeatures", "OptimalRidge", "RidgeEquivalent", "RidgeExponents", "RidgeRun",
        "RidgeSurface", "best_n_features", "optimal_ridge", "ridge_equivalent",
        "ridge_loss_surface", "ridge_scaling_exponents", "ridge_test_loss", "simulate_ridge",
    ),
    "sgd": (
        "SGDRun", "simulate_sgd",
    ),
    "volterra": (
        "solve_volterra",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

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
    "load_curve_fit",
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


def __getattr__(name: str):
    """Import a public name's submodule on first access (PEP 562); submodules by name too."""
    module = _MODULE_OF.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keep a public function whose submodule has the same name (``compute_optimal``).

    The import system sets the package attribute to the submodule when it is imported.
    """

    def __setattr__(self, name, value):
        if name in _MODULE_OF and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
