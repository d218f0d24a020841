"""The largest-remainder rule on its own: totals kept, floor or ceiling, ties to the lower row."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommunity.community import AllocationInputError, round_shares
from tests.community.reference import largest_remainder


def shares(
    numerators: list[list[int]], denominators: list[int], totals: list[int]
) -> list[list[int]]:
    result = round_shares(
        np.array(numerators, dtype=np.int64).reshape(len(numerators), len(denominators)),
        np.array(denominators, dtype=np.int64),
        np.array(totals, dtype=np.int64),
    )
    return result.tolist()


def test_largest_remainders_win_and_ties_go_to_the_lower_row() -> None:
    # 10 shared 1:1:1 -> 3.33 each: the one left over goes to row 0.
    assert shares([[10], [10], [10]], [3], [10]) == [[4], [3], [3]]
    # 2.2, 1.5, 2.3: floors 2 + 1 + 2 = 5, one more to the largest remainder (row 1, 0.5).
    assert shares([[22], [15], [23]], [10], [6]) == [[2], [2], [2]]
    # Two missing, equal remainders in rows 1 and 2 behind a larger one in row 0.
    assert shares([[7], [5], [5], [0]], [4], [4]) == [[2], [1], [1], [0]]


def test_columns_are_independent_and_zero_shares_stay_zero() -> None:
    assert shares([[1, 0], [1, 3], [0, 3]], [2, 2], [1, 3]) == [[1, 0], [0, 2], [0, 1]]


def test_unreachable_totals_are_refused() -> None:
    with pytest.raises(AllocationInputError, match="outside"):
        shares([[1], [0]], [2], [2])  # floors 0, 0 and one remainder: at most 1
    with pytest.raises(AllocationInputError, match="outside"):
        shares([[4]], [2], [1])
    with pytest.raises(AllocationInputError, match="no members"):
        round_shares(np.zeros((0, 1), np.int64), np.ones(1, np.int64), np.ones(1, np.int64))
    assert round_shares(
        np.zeros((0, 1), np.int64), np.ones(1, np.int64), np.zeros(1, np.int64)
    ).shape == (0, 1)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=12),
    st.integers(1, 10**6),
)
def test_matches_the_reference_and_keeps_the_total(weights: list[int], denominator: int) -> None:
    numerators = [[w] for w in weights]
    total = sum(weights) // denominator
    result = [row[0] for row in shares(numerators, [denominator], [total])]
    exact = [Fraction(w, denominator) for w in weights]
    assert result == largest_remainder(exact, total)
    assert sum(result) == total
    assert all(
        int(q) <= r <= int(q) + (q.denominator != 1) for q, r in zip(exact, result, strict=True)
    )


def test_many_columns_in_chunks() -> None:
    rng = np.random.default_rng(5)
    numerators = rng.integers(0, 10**6, size=(3, 1_000_000 // 3 * 2 + 7), dtype=np.int64)
    denominators = rng.integers(1, 10**6, size=numerators.shape[1], dtype=np.int64)
    totals = numerators.sum(axis=0) // denominators
    result = round_shares(numerators, denominators, totals)
    assert np.array_equal(result.sum(axis=0), totals)
    floors = numerators // denominators
    assert np.all((result == floors) | (result == floors + 1))
    for column in rng.integers(0, numerators.shape[1], size=50):
        exact = [Fraction(int(n), int(denominators[column])) for n in numerators[:, column]]
        assert result[:, column].tolist() == largest_remainder(exact, int(totals[column]))
