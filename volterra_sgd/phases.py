r"""Asymptotics of the PLRF loss curve and the 4+3 phase diagram (docs/theory.md, Secs. 10-11).

Three layers, each usable on its own:

* **Phases.** :func:`phase` and :func:`phase_info` place :math:`(\alpha, \beta)` in one of
  the seven regions "Ia", "Ib", "Ic", "II", "III", "IVa", "IVb" of docs/theory.md,
  Eqs. (11.3)-(11.4) (4 phases + 3 subphases, [paper] abstract).  Points on a boundary are
  reported as such.
* **Exponents.** :func:`phase_exponents` returns the compute-optimal exponents
  :math:`\xi` (:math:`d^\star \propto f^{\xi}`) and :math:`\eta`
  (:math:`\mathcal P^\star \propto f^{-\eta}`), the dominant loss terms, the trade-off
  that fixes the optimum and the status ([paper] / [derived]) of each statement.
* **Asymptotics.** :func:`asymptotic_parts` evaluates the closed forms of docs/theory.md,
  Eqs. (10.2)-(10.6) (:math:`F_0`, :math:`F_{pp}`, :math:`F_{ac}`, :math:`K_{pp}`, kernel norm, with
  their Gamma-function constants) and the approximate loss curve of Eq. (10.7) (sum and max forms).
  :func:`numerical_phase_exponents` minimises the four-term approximate loss over :math:`d` at fixed
  compute, numerically and independently of the closed-form exponents, and fits the slopes.

Conventions (docs/theory.md, Secs. 1-2): loss without a factor 1/2, gradients summed over the
batch, :math:`q(\lambda) = 1 - 2\gamma B\lambda + \gamma^2 B(B+1)\lambda^2`,
:math:`T = 2\gamma B r`, compute :math:`f = d\,B\,r`.  See ``docs/phases.md``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from scipy import integrate, optimize
from scipy.special import exp1, gamma, gammaincc, zeta

from ._validation import as_exponents, as_int, as_iterations, as_positive_real, as_real
from .exceptions import UnstableLearningRateError
from .model import PLRF

__all__ = [
    "PHASES",
    "ALPHA_IVA_IVB",
    "PhaseBoundaryWarning",
    "PhaseInfo",
    "PhaseDescription",
    "PHASE_DESCRIPTIONS",
    "PhaseExponents",
    "AsymptoticParts",
    "NumericalExponents",
    "phase",
    "phase_info",
    "phase_exponents",
    "kappa",
    "asymptotic_parts",
    "four_term_loss",
    "numerical_phase_exponents",
]

#: The seven phases, in the canonical order used for joined boundary labels ("Ia/II").
PHASES = ("Ia", "Ib", "Ic", "II", "III", "IVa", "IVb")

#: The IVa/IVb boundary :math:`\alpha = 1 - 1/\sqrt 2` (root of :math:`2\alpha^2-4\alpha+1`).
ALPHA_IVA_IVB = 1.0 - 1.0 / math.sqrt(2.0)

_EULER_GAMMA = 0.57721566490153286061


class PhaseBoundaryWarning(UserWarning):
    """A point lies on a phase boundary and :func:`phase` assigned it by convention.

    Examples
    --------
    >>> import warnings, volterra_sgd as vs
    >>> from volterra_sgd.phases import PhaseBoundaryWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     name = vs.phase(0.7, 0.5)                  # on the boundary 2 beta = 1
    >>> name, caught[0].category is PhaseBoundaryWarning
    ('II', True)
    >>> vs.phase(0.7, 0.5, boundary="join")
    'Ia/II'
    """


# ============================================================================ phases
# Boundary functions; the sign of each one (ties -> +1) decides the phase.
_BOUNDARY_NAMES = ("2*alpha = 1", "2*beta = 1", "beta = alpha", "alpha = 1/4",
                   "alpha = 1 - 1/sqrt(2)")


def _boundary_values(alpha, beta):
    return (2.0 * alpha - 1.0, 2.0 * beta - 1.0, beta - alpha, alpha - 0.25,
            alpha - ALPHA_IVA_IVB)


def _classify(s_a2, s_b2, s_ba, s_a4, s_ac) -> str:
    """Phase from the signs (+1/-1) of the five boundary functions (interior logic)."""
    if s_a2 > 0:                       # 2 alpha > 1
        if s_b2 < 0:
            return "Ia"
        return "III" if s_ba > 0 else "II"
    if s_b2 < 0:                       # 2 alpha < 1, 2 beta < 1
        return "Ib"
    if s_a4 < 0:                       # 2 alpha < 1, 2 beta > 1
        return "Ic"
    return "IVb" if s_ac > 0 else "IVa"


def _check_admissible(alpha, beta) -> tuple[float, float]:
    a = as_real(alpha, "alpha")
    if not a > 0.0:
        raise ValueError(f"alpha must be > 0 for the phase diagram; got alpha={a!r}")
    a, b = as_exponents(a, beta)  # |alpha|, |beta| <= 1e6: every formula stays finite
    if not 2.0 * (a + b) > 1.0:
        raise ValueError(
            "(alpha, beta) is outside the admissible region 2*(alpha + beta) > 1 of the phase "
            f"diagram; got alpha={a!r}, beta={b!r} (2*(alpha+beta) = {2 * (a + b)!r})")
    return a, b


def _check_tol(tol) -> float:
    return as_real(tol, "tol", lower=0.0, lower_open=False, upper=0.01)


@dataclass(frozen=True)
class PhaseInfo:
    r"""Where :math:`(\alpha, \beta)` lies in the phase diagram (see :func:`phase_info`).

    Attributes
    ----------
    alpha, beta : float
        The point.
    phase : str
        The phase.  On a boundary, the phase it is assigned to by the convention "every
        region contains its lower edges": each boundary belongs to the phase on its side
        of larger :math:`\beta` (for the lines :math:`2\beta = 1`, :math:`\beta = \alpha`)
        or larger :math:`\alpha` (for :math:`2\alpha = 1`, :math:`\alpha = 1/4`,
        :math:`\alpha = 1 - 1/\sqrt 2`).  This matches the labels of the α = 0.7 traversal in
        docs/theory.md, Sec. 11 (β = 0.5 at α = 0.7 is listed as II, β = 0.7 as III).
    on_boundary : bool
        Whether the point lies (within ``tol``) on a boundary between two or more phases.
    neighbours : tuple of str
        All phases whose closure contains the point, in the order of :data:`PHASES`;
        ``(phase,)`` in the interior.
    boundaries : tuple of str
        The boundary lines through the point that separate different phases, e.g.
        ``("2*beta = 1",)``; empty in the interior.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> info = vs.phase_info(1.0, 0.7)
    >>> info.phase, info.on_boundary, info.neighbours, info.boundaries
    ('II', False, ('II',), ())
    """

    alpha: float
    beta: float
    phase: str
    on_boundary: bool
    neighbours: tuple[str, ...]
    boundaries: tuple[str, ...]

    @property
    def label(self) -> str:
        """``phase`` in the interior, the neighbours joined by "/" on a boundary ("Ia/II")."""
        return "/".join(self.neighbours)


def phase_info(alpha: float, beta: float, *, tol: float = 1e-12) -> PhaseInfo:
    r"""Locate :math:`(\alpha, \beta)` in the 4+3 phase diagram (docs/theory.md, Eq. (11.3)).

    Parameters
    ----------
    alpha : float
        Data exponent, :math:`\alpha > 0`.
    beta : float
        Target exponent; :math:`2(\alpha+\beta) > 1` is required.
    tol : float, default 1e-12
        A point is on a boundary line when the line's defining function
        (:math:`2\alpha-1`, :math:`2\beta-1`, :math:`\beta-\alpha`, :math:`\alpha-1/4`,
        :math:`\alpha-(1-1/\sqrt2)`) is at most ``tol`` in absolute value.

    Returns
    -------
    PhaseInfo
        The assigned phase, the boundary flag, the neighbouring phases and the boundary
        lines through the point.

    Raises
    ------
    ValueError
        If :math:`\alpha \le 0` or :math:`2(\alpha+\beta) \le 1` (outside the admissible
        region), or ``tol`` is not in [0, 0.01).
    TypeError
        If an argument is not a real number.

    Notes
    -----
    Regions (docs/theory.md, Eq. (11.3)): Ia :math:`2\alpha>1, 2\beta<1`; II :math:`2\alpha>1,
    2\beta>1, \beta<\alpha`; III :math:`2\alpha>1, \beta>\alpha`; Ib :math:`2\alpha<1,
    2\beta<1`; Ic :math:`\alpha<1/4, 2\beta>1`; IVa :math:`1/4<\alpha<1-1/\sqrt2,
    2\beta>1`; IVb :math:`1-1/\sqrt2<\alpha<1/2, 2\beta>1`; all inside
    :math:`2(\alpha+\beta)>1`.  A line is a boundary only where it separates two different
    phases (e.g. :math:`\alpha = 1/4` is not a boundary inside Ib).

    Examples
    --------
    >>> from volterra_sgd.phases import phase_info
    >>> info = phase_info(0.7, 0.5)
    >>> info.phase, info.on_boundary, info.neighbours, info.boundaries
    ('II', True, ('Ia', 'II'), ('2*beta = 1',))
    >>> phase_info(0.5, 0.5).label
    'Ia/Ib/II/III/IVb'
    >>> phase_info(1.25, 0.75).on_boundary
    False
    """
    a, b = _check_admissible(alpha, beta)
    tol = _check_tol(tol)
    vals = _boundary_values(a, b)
    active = [abs(x) <= tol for x in vals]
    options = [(1, -1) if act else (1 if x > 0 else -1,)
               for x, act in zip(vals, active, strict=True)]
    found: dict[tuple[int, ...], str] = {
        signs: _classify(*signs) for signs in itertools.product(*options)}
    neighbours = tuple(p for p in PHASES if p in set(found.values()))
    assigned = _classify(*(1 if act or x > 0 else -1 for x, act in zip(vals, active, strict=True)))
    separating = []
    for k, name in enumerate(_BOUNDARY_NAMES):
        if not active[k]:
            continue
        for signs, ph in found.items():
            flipped = signs[:k] + (-signs[k],) + signs[k + 1:]
            if found[flipped] != ph:
                separating.append(name)
                break
    return PhaseInfo(alpha=a, beta=b, phase=assigned, on_boundary=len(neighbours) > 1,
                     neighbours=neighbours, boundaries=tuple(separating))


def phase(alpha: float, beta: float, *, boundary: str = "warn", tol: float = 1e-12) -> str:
    r"""Return the phase of :math:`(\alpha, \beta)`: "Ia", "Ib", "Ic", "II", "III", "IVa", "IVb".

    Parameters
    ----------
    alpha : float
        Data exponent, :math:`\alpha > 0`.
    beta : float
        Target exponent; :math:`2(\alpha+\beta) > 1` is required.
    boundary : {"warn", "join", "assign", "raise"}, default "warn"
        What to do on a phase boundary (within ``tol``): ``"warn"`` returns the phase the
        boundary is assigned to (see :class:`PhaseInfo`; each region contains its lower
        edges) and emits a :class:`PhaseBoundaryWarning`; ``"assign"`` does the same
        silently; ``"join"`` returns the neighbouring phases joined by "/" (e.g.
        ``"Ia/II"``); ``"raise"`` raises ``ValueError``.  Interior points are unaffected.
    tol : float, default 1e-12
        Boundary tolerance (see :func:`phase_info`).

    Returns
    -------
    str
        The phase name (or a joined label on a boundary with ``boundary="join"``).

    Raises
    ------
    ValueError
        Outside the admissible region (:math:`\alpha \le 0` or
        :math:`2(\alpha+\beta) \le 1`), for an unknown ``boundary`` option, or on a
        boundary with ``boundary="raise"``.

    See Also
    --------
    phase_info : the same classification with the boundary flag and the neighbours.
    phase_exponents : the compute-optimal exponents of the phase.

    Examples
    --------
    >>> from volterra_sgd.phases import phase
    >>> phase(1.25, 0.75)
    'II'
    >>> phase(0.7, 0.5, boundary="assign")   # on the line 2*beta = 1
    'II'
    >>> phase(0.7, 0.5, boundary="join")
    'Ia/II'
    >>> phase(0.27, 1.0), phase(0.45, 1.0), phase(0.2, 1.0)
    ('IVa', 'IVb', 'Ic')
    """
    if boundary not in ("warn", "join", "assign", "raise"):
        raise ValueError(
            f"boundary must be 'warn', 'join', 'assign' or 'raise'; got {boundary!r}")
    info = phase_info(alpha, beta, tol=tol)
    if not info.on_boundary:
        return info.phase
    if boundary == "join":
        return info.label
    where = (f"(alpha, beta) = ({info.alpha!r}, {info.beta!r}) lies on the phase boundary "
             f"{' and '.join(info.boundaries)} between {', '.join(info.neighbours)}")
    if boundary == "raise":
        raise ValueError(where)
    if boundary == "warn":
        warnings.warn(f"{where}; assigned to {info.phase} (each region contains its lower "
                      "edges). Use boundary='join' or phase_info() to get the neighbours.",
                      PhaseBoundaryWarning, stacklevel=2)
    return info.phase


def _phase_codes(alpha, beta, tol: float = 1e-12) -> np.ndarray:
    """Vectorised :func:`phase` (boundaries assigned upward): index into PHASES, -1 outside."""
    a = np.asarray(alpha, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    a, b = np.broadcast_arrays(a, b)
    s = [np.where(x >= -tol, 1, -1) for x in _boundary_values(a, b)]
    code = np.full(a.shape, -1, dtype=np.int8)
    idx = {p: i for i, p in enumerate(PHASES)}
    hi = s[0] > 0
    code = np.where(hi & (s[1] < 0), idx["Ia"], code)
    code = np.where(hi & (s[1] > 0) & (s[2] < 0), idx["II"], code)
    code = np.where(hi & (s[1] > 0) & (s[2] > 0), idx["III"], code)
    lo = ~hi
    code = np.where(lo & (s[1] < 0), idx["Ib"], code)
    code = np.where(lo & (s[1] > 0) & (s[3] < 0), idx["Ic"], code)
    code = np.where(lo & (s[1] > 0) & (s[3] > 0) & (s[4] < 0), idx["IVa"], code)
    code = np.where(lo & (s[1] > 0) & (s[3] > 0) & (s[4] > 0), idx["IVb"], code)
    bad = ~((a > 0) & (2.0 * (a + b) > 1.0))
    return np.where(bad, -1, code).astype(np.int8)


# ========================================================================= exponents
def _xi_ic(a, b):
    return (2 * a + 2 * b - 1) / (2 * (3 * a + 2 * b - 1 - 2 * a * b))


def _eta_ic(a, b):
    return a * (2 * a + 2 * b - 1) / (3 * a + 2 * b - 1 - 2 * a * b)


def _xi_iva(a, b):
    return (b - a) / (2 * b - a - 2 * a * b)


def _eta_iva(a, b):
    return (1 - 2 * a) * (2 * a + 2 * b - 1) / (2 * (2 * b - a - 2 * a * b))


# (xi, eta) closed forms of docs/theory.md, Eq. (11.3), all [derived].
_XI = {
    "Ia": lambda a, b: 1 / (2 * a + 1),
    "II": lambda a, b: b / (a + b),
    "III": lambda a, b: 0.5 + 0 * a,
    "Ib": lambda a, b: 0.5 + 0 * a,
    "Ic": _xi_ic,
    "IVa": _xi_iva,
    "IVb": lambda a, b: 0.5 + 0 * a,
}
_ETA = {
    "Ia": lambda a, b: (2 * a + 2 * b - 1) / (2 * a + 1),
    "II": lambda a, b: 1 - 1 / (2 * (a + b)),
    "III": lambda a, b: 1 - 1 / (4 * a),
    "Ib": lambda a, b: a + b - 0.5,
    "Ic": _eta_ic,
    "IVa": _eta_iva,
    "IVb": lambda a, b: a + 0 * b,
}


@dataclass(frozen=True)
class PhaseDescription:
    r"""One row of the phase table (docs/theory.md, Eq. (11.3)); all strings are ASCII.

    Attributes
    ----------
    name : str
        Phase name.
    region : str
        Defining inequalities (inside :math:`2(\alpha+\beta) > 1`).
    loss : str
        The terms of the approximate loss that matter, :math:`\mathcal P(r) \asymp \dots`.
    dominant_terms : tuple of str
        The same terms as keys of :class:`AsymptoticParts` ("Fo", "Fpp", "Fac", "noise";
        "noise" is the SGD-noise term :math:`K_{pp}(r)\sum_{s\le r}F_{pp}(s)` driven by
        :math:`K_{pp}`).
    tradeoff : str
        The balance of two terms that fixes the compute-optimal :math:`d^\star`.
    xi, eta : str
        Closed forms of :math:`\xi` and :math:`\eta`.
    region_status, exponent_status : str
        Status tags of docs/theory.md: "paper", "paper (as quoted)", "derived".
    universal : bool
        Whether :math:`\xi = 1/2` throughout the phase (the hatched "universal" region).
    representative : tuple of float
        A representative :math:`(\alpha, \beta)` of the phase (tables in docs/phases.md).

    Examples
    --------
    >>> from volterra_sgd.phases import PHASE_DESCRIPTIONS
    >>> desc = PHASE_DESCRIPTIONS["III"]
    >>> desc.name, desc.xi, desc.universal
    ('III', '1/2', True)
    """

    name: str
    region: str
    loss: str
    dominant_terms: tuple[str, ...]
    tradeoff: str
    xi: str
    eta: str
    region_status: str
    exponent_status: str
    universal: bool
    representative: tuple[float, float]


_DESCRIPTIONS = (
    PhaseDescription(
        "Ia", "2*alpha > 1, 2*beta < 1", "Fpp + F0", ("Fpp", "Fo"),
        "Fpp = F0 (at T ~ d^(2*alpha))", "1/(2*alpha + 1)",
        "(2*alpha + 2*beta - 1)/(2*alpha + 1)", "paper", "derived", False, (0.75, 0.25)),
    PhaseDescription(
        "Ib", "2*alpha < 1, 2*beta < 1", "Fpp + F0", ("Fpp", "Fo"),
        "Fpp = F0 (at T ~ d^(2*alpha))", "1/2", "alpha + beta - 1/2",
        "paper", "derived", True, (0.35, 0.45)),
    PhaseDescription(
        "Ic", "alpha < 1/4, 2*beta > 1", "Fpp + F0", ("Fpp", "Fo"),
        "Fpp = F0 (at T ~ d^(2*alpha/g), g = (2*alpha + 2*beta - 1)/(2*alpha))",
        "(2*alpha + 2*beta - 1)/(2*(3*alpha + 2*beta - 1 - 2*alpha*beta))",
        "alpha*(2*alpha + 2*beta - 1)/(3*alpha + 2*beta - 1 - 2*alpha*beta)",
        "paper (as quoted)", "derived", False, (0.2, 1.0)),
    PhaseDescription(
        "II", "2*alpha > 1, 2*beta > 1, beta < alpha", "Fpp + Fac + F0", ("Fpp", "Fac", "Fo"),
        "Fpp = Fac (at T ~ d^(alpha/beta))", "beta/(alpha + beta)",
        "1 - 1/(2*(alpha + beta))", "derived", "derived", False, (1.25, 0.75)),
    PhaseDescription(
        "III", "2*alpha > 1, beta > alpha", "noise(Kpp) + Fac + F0", ("noise", "Fac", "Fo"),
        "Kpp noise = Fac (at T ~ gamma*d)", "1/2", "1 - 1/(4*alpha)",
        "derived", "derived", True, (1.0, 2.0)),
    PhaseDescription(
        "IVa", "1/4 < alpha < 1 - 1/sqrt(2), 2*beta > 1", "Fpp + Kpp + F0",
        ("Fpp", "noise", "Fo"), "Fpp = Kpp noise",
        "(beta - alpha)/(2*beta - alpha - 2*alpha*beta)",
        "(1 - 2*alpha)*(2*alpha + 2*beta - 1)/(2*(2*beta - alpha - 2*alpha*beta))",
        "derived", "derived", False, (0.27, 1.0)),
    PhaseDescription(
        "IVb", "1 - 1/sqrt(2) < alpha < 1/2, 2*beta > 1", "Fpp + Kpp + F0",
        ("Fpp", "noise", "Fo"), "Kpp noise = F0 (at T ~ d^(2*alpha))", "1/2", "alpha",
        "derived", "derived", True, (0.45, 1.0)),
)

#: Read-only mapping phase name -> :class:`PhaseDescription` (docs/theory.md, Eq. (11.3)).
PHASE_DESCRIPTIONS: Mapping[str, PhaseDescription] = MappingProxyType(
    {d.name: d for d in _DESCRIPTIONS})


@dataclass(frozen=True)
class PhaseExponents:
    r"""Compute-optimal exponents at one point (see :func:`phase_exponents`).

    Attributes
    ----------
    alpha, beta : float
        The point.
    phase : str
        Its phase (boundaries assigned as in :class:`PhaseInfo`).
    xi : float
        :math:`d^\star \propto f^{\xi}` (model size at the compute optimum).
    eta : float
        :math:`\mathcal P^\star \propto f^{-\eta}` (optimal loss).
    dominant_terms : tuple of str
        Terms of the approximate loss that matter in the phase (keys of
        :class:`AsymptoticParts`: "Fo", "Fpp", "Fac", "noise").
    tradeoff : str
        The balance that fixes the optimum.
    xi_formula, eta_formula : str
        The closed forms used.
    xi_status, eta_status, region_status : str
        Status (docs/theory.md tags): the exponents are "derived" (Eq. (11.3)); the
        region is "paper", "paper (as quoted)" or "derived" (Eq. (11.4)).
    on_boundary : bool
        Whether the point is on a phase boundary.
    neighbours : tuple of str
        Phases whose closure contains the point.
    xi_limits, eta_limits : Mapping[str, float]
        The value of each neighbour's closed form at the point (its one-sided limit).  They
        coincide for :math:`\eta` on every boundary; :math:`\xi` jumps on the IVa/IVb
        boundary (unless :math:`\beta = 1/2`), see ``docs/phases.md``.
    universal : bool
        Whether :math:`\xi = 1/2` in the phase (Ib, III, IVb).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> ex = vs.phase_exponents(0.7, 0.7)
    >>> ex.phase, round(ex.xi, 4), round(ex.eta, 4), ex.universal
    ('III', 0.5, 0.6429, True)
    """

    alpha: float
    beta: float
    phase: str
    xi: float
    eta: float
    dominant_terms: tuple[str, ...]
    tradeoff: str
    xi_formula: str
    eta_formula: str
    xi_status: str
    eta_status: str
    region_status: str
    on_boundary: bool
    neighbours: tuple[str, ...]
    xi_limits: Mapping[str, float] = field(repr=False)
    eta_limits: Mapping[str, float] = field(repr=False)
    universal: bool = False


def phase_exponents(alpha: float, beta: float, *, tol: float = 1e-12) -> PhaseExponents:
    r"""Compute-optimal exponents :math:`\xi, \eta` of the PLRF model (docs/theory.md, Eq. (11.3)).

    At fixed compute :math:`f = d\,r` (:math:`B = 1`) the loss :math:`\mathcal P(f/d, d)`
    is minimised over the model size :math:`d`; then :math:`d^\star \propto f^{\xi}` and
    :math:`\mathcal P^\star \propto f^{-\eta}`.

    Parameters
    ----------
    alpha : float
        Data exponent, :math:`\alpha > 0`.
    beta : float
        Target exponent, :math:`2(\alpha+\beta) > 1`.
    tol : float, default 1e-12
        Boundary tolerance (see :func:`phase_info`).

    Returns
    -------
    PhaseExponents
        :math:`\xi`, :math:`\eta`, the phase, dominant terms, trade-off, provenance and the
        one-sided limits on boundaries.

    Raises
    ------
    ValueError
        Outside the admissible region.

    Notes
    -----
    With :math:`T = \gamma r`, :math:`g = (2\alpha+2\beta-1)/(2\alpha)` and
    :math:`h = 2 - 1/(2\alpha)`, the four terms scale as :math:`F_{pp} \asymp T^{-g}`,
    noise :math:`\asymp \gamma T^{-h}`, :math:`F_{ac} \asymp d^{-1}T^{-(1-1/(2\alpha))}`
    (:math:`2\alpha>1`) or :math:`\asymp d^{-2\alpha}` (:math:`2\alpha<1`),
    :math:`F_0 \asymp d^{-2\alpha+\max(0, 1-2\beta)}`, all but :math:`F_0` cut off at
    :math:`T \asymp d^{2\alpha}`; :math:`\gamma \asymp 1` (:math:`2\alpha>1`) or
    :math:`\gamma \asymp d^{2\alpha-1}` (:math:`2\alpha<1`, :math:`v \propto d`).  Balancing
    the two terms named in ``tradeoff`` gives the exponents (docs/theory.md, Eqs. (11.2)-(11.3);
    all [derived]).  :math:`\eta` is continuous across every boundary; :math:`\xi` jumps across
    IVa/IVb because the noise term at fixed :math:`f` scales as
    :math:`d^{4-2\alpha-1/\alpha}`, which changes from decreasing to increasing in
    :math:`d` at :math:`\alpha = 1-1/\sqrt2`, where the optimum in :math:`d` is degenerate.
    The exponents are confirmed numerically by :func:`numerical_phase_exponents`.

    Examples
    --------
    >>> from volterra_sgd.phases import phase_exponents
    >>> ex = phase_exponents(0.7, 0.6)
    >>> ex.phase, round(ex.xi, 4), round(ex.eta, 4), ex.dominant_terms
    ('II', 0.4615, 0.6154, ('Fpp', 'Fac', 'Fo'))
    >>> ex = phase_exponents(0.7, 0.5)          # on the Ia/II boundary
    >>> ex.phase, ex.on_boundary, ex.neighbours, round(ex.eta, 4)
    ('II', True, ('Ia', 'II'), 0.5833)
    """
    info = phase_info(alpha, beta, tol=tol)
    a, b = info.alpha, info.beta
    desc = PHASE_DESCRIPTIONS[info.phase]
    xi_lim = MappingProxyType({p: float(_XI[p](a, b)) for p in info.neighbours})
    eta_lim = MappingProxyType({p: float(_ETA[p](a, b)) for p in info.neighbours})
    return PhaseExponents(
        alpha=a, beta=b, phase=info.phase, xi=xi_lim[info.phase], eta=eta_lim[info.phase],
        dominant_terms=desc.dominant_terms, tradeoff=desc.tradeoff, xi_formula=desc.xi,
        eta_formula=desc.eta, xi_status=desc.exponent_status,
        eta_status=desc.exponent_status, region_status=desc.region_status,
        on_boundary=info.on_boundary, neighbours=info.neighbours, xi_limits=xi_lim,
        eta_limits=eta_lim, universal=desc.universal)


def _exponent_arrays(alpha, beta, tol: float = 1e-12):
    """Vectorised (code, xi, eta) on a grid; NaN outside the admissible region."""
    code = _phase_codes(alpha, beta, tol)
    a, b = np.broadcast_arrays(np.asarray(alpha, float), np.asarray(beta, float))
    xi = np.full(a.shape, np.nan)
    eta = np.full(a.shape, np.nan)
    with np.errstate(all="ignore"):
        for i, p in enumerate(PHASES):
            m = code == i
            xi[m] = _XI[p](a[m], b[m])
            eta[m] = _ETA[p](a[m], b[m])
    return code, xi, eta


# ============================================================= special-function helpers
# Bernoulli numbers B_2, B_4, B_6, B_8, B_10 divided by (2k)!.
_EM_COEF = (1 / 6 / 2, -1 / 30 / 24, 1 / 42 / 720, -1 / 30 / 40320, 5 / 66 / 3628800)


def _power_sum(s: float, a: int, b: float, scale: float = 1.0) -> float:
    r""":math:`\sum_{j=a}^{b} (j/\text{scale})^{-s}` for ``a >= 1``, ``b`` an integer or ``inf``.

    The first 2000 terms are summed directly, the rest by Euler--Maclaurin (relative error
    below 1e-15 for moderate ``s``).  ``b = inf`` requires ``s > 1``.  ``scale = a`` keeps
    every term in [0, 1] for huge ``s`` (no underflow of the whole sum).
    """
    if b < a:
        return 0.0
    head_end = min(b, a + 1999)
    j = np.arange(a, int(head_end) + 1, dtype=np.float64)[::-1]
    total = float(np.sum((j / scale) ** (-s)))
    if head_end == b:
        return total
    A = float(a + 2000)
    fA = (A / scale) ** (-s)                      # (A/scale)^(-s)
    if math.isinf(b):
        if not s > 1.0:
            raise ValueError(f"sum_j j^(-s) diverges for s = {s} <= 1 and v = inf")
        integral = A * fA / (s - 1.0)
        fb = 0.0
    else:
        b = float(b)
        fb = (b / scale) ** (-s)
        integral = (scale * math.log(b / A) if s == 1.0
                    else (A * fA - b * fb) / (s - 1.0))
    total += integral + 0.5 * (fA + fb)
    # sum_k B_2k/(2k)! (f^(2k-1)(b) - f^(2k-1)(A)), f^(m)(x) = (-1)^m (s)_m x^(-m) (x/scale)^(-s)
    rising = s  # (s)_1
    for k, c in enumerate(_EM_COEF, start=1):
        m = 2 * k - 1
        if k > 1:
            rising *= (s + m - 2) * (s + m - 1)
        dA = -rising * A ** (-m) * fA
        db = 0.0 if math.isinf(b) else -rising * b ** (-m) * fb
        total += c * (db - dA)
    return total


def _upper_gamma(s: float, x) -> np.ndarray:
    r"""Upper incomplete Gamma :math:`\Gamma(s, x)` for real ``s`` and ``x > 0`` (vector x)."""
    x = np.asarray(x, dtype=np.float64)
    k = max(0, math.ceil(-s))
    s0 = s + k
    with np.errstate(over="ignore", under="ignore"):
        G = exp1(x) if s0 == 0.0 else gammaincc(s0, x) * gamma(s0)
        for i in range(1, k + 1):
            si = s0 - i
            G = (G - x ** si * np.exp(-x)) / si
    return G


def _log_upper_gamma(s: float, x) -> np.ndarray:
    r""":math:`\log\Gamma(s, x)`, finite for large ``x`` (asymptotic series for x > 500)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    big = x > 500.0
    with np.errstate(divide="ignore"):
        # s < 0, x -> 0: Gamma(s, x) = x^s/(-s) (1 + O(x^-s) + O(x)); use it where x^s would
        # overflow (the corrections are then below 1e-250)
        if s < 0.0:
            tiny = s * np.log(x) > 600.0
            out[tiny] = s * np.log(x[tiny]) - math.log(-s)
        else:
            tiny = np.zeros(x.shape, dtype=bool)
        small = ~big & ~tiny
        out[small] = np.log(_upper_gamma(s, x[small]))
    xb = x[big]
    if xb.size:
        term = np.ones_like(xb)
        acc = np.ones_like(xb)
        for kk in range(1, 12):
            term = term * (s - kk) / xb
            acc = acc + term
        out[big] = (s - 1.0) * np.log(xb) - xb + np.log(acc)
    return out


