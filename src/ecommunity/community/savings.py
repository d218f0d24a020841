"""What community energy saves consumers and earns producers, per member and interval, exactly.

Consumers (rules doc 1.5–1.7): the covered energy G.03 costs the community's consumer price, the
grid usage fee reduced for the community's kind and the member's grid level, and the levies the
community energy is not exempt from. Had the same energy come from the member's supplier it would
have cost the supplier's energy price, the full grid usage fee, the Elektrizitätsabgabe and the
Erneuerbaren-Förderbeitrag (while charged). Charges that apply either way (grid loss fee, metering,
per-point flat fees, the residual draw G.01 − G.03) cancel out and are left out of both.

Producers: what consumers took (G.01T − P.01T) is credited at the community's producer price
(the EEG Faktura formula, rules doc 1.7) instead of the feed-in tariff the surplus buyer would
have paid; the surplus P.01T goes to that buyer either way.

CO₂ avoided: covered energy × an emission factor the caller chooses: the emissions per kWh of
the grid electricity it displaces less those of the community's generation.

Amounts are integer nano-cents (nct: 10⁻⁹ ct, 10⁻¹¹ €), exact: Wh × µct/kWh (see
:mod:`ecommunity.community.tariffs`). int64 holds about 92 million € per cell and per member
total; :func:`nct_to_euro` converts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeVar

import numpy as np

from ecommunity.community.allocation import Allocation
from ecommunity.community.errors import AllocationInputError, TariffError
from ecommunity.community.intervals import IntervalStarts, epoch_seconds
from ecommunity.community.kinds import CommunityKind, GenerationSource
from ecommunity.community.rounding import Int64Array
from ecommunity.community.tariffs import (
    STATUTORY_PARAMETERS,
    CommunityPrices,
    ConsumerTariff,
    ProducerTariff,
    Schedule,
    StatutoryParameters,
    price_uct_per_kwh,
)

T = TypeVar("T")

#: Largest accepted emission factor. [g/kWh]
MAX_EMISSION_FACTOR_G_PER_KWH: Final = 10_000


def nct_to_euro(amount_nct: int) -> Decimal:
    """Nano-cents as exact euros (10⁻¹¹ € per nct)."""
    return Decimal(amount_nct).scaleb(-11)


def _row_total(array: Int64Array) -> int:
    # Python ints across members: a community total may exceed one member's int64 range.
    return sum(int(value) for value in array.sum(axis=1, dtype=np.int64))


@dataclass(frozen=True, eq=False)
class ConsumerSavings:
    """Per consumer and interval ``(N_c, T)``. Money [nct], CO₂ [mg]."""

    #: Covered energy at the community price, reduced grid fee and the levies still due.
    community_cost_nct: Int64Array
    #: The same energy from the supplier, with the full grid fee and levies.
    grid_cost_nct: Int64Array
    co2_avoided_mg: Int64Array

    @property
    def savings_nct(self) -> Int64Array:
        return self.grid_cost_nct - self.community_cost_nct

    def totals(self) -> dict[str, int]:
        return {
            "community_cost_nct": _row_total(self.community_cost_nct),
            "grid_cost_nct": _row_total(self.grid_cost_nct),
            "savings_nct": _row_total(self.savings_nct),
            "co2_avoided_mg": _row_total(self.co2_avoided_mg),
        }


@dataclass(frozen=True, eq=False)
class ProducerRevenue:
    """Per producer and interval ``(N_p, T)``. [nct]"""

    #: Energy consumers took (G.01T − P.01T) at the community's producer price.
    community_revenue_nct: Int64Array
    #: The same energy at the feed-in tariff.
    feed_in_revenue_nct: Int64Array

    @property
    def gain_nct(self) -> Int64Array:
        return self.community_revenue_nct - self.feed_in_revenue_nct

    def totals(self) -> dict[str, int]:
        return {
            "community_revenue_nct": _row_total(self.community_revenue_nct),
            "feed_in_revenue_nct": _row_total(self.feed_in_revenue_nct),
            "gain_nct": _row_total(self.gain_nct),
        }


def consumer_savings(
    allocation: Allocation,
    interval_starts: IntervalStarts,
    *,
    kind: CommunityKind,
    sources: frozenset[GenerationSource],
    prices: Schedule[CommunityPrices],
    tariffs: Schedule[ConsumerTariff] | Sequence[Schedule[ConsumerTariff]],
    emission_factor_g_per_kwh: int,
    parameters: StatutoryParameters = STATUTORY_PARAMETERS,
) -> ConsumerSavings:
    """Costs of each consumer's covered energy, in the community and from the grid.

    Args:
        allocation: the community's allocation over the intervals.
        interval_starts: the ``T`` interval starts (UTC).
        kind: the community's kind (decides the grid fee reduction and levy exemptions).
        sources: the community's generation sources, at least one (the electricity-levy
            exemption first covered PV only; it applies when every source is exempt that day).
        prices: the community's internal prices over time.
        tariffs: each consumer's grid tariff over time, or one for all.
        emission_factor_g_per_kwh: CO₂ avoided per kWh of covered energy. [g/kWh]
        parameters: the statutory rules (default: the Austrian ones).

    Raises:
        AllocationInputError: interval starts that do not match the allocation.
        IntervalError: interval starts naive or off a 15-minute boundary.
        MissingParameterError: a day or case without a price or rule.
        TariffError: an emission factor that is not a whole number of g/kWh in range, or no
            generation source.
    """
    starts = _starts(allocation, interval_starts)
    covered = allocation.covered_wh
    schedules = _per_member(tariffs, covered.shape[0], "consumer tariffs")
    if (
        isinstance(emission_factor_g_per_kwh, bool)
        or not isinstance(emission_factor_g_per_kwh, int)
        or not 0 <= emission_factor_g_per_kwh <= MAX_EMISSION_FACTOR_G_PER_KWH
    ):
        raise TariffError(
            f"the emission factor is a whole number of g/kWh from 0 to "
            f"{MAX_EMISSION_FACTOR_G_PER_KWH}, got {emission_factor_g_per_kwh!r}"
        )
    if not sources:
        raise TariffError("a community has at least one generation source")
    community_price = prices.values_at(starts, lambda p: price_uct_per_kwh(p.consumer_ct_per_kwh))
    levy_exempt = parameters.levy_exempt_sources(kind).values_at(
        starts, lambda exempt: int(sources <= exempt)
    )
    renewable_charged = parameters.renewable_levy_charged.values_at(starts, int)
    renewable_exempt = parameters.renewable_levy_exemption(kind).values_at(starts, int)

    community_cost = np.empty_like(covered)
    grid_cost = np.empty_like(covered)
    for schedule, rows in _groups(schedules):
        rates = _ConsumerRates.for_schedule(schedule, starts, kind, parameters)
        renewable = rates.renewable * renewable_charged
        community_rate = (
            community_price
            + rates.reduced_grid
            + rates.levy * (1 - levy_exempt)
            + renewable * (1 - renewable_exempt)
        )
        grid_rate = rates.energy + rates.grid + rates.levy + renewable
        community_cost[rows] = covered[rows] * community_rate
        grid_cost[rows] = covered[rows] * grid_rate
    return ConsumerSavings(
        community_cost_nct=community_cost,
        grid_cost_nct=grid_cost,
        co2_avoided_mg=covered * emission_factor_g_per_kwh,
    )


def producer_revenue(
    allocation: Allocation,
    interval_starts: IntervalStarts,
    *,
    prices: Schedule[CommunityPrices],
    feed_in: Schedule[ProducerTariff] | Sequence[Schedule[ProducerTariff]],
) -> ProducerRevenue:
    """Each producer's revenue from the community vs. the feed-in tariff, for the same energy.

    Raises:
        AllocationInputError: interval starts that do not match the allocation.
        IntervalError: interval starts naive or off a 15-minute boundary.
        MissingParameterError: a day without a price or feed-in tariff.
    """
    starts = _starts(allocation, interval_starts)
    credited = allocation.credited_wh
    schedules = _per_member(feed_in, credited.shape[0], "feed-in tariffs")
    producer_price = prices.values_at(starts, lambda p: price_uct_per_kwh(p.producer_ct_per_kwh))
    feed_in_revenue = np.empty_like(credited)
    for schedule, rows in _groups(schedules):
        rate = schedule.values_at(starts, lambda t: price_uct_per_kwh(t.feed_in_ct_per_kwh))
        feed_in_revenue[rows] = credited[rows] * rate
    return ProducerRevenue(
        community_revenue_nct=credited * producer_price, feed_in_revenue_nct=feed_in_revenue
    )


@dataclass(frozen=True)
class _ConsumerRates:
    """One tariff's per-interval rates. [µct/kWh]"""

    energy: Int64Array
    grid: Int64Array
    reduced_grid: Int64Array
    levy: Int64Array
    renewable: Int64Array

    @classmethod
    def for_schedule(
        cls,
        schedule: Schedule[ConsumerTariff],
        starts: Int64Array,
        kind: CommunityKind,
        parameters: StatutoryParameters,
    ) -> _ConsumerRates:
        index = schedule.indices_at(starts)

        def column(value: Callable[[ConsumerTariff], int]) -> Int64Array:
            table = np.array([value(e.value) for e in schedule.entries], dtype=np.int64)
            return table[index]

        grid = column(lambda t: price_uct_per_kwh(t.grid_usage_ct_per_kwh))
        reduction = np.zeros_like(grid)
        levy = np.zeros_like(grid)
        for position, entry in enumerate(schedule.entries):
            here = index == position
            if not here.any():
                continue
            tariff = entry.value
            reduction[here] = parameters.grid_fee_reduction(kind, tariff.grid_level).values_at(
                starts[here], _whole_percent
            )
            levy[here] = parameters.electricity_levy(tariff.category).values_at(
                starts[here], price_uct_per_kwh
            )
        return cls(
            energy=column(lambda t: price_uct_per_kwh(t.energy_ct_per_kwh)),
            grid=grid,
            # Prices have at most four decimals of a cent (multiples of 100 µct), so a
            # whole-percent reduction leaves whole µct: the division is exact.
            reduced_grid=grid * (100 - reduction) // 100,
            levy=levy,
            renewable=column(lambda t: price_uct_per_kwh(t.renewable_levy_ct_per_kwh)),
        )


