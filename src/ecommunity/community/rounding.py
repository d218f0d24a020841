"""Whole-Wh shares by running-sum rounding, column by column.

The rule (documented in docs/community.md): in interval ``t`` member ``i`` has the exact share
``q[i, t]``, a fraction. Members are taken in a fixed order (the row order); with the running
sum ``R[i, t] = q[0, t] + … + q[i, t]`` (and ``R[-1, t] = 0``) member ``i`` gets

    ``floor(R[i, t]) − floor(R[i − 1, t])``.

So every result is ``floor(q)`` or ``ceil(q)`` (the error is below 1 Wh), a member whose exact
share is whole (in particular zero) gets exactly that, and each column adds up to
``floor(Σ_i q[i, t])``: nothing is lost or created by rounding. It needs no sort, only sums, which
is what makes a year of 15-minute intervals for thousands of members fast.

:class:`ScaledFloors` is the engine's exact ``floor(running × total / denominator)`` for the
shares of the allocation, ``q_i = weight_i × total / denominator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ecommunity.community.errors import AllocationInputError

Int64Array = NDArray[np.int64]
Int32Array = NDArray[np.int32]
#: Whole numbers of some width: the int32 results of the allocation, or int64.
IntArray = NDArray[np.signedinteger[Any]]
Float64Array = NDArray[np.float64]

#: Columns whose ``total × denominator`` stays at or below this are floored in float64 (see
#: :class:`ScaledFloors`); others in exact integer arithmetic.
FLOAT_EXACT_LIMIT: Final = 2**49


def round_shares(numerators: Int64Array, denominators: Int64Array) -> Int64Array:
    """Whole shares of ``numerators[:, t] / denominators[t]`` by running-sum rounding.

    Args:
        numerators: ``(N, T)``, each ``>= 0``, each column adding up to less than 2**63.
        denominators: ``(T,)``, each ``>= 1``.

    Returns:
        ``(N, T)`` int64 shares; column ``t`` adds up to ``Σ_i numerators[i, t] //
        denominators[t]``.

    Raises:
        AllocationInputError: negative numerators, denominators below 1, or shapes that do not
            fit.
    """
    numerators = np.asarray(numerators, dtype=np.int64)
    denominators = np.asarray(denominators, dtype=np.int64)
    if numerators.ndim != 2 or denominators.shape != numerators.shape[1:]:
        raise AllocationInputError(
            f"numerators {numerators.shape} and denominators {denominators.shape} do not fit"
        )
    if numerators.size and numerators.min() < 0:
        raise AllocationInputError("a negative share")
    if denominators.size and denominators.min() < 1:
        raise AllocationInputError("a denominator below 1")
    floors = np.cumsum(numerators, axis=0) // denominators
    return np.diff(floors, axis=0, prepend=np.zeros((1, floors.shape[1]), dtype=np.int64))


@dataclass(frozen=True)
class ScaledFloors:
    """``floor(running × totals / denominators)``, exactly, for the columns of a segment.

    ``totals`` ``(W,)`` is what is shared (``0 <= totals < 2**31``), ``denominators`` ``(W,)``
    the sum of all weights (``1 <= denominators < 2**31``), and a running sum of weights lies
    between 0 and its column's denominator (a weight's share never exceeds the whole).

    Where ``totals × denominators <= 2**49`` in every column (in practice always: 2**49 Wh² is a
    community sharing 23 MWh among 23 MWh of consumption in one quarter hour) the floor is taken
    in float64 with one multiplication, ``trunc(running × ratio)``, where ``ratio`` is the
    float64 nearest to ``r = totals / denominators`` raised by three units in the last place.
    With ``u = 2**-53``, ``ratio`` lies between ``r·(1 + 2u − 3u²)`` and ``r·(1 + 7.0001u)``,
    so the product ``x`` of the exact quotient ``v = running × r`` and ``ratio``, rounded once
    more, lies between ``v·(1 + u − 5u²) >= v`` and ``v·(1 + 8.0001u)``: never below ``v``, and
    above it by less than ``8.0001 · 2**-53 · totals <= 1 / denominators`` (by the limit), the
    least distance from a ``v`` that is not whole to the next whole number. So ``trunc(x) =
    floor(v)``. Otherwise the segment is computed in int64 (``running × totals < 2**62``).
    """

    totals: Int64Array
    denominators: Int64Array
    ratio: Float64Array
    exact_integers: bool

    @classmethod
    def of(cls, totals: Int64Array, denominators: Int64Array) -> ScaledFloors:
        ratio = totals / denominators
        for _ in range(3):
            ratio = np.nextafter(ratio, np.inf)
        return cls(
            totals=totals,
            denominators=denominators,
            ratio=np.where(totals > 0, ratio, 0.0),
            exact_integers=bool(
                totals.size and int(np.max(totals * denominators)) > FLOAT_EXACT_LIMIT
            ),
        )

    def __call__(self, running: IntArray, *, scratch: Float64Array, out: IntArray) -> IntArray:
        """The floors for ``running`` ``(B, W)`` or ``(B, 1)`` into ``out`` ``(B, W)``.

        ``scratch`` is a ``(B, W)`` float64 buffer; ``out`` int64, or int32 (every floor is at
        most its column's total).
        """
        if self.exact_integers:
            exact = running.astype(np.int64) * self.totals // self.denominators
            np.copyto(out, exact, casting="unsafe")
            return out
        if running.shape[1] == 1:
            # The same running sum in every column (static keys): one multiplication.
            np.multiply(running.astype(np.float64), self.ratio, out=scratch)
        else:
            np.copyto(scratch, running)
            np.multiply(scratch, self.ratio, out=scratch)
        np.copyto(out, scratch, casting="unsafe")  # truncation: every value is positive
        return out