def _zeta_v(s: float, v: float) -> float:
    r""":math:`\sum_{j \le v} j^{-s}` (``s > 1``)."""
    if math.isinf(v):
        return float(zeta(s))
    return _power_sum(s, 1, v)


# ======================================================================== asymptotics
def kappa(alpha: float, v_over_d: float = math.inf) -> float:
    r"""Scale :math:`\kappa = \tau/d^{2\alpha}` of the limit level for large :math:`d` (Eq. (6.10)).

    :math:`\kappa` solves :math:`\int_0^{v/d} \kappa/(\kappa + u^{2\alpha})\,du = 1`, the
    continuum limit of the :math:`\tau` equation :math:`\sum_{j\le v}\tau/(j^{2\alpha}+\tau)
    = d` [authors' code].  For :math:`v/d \to \infty` (needs :math:`2\alpha > 1`),
    :math:`\kappa = c^{-2\alpha}` with :math:`c = (\pi/2\alpha)/\sin(\pi/2\alpha)`.

    Parameters
    ----------
    alpha : float
        :math:`\alpha > 0`.
    v_over_d : float, default inf
        Ratio :math:`v/d > 1`; ``inf`` requires :math:`2\alpha > 1`.

    Returns
    -------
    float
        :math:`\kappa`.

    Raises
    ------
    ValueError
        If ``v_over_d <= 1`` or ``v_over_d = inf`` with :math:`2\alpha \le 1`.

    Examples
    --------
    >>> from volterra_sgd.phases import kappa
    >>> round(kappa(1.0), 5), round(kappa(0.7), 5), round(kappa(1.0, 4.0), 4)
    (0.40528, 0.22852, 0.5152)
    """
    a = as_real(alpha, "alpha", lower=0.0)
    rho = as_real(v_over_d, "v_over_d", lower=1.0) if not (
        isinstance(v_over_d, (int, float)) and math.isinf(v_over_d)) else math.inf
    if math.isinf(rho):
        if not 2.0 * a > 1.0:
            raise ValueError(f"v_over_d = inf requires 2*alpha > 1; got alpha={a!r}")
        c = (math.pi / (2 * a)) / math.sin(math.pi / (2 * a))
        return c ** (-2.0 * a)
    # int_0^rho k/(k + u^(2a)) du in the variable t = log u (smooth for every alpha)
    def lhs(logk):
        k = math.exp(logk)
        val, _ = integrate.quad(lambda t: k * math.exp(t) / (k + math.exp(2 * a * t)),
                                -math.inf, math.log(rho), limit=200, epsabs=0.0, epsrel=1e-13)
        return val - 1.0
    return math.exp(optimize.brentq(lhs, -40.0, 40.0, xtol=1e-15, rtol=1e-15))


