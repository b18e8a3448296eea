"""Exception and warning classes of volterra_sgd."""

from __future__ import annotations

__all__ = ["VolterraSGDError", "ConvergenceError", "ConvergenceWarning", "NumbaCacheWarning",
           "UnstableLearningRateError"]


class VolterraSGDError(Exception):
    """Base class of the package's own exceptions.

    Examples
    --------
    Catch every error raised deliberately by the package:

    >>> import volterra_sgd as vs
    >>> try:
    ...     vs.check_learning_rate([1.0], learning_rate=5.0)
    ... except vs.VolterraSGDError as err:
    ...     print(type(err).__name__)
    UnstableLearningRateError
    """


class ConvergenceError(VolterraSGDError, RuntimeError):
    """A numerical method did not reach its tolerance (raised when ``throw=True``).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> (issubclass(vs.ConvergenceError, RuntimeError),
    ...  issubclass(vs.ConvergenceError, vs.VolterraSGDError))
    (True, True)
    >>> try:
    ...     raise vs.ConvergenceError("resolvent: 1 point did not converge")
    ... except RuntimeError as err:
    ...     print(err)
    resolvent: 1 point did not converge
    """


class ConvergenceWarning(UserWarning):
    """A numerical method did not reach its tolerance (emitted when ``throw=False``).

    Examples
    --------
    Turn the warning into an error for one block of code:

    >>> import warnings, volterra_sgd as vs
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", vs.ConvergenceWarning)
    ...     try:
    ...         warnings.warn("not converged", vs.ConvergenceWarning)
    ...     except vs.ConvergenceWarning as w:
    ...         print("caught:", w)
    caught: not converged
    """


class NumbaCacheWarning(RuntimeWarning):
    """Numba's on-disk cache is not usable: kernels are compiled in memory in each process.

    Issued once per process on ``import volterra_sgd`` when neither the package's
    ``__pycache__``, the user cache directory nor ``NUMBA_CACHE_DIR`` is writable (read-only
    installs on cluster workers and in containers).  Set ``NUMBA_CACHE_DIR`` to a writable
    directory to keep compiled kernels across runs (docs/howto/numba.md).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> issubclass(vs.NumbaCacheWarning, RuntimeWarning)
    True
    """


class UnstableLearningRateError(VolterraSGDError, ValueError):
    """The learning rate makes SGD (and the Volterra equation) diverge.

    Stability requires ``gamma (B + 1) lambda_max < 2`` and kernel norm ``||K|| < 1``
    (docs/theory.md, Eq. (3.7)).  The attribute
    :attr:`max_learning_rate` holds the largest stable learning rate.

    Parameters
    ----------
    message : str
        The error message.
    max_learning_rate : float
        The largest stable learning rate, stored as :attr:`max_learning_rate`.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30)
    >>> try:
    ...     vs.expected_loss_given_w(model, model.sample_embedding(rng=0), [10], learning_rate=5.0)
    ... except ValueError as err:                        # it is also a ValueError
    ...     print(type(err).__name__, err.max_learning_rate < 5.0)
    UnstableLearningRateError True
    """

    def __init__(self, message: str, max_learning_rate: float):
        super().__init__(message)
        self.max_learning_rate = float(max_learning_rate)
