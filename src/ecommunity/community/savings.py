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
:mod:`ecommunity.community.tariffs`). int64 holds about 92 million € per cell, per member and
day, and per member total; :func:`nct_to_euro` converts.

Every price changes at Vienna midnight only, so the rates are looked up once per day and an
amount per day is that day's energy times the rate: exactly the sum of the amounts per interval,
without computing them. Those (``(N, T)`` arrays) are computed when first read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from itertools import pairwise
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from ecommunity.community.allocation import Allocation
from ecommunity.community.errors import AllocationInputError, TariffError
from ecommunity.community.intervals import DayRuns, IntervalStarts, epoch_seconds
from ecommunity.community.kinds import CommunityKind, GenerationSource
from ecommunity.community.rounding import Int64Array, IntArray
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


_INT64_MAX: Final = np.iinfo(np.int64).max


def _row_total(array: Int64Array) -> int:
    # Python ints across members: a community total may exceed one member's int64 range.
    return sum(int(value) for value in array.sum(axis=1, dtype=np.int64))


def _run_sums(energy_wh: IntArray, runs: DayRuns) -> Int64Array:
    """Energy per member and run of one day, ``(N, S)``, added up in int64. [Wh]"""
    out = np.empty((energy_wh.shape[0], runs.first.size), dtype=np.int64)
    lengths = runs.lengths.tolist()
    first = runs.first.tolist()
    run = 0
    while run < len(lengths):
        # Consecutive runs of one length (days of 96 quarter hours, mostly) are one reshape of
        # the columns: no copy, unlike reduceat with a wider dtype.
        length, end = lengths[run], run + 1
        while end < len(lengths) and lengths[end] == length:
            end += 1
        start = first[run]
        columns = energy_wh[:, start : start + (end - run) * length]
        np.sum(
            columns.reshape(energy_wh.shape[0], end - run, length),
            axis=2,
            dtype=np.int64,
            out=out[:, run:end],
        )
        run = end
    return out


def _amounts(energy_wh: Int64Array, rate: Int64Array) -> Int64Array:
    """Energy times rate, refusing what int64 cannot hold. [Wh × µct/kWh = nct]"""
    if energy_wh.size and int(energy_wh.max()) * int(rate.max(initial=0)) > _INT64_MAX:
        raise AllocationInputError(
            "an amount for one member and day above the int64 range of nano-cents (92 million €)"
        )
    return energy_wh * rate


def _per_interval(energy_wh: IntArray, rate: Int64Array, runs: DayRuns) -> Int64Array:
    """``energy × rate`` per interval from a rate per run. [nct]"""
    out = np.empty(energy_wh.shape, dtype=np.int64)
    bounds = np.append(runs.first, energy_wh.shape[1]).tolist()
    for run, (start, stop) in enumerate(pairwise(bounds)):
        np.multiply(energy_wh[:, start:stop], rate[:, run : run + 1], out=out[:, start:stop])
    return out


def _by_day(per_run: Int64Array, runs: DayRuns) -> tuple[NDArray[np.datetime64], Int64Array]:
    """Runs of the same day added up (starts out of order make several runs of one day)."""
    days, inverse = np.unique(runs.days, return_inverse=True)
    if days.size == runs.days.size and np.array_equal(days, runs.days):
        return days, per_run
    out = np.zeros((days.size, per_run.shape[0]), dtype=np.int64)
    np.add.at(out, inverse, per_run.T)
    return days, out.T.copy()


@dataclass(frozen=True, eq=False)
class ConsumerDays:
    """Per consumer and Vienna day ``(N_c, D)``. Energy [Wh], money [nct], CO₂ [mg]."""

    #: ``(D,)`` the days, ascending (``datetime64[D]``).
    days: NDArray[np.datetime64]
    covered_wh: Int64Array
    community_cost_nct: Int64Array
    grid_cost_nct: Int64Array
    co2_avoided_mg: Int64Array

    @property
    def savings_nct(self) -> Int64Array:
        return self.grid_cost_nct - self.community_cost_nct