def _limit_integral(alpha: float, beta: float, k: float, rho: float) -> float:
    r""":math:`\int_0^\rho u^{-2\beta}/(k + u^{2\alpha})\,du` for :math:`2\beta < 1`."""
    e = 1.0 - 2.0 * beta
    if math.isinf(rho):
        p = e / (2 * alpha)
        return k ** (p - 1.0) * (math.pi / (2 * alpha)) / math.sin(math.pi * p)
    # substitute t = u^(1-2beta): integrand becomes smooth, dt/(e (k + t^(2a/e)))
    val, _ = integrate.quad(lambda t: 1.0 / (k + t ** (2 * alpha / e)), 0.0, rho ** e,
                            limit=200, epsabs=0.0, epsrel=1e-12)
    return val / e


def _limit_loss_from_tau(alpha: float, beta: float, v: float, tau: float) -> float:
    r""":math:`F_0 = \sum_{j\le v} j^{-2(\alpha+\beta)}/(1 + \tau j^{-2\alpha})` (Eq. (6.4))."""
    if math.isinf(tau):
        return 0.0
    s = 2.0 * (alpha + beta)
    J = max(1000, math.ceil((2.0 * tau) ** (1.0 / (2.0 * alpha))))
    if not math.isinf(v):
        J = min(J, int(v))
    if J > 50_000_000:
        raise ValueError(f"finite-d limit loss needs {J} direct terms (d too large); use "
                         "limit='asymptotic'")
    parts = []
    for start in range(1, J + 1, 1 << 20):
        j = np.arange(start, min(J, start + (1 << 20) - 1) + 1, dtype=np.float64)[::-1]
        parts.append(float(np.sum(j ** (-s) / (1.0 + tau * j ** (-2.0 * alpha)))))
    total = math.fsum(parts)
    if not math.isinf(v) and J >= v:
        return total
    tail = []
    x, base = tau * (J + 1.0) ** (-2.0 * alpha), (J + 1.0) ** (-s)
    for n in range(400):   # geometric in x = tau (J+1)^(-2 alpha) <= 1/2; scaled: no overflow
        term = (-x) ** n * base * _power_sum(s + 2.0 * alpha * n, J + 1, v, scale=J + 1.0)
        tail.append(term)
        if abs(term) < 1e-18 * abs(total):
            break
    return total + math.fsum(tail)


