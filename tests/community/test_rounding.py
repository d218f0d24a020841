"""Running-sum rounding on its own: totals kept, floor or ceiling, exact floors in float64."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommunity.community import AllocationInputError, round_shares
from ecommunity.community.rounding import FLOAT_EXACT_LIMIT, ScaledFloors
from tests.community.reference import running_sum_rounding


def shares(numerators: list[list[int]], denominators: list[int]) -> list[list[int]]:
    result = round_shares(
        np.array(numerators, dtype=np.int64).reshape(len(numerators), len(denominators)),
        np.array(denominators, dtype=np.int64),
    )
    return result.tolist()


def test_running_sums_decide_and_the_order_matters() -> None:
    # 10 shared 1:1:1 -> 3.33 each: running sums 3.33, 6.67, 10 give 3, 3, 4.
    assert shares([[10], [10], [10]], [3]) == [[3], [3], [4]]
    # 2.2, 1.5, 2.3: running sums 2.2, 3.7, 6.0 give 2, 1, 3.
    assert shares([[22], [15], [23]], [10]) == [[2], [1], [3]]
    # The same shares in another order: 1.5, 3.7, 6.0 give 1, 2, 3.
    assert shares([[15], [22], [23]], [10]) == [[1], [2], [3]]
    # 1.75, 1.25, 1.25, 0: running sums 1.75, 3, 4.25, 4.25.
    assert shares([[7], [5], [5], [0]], [4]) == [[1], [2], [1], [0]]


def test_columns_are_independent_and_zero_shares_stay_zero() -> None:
    assert shares([[1, 0], [1, 3], [0, 3]], [2, 2]) == [[0, 0], [1, 1], [0, 2]]


def test_bad_input_is_refused() -> None:
    with pytest.raises(AllocationInputError, match="negative"):
        shares([[-1]], [2])
    with pytest.raises(AllocationInputError, match="below 1"):
        shares([[1]], [0])
    with pytest.raises(AllocationInputError, match="do not fit"):
        round_shares(np.ones((2, 2), np.int64), np.ones(3, np.int64))
    assert round_shares(np.zeros((0, 1), np.int64), np.ones(1, np.int64)).shape == (0, 1)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=12),
    st.integers(1, 10**6),
)
def test_matches_the_reference_and_keeps_the_total(weights: list[int], denominator: int) -> None:
    result = [row[0] for row in shares([[w] for w in weights], [denominator])]
    exact = [Fraction(w, denominator) for w in weights]
    assert result == running_sum_rounding(exact)
    assert sum(result) == sum(weights) // denominator
    assert all(
        int(q) <= r <= int(q) + (q.denominator != 1) for q, r in zip(exact, result, strict=True)
    )


def floors_of(running: list[int], total: int, denominator: int) -> list[int]:
    scale = ScaledFloors.of(
        np.array([total], dtype=np.int64), np.array([denominator], dtype=np.int64)
    )
    column = np.array(running, dtype=np.int64)[:, np.newaxis]
    out = np.empty_like(column)
    scale(column, scratch=np.empty(column.shape), out=out)
    return out[:, 0].tolist()


@settings(max_examples=500, deadline=None)
@given(st.data(), st.integers(1, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_scaled_floors_are_exact(data: st.DataObject, denominator: int, total: int) -> None:
    # Both sides of the float64 limit, with quotients just at, below and above whole numbers.
    running = data.draw(st.lists(st.integers(0, denominator), min_size=1, max_size=20))
    running += [denominator, 0, denominator // 2, denominator - 1 if denominator > 1 else 0]
    expected = [r * total // denominator for r in running]
    assert floors_of(running, total, denominator) == expected


@pytest.mark.parametrize(
    ("total", "denominator"),
    [
        (2**24, 2**25),  # at the float64 limit, quotients exactly whole
        (2**25, 2**24),
        (2**24 + 1, 2**25 - 1),  # just above it: integer arithmetic
        (2**31 - 1, 2**31 - 1),
        (2**31 - 1, 3),
        (1_000_003, 999_983),
        (7, 2**31 - 1),
    ],
)
def test_scaled_floors_near_whole_quotients(total: int, denominator: int) -> None:
    assert (total * denominator > FLOAT_EXACT_LIMIT) == ScaledFloors.of(
        np.array([total]), np.array([denominator])
    ).exact_integers
    # Running sums whose quotient is a whole number, or one part in 2**31 off one.
    running = [denominator, denominator - 1, 1, 0]
    for k in (1, 2, 3, 1000):
        whole = k * denominator // np.gcd(total, denominator)
        if whole <= denominator:
            running += [whole, whole - 1, min(whole + 1, denominator)]
    expected = [r * total // denominator for r in running]
    assert floors_of(running, total, denominator) == expected


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(2**9, 2**31 - 1))
def test_scaled_floors_at_the_float_limit(data: st.DataObject, denominator: int) -> None:
    # The largest total the float64 path takes for this denominator, and running sums whose
    # quotient is just at, below or above a whole number: where the rounding margin is least.
    total = min(FLOAT_EXACT_LIMIT // denominator, 2**31 - 1)
    assert not ScaledFloors.of(np.array([total]), np.array([denominator])).exact_integers
    wholes = data.draw(st.lists(st.integers(0, total), min_size=1, max_size=10))
    running = [0, denominator, denominator - 1]
    for k in wholes:
        nearest = k * denominator // total
        running += [r for r in (nearest - 1, nearest, nearest + 1) if 0 <= r <= denominator]
    expected = [r * total // denominator for r in running]
    assert floors_of(running, total, denominator) == expected


def test_many_columns() -> None:
    rng = np.random.default_rng(5)
    numerators = rng.integers(0, 10**6, size=(3, 100_000), dtype=np.int64)
    denominators = rng.integers(1, 10**6, size=numerators.shape[1], dtype=np.int64)
    result = round_shares(numerators, denominators)
    assert np.array_equal(result.sum(axis=0), numerators.sum(axis=0) // denominators)
    floors = numerators // denominators
    assert np.all((result == floors) | (result == floors + 1))
    for column in rng.integers(0, numerators.shape[1], size=50):
        exact = [Fraction(int(n), int(denominators[column])) for n in numerators[:, column]]
        assert result[:, column].tolist() == running_sum_rounding(exact)
