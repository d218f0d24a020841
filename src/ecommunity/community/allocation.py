"""Allocation of a community's production to its consumers, per quarter hour, in whole Wh.

The formal model of rules doc 1.2, for consumers ``i`` and producers ``j`` in interval ``t``
(names after the grid operators' OBIS identifiers, rules doc 1.4):

* ``G.01T = floor(G.01 · TF / 100)``: the participating part of the measured energy, both
  directions. Rounding down keeps the parts of one metering point in several communities within
  what it measured (factors add up to at most 100 %).
* ``c_i = G.01T_i``, ``p_j = G.01T_j``, ``C = Σ c_i``, ``P = Σ p_j``.
* dynamic: ``G.02_i = P · c_i / C``; static: ``G.02_i = P · k_i`` (``Σ k ≤ 1``).
* ``G.03_i = min(G.02_i, c_i)``: the covered, billable part.
* producers are credited ``Σ G.03`` pro rata to ``p_j``; ``P.01T_j = p_j − credit_j`` is their
  surplus; a consumer's residual grid draw is ``G.01_i − G.03_i``.

Nothing is redistributed. Static: a share a consumer cannot use in a quarter hour is surplus
(rules doc 1.2). Dynamic: shares proportional to consumption either all fit (``P ≤ C``) or all
exceed consumption (``P > C``, everyone fully covered), so no leftover needs a second round.

Whole Wh: ``G.02`` and the producers' credits are rounded by running sums in the members' row
order (:mod:`ecommunity.community.rounding`), so in every interval ``Σ G.03 = Σ credit`` exactly.
A member whose factor is 0 in an interval does not take part in it: ``G.01T``, ``G.02`` and
``G.03`` are 0 and, in the static model, its key's share is surplus.

Speed: a year of quarter hours for 2,000 consumers and 500 producers takes about half a second
of CPU in one thread (:mod:`ecommunity.community._engine`, ``bench/allocation.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecommunity.community._engine import Column, Segments, Shares, Side
from ecommunity.community._engine import allocate_segment as _allocate_segment
from ecommunity.community._engine import column_totals as _column_totals
from ecommunity.community.errors import AllocationInputError, AllocationKeyError
from ecommunity.community.kinds import AllocationModel
from ecommunity.community.rounding import Int64Array, IntArray

#: Largest energy per member, and per community, in one quarter hour (about 8.6 GW): keeps every
#: product of two energies, or of an energy and a key numerator, inside int64.
MAX_INTERVAL_WH: Final = 2**31 - 1
#: Largest common denominator of static keys (nine decimal places fit).
MAX_KEY_DENOMINATOR: Final = 2**31 - 1


@dataclass(frozen=True, eq=False)
class StaticKeys:
    """Static allocation keys as exact fractions over one common denominator.

    ``numerators[i] / denominator`` is consumer ``i``'s fixed share of production.
    """

    numerators: Int64Array
    denominator: int

    @classmethod
    def from_values(cls, values: Iterable[Fraction | Decimal | int | str]) -> StaticKeys:
        """Keys from fractions, decimals or text such as ``"0.25"`` or ``"1/3"``.

        Raises:
            AllocationKeyError: a key that is not a number, below 0 or above 1, keys adding up
                to more than 1, or a common denominator above 2**31 − 1.
        """
        fractions: list[Fraction] = []
        for value in values:
            try:
                key = Fraction(value.strip() if isinstance(value, str) else value)
            except (ValueError, ZeroDivisionError, TypeError):
                raise AllocationKeyError(f"an allocation key is a number, got {value!r}") from None
            if not 0 <= key <= 1:
                raise AllocationKeyError(f"an allocation key is between 0 and 1, got {value}")
            fractions.append(key)
        total = sum(fractions, Fraction(0))
        if total > 1:
            raise AllocationKeyError(f"allocation keys add up to {float(total):.9g}, more than 1")
        denominator = math.lcm(1, *(f.denominator for f in fractions))
        if denominator > MAX_KEY_DENOMINATOR:
            raise AllocationKeyError(
                f"allocation keys too fine to share exactly (common denominator {denominator})"
            )
        numerators = np.array(
            [f.numerator * (denominator // f.denominator) for f in fractions], dtype=np.int64
        )
        return cls(numerators=numerators, denominator=denominator)

    def __len__(self) -> int:
        return int(self.numerators.size)

    def fractions(self) -> list[Fraction]:
        return [Fraction(int(n), self.denominator) for n in self.numerators]

    @property
    def total(self) -> Fraction:
        return Fraction(int(self.numerators.sum()), self.denominator)


@dataclass(frozen=True)
class AllocationTotals:
    """An allocation summed over members and intervals. [Wh]"""

    intervals: int
    consumers: int
    producers: int
    #: Consumers' measured energy G.01, its participating part G.01T, their allocated share
    #: G.02, the covered part G.03 and the residual grid draw G.01 − G.03.
    consumption_wh: int
    consumption_t_wh: int
    allocated_wh: int
    covered_wh: int
    residual_wh: int
    #: Producers' measured energy G.01, participating part G.01T, what consumers took from
    #: them (G.01T − P.01T, equal to ``covered_wh``) and their surplus P.01T.
    production_wh: int
    production_t_wh: int
    credited_wh: int
    surplus_wh: int

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class Allocation:
    """One community's allocation: consumers ``(N_c, T)`` and producers ``(N_p, T)``. [Wh]

    G.02, G.03 and P.01T are int32: none exceeds :data:`MAX_INTERVAL_WH` (2³¹ − 1 Wh), and a
    year of 2,000 members then takes half the memory. Widen them (``astype(np.int64)``) before
    multiplying by large numbers such as prices; sums (``sum``, ``cumsum``) widen by themselves.
    The other arrays are int64. G.01T, the producers' credits and the residual draw are computed
    when first read.
    """

    model: AllocationModel
    #: Consumers: measured G.01, effective factor [%], G.02, G.03.
    consumption_wh: Int64Array
    consumer_tf_percent: Int64Array
    allocated_wh: IntArray
    covered_wh: IntArray
    #: Producers: measured G.01, effective factor [%], P.01T.
    production_wh: Int64Array
    producer_tf_percent: Int64Array
    surplus_wh: IntArray

    @cached_property
    def consumption_t_wh(self) -> Int64Array:
        """Consumers' participating energy G.01T. [Wh]"""
        return participating_wh(self.consumption_wh, self.consumer_tf_percent)

    @cached_property
    def production_t_wh(self) -> Int64Array:
        """Producers' participating energy G.01T. [Wh]"""
        return participating_wh(self.production_wh, self.producer_tf_percent)

    @cached_property
    def credited_wh(self) -> Int64Array:
        """What consumers took from each producer: G.01T − P.01T. [Wh]"""
        return self.production_t_wh - self.surplus_wh

    @property
    def residual_wh(self) -> Int64Array:
        """Each consumer's residual grid draw, billed by its supplier: G.01 − G.03. [Wh]"""
        return self.consumption_wh - self.covered_wh

    @property
    def intervals(self) -> int:
        return int(self.consumption_wh.shape[1])

    def totals(self) -> AllocationTotals:
        def total(array: IntArray) -> int:
            return int(array.sum(dtype=np.int64))

        consumption, covered = total(self.consumption_wh), total(self.covered_wh)
        production_t, surplus = total(self.production_t_wh), total(self.surplus_wh)
        return AllocationTotals(
            intervals=self.intervals,
            consumers=int(self.consumption_wh.shape[0]),
            producers=int(self.production_wh.shape[0]),
            consumption_wh=consumption,
            consumption_t_wh=total(self.consumption_t_wh),
            allocated_wh=total(self.allocated_wh),
            covered_wh=covered,
            residual_wh=consumption - covered,
            production_wh=total(self.production_wh),
            production_t_wh=production_t,
            credited_wh=production_t - surplus,
            surplus_wh=surplus,
        )