def _resolvent_sum(s: float, alpha: float, c: float, v: float) -> float:
    r""":math:`\sum_{j\le v} j^{-s}/(1 - c\,j^{-2\alpha})` for :math:`0 \le c < 1`.

    Head :math:`j \le J` summed directly, tail as :math:`\sum_n c^n \sum_{j>J}
    j^{-s-2\alpha n}` (ratio :math:`c J^{-2\alpha} \le 1/2`).  ``v = inf`` needs ``s > 1``.
    """
    J = max(1000, math.ceil((2.0 * c) ** (1.0 / (2.0 * alpha)))) if c > 0 else 1000
    if not math.isinf(v):
        J = min(J, int(v))
    if J > 50_000_000:  # pragma: no cover - only for alpha -> 0
        raise ValueError("alpha too small for the closed-form sums")
    j = np.arange(1, J + 1, dtype=np.float64)[::-1]
    total = float(np.sum(j ** (-s) / (1.0 - c * j ** (-2.0 * alpha))))
    if math.isinf(v) or J < v:
        for n in range(400):
            term = c ** n * _power_sum(s + 2.0 * alpha * n, J + 1, v)
            total += term
            if abs(term) < 1e-18 * abs(total):
                break
    return total


def _kernel_norm_closed_form(alpha: float, v: float, lr: float, B: int) -> float:
    r"""Closed-form kernel norm (docs/theory.md, Eq. (3.9); ``inf`` if unstable).

    :math:`\frac{\gamma}{2}\sum_{j\le v} \lambda_j/(1-\gamma(B+1)\lambda_j/2)`,
    :math:`\lambda_j = j^{-2\alpha}`.
    """
    c = lr * (B + 1) / 2.0
    if c >= 1.0:
        return math.inf
    return lr / 2.0 * _resolvent_sum(2.0 * alpha, alpha, c, v)