@dataclass(frozen=True, eq=False)
class ConsumerSavings:
    """Each consumer's covered energy priced in the community and from the grid.

    Per interval ``(N_c, T)``: :attr:`community_cost_nct`, :attr:`grid_cost_nct`,
    :attr:`co2_avoided_mg`, :attr:`savings_nct` (computed when first read); per day:
    :meth:`daily`; for the community: :meth:`totals`. Money [nct], CO₂ [mg].
    """

    #: G.03 ``(N_c, T)``, int32 as in the allocation. [Wh]
    covered_wh: IntArray
    runs: DayRuns
    #: ``(N_c, S)`` per run of one day: covered energy at the community price, the reduced grid
    #: fee and the levies still due. [µct/kWh]
    community_rate_uct_per_kwh: Int64Array
    #: ``(N_c, S)``: the same energy from the supplier, with the full grid fee and levies.
    grid_rate_uct_per_kwh: Int64Array
    emission_factor_g_per_kwh: int

    @cached_property
    def community_cost_nct(self) -> Int64Array:
        return _per_interval(self.covered_wh, self.community_rate_uct_per_kwh, self.runs)

    @cached_property
    def grid_cost_nct(self) -> Int64Array:
        return _per_interval(self.covered_wh, self.grid_rate_uct_per_kwh, self.runs)

    @property
    def co2_avoided_mg(self) -> Int64Array:
        return self.covered_wh.astype(np.int64) * self.emission_factor_g_per_kwh

    @property
    def savings_nct(self) -> Int64Array:
        return self.grid_cost_nct - self.community_cost_nct

    @cached_property
    def _daily(self) -> ConsumerDays:
        covered = _run_sums(self.covered_wh, self.runs)
        days, covered_days = _by_day(covered, self.runs)
        return ConsumerDays(
            days=days,
            covered_wh=covered_days,
            community_cost_nct=_by_day(
                _amounts(covered, self.community_rate_uct_per_kwh), self.runs
            )[1],
            grid_cost_nct=_by_day(_amounts(covered, self.grid_rate_uct_per_kwh), self.runs)[1],
            co2_avoided_mg=covered_days * self.emission_factor_g_per_kwh,
        )

    def daily(self) -> ConsumerDays:
        """Energy, costs and CO₂ per consumer and Vienna day: the sums of the intervals'.

        Raises:
            AllocationInputError: an amount for one member and day beyond int64.
        """
        return self._daily

    def totals(self) -> dict[str, int]:
        """The community's sums over all consumers and intervals.

        Raises:
            AllocationInputError: an amount for one member and day beyond int64.
        """
        daily = self.daily()
        return {
            "community_cost_nct": _row_total(daily.community_cost_nct),
            "grid_cost_nct": _row_total(daily.grid_cost_nct),
            "savings_nct": _row_total(daily.savings_nct),
            "co2_avoided_mg": _row_total(daily.co2_avoided_mg),
        }


@dataclass(frozen=True, eq=False)
class ProducerDays:
    """Per producer and Vienna day ``(N_p, D)``. Energy [Wh], money [nct]."""

    #: ``(D,)`` the days, ascending (``datetime64[D]``).
    days: NDArray[np.datetime64]
    #: Energy consumers took, G.01T − P.01T.
    credited_wh: Int64Array
    community_revenue_nct: Int64Array
    feed_in_revenue_nct: Int64Array

    @property
    def gain_nct(self) -> Int64Array:
        return self.community_revenue_nct - self.feed_in_revenue_nct


