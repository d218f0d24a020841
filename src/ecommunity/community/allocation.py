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

Whole Wh: ``G.02`` and the producers' credits are rounded by the largest-remainder method
(:mod:`ecommunity.community.rounding`), so in every interval ``Σ G.03 = Σ credit`` exactly.
A member whose factor is 0 in an interval does not take part in it: ``G.01T``, ``G.02`` and
``G.03`` are 0 and, in the static model, its key's share is surplus.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecommunity.community.errors import AllocationInputError, AllocationKeyError
from ecommunity.community.kinds import AllocationModel
from ecommunity.community.rounding import Int64Array, round_shares

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
    """One community's allocation: consumers ``(N_c, T)`` and producers ``(N_p, T)``. [Wh]"""

    model: AllocationModel
    #: Consumers: measured G.01, effective factor [%], G.01T, G.02, G.03.
    consumption_wh: Int64Array
    consumer_tf_percent: Int64Array
    consumption_t_wh: Int64Array
    allocated_wh: Int64Array
    covered_wh: Int64Array
    #: Producers: measured G.01, effective factor [%], G.01T, P.01T.
    production_wh: Int64Array
    producer_tf_percent: Int64Array
    production_t_wh: Int64Array
    surplus_wh: Int64Array

    @property
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
        def total(array: Int64Array) -> int:
            return int(array.sum(dtype=np.int64))

        return AllocationTotals(
            intervals=self.intervals,
            consumers=int(self.consumption_wh.shape[0]),
            producers=int(self.production_wh.shape[0]),
            consumption_wh=total(self.consumption_wh),
            consumption_t_wh=total(self.consumption_t_wh),
            allocated_wh=total(self.allocated_wh),
            covered_wh=total(self.covered_wh),
            residual_wh=total(self.residual_wh),
            production_wh=total(self.production_wh),
            production_t_wh=total(self.production_t_wh),
            credited_wh=total(self.credited_wh),
            surplus_wh=total(self.surplus_wh),
        )


def participating_wh(energy_wh: Int64Array, tf_percent: Int64Array) -> Int64Array:
    """``G.01T = floor(G.01 · TF / 100)``. [Wh]"""
    # A broadcast scalar (stride 0 everywhere) of 100 %, the common case, needs no arithmetic.
    if tf_percent.size and not any(tf_percent.strides) and tf_percent.flat[0] == 100:
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

    Raises:
        AllocationInputError: non-integer or negative energies, energies above
            :data:`MAX_INTERVAL_WH` per member or per community and interval, factors outside
            0–100, shapes that do not fit, keys missing or not wanted.
    """
    consumption = _energy_matrix("consumption", consumption_wh)
    production = _energy_matrix("production", production_wh)
    if consumption.shape[1] != production.shape[1]:
        raise AllocationInputError(
            f"consumption has {consumption.shape[1]} intervals, production {production.shape[1]}"
        )
    consumer_tf = _tf_matrix("consumer", consumer_tf_percent, consumption.shape)
    producer_tf = _tf_matrix("producer", producer_tf_percent, production.shape)
    c = participating_wh(consumption, consumer_tf)
    p = participating_wh(production, producer_tf)
    total_c = _column_sums("consumption", c)
    total_p = _column_sums("production", p)

    if model is AllocationModel.DYNAMIC:
        if keys is not None:
            raise AllocationInputError("the dynamic model takes no allocation keys")
        allocated = round_shares(
            total_p[np.newaxis, :] * c,
            np.maximum(total_c, 1),
            np.where(total_c > 0, total_p, 0),
        )
    else:
        if keys is None:
            raise AllocationInputError("the static model needs one allocation key per consumer")
        if len(keys) != consumption.shape[0]:
            raise AllocationKeyError(
                f"{len(keys)} allocation keys for {consumption.shape[0]} consumers"
            )
        # A consumer not taking part in an interval has no share in it: that part is surplus.
        active_numerators = keys.numerators[:, np.newaxis] * (consumer_tf > 0)
        allocated = round_shares(
            total_p[np.newaxis, :] * active_numerators,
            np.full(total_p.shape, keys.denominator, dtype=np.int64),
            total_p * active_numerators.sum(axis=0) // keys.denominator,
        )
    covered = np.minimum(allocated, c)

    taken = covered.sum(axis=0)
    credited = round_shares(taken[np.newaxis, :] * p, np.maximum(total_p, 1), taken)
    return Allocation(
        model=model,
        consumption_wh=consumption,
        consumer_tf_percent=consumer_tf,
        consumption_t_wh=c,
        allocated_wh=allocated,
        covered_wh=covered,
        production_wh=production,
        producer_tf_percent=producer_tf,
        production_t_wh=p,
        surplus_wh=p - credited,
    )


def _integer_array(name: str, values: ArrayLike) -> NDArray[Any]:
    array = np.asarray(values)
    if array.dtype.kind not in "iu" and not (array.size == 0 and array.dtype.kind == "f"):
        raise AllocationInputError(f"{name} must be whole numbers, got {array.dtype} values")
    return array


def _energy_matrix(name: str, values: ArrayLike) -> Int64Array:
    array = _integer_array(f"{name} energies", values)
    if array.ndim != 2:
        raise AllocationInputError(
            f"{name} must be a (members, intervals) array, got {array.ndim} dimensions"
        )
    if array.size and (array.min() < 0 or array.max() > MAX_INTERVAL_WH):
        raise AllocationInputError(
            f"{name} energies must be 0 to {MAX_INTERVAL_WH} Wh per interval, got "
            f"{array.min()} to {array.max()}"
        )
    return array.astype(np.int64)


def _tf_matrix(name: str, values: ArrayLike, shape: tuple[int, ...]) -> Int64Array:
    array = _integer_array(f"{name} participation factors", values)
    if array.size and (array.min() < 0 or array.max() > 100):
        raise AllocationInputError(
            f"{name} participation factors must be 0 to 100 %, got {array.min()} to {array.max()}"
        )
    try:
        return np.broadcast_to(array.astype(np.int64), shape)
    except ValueError:
        raise AllocationInputError(
            f"{name} participation factors of shape {array.shape} do not fit {shape}"
        ) from None


def _column_sums(name: str, matrix: Int64Array) -> Int64Array:
    sums: Int64Array = matrix.sum(axis=0, dtype=np.int64)
    if sums.size and sums.max() > MAX_INTERVAL_WH:
        raise AllocationInputError(f"community {name} above {MAX_INTERVAL_WH} Wh in one interval")
    return sums
