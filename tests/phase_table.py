"""Reference phase table, written BY HAND from docs/theory.md, Eq. (11.3) (not generated).

Nothing here imports volterra_sgd.  Each phase is a region predicate (strict
inequalities, interior only) and the closed forms of xi (d* ~ f^xi) and eta
(P* ~ f^-eta) copied from the table of Eq. (11.3):

| phase | region                   | xi                          | eta                            |
|-------|--------------------------|-----------------------------|--------------------------------|
| Ia    | 2a>1, 2b<1               | 1/(2a+1)                    | (2a+2b-1)/(2a+1)               |
| II    | 2a>1, 2b>1, b<a          | b/(a+b)                     | 1 - 1/(2(a+b))                 |
| III   | 2a>1, b>a                | 1/2                         | 1 - 1/(4a)                     |
| Ib    | 2a<1, 2b<1, 2(a+b)>1     | 1/2                         | a+b-1/2                        |
| Ic    | a<1/4, 2b>1              | (2a+2b-1)/(2(3a+2b-1-2ab))  | a(2a+2b-1)/(3a+2b-1-2ab)       |
| IVa   | 1/4<a<1-1/sqrt2, 2b>1    | (b-a)/(2b-a-2ab)            | (1-2a)(2a+2b-1)/(2(2b-a-2ab))  |
| IVb   | 1-1/sqrt2<a<1/2, 2b>1    | 1/2                         | a                              |

Plus the hand-computed numbers of the alpha = 0.7 traversal (docs/theory.md, Sec. 11) and the
predicted values at the phase representatives.
"""

import math

A_C = 1 - 1 / math.sqrt(2)   # IVa / IVb split, 0.29289...


def ref_phase(a, b):
    """Phase of an interior point, or None on a boundary or outside (hand logic)."""
    if not (a > 0 and 2 * (a + b) > 1):
        return None
    if 2 * a > 1 and 2 * b < 1:
        return "Ia"
    if 2 * a > 1 and 2 * b > 1 and b < a:
        return "II"
    if 2 * a > 1 and b > a:
        return "III"
    if 2 * a < 1 and 2 * b < 1:
        return "Ib"
    if a < 0.25 and 2 * b > 1:
        return "Ic"
    if 0.25 < a < A_C and 2 * b > 1:
        return "IVa"
    if A_C < a < 0.5 and 2 * b > 1:
        return "IVb"
    return None


REF_XI = {
    "Ia": lambda a, b: 1 / (2 * a + 1),
    "II": lambda a, b: b / (a + b),
    "III": lambda a, b: 0.5,
    "Ib": lambda a, b: 0.5,
    "Ic": lambda a, b: (2 * a + 2 * b - 1) / (2 * (3 * a + 2 * b - 1 - 2 * a * b)),
    "IVa": lambda a, b: (b - a) / (2 * b - a - 2 * a * b),
    "IVb": lambda a, b: 0.5,
}

REF_ETA = {
    "Ia": lambda a, b: (2 * a + 2 * b - 1) / (2 * a + 1),
    "II": lambda a, b: 1 - 1 / (2 * (a + b)),
    "III": lambda a, b: 1 - 1 / (4 * a),
    "Ib": lambda a, b: a + b - 0.5,
    "Ic": lambda a, b: a * (2 * a + 2 * b - 1) / (3 * a + 2 * b - 1 - 2 * a * b),
    "IVa": lambda a, b: (1 - 2 * a) * (2 * a + 2 * b - 1) / (2 * (2 * b - a - 2 * a * b)),
    "IVb": lambda a, b: a,
}

# The alpha = 0.7 traversal of docs/theory.md, Sec. 11 (interior points).
TRAVERSAL_ALPHA_07 = [
    # beta, phase, xi, eta
    (0.2, "Ia", 0.4167, 0.3333),
    (0.4, "Ia", 0.4167, 0.5000),
    (0.6, "II", 0.4615, 0.6154),
    (0.8, "III", 0.5, 0.6429),
    (1.5, "III", 0.5, 0.6429),
    (0.0, "Ia", 0.4167, 0.1667),     # Sec. 11: eta = (0.4 + 2 beta)/2.4 = 0.1667 at beta = 0
]

# Boundary points of the reproduction table: (alpha, beta, label in the table,
# neighbouring phases, xi, eta).
TRAVERSAL_BOUNDARY = [
    (0.7, 0.5, "II", ("Ia", "II"), 0.4167, 0.5833),
    (0.7, 0.7, "III", ("II", "III"), 0.5, 0.6429),
]

# Predictions of Eq. (11.3) at the phase representatives (alpha, beta, phase, xi, eta), by hand.
SURROGATE_POINTS = [
    (0.75, 0.25, "Ia", 0.400, 0.400),
    (1.25, 0.75, "II", 0.375, 0.750),
    (1.0, 2.0, "III", 0.5, 0.75),
    (0.35, 0.45, "Ib", 0.5, 0.30),
    (0.2, 1.0, "Ic", 0.583, 0.233),
    (0.27, 1.0, "IVa", 0.613, 0.298),
    (0.45, 1.0, "IVb", 0.5, 0.45),
]

# Points on each boundary line, a direction crossing it, and the phases on the two sides
# (minus side first).
BOUNDARY_SAMPLES = [
    ((0.8, 0.5), (0.0, 1.0), ("Ia", "II")),
    ((1.3, 0.5), (0.0, 1.0), ("Ia", "II")),
    ((0.9, 0.9), (-1.0, 1.0), ("II", "III")),
    ((1.4, 1.4), (-1.0, 1.0), ("II", "III")),
    ((0.5, 0.3), (1.0, 0.0), ("Ib", "Ia")),
    ((0.5, 0.1), (1.0, 0.0), ("Ib", "Ia")),
    ((0.5, 0.8), (1.0, 0.0), ("IVb", "III")),
    ((0.5, 1.4), (1.0, 0.0), ("IVb", "III")),
    ((0.1, 0.5), (0.0, 1.0), ("Ib", "Ic")),
    ((0.27, 0.5), (0.0, 1.0), ("Ib", "IVa")),
    ((0.4, 0.5), (0.0, 1.0), ("Ib", "IVb")),
    ((0.25, 0.7), (1.0, 0.0), ("Ic", "IVa")),
    ((0.25, 1.5), (1.0, 0.0), ("Ic", "IVa")),
    ((A_C, 0.7), (1.0, 0.0), ("IVa", "IVb")),
    ((A_C, 1.5), (1.0, 0.0), ("IVa", "IVb")),
]

# Two interior points per phase for the numerical (four-term) confirmation.
NUMERICAL_POINTS = [
    (0.75, 0.25, "Ia"), (1.0, 0.1, "Ia"),
    (1.25, 0.75, "II"), (1.0, 0.6, "II"),
    (1.0, 2.0, "III"), (0.7, 0.9, "III"),
    (0.35, 0.45, "Ib"), (0.4, 0.3, "Ib"),
    (0.2, 1.0, "Ic"), (0.15, 0.8, "Ic"),
    (0.27, 1.0, "IVa"), (0.28, 0.8, "IVa"),
    (0.45, 1.0, "IVb"), (0.35, 0.7, "IVb"),
]