def _max_stable_lr(alpha: float, v: float, B: int) -> float:
    hi = 2.0 / (B + 1) * (1.0 - 1e-12)
    if _kernel_norm_closed_form(alpha, v, hi, B) < 1.0:
        return hi
    return optimize.brentq(lambda g: _kernel_norm_closed_form(alpha, v, g, B) - 1.0,
                           1e-300, hi, xtol=1e-300, rtol=1e-13)


def _cumulative_weight(alpha: float, beta: float, v: float, T: np.ndarray, lr: float,
                       B: int) -> np.ndarray:
    r""":math:`2\gamma B\sum_{s<r}F_{pp}(s)` for :math:`T \gg 1` (two-term asymptotics).

    :math:`\sum_{s<r}F_{pp}(s) = \sum_j j^{-2(\alpha+\beta)}(1-q_j^r)/(1-q_j)
    \approx [\tilde c_\beta - \Gamma(p)T^{-p}/(2\alpha)]/(2\gamma B)`, with
    :math:`p = (2\beta-1)/(2\alpha)` and the exact large-:math:`r` constant
    :math:`\tilde c_\beta = \sum_{j\ge1} j^{-2\beta}/(1-\gamma(B+1)j^{-2\alpha}/2)`
    (for :math:`2\beta<1` with :math:`\sum_j j^{-2\beta}` replaced by the analytically
    continued :math:`\zeta(2\beta)`).  The sum runs over all :math:`j` even for finite
    :math:`v`: for :math:`T \ll v^{2\alpha}` the terms :math:`j > v` cancel between the two
    parts.  The :math:`p \to 0` limit is used on :math:`2\beta = 1`.  Clipped at 0.
    """
    p = (2.0 * beta - 1.0) / (2.0 * alpha)
    c = lr * (B + 1) / 2.0
    correction = c * _resolvent_sum(2.0 * (alpha + beta), alpha, c, math.inf)
    with np.errstate(divide="ignore", over="ignore"):
        if p == 0.0:
            S = _EULER_GAMMA * (1.0 + 1.0 / (2.0 * alpha)) + np.log(T) / (2.0 * alpha)
        else:
            S = float(zeta(2.0 * beta)) - gamma(p) * T ** (-p) / (2.0 * alpha)
    return np.maximum(S + correction, 0.0)


_STATUS_PARTS = MappingProxyType({
    "Fo": "derived (tau equation, docs/theory.md Eq. (6.4); = authors' code tt_dbetacirc_VD)",
    "Fpp": "authors' code + derived (docs/theory.md Eq. (10.2))",
    "Fac": ("authors' code + derived for 2*alpha > 1; derived for 2*alpha < 1 "
            "(docs/theory.md Eq. (10.4))"),
    "Kpp": "authors' code + derived (docs/theory.md Eq. (10.3))",
    "noise": "derived (docs/theory.md Eq. (10.6))",
    "loss_sum": "authors' code (sum-form variant) + derived check (docs/theory.md Eq. (10.7))",
    "loss_max": "authors' code (max form, docs/theory.md Eq. (10.7))",
    "kernel_norm": "authors' code (tt_knorm_limit with tr Khat ~ tr D, docs/theory.md Eq. (3.9))",
})

_KEYS = ("Fo", "Fpp", "Fac", "Kpp", "noise", "loss_sum", "loss_max")


@dataclass(frozen=True, eq=False)
class AsymptoticParts(Mapping):
    r"""Closed-form asymptotic parts of the loss curve (see :func:`asymptotic_parts`).

    A read-only mapping with keys ``"Fo"``, ``"Fpp"``, ``"Fac"``, ``"Kpp"``, ``"noise"``,
    ``"loss_sum"``, ``"loss_max"``; every value is an array aligned with ``r``.

    Attributes
    ----------
    r : ndarray of int64
        Iterations.
    T : ndarray
        Effective time :math:`T = 2\gamma B r`.
    Fo : ndarray
        Limit level :math:`F_0` (constant in ``r``).
    Fpp : ndarray
        Pure-point (outlier) part of the forcing.
    Fac : ndarray
        Absolutely continuous (bulk) part of the forcing; 0 when :math:`2\beta \le 1`
        (dominated by :math:`F_{pp}`, as in the authors' code).
    Kpp : ndarray
        Pure-point part of the kernel (SGD noise), including the factor :math:`\gamma^2 B`.
    noise : ndarray
        SGD-noise term :math:`K_{pp}(r)\sum_{s<r}F_{pp}(s)` of the loss.
    Fpp_cumulative : ndarray
        :math:`\sum_{s<r} F_{pp}(s) \approx S(T)/(2\gamma B)` (two-term asymptotics).
    loss_sum : ndarray
        :math:`[F_0 + F_{pp} + F_{ac} + \text{noise}]/(1-\|K\|)` (Eq. (10.7), sum form).
    loss_max : ndarray
        :math:`\max(F_0, F_{pp}, F_{ac}, \text{noise})/(1-\|K\|)` (Eq. (10.7), max form).
    kernel_norm : float
        :math:`\|K\| \approx \frac{\gamma}{2}\sum_{j\le v}\lambda_j/(1-\gamma(B+1)\lambda_j/2)`.
    ranges : Mapping[str, tuple of float]
        For each key, the window :math:`(T_{lo}, T_{hi})` in which the closed form is
        claimed (see :func:`asymptotic_parts`, Notes).
    status : Mapping[str, str]
        Status of each formula (the tags of docs/theory.md).
    model : PLRF
    learning_rate : float
    batch_size : int
    limit : str
        How ``Fo`` was computed ("tau" or "asymptotic").
    cutoff : bool
        Whether the pure-point and bulk sums were truncated at :math:`j \le d`.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> asym = vs.asymptotic_parts(model, [100, 1000], learning_rate=model.reference_learning_rate(0.5))
    >>> asym["Fo"].shape, asym.limit, bool(asym["loss_max"][0] <= asym["loss_sum"][0])
    ((2,), 'tau', True)
    """

    r: np.ndarray
    T: np.ndarray
    Fo: np.ndarray
    Fpp: np.ndarray
    Fac: np.ndarray
    Kpp: np.ndarray
    noise: np.ndarray
    Fpp_cumulative: np.ndarray
    loss_sum: np.ndarray
    loss_max: np.ndarray
    kernel_norm: float
    ranges: Mapping[str, tuple[float, float]]
    status: Mapping[str, str]
    model: PLRF
    learning_rate: float
    batch_size: int
    limit: str
    cutoff: bool

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in _KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)

    def __repr__(self) -> str:
        return (f"AsymptoticParts(model={self.model!r}, learning_rate={self.learning_rate!r}, "
                f"batch_size={self.batch_size}, n_r={self.r.size}, "
                f"kernel_norm={self.kernel_norm:.6g}, limit={self.limit!r}, "
                f"cutoff={self.cutoff})")