def participating_wh(energy_wh: Int64Array, tf_percent: Int64Array) -> Int64Array:
    """``G.01T = floor(G.01 · TF / 100)``. [Wh]"""
    # Factors of 100 % for every row, broadcast along the intervals (the common case: a scalar
    # or one per member), need no arithmetic.
    if (
        tf_percent.ndim == 2
        and tf_percent.shape[1]
        and tf_percent.strides[1] == 0
        and bool(np.all(tf_percent[:, 0] == 100))
    ):
        return energy_wh
    return (energy_wh * tf_percent) // 100


def allocate(
    consumption_wh: ArrayLike,
    production_wh: ArrayLike,
    *,
    model: AllocationModel,
    consumer_tf_percent: ArrayLike = 100,
    producer_tf_percent: ArrayLike = 100,
    keys: StaticKeys | None = None,
    workers: int = 1,
) -> Allocation:
    """Allocate production to consumption for every interval.

    Args:
        consumption_wh: consumers' measured energy G.01, ``(N_c, T)`` integers. [Wh]
        production_wh: producers' measured energy G.01, ``(N_p, T)`` integers. [Wh]
        model: static or dynamic.
        consumer_tf_percent: effective participation factors, 0 to 100, broadcast to
            ``(N_c, T)`` (a scalar, one per consumer as ``(N_c, 1)``, or per interval). [%]
        producer_tf_percent: the same for producers. [%]
        keys: one per consumer; required by the static model, refused by the dynamic one.
        workers: threads sharing the intervals (the result is the same). One by default: on
            a two-core machine two threads took up to a third less time but 40–60 % more CPU
            time (they share the memory bandwidth), and a server has other requests to serve.

    Raises:
        AllocationInputError: non-integer or negative energies, energies above
            :data:`MAX_INTERVAL_WH` per member or per community and interval, factors outside
            0–100, shapes that do not fit, keys missing or not wanted, workers below 1.
    """
    consumption = _energy_matrix("consumption", consumption_wh)
    production = _energy_matrix("production", production_wh)
    if consumption.shape[1] != production.shape[1]:
        raise AllocationInputError(
            f"consumption has {consumption.shape[1]} intervals, production {production.shape[1]}"
        )
    consumers = _side("consumer", consumption, consumer_tf_percent)
    producers = _side("producer", production, producer_tf_percent)
    shares = _shares(model, keys, consumers)
    if workers < 1:
        raise AllocationInputError(f"workers must be at least 1, got {workers}")

    segments = Segments.plan(consumption.shape[1], workers)

    def first_pass(columns: slice) -> tuple[Column, Column]:
        return _column_totals(consumers, columns), _column_totals(producers, columns)

    totals = segments.map(first_pass)
    _check_energies("consumption", consumption, [c for c, _ in totals])
    _check_energies("production", production, [p for _, p in totals])
    _check_sums("consumption", [c for c, _ in totals])
    _check_sums("production", [p for _, p in totals])

    # int32: every G.02, G.03 and P.01T lies between 0 and MAX_INTERVAL_WH (checked above).
    allocated = np.empty(consumption.shape, dtype=np.int32)
    covered = np.empty(consumption.shape, dtype=np.int32)
    surplus = np.empty(production.shape, dtype=np.int32)

    by_start = {columns.start: sums for columns, sums in zip(segments.bounds, totals, strict=True)}

    def second_pass(columns: slice) -> None:
        consumed, produced = by_start[columns.start]
        _allocate_segment(
            consumers, producers, shares, columns, consumed, produced, allocated, covered, surplus
        )

    segments.map(second_pass)
    return Allocation(
        model=model,
        consumption_wh=consumption,
        consumer_tf_percent=consumers.tf_percent,
        allocated_wh=allocated,
        covered_wh=covered,
        production_wh=production,
        producer_tf_percent=producers.tf_percent,
        surplus_wh=surplus,
    )


