"""Exception and warning classes of volterra_sgd."""

from __future__ import annotations

__all__ = ["VolterraSGDError", "ConvergenceError", "ConvergenceWarning", "UnstableLearningRateError"]


class VolterraSGDError(Exception):
    """Base class of the package's own exceptions."""


class ConvergenceError(VolterraSGDError, RuntimeError):
    """A numerical method did not reach its tolerance (raised when ``throw=True``)."""


class ConvergenceWarning(UserWarning):
    """A numerical method did not reach its tolerance (emitted when ``throw=False``)."""


class UnstableLearningRateError(VolterraSGDError, ValueError):
    """The learning rate makes SGD (and the Volterra equation) diverge.

    Stability requires ``gamma (B + 1) lambda_max < 2`` and kernel norm ``||K|| < 1``
    (docs/theory.md, kernel norm; THEORY.md §3.4).  The attribute
    :attr:`max_learning_rate` holds the largest stable learning rate.
    """

    def __init__(self, message: str, max_learning_rate: float):
        super().__init__(message)
        self.max_learning_rate = float(max_learning_rate)
