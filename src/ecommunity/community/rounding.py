"""Whole-Wh shares by the largest-remainder method, column by column.

The rule (documented in docs/community.md): member ``i`` in interval ``t`` has the exact share
``q[i, t] = numerators[i, t] / denominators[t]``. It first gets ``floor(q)``; the
``totals[t] - Σ_i floor(q[i, t])`` Wh still to hand out go, one each, to the members with the
largest remainders ``numerators mod denominators``; equal remainders go to the member with the
lower row index first. Every result is therefore ``floor(q)`` or ``ceil(q)``, a member whose
exact share is whole (in particular zero) gets exactly that, and each column adds up to its total.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from ecommunity.community.errors import AllocationInputError

Int64Array = NDArray[np.int64]

#: Columns handled per step: bounds the temporary arrays (a few per call) to a few MB.
_CHUNK_CELLS: Final = 1 << 20


def round_shares(
    numerators: Int64Array, denominators: Int64Array, totals: Int64Array
) -> Int64Array:
    """Whole shares of ``totals[t]`` in proportion to ``numerators[:, t] / denominators[t]``.

    Args:
        numerators: ``(N, T)``, each ``>= 0``.
        denominators: ``(T,)``, each ``>= 1`` and below 2**31.
        totals: ``(T,)``, each between the sum of the floors and that sum plus the number of
            shares with a remainder (callers pass ``floor(Σ numerators / denominator)`` or less
            than that only when it is reachable).

    Returns:
        ``(N, T)`` int64 shares, column sums equal to ``totals``.

    Raises:
        AllocationInputError: a total that the floors and remainders cannot reach.
    """
    rows, columns = numerators.shape
    result = np.empty_like(numerators)
    if rows == 0 or columns == 0:
        if columns and np.any(totals != 0):
            raise AllocationInputError("a non-zero total to share among no members")
        return result
    step = max(1, _CHUNK_CELLS // rows)
    # The tie-break is folded into one integer key per cell so that a plain (fast, unstable)
    # sort decides: a larger remainder first, then the lower row index. remainder < 2**31 and
    # rows < 2**31 keep the key below 2**62.
    tie_break = (rows - 1 - np.arange(rows, dtype=np.int64))[:, np.newaxis]
    for start in range(0, columns, step):
        stop = min(start + step, columns)
        num = numerators[:, start:stop]
        den = denominators[start:stop]
        floors = num // den
        remainders = num - floors * den
        missing = totals[start:stop] - floors.sum(axis=0)
        positive = np.count_nonzero(remainders, axis=0)
        if np.any(missing < 0) or np.any(missing > positive):
            raise AllocationInputError("a total outside what rounding the shares can reach")
        keys = remainders * rows + tie_break
        # A copy, (columns, rows) in C order so each column's keys sort contiguously. (A view
        # would let the in-place sort reorder ``keys`` itself.)
        ordered = keys.T.copy(order="C")
        ordered.sort(axis=1)
        # The smallest key that still earns a unit; above every key where none is missing.
        threshold_index = np.clip(rows - missing, 0, rows - 1)
        threshold = ordered[np.arange(stop - start), threshold_index]
        threshold = np.where(missing > 0, threshold, np.iinfo(np.int64).max)
        result[:, start:stop] = floors + (keys >= threshold)
    return result