def _whole_percent(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise TariffError(f"a grid fee reduction is a whole percent from 0 to 100, got {value!r}")
    return value


def _starts(allocation: Allocation, interval_starts: IntervalStarts) -> Int64Array:
    starts = epoch_seconds(interval_starts)
    if starts.shape != (allocation.intervals,):
        raise AllocationInputError(
            f"{starts.size} interval starts for an allocation of {allocation.intervals} intervals"
        )
    return starts


def _per_member(
    schedules: Schedule[T] | Sequence[Schedule[T]], members: int, what: str
) -> list[Schedule[T]]:
    if isinstance(schedules, Schedule):
        return [schedules] * members
    listed = list(schedules)
    if len(listed) != members:
        raise AllocationInputError(f"{len(listed)} {what} for {members} members")
    return listed


def _groups(schedules: list[Schedule[T]]) -> list[tuple[Schedule[T], Int64Array]]:
    """Members sharing one schedule object, so that its rates are computed once."""
    rows: dict[int, list[int]] = {}
    first: dict[int, Schedule[T]] = {}
    for row, schedule in enumerate(schedules):
        rows.setdefault(id(schedule), []).append(row)
        first.setdefault(id(schedule), schedule)
    return [(first[key], np.array(members, dtype=np.int64)) for key, members in rows.items()]