def _energy_matrix(name: str, values: ArrayLike) -> Int64Array:
    array = _integer_array(f"{name} energies", values)
    if array.ndim != 2:
        raise AllocationInputError(
            f"{name} must be a (members, intervals) array, got {array.ndim} dimensions"
        )
    # Kept by reference (read-only), not copied: a year of 2,000 members is 560 MB. Their range
    # is checked in the engine's first pass, which reads them anyway.
    matrix = array.astype(np.int64, copy=False).view()
    matrix.flags.writeable = False
    return matrix


def _side(name: str, energy: Int64Array, values: ArrayLike) -> Side:
    factors = _integer_array(f"{name} participation factors", values)
    if factors.ndim > 2:
        raise AllocationInputError(
            f"{name} participation factors of shape {factors.shape} do not fit {energy.shape}"
        )
    if factors.size and (factors.min() < 0 or factors.max() > 100):
        raise AllocationInputError(
            f"{name} participation factors must be 0 to 100 %, got {factors.min()} to "
            f"{factors.max()}"
        )
    factors = factors.astype(np.int64, copy=False)
    try:
        tf = np.broadcast_to(factors, energy.shape)
    except ValueError:
        raise AllocationInputError(
            f"{name} participation factors of shape {factors.shape} do not fit {energy.shape}"
        ) from None
    return Side.of(energy, tf, factors)


def _shares(model: AllocationModel, keys: StaticKeys | None, consumers: Side) -> Shares:
    if model is AllocationModel.DYNAMIC:
        if keys is not None:
            raise AllocationInputError("the dynamic model takes no allocation keys")
        return Shares()
    if keys is None:
        raise AllocationInputError("the static model needs one allocation key per consumer")
    if len(keys) != consumers.rows:
        raise AllocationKeyError(f"{len(keys)} allocation keys for {consumers.rows} consumers")
    running = None
    tf = consumers.tf_percent
    if tf.ndim == 2 and tf.shape[1] and tf.strides[1] == 0:
        # Factors constant over the intervals: who takes part, and so the running sums of the
        # key numerators, are the same in every column.
        running = np.cumsum(keys.numerators * (tf[:, 0] > 0))
    return Shares(
        numerators=keys.numerators, denominator=keys.denominator, running_numerators=running
    )


def _check_energies(name: str, energy: Int64Array, columns: list[Column]) -> None:
    if any(column.largest_unsigned > MAX_INTERVAL_WH for column in columns):
        raise AllocationInputError(
            f"{name} energies must be 0 to {MAX_INTERVAL_WH} Wh per interval, got "
            f"{energy.min()} to {energy.max()}"
        )


def _check_sums(name: str, columns: list[Column]) -> None:
    if any(column.total_wh.size and column.total_wh.max() > MAX_INTERVAL_WH for column in columns):
        raise AllocationInputError(f"community {name} above {MAX_INTERVAL_WH} Wh in one interval")


def _integer_array(name: str, values: ArrayLike) -> NDArray[Any]:
    array = np.asarray(values)
    if array.dtype.kind not in "iu" and not (array.size == 0 and array.dtype.kind == "f"):
        raise AllocationInputError(f"{name} must be whole numbers, got {array.dtype} values")
    return array