def _ro(a) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def asymptotic_parts(model: PLRF, r, *, learning_rate: float, batch_size: int = 1,
                     limit: str = "tau", cutoff: bool = False) -> AsymptoticParts:
    r"""Closed-form asymptotics of :math:`F_0, F_{pp}, F_{ac}, K_{pp}` and the approximate loss.

    Implements docs/theory.md, Eqs. (10.1)-(10.8) (with the Gamma-function constants).  With
    :math:`T = 2\gamma B r`, :math:`g = 1 + (2\beta-1)/(2\alpha)`,
    :math:`h = 2 - 1/(2\alpha)`, :math:`c_\beta = \sum_{j\le v} j^{-2\beta}`:

    * :math:`F_{pp}(r) \approx \frac{1}{2\alpha}\Gamma(g)\,T^{-g}`;
    * :math:`K_{pp}(r) \approx \gamma^2 B\,\frac{1}{2\alpha}\Gamma(h)\,T^{-h}`
      (:math:`\alpha > 1/4`; for :math:`\alpha \le 1/4` the bulk plateau
      :math:`\gamma^2 B\sum_{j\le d} j^{-4\alpha}`);
    * :math:`F_{ac}(r) \approx \frac{c_\beta}{2\alpha d}\Gamma(1-\tfrac1{2\alpha})
      T^{-(1-1/(2\alpha))}` for :math:`2\alpha>1, 2\beta>1`;
      :math:`\frac{c_\beta d^{-2\alpha}}{1-2\alpha}\max\big(0, 1 -
      (T/d^{2\alpha})^{(1-2\alpha)/(2\alpha)}\big)` for :math:`2\alpha<1, 2\beta>1`;
      0 for :math:`2\beta \le 1`;
    * :math:`F_0 = \sum_{j\le v} j^{-2(\alpha+\beta)}/(1+\tau j^{-2\alpha})` with
      :math:`\tau` from :func:`volterra_sgd.resolvent.tau` (``limit="tau"``, finite
      :math:`d`), or its large-:math:`d` form :math:`c_\beta/(\kappa d^{2\alpha})`
      (:math:`2\beta>1`), :math:`d^{1-2\alpha-2\beta}\int_0^{v/d}u^{-2\beta}/(\kappa +
      u^{2\alpha})du` (:math:`2\beta<1`) with :math:`\kappa` from :func:`kappa`
      (``limit="asymptotic"``);
    * noise :math:`= K_{pp}(r)\sum_{s<r}F_{pp}(s)` with :math:`\sum_{s<r}F_{pp}(s) \approx
      [\zeta_v(2\beta) - \Gamma(p)T^{-p}/(2\alpha)]/(2\gamma B)`,
      :math:`p = (2\beta-1)/(2\alpha)`;
    * :math:`\|K\| \approx \frac\gamma2\sum_{j\le v}\lambda_j/(1-\gamma(B+1)\lambda_j/2)`,
      :math:`\lambda_j = j^{-2\alpha}`;
    * ``loss_sum`` :math:`= (F_0+F_{pp}+F_{ac}+\text{noise})/(1-\|K\|)`, ``loss_max``
      :math:`= \max(\dots)/(1-\|K\|)`.

    Parameters
    ----------
    model : PLRF
        The model, :math:`2(\alpha+\beta) > 1`; ``v = inf`` is allowed.
    r : array_like of int
        Non-decreasing iterations.  The closed forms are meant for :math:`T \gg 1`; at
        ``r = 0`` the power laws are infinite.
    learning_rate : float
        :math:`\gamma > 0`.
    batch_size : int, default 1
        :math:`B` (gradients summed over the batch).
    limit : {"tau", "asymptotic"}, default "tau"
        How :math:`F_0` is computed (see above).  ``"tau"`` needs
        :mod:`volterra_sgd.resolvent` and :math:`d \lesssim 10^7`.
    cutoff : bool, default False
        If True, the outlier and bulk sums are truncated at :math:`j \le d` (the
        deterministic surrogate :math:`\lambda_j = j^{-2\alpha}`, weights
        :math:`j^{-2\beta} + c_\beta/d`, :math:`j \le d`, of the authors' code): every power
        :math:`T^{-s}\Gamma(s)` becomes :math:`T^{-s}\Gamma(s, T/d^{2\alpha})`, which
        switches the terms off for :math:`T \gg d^{2\alpha}` and covers :math:`2\alpha<1`
        and :math:`\alpha \le 1/4` with one formula.  This is the four-term model used by
        :func:`numerical_phase_exponents`.

    Returns
    -------
    AsymptoticParts
        Mapping of arrays aligned with ``r`` plus the kernel norm, ranges and provenance.

    Raises
    ------
    ValueError
        If :math:`2(\alpha+\beta) \le 1`, ``limit`` is unknown, or ``limit="asymptotic"``
        on :math:`2\beta = 1` (log-divergent constants) or with ``v = inf`` and
        :math:`2\alpha<1`.
    UnstableLearningRateError
        If :math:`\gamma(B+1) \ge 2` or the kernel norm is :math:`\ge 1`.
    ImportError
        With ``limit="tau"`` if :mod:`volterra_sgd.resolvent` is not available.

    Notes
    -----
    Validity windows, in ``ranges`` (docs/theory.md, Sec. 10; determined numerically, see
    ``docs/phases.md``).  :math:`F_{pp}` agrees with the exact sum
    :math:`\sum_{j\le v} j^{-2(\alpha+\beta)}q(j^{-2\alpha})^r` to 1% for
    :math:`T_{lo} \le T \le T_{hi}`, :math:`T_{lo} = \max\big(\frac{\alpha+\beta}{\alpha}
    (3+1.5\alpha)^{2\alpha}, 100\gamma(B-1)g(g+1)\big)`,
    :math:`T_{hi} = v^{2\alpha}(0.005\,\Gamma(g+1))^{1/g}`: the lower edge puts the peak
    index :math:`j^\star = (\alpha T/(\alpha+\beta))^{1/(2\alpha)}` of the sum at
    :math:`3 + 1.5\alpha` or more (sum = integral to 0.5%) and bounds the
    :math:`q^r` vs :math:`e^{-T\lambda}` correction :math:`\gamma(B-1)g(g+1)/(2T)` by 0.5%;
    the upper edge bounds the missing mass :math:`j > v` by 0.5%.  :math:`K_{pp}` agrees
    with :math:`\gamma^2 B\sum_{j\le v}j^{-4\alpha}q(j^{-2\alpha})^r` to 1% in the same
    window with :math:`g \to h` and :math:`(\alpha+\beta)/\alpha \to 2`
    (:math:`\alpha > 1/4`).  As parts of the spectral decomposition they also need
    :math:`T \lesssim d^{2\alpha}` (outliers exhausted beyond), which caps every
    :math:`T_{hi}`.  :math:`F_{ac}` and the noise are order-of-magnitude statements
    (":math:`\asymp`") for :math:`1 \ll T \lesssim d^{2\alpha}`.  Against the exact deterministic
    curve the approximate loss stayed within factors 0.76-1.60 (sum form with ``cutoff=True``)
    and 3.9 (max form) for d = 40-500 (docs/theory.md, Sec. 10; docs/phases.md).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> from volterra_sgd.phases import asymptotic_parts
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> gamma = model.reference_learning_rate(0.5)
    >>> asym = asymptotic_parts(model, [100, 1000, 10000], learning_rate=gamma)
    >>> sorted(asym)
    ['Fac', 'Fo', 'Fpp', 'Kpp', 'loss_max', 'loss_sum', 'noise']
    >>> f"{asym['Fo'][0]:.4e}", round(asym.kernel_norm, 3)
    ('1.5355e-04', 0.32)
    >>> bool(asym["loss_sum"][0] > asym["loss_sum"][2] > asym["Fo"][2])
    True
    """
    if not isinstance(model, PLRF):
        raise TypeError(f"model must be a PLRF; got {type(model).__name__}")
    alpha, beta, v, d = model.alpha, model.beta, model.v, model.d
    if not 2.0 * (alpha + beta) > 1.0:
        raise ValueError("asymptotic_parts needs 2*(alpha + beta) > 1; got "
                         f"alpha={alpha!r}, beta={beta!r}")
    if limit not in ("tau", "asymptotic"):
        raise ValueError(f"limit must be 'tau' or 'asymptotic'; got {limit!r}")
    if not isinstance(cutoff, (bool, np.bool_)):
        raise TypeError(f"cutoff must be a bool; got {cutoff!r}")
    r = as_iterations(r)
    lr = as_positive_real(learning_rate, "learning_rate")
    B = as_int(batch_size, "batch_size")
    kn = _kernel_norm_closed_form(alpha, v, lr, B)
    if not kn < 1.0:
        gmax = _max_stable_lr(alpha, v, B)
        raise UnstableLearningRateError(
            f"learning_rate={lr!r} is unstable for batch_size={B} (closed-form kernel norm "
            f"{kn:.6g} >= 1 or gamma*(B+1) >= 2); the largest stable learning rate is "
            f"{gmax:.10g}", gmax)

    a2 = 2.0 * alpha
    two_beta = 2.0 * beta
    g = (a2 + two_beta - 1.0) / a2
    h = 2.0 - 1.0 / a2
    s_ac = 1.0 - 1.0 / a2
    T = 2.0 * lr * B * r.astype(np.float64)
    n_pp = d if math.isinf(v) else min(d, int(v))
    edge = float(n_pp) ** a2           # T at which the outliers are exhausted
    x = T / edge
    c_beta = _zeta_v(two_beta, v) if two_beta > 1.0 else math.nan

    # ---- F0
    if limit == "tau":
        from .resolvent import tau as _tau  # lazy: optional dependency inside the package

        F0 = _limit_loss_from_tau(alpha, beta, v, _tau(model))
    else:
        rho = v / d
        if abs(two_beta - 1.0) <= 1e-12:
            raise ValueError("limit='asymptotic' has no closed form at 2*beta = 1 "
                             "(log-divergent constant); use limit='tau'")
        if math.isinf(rho) and not a2 > 1.0:  # pragma: no cover - PLRF forbids it
            raise ValueError("limit='asymptotic' with v = inf needs 2*alpha > 1")
        k = kappa(alpha, rho) if rho > 1.0 else math.inf
        if math.isinf(k):       # v <= d: the whole target is learnable
            F0 = 0.0
        elif two_beta > 1.0:
            F0 = c_beta / (k * d ** a2)
        else:
            F0 = d ** (1.0 - a2 - two_beta) * _limit_integral(alpha, beta, k, rho)

    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        # ---- Fpp, Kpp, Fac
        if cutoff:
            Fpp = T ** (-g) * _upper_gamma(g, x) / a2
            Kpp = lr * lr * B * T ** (-h) * _upper_gamma(h, x) / a2
            Fac = (c_beta / (a2 * d) * T ** (-s_ac) * _upper_gamma(s_ac, x)
                   if two_beta > 1.0 else np.zeros_like(T))
        else:
            Fpp = gamma(g) / a2 * T ** (-g)
            if h > 0.0:
                Kpp = lr * lr * B * gamma(h) / a2 * T ** (-h)
            else:
                Kpp = np.full_like(T, lr * lr * B * _power_sum(2.0 * a2, 1, n_pp))
            if two_beta <= 1.0:
                Fac = np.zeros_like(T)
            elif a2 > 1.0:
                Fac = c_beta / (a2 * d) * gamma(s_ac) * T ** (-s_ac)
            elif a2 < 1.0:
                Fac = (c_beta * d ** (-a2) / (1.0 - a2)
                       * np.maximum(0.0, 1.0 - x ** (-s_ac)))
            else:
                Fac = c_beta / (a2 * d) * np.maximum(0.0, np.log(1.0 / x))
        Fpp = np.where(T > 0, Fpp, np.inf)
        Kpp = np.where(T > 0, Kpp, np.inf) if (cutoff or h > 0.0) else Kpp
        Fac = np.where(T > 0, Fac, np.inf) if two_beta > 1.0 else Fac
        cum = _cumulative_weight(alpha, beta, v, T, lr, B) / (2.0 * lr * B)
        noise = np.where(cum > 0, Kpp * cum, 0.0)
        Fo = np.full_like(T, F0)
        loss_sum = (Fo + Fpp + Fac + noise) / (1.0 - kn)
        loss_max = np.maximum.reduce([Fo, Fpp, Fac, noise]) / (1.0 - kn)

    ranges = _closed_form_ranges(alpha, beta, v, edge, lr, B)
    return AsymptoticParts(
        r=r, T=_ro(T), Fo=_ro(Fo), Fpp=_ro(Fpp), Fac=_ro(Fac), Kpp=_ro(Kpp), noise=_ro(noise),
        Fpp_cumulative=_ro(cum), loss_sum=_ro(loss_sum), loss_max=_ro(loss_max),
        kernel_norm=float(kn), ranges=ranges, status=_STATUS_PARTS, model=model,
        learning_rate=lr, batch_size=B, limit=limit, cutoff=bool(cutoff))