@dataclass(frozen=True, eq=False)
class ProducerRevenue:
    """Each producer's revenue for the energy consumers took, in the community and at feed-in.

    Per interval ``(N_p, T)`` (computed when first read), per day (:meth:`daily`) and for the
    community (:meth:`totals`). [nct]
    """

    #: Producers' G.01T and surplus P.01T ``(N_p, T)``. [Wh]
    production_t_wh: Int64Array
    surplus_wh: IntArray
    runs: DayRuns
    #: ``(N_p, S)`` per run of one day: the community's producer price. [µct/kWh]
    community_rate_uct_per_kwh: Int64Array
    #: ``(N_p, S)``: the feed-in tariff. [µct/kWh]
    feed_in_rate_uct_per_kwh: Int64Array

    @cached_property
    def credited_wh(self) -> Int64Array:
        """What consumers took, G.01T − P.01T ``(N_p, T)``. [Wh]"""
        return self.production_t_wh - self.surplus_wh

    @cached_property
    def community_revenue_nct(self) -> Int64Array:
        return _per_interval(self.credited_wh, self.community_rate_uct_per_kwh, self.runs)

    @cached_property
    def feed_in_revenue_nct(self) -> Int64Array:
        return _per_interval(self.credited_wh, self.feed_in_rate_uct_per_kwh, self.runs)

    @property
    def gain_nct(self) -> Int64Array:
        return self.community_revenue_nct - self.feed_in_revenue_nct

    @cached_property
    def _daily(self) -> ProducerDays:
        # Per run of a day without the per-interval difference: sums of sums are exact.
        credited = _run_sums(self.production_t_wh, self.runs) - _run_sums(
            self.surplus_wh, self.runs
        )
        days, credited_days = _by_day(credited, self.runs)
        return ProducerDays(
            days=days,
            credited_wh=credited_days,
            community_revenue_nct=_by_day(
                _amounts(credited, self.community_rate_uct_per_kwh), self.runs
            )[1],
            feed_in_revenue_nct=_by_day(
                _amounts(credited, self.feed_in_rate_uct_per_kwh), self.runs
            )[1],
        )

    def daily(self) -> ProducerDays:
        """Energy and revenue per producer and Vienna day: the sums of the intervals'.

        Raises:
            AllocationInputError: an amount for one member and day beyond int64.
        """
        return self._daily

    def totals(self) -> dict[str, int]:
        """The community's sums over all producers and intervals.

        Raises:
            AllocationInputError: an amount for one member and day beyond int64.
        """
        daily = self.daily()
        return {
            "community_revenue_nct": _row_total(daily.community_revenue_nct),
            "feed_in_revenue_nct": _row_total(daily.feed_in_revenue_nct),
            "gain_nct": _row_total(daily.gain_nct),
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
    runs = _runs(allocation, interval_starts)
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
    # One lookup per run of a day: every parameter changes at Vienna midnight only.
    starts = runs.first_starts_s
    community_price = prices.values_at(starts, lambda p: price_uct_per_kwh(p.consumer_ct_per_kwh))
    levy_exempt = parameters.levy_exempt_sources(kind).values_at(
        starts, lambda exempt: int(sources <= exempt)
    )
    renewable_charged = parameters.renewable_levy_charged.values_at(starts, int)
    renewable_exempt = parameters.renewable_levy_exemption(kind).values_at(starts, int)

    community_rate = np.empty((covered.shape[0], starts.size), dtype=np.int64)
    grid_rate = np.empty_like(community_rate)
    for schedule, rows in _groups(schedules):
        rates = _ConsumerRates.for_schedule(schedule, starts, kind, parameters)
        renewable = rates.renewable * renewable_charged
        community_rate[rows] = (
            community_price
            + rates.reduced_grid
            + rates.levy * (1 - levy_exempt)
            + renewable * (1 - renewable_exempt)
        )
        grid_rate[rows] = rates.energy + rates.grid + rates.levy + renewable
    return ConsumerSavings(
        covered_wh=covered,
        runs=runs,
        community_rate_uct_per_kwh=community_rate,
        grid_rate_uct_per_kwh=grid_rate,
        emission_factor_g_per_kwh=emission_factor_g_per_kwh,
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
    runs = _runs(allocation, interval_starts)
    producers = allocation.surplus_wh.shape[0]
    schedules = _per_member(feed_in, producers, "feed-in tariffs")
    starts = runs.first_starts_s
    producer_price = prices.values_at(starts, lambda p: price_uct_per_kwh(p.producer_ct_per_kwh))
    feed_in_rate = np.empty((producers, starts.size), dtype=np.int64)
    for schedule, rows in _groups(schedules):
        feed_in_rate[rows] = schedule.values_at(
            starts, lambda t: price_uct_per_kwh(t.feed_in_ct_per_kwh)
        )
    return ProducerRevenue(
        production_t_wh=allocation.production_t_wh,
        surplus_wh=allocation.surplus_wh,
        runs=runs,
        community_rate_uct_per_kwh=np.broadcast_to(producer_price, feed_in_rate.shape),
        feed_in_rate_uct_per_kwh=feed_in_rate,
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


def _runs(allocation: Allocation, interval_starts: IntervalStarts) -> DayRuns:
    starts = epoch_seconds(interval_starts)
    if starts.shape != (allocation.intervals,):
        raise AllocationInputError(
            f"{starts.size} interval starts for an allocation of {allocation.intervals} intervals"
        )
    return DayRuns.of(starts)


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
