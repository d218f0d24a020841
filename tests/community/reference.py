"""A plain-Python, exact (Fraction) allocation, interval by interval: the oracle for the engine.

Written from the formulas in docs/community.md without NumPy, so that a slip in the vectorised
engine shows up as a difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction


def running_sum_rounding(exact: Sequence[Fraction]) -> list[int]:
    """Member i gets floor(q_0 + … + q_i) − floor(q_0 + … + q_(i−1)), in list order."""
    shares: list[int] = []
    running = Fraction(0)
    before = 0
    for q in exact:
        running += q
        now = math.floor(running)
        shares.append(now - before)
        before = now
    return shares


def allocate_interval(
    consumption: Sequence[int],
    production: Sequence[int],
    consumer_tf: Sequence[int],
    producer_tf: Sequence[int],
    keys: Sequence[Fraction] | None,
) -> dict[str, list[int]]:
    """One interval; ``keys`` None means the dynamic model."""
    c = [g * tf // 100 for g, tf in zip(consumption, consumer_tf, strict=True)]
    p = [g * tf // 100 for g, tf in zip(production, producer_tf, strict=True)]
    total_p, total_c = sum(p), sum(c)
    if keys is None:
        exact = [Fraction(total_p * ci, total_c) if total_c else Fraction(0) for ci in c]
    else:
        exact = [
            total_p * k if tf > 0 else Fraction(0) for k, tf in zip(keys, consumer_tf, strict=True)
        ]
    g02 = running_sum_rounding(exact)
    g03 = [min(a, ci) for a, ci in zip(g02, c, strict=True)]
    taken = sum(g03)
    credit_exact = [Fraction(taken * pj, total_p) if total_p else Fraction(0) for pj in p]
    credited = running_sum_rounding(credit_exact)
    return {
        "g01t_consumers": c,
        "g02": g02,
        "g03": g03,
        "g01t_producers": p,
        "p01t": [pj - cj for pj, cj in zip(p, credited, strict=True)],
    }