def _closed_form_ranges(alpha: float, beta: float, v: float, edge: float, lr: float,
                        B: int) -> Mapping:
    """Return the validity windows (T_lo, T_hi) of the closed forms (asymptotic_parts Notes)."""
    a2 = 2.0 * alpha
    g = (a2 + 2.0 * beta - 1.0) / a2
    h = 2.0 - 1.0 / a2
    peak = (3.0 + 1.5 * alpha) ** a2     # j* >= 3 + 1.5 alpha: sum = integral to 0.5%

    def v_edge(e):                       # missing mass j > v below 0.5%
        if math.isinf(v):
            return math.inf
        return float(v) ** a2 * (0.005 * gamma(e + 1.0)) ** (1.0 / e)

    fpp = (max((alpha + beta) / alpha * peak, 100.0 * lr * (B - 1) * g * (g + 1.0)),
           min(edge, v_edge(g)))
    if h > 0:
        kpp = (max(2.0 * peak, 100.0 * lr * (B - 1) * h * (h + 1.0)), min(edge, v_edge(h)))
    else:
        kpp = (1.0, edge)
    return MappingProxyType({
        "Fo": (0.0, math.inf), "Fpp": fpp, "Kpp": kpp, "Fac": (1.0, edge),
        "noise": (max(1.0, kpp[0]), edge), "loss_sum": (max(1.0, kpp[0]), math.inf),
        "loss_max": (max(1.0, kpp[0]), math.inf)})


# ===================================================== compute-optimal (four-term model)
class _FourTerm:
    """Log of the four-term approximate loss as a function of (log d, log f), B = 1.

    Independent of the closed-form exponents: built from the Eqs. (10.2)-(10.7) pieces with the
    j <= d cut-off (incomplete Gamma functions), gamma = g / sum_{j<=v} j^(-2 alpha),
    v = inf (2 alpha > 1) or v = rho d (2 alpha < 1), F0 from kappa.
    """

    def __init__(self, alpha, beta, g, rho):
        self.a, self.b, self.g, self.rho = alpha, beta, g, rho
        a2 = 2.0 * alpha
        self.a2 = a2
        self.gexp = (a2 + 2.0 * beta - 1.0) / a2
        self.h = 2.0 - 1.0 / a2
        self.s_ac = 1.0 - 1.0 / a2
        self.p = (2.0 * beta - 1.0) / a2
        if a2 > 1.0:
            self.log_lr_const = math.log(g / float(zeta(a2)))
            lr = g / float(zeta(a2))
            self.kn = _kernel_norm_closed_form(alpha, math.inf, lr, 1)
            k = kappa(alpha)
            rho_eff = math.inf
        else:
            self.kn = g / 2.0          # (gamma/2) tr D (1 + O(gamma)), gamma -> 0 with d
            k = kappa(alpha, rho)
            rho_eff = rho
        if not self.kn < 1.0:
            raise ValueError(f"learning-rate scale g={g} gives kernel norm {self.kn} >= 1")
        if 2.0 * beta > 1.0:
            self.c_beta = float(zeta(2.0 * beta))
            self.log_f0_const = math.log(self.c_beta / k)
            self.f0_power = -a2
        else:
            self.c_beta = math.nan
            self.log_f0_const = math.log(_limit_integral(alpha, beta, k, rho_eff))
            self.f0_power = 1.0 - a2 - 2.0 * beta
        self.zeta_2b = float(zeta(2.0 * beta))

    def log_lr(self, log_d):
        if self.a2 > 1.0:
            return np.full_like(log_d, self.log_lr_const)
        a2 = self.a2
        log_v = log_d + math.log(self.rho)
        trace = (np.exp(log_v * (1.0 - a2)) / (1.0 - a2) + float(zeta(a2))
                 + 0.5 * np.exp(-a2 * log_v))
        return math.log(self.g) - np.log(trace)

    def __call__(self, log_d, log_f):
        log_d = np.asarray(log_d, dtype=np.float64)
        a2 = self.a2
        llr = self.log_lr(log_d)
        log_T = math.log(2.0) + llr + log_f - log_d
        x = np.exp(np.minimum(log_T - a2 * log_d, 700.0))
        terms = [
            self.log_f0_const + self.f0_power * log_d,
            -math.log(a2) - self.gexp * log_T + _log_upper_gamma(self.gexp, x),
        ]
        log_kpp = 2.0 * llr - math.log(a2) - self.h * log_T + _log_upper_gamma(self.h, x)
        with np.errstate(divide="ignore", over="ignore"):
            if 2.0 * self.b > 1.0:
                terms.append(math.log(self.c_beta / a2) - log_d - self.s_ac * log_T
                             + _log_upper_gamma(self.s_ac, x))
                S = self.c_beta - gamma(self.p) * np.exp(-self.p * log_T) / a2
                log_S = np.log(np.maximum(S, 0.0))
            else:   # S = A T^|p| + zeta(2 beta), A = -Gamma(p)/(2 alpha) > 0, in log space
                log_A = math.log(-gamma(self.p) / a2)
                lead = log_A - self.p * log_T
                corr = self.zeta_2b * np.exp(-np.minimum(lead, 700.0))
                log_S = np.where(corr > -1.0, lead + np.log1p(np.maximum(corr, -1.0)), -np.inf)
            terms.append(log_kpp + log_S - math.log(2.0) - llr)
        out = np.logaddexp.reduce(np.array(terms), axis=0) - math.log1p(-self.kn)
        return np.where(np.isnan(out), np.inf, out)


