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
#: Whole numbers of some width: the int32 results of the allocation, or int64.
IntArray = NDArray[np.signedinteger[Any]]
Float64Array = NDArray[np.float64]

#: Columns whose ``total × denominator`` stays at or below this are floored in float64 (see
#: :class:`ScaledFloors`); others in exact integer arithmetic.
FLOAT_EXACT_LIMIT: Final = 2**50


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

    Where ``totals × denominators <= 2**50`` in every column (in practice always: 2**50 Wh² is a
    community sharing 30 MWh among 30 MWh of consumption in one quarter hour) the floor is taken
    in float64 as ``trunc(running × (totals / denominators) + 0.5 / denominators)``: with ``v``
    the exact quotient, the roundings put the result within ``3.0001 · 2**-53 · totals +
    2**-53`` of ``v + 0.5 / denominators``, which is less than ``0.5 / denominators``, so it
    stays strictly between ``floor(v)`` and ``floor(v) + 1``. Otherwise the segment is computed
    in int64 (``running × totals < 2**62``).
    """

    totals: Int64Array
    denominators: Int64Array
    ratio: Float64Array
    half_step: Float64Array
    exact_integers: bool

    @classmethod
    def of(cls, totals: Int64Array, denominators: Int64Array) -> ScaledFloors:
        return cls(
            totals=totals,
            denominators=denominators,
            ratio=totals / denominators,
            half_step=0.5 / denominators,
            exact_integers=bool(
                totals.size and int(np.max(totals * denominators)) > FLOAT_EXACT_LIMIT
            ),
        )

    def __call__(
        self, running: Int64Array, *, scratch: Float64Array, out: Int64Array
    ) -> Int64Array:
        """The floors for ``running`` ``(B, W)`` or ``(B, 1)`` into ``out`` ``(B, W)``.

        ``scratch`` is a ``(B, W)`` float64 buffer.
        """
        if self.exact_integers:
            np.floor_divide(running * self.totals, self.denominators, out=out)
            return out
        np.copyto(scratch, running)
        np.multiply(scratch, self.ratio, out=scratch)
        np.add(scratch, self.half_step, out=scratch)
        np.copyto(out, scratch, casting="unsafe")  # truncation: every value is positive
        return out