def _check_four_term(alpha, beta, g, v_over_d):
    a, b = _check_admissible(alpha, beta)
    if abs(2.0 * a - 1.0) < 1e-9 or abs(2.0 * b - 1.0) < 1e-9:
        raise ValueError("the four-term model has log-divergent constants on 2*alpha = 1 and "
                         f"2*beta = 1; got alpha={a!r}, beta={b!r}")
    g = as_real(g, "g", lower=0.0, upper=1.0)
    rho = as_real(v_over_d, "v_over_d", lower=1.0)
    return _FourTerm(a, b, g, rho)


def four_term_loss(alpha: float, beta: float, d, flops, *, g: float = 0.5,
                   v_over_d: float = 4.0) -> np.ndarray:
    r"""Four-term approximate loss :math:`\mathcal P(f/d, d)` used for the compute optimum.

    :math:`\mathcal P = [F_0 + F_{pp} + F_{ac} + K_{pp}\sum_{s<r}F_{pp}]/(1-\|K\|)` at
    :math:`r = f/d`, :math:`B = 1`, with the :math:`j \le d` cut-off of
    :func:`asymptotic_parts` (``cutoff=True``), the large-:math:`d` limit level
    (:math:`\kappa`) and the learning rate :math:`\gamma = g/\sum_{j\le v} j^{-2\alpha}`,
    :math:`v = \infty` for :math:`2\alpha > 1` and :math:`v = (v/d)\,d` for
    :math:`2\alpha < 1` (docs/theory.md, Eqs. (10.7), (11.2)).  Evaluated in log space, so any
    :math:`d, f` up to about 1e300 work.

    Parameters
    ----------
    alpha, beta : float
        Admissible exponents, not on :math:`2\alpha = 1` or :math:`2\beta = 1`.
    d, flops : array_like
        Model size(s) and compute(s) :math:`f = d\,r` (broadcast together).
    g : float, default 0.5
        Learning-rate scale in (0, 1).
    v_over_d : float, default 4.0
        :math:`v/d`, used only when :math:`2\alpha < 1`.

    Returns
    -------
    ndarray
        :math:`\mathcal P(f/d, d)` (may underflow to 0 for astronomically large ``f``; use
        :func:`numerical_phase_exponents` for the optimum).

    Examples
    --------
    >>> from volterra_sgd.phases import four_term_loss
    >>> P = four_term_loss(1.0, 2.0, [1e3, 1e4, 1e6], 1e8)
    >>> bool(P[1] < P[0] and P[1] < P[2])       # an interior optimum near d ~ f^(1/2)
    True
    """
    model = _check_four_term(alpha, beta, g, v_over_d)
    d, f = np.broadcast_arrays(np.asarray(d, dtype=np.float64),
                               np.asarray(flops, dtype=np.float64))
    if np.any(d < 1) or np.any(f < d):
        raise ValueError("need 1 <= d <= flops (at least one step)")
    return np.exp(model(np.log(d), np.log(f)))


@dataclass(frozen=True)
class NumericalExponents:
    r"""Exponents fitted from the numerically minimised four-term loss.

    Attributes
    ----------
    alpha, beta : float
        The point.
    xi, eta : float
        Slopes of :math:`\log d^\star` and :math:`-\log\mathcal P^\star` against
        :math:`\log f` over the upper half of the compute window.
    xi_error, eta_error : float
        Convergence indicators: the change of each slope between the lower and the upper
        half of the window (small when the window is asymptotic).
    log10_flops, log10_d_star, log10_loss_star : ndarray
        The compute grid and the optimum at each compute.
    success : bool
        Whether every optimum was interior to the searched :math:`d` range.
    message : str
    g, v_over_d : float
        Model options used.

    Examples
    --------
    >>> from volterra_sgd.phases import numerical_phase_exponents, phase_exponents
    >>> num = numerical_phase_exponents(0.7, 0.6)
    >>> num.success, abs(num.eta - phase_exponents(0.7, 0.6).eta) < 1e-3
    (True, True)
    """

    alpha: float
    beta: float
    xi: float
    eta: float
    xi_error: float
    eta_error: float
    log10_flops: np.ndarray = field(repr=False)
    log10_d_star: np.ndarray = field(repr=False)
    log10_loss_star: np.ndarray = field(repr=False)
    success: bool = True
    message: str = "success"
    g: float = 0.5
    v_over_d: float = 4.0


def _optimum(model: _FourTerm, log_f: float, n_grid: int) -> tuple[float, float, bool]:
    grid = np.linspace(0.0, log_f, n_grid)
    vals = model(grid, log_f)
    i = int(np.argmin(vals))
    interior = 0 < i < n_grid - 1
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]
    res = optimize.minimize_scalar(lambda t: float(model(np.array([t]), log_f)[0]),
                                   bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-10 * max(1.0, log_f)})
    if res.fun <= vals[i]:
        return float(res.x), float(res.fun), interior
    return float(grid[i]), float(vals[i]), interior


def numerical_phase_exponents(alpha: float, beta: float, *,
                              log10_flops=(40.0, 120.0), num: int = 9, g: float = 0.5,
                              v_over_d: float = 4.0,
                              grid_points: int = 2000) -> NumericalExponents:
    r"""Fit :math:`\xi, \eta` by minimising the four-term approximate loss numerically.

    For each compute :math:`f` on a log grid, :math:`\log\mathcal P(f/d, d)` of
    :func:`four_term_loss` is minimised over :math:`\log d \in [0, \log f]` on a uniform
    grid of ``grid_points`` points, refined by bounded Brent search around the best grid
    point; then :math:`\log d^\star` and :math:`\log\mathcal P^\star` are fitted linearly in
    :math:`\log f`.  Nothing here uses the closed-form exponents of
    :func:`phase_exponents`, so comparing the two is a genuine check (docs/theory.md, Sec. 11,
    states 4-digit agreement).

    Parameters
    ----------
    alpha, beta : float
        Admissible exponents off the lines :math:`2\alpha = 1`, :math:`2\beta = 1`.
    log10_flops : tuple of float, default (40, 120)
        The compute window :math:`[\log_{10} f_{min}, \log_{10} f_{max}]`.  The slopes are
        fitted over its upper half; the default is far enough out for every phase
        (convergence is slowest in IVa and Ic, where two terms with close exponents compete).
    num : int, default 9
        Number of compute values (at least 4).
    g : float, default 0.5
        Learning-rate scale (:math:`\|K\| \approx g/2`).
    v_over_d : float, default 4.0
        :math:`v/d` for :math:`2\alpha < 1`.
    grid_points : int, default 2000
        Size of the :math:`\log d` grid.

    Returns
    -------
    NumericalExponents
        Fitted slopes with convergence indicators and the optimum path.

    Raises
    ------
    ValueError
        For inadmissible or boundary points (see :func:`four_term_loss`) or a bad window.

    Examples
    --------
    >>> from volterra_sgd.phases import numerical_phase_exponents
    >>> num = numerical_phase_exponents(1.25, 0.75, log10_flops=(20, 60), num=5)
    >>> round(num.xi, 3), round(num.eta, 3)           # phase II: 0.375, 0.75
    (0.375, 0.75)
    """
    model = _check_four_term(alpha, beta, g, v_over_d)
    num = as_int(num, "num", minimum=4)
    n_grid = as_int(grid_points, "grid_points", minimum=50)
    lo, hi = (as_real(t, "log10_flops") for t in log10_flops)
    if not 1.0 <= lo < hi <= 290.0:
        raise ValueError(f"log10_flops must satisfy 1 <= lo < hi <= 290; got ({lo}, {hi})")
    l10f = np.linspace(lo, hi, num)
    lf = l10f * math.log(10.0)
    opt = [_optimum(model, x, n_grid) for x in lf]
    log_d = np.array([o[0] for o in opt])
    log_p = np.array([o[1] for o in opt])
    interior = all(o[2] for o in opt)
    half = num // 2
    up = slice(half, num)
    lw = slice(0, half + 1)
    xi = float(np.polyfit(lf[up], log_d[up], 1)[0])
    eta = float(-np.polyfit(lf[up], log_p[up], 1)[0])
    xi_lo = float(np.polyfit(lf[lw], log_d[lw], 1)[0])
    eta_lo = float(-np.polyfit(lf[lw], log_p[lw], 1)[0])
    msg = "success" if interior else "an optimum sat on the edge of the searched d range"
    return NumericalExponents(
        alpha=model.a, beta=model.b, xi=xi, eta=eta, xi_error=abs(xi - xi_lo),
        eta_error=abs(eta - eta_lo), log10_flops=_ro(l10f),
        log10_d_star=_ro(log_d / math.log(10.0)), log10_loss_star=_ro(log_p / math.log(10.0)),
        success=interior, message=msg, g=model.g, v_over_d=model.rho)
