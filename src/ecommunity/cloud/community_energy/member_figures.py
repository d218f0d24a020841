"""Each member's energy figures per Vienna day: official where the grid operator's values cover
the day, our estimate where they do not, unknown where neither has the member's own data.

A consumer's quarter hour is official when its G.01, G.02 and G.03 were delivered (G.01T, if
not delivered, is ``floor(G.01 · TF / 100)``); a producer's when its G.01 and its surplus
P.01T were (P.01 stands in for P.01T at a factor of 100 %). Otherwise the estimate's values
apply (``estimate``), when the member's own G.01 is known. A day is ``official`` when every
quarter hour the point takes part in is, ``none`` when none has any data, ``estimate`` else.

Money comes from the domain (``ecommunity.community``): what the covered energy G.03 cost in
the community (the community's price, the reduced grid fee and the levies still due) against
what it would have cost from the member's supplier, with the member's tariff; producers' revenue
at the community's price against the feed-in tariff. Without a tariff only the community price
is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ecommunity.cloud.community_energy.estimate import Estimate
from ecommunity.cloud.community_energy.official_csv import Quantity
from ecommunity.cloud.community_energy.participants import (
    BoolArray,
    Int64Array,
    Official,
    Participant,
    Participation,
    epoch_s,
)
from ecommunity.community import (
    Allocation,
    AllocationModel,
    CommunityError,
    CommunityKind,
    CommunityPrices,
    ConsumerTariff,
    GenerationSource,
    ProducerTariff,
    Role,
    Schedule,
    consumer_savings,
    participating_wh,
    producer_revenue,
)

#: µct per ct.
_MICRO: Final = 1_000_000


class Source(StrEnum):
    OFFICIAL = "official"
    ESTIMATE = "estimate"
    NONE = "none"


@dataclass(frozen=True)
class Pricing:
    """What the money figures need from the community."""

    kind: CommunityKind
    sources: frozenset[GenerationSource]
    #: [µct/kWh]
    consumer_price_uct_per_kwh: int
    producer_price_uct_per_kwh: int
    #: CO₂ avoided per kWh covered; None: not computed. [g/kWh]
    emission_factor_g_per_kwh: int | None


@dataclass(frozen=True)
class Tariffs:
    """A member's own tariffs (None: not given)."""

    consumer: ConsumerTariff | None = None
    feed_in: ProducerTariff | None = None


@dataclass(frozen=True, eq=False)
class DailyFigures:
    """One point's figures per Vienna day ``(D,)``. Energy [Wh], money [nct], CO₂ [mg]."""

    participant: Participant
    days: list[date]
    source: list[Source]
    #: Quarter hours taken part in, and those without the point's own data.
    taking_intervals: Int64Array
    missing_intervals: Int64Array
    measured_wh: Int64Array
    participating_wh: Int64Array
    #: Consumers: G.02, G.03. Producers: zeros.
    allocated_wh: Int64Array
    covered_wh: Int64Array
    #: Producers: what consumers took (G.01T − P.01T) and the surplus P.01T. Consumers: zeros.
    credited_wh: Int64Array
    surplus_wh: Int64Array
    #: Consumers: G.03 at the community price; producers: what was taken, at their price.
    community_price_nct: Int64Array
    #: With a tariff: consumers' all-in community cost, supplier cost; producers' feed-in
    #: revenue. None without one (``pricing_note`` says why).
    community_cost_nct: Int64Array | None
    supplier_cost_nct: Int64Array | None
    feed_in_revenue_nct: Int64Array | None
    co2_avoided_mg: Int64Array | None
    pricing_note: str | None


def day_bounds(participation: Participation, midnights: Sequence[datetime]) -> Int64Array:
    """The first column of each day, and the end: ``(D + 1,)``."""
    first = int(participation.starts_s[0])
    return np.array([(epoch_s(m) - first) // 900 for m in midnights], dtype=np.int64)


def daily_figures(
    participation: Participation,
    official: dict[tuple[Role, Quantity], Official],
    estimate: Estimate | None,
    subjects: Sequence[tuple[Role, int]],
    *,
    days: Sequence[date],
    midnights: Sequence[datetime],
    model: AllocationModel,
    pricing: Pricing,
    tariffs: dict[Participant, Tariffs],
) -> list[DailyFigures]:
    """The subjects' (role, row) figures per day of ``days`` (Vienna midnights ``midnights``,
    one more than days)."""
    bounds = day_bounds(participation, midnights)
    merged = [_merge(participation, official, estimate, role, row) for role, row in subjects]
    starts = participation.starts_s.astype("datetime64[s]")
    result = []
    for (role, row), values in zip(subjects, merged, strict=True):
        participant = participation.side(role).participants[row]
        own = tariffs.get(participant, Tariffs())
        result.append(
            _figures(participant, role, values, bounds, list(days), starts, model, pricing, own)
        )
    return result


@dataclass(frozen=True, eq=False)
class _Merged:
    """One point's values per quarter hour: official, estimated or 0, and which."""

    taking: BoolArray
    official: BoolArray
    estimated: BoolArray
    measured_wh: Int64Array
    participating_wh: Int64Array
    allocated_wh: Int64Array
    covered_wh: Int64Array
    surplus_wh: Int64Array


def _merge(
    participation: Participation,
    official: dict[tuple[Role, Quantity], Official],
    estimate: Estimate | None,
    role: Role,
    row: int,
) -> _Merged:
    tf = participation.side(role).tf_percent[row]
    taking = tf > 0

    def given(quantity: Quantity) -> Official:
        table = official[(role, quantity)]
        return Official(table.energy_wh[row], table.present[row])

    g01, g01t = given(Quantity.G01), given(Quantity.G01T)
    participating = np.where(
        g01t.present, g01t.energy_wh, participating_wh(g01.energy_wh[None, :], tf[None, :])[0]
    )
    zero = np.zeros_like(g01.energy_wh)
    if role is Role.CONSUMER:
        g02, g03 = given(Quantity.G02), given(Quantity.G03)
        complete = g01.present & g02.present & g03.present
        allocated, covered, surplus = g02.energy_wh, g03.energy_wh, zero
    else:
        p01t, p01 = given(Quantity.P01T), given(Quantity.P01)
        legacy = p01.present & (tf == 100)
        complete = g01.present & (p01t.present | legacy)
        allocated, covered = zero, zero
        surplus = np.where(p01t.present, p01t.energy_wh, p01.energy_wh)
    is_official = taking & complete
    estimated = np.zeros_like(taking)
    values = [g01.energy_wh, participating, allocated, covered, surplus]
    if estimate is not None:
        known = estimate.measured.known[role][row]
        estimated = taking & ~complete & estimate.columns & known
        if role is Role.CONSUMER:
            ours = [
                estimate.measured.energy_wh[role][row],
                estimate.consumption_t_wh[row],
                estimate.allocated_wh[row],
                estimate.covered_wh[row],
                zero,
            ]
        else:
            ours = [
                estimate.measured.energy_wh[role][row],
                estimate.production_t_wh[row],
                zero,
                zero,
                estimate.surplus_wh[row],
            ]
        values = [np.where(estimated, o, v) for o, v in zip(ours, values, strict=True)]
    used = is_official | estimated
    measured, participating, allocated, covered, surplus = (np.where(used, v, 0) for v in values)
    return _Merged(
        taking, is_official, estimated, measured, participating, allocated, covered, surplus
    )


def _figures(
    participant: Participant,
    role: Role,
    values: _Merged,
    bounds: Int64Array,
    days: list[date],
    starts: NDArray[np.datetime64],
    model: AllocationModel,
    pricing: Pricing,
    tariffs: Tariffs,
) -> DailyFigures:
    def per_day(array: NDArray[Any]) -> Int64Array:
        sums = np.add.reduceat(array.astype(np.int64), bounds[:-1]) if days else array[:0]
        # reduceat gives the element itself for an empty slice; no day is empty here.
        return np.asarray(sums, dtype=np.int64)

    taking = per_day(values.taking)
    official = per_day(values.official)
    estimated = per_day(values.estimated)
    sources = [
        Source.NONE if t == 0 or o + e == 0 else Source.OFFICIAL if o == t else Source.ESTIMATE
        for t, o, e in zip(taking.tolist(), official.tolist(), estimated.tolist(), strict=True)
    ]
    zero_days = np.zeros(len(days), dtype=np.int64)
    credited = values.participating_wh - values.surplus_wh if role is Role.PRODUCER else None
    note = None
    community_cost = supplier_cost = feed_in = co2 = None
    prices = Schedule.constant(
        "community prices",
        CommunityPrices(
            Decimal(pricing.consumer_price_uct_per_kwh).scaleb(-6),
            Decimal(pricing.producer_price_uct_per_kwh).scaleb(-6),
        ),
    )
    if role is Role.CONSUMER:
        price = pricing.consumer_price_uct_per_kwh
        community_price = per_day(values.covered_wh) * price
        if tariffs.consumer is None:
            note = "no supplier tariff set for this membership"
        else:
            try:
                savings = consumer_savings(
                    _allocation(model, values, role),
                    starts,
                    kind=pricing.kind,
                    sources=pricing.sources,
                    prices=prices,
                    tariffs=Schedule.constant("supplier tariff", tariffs.consumer),
                    emission_factor_g_per_kwh=pricing.emission_factor_g_per_kwh or 0,
                ).daily()
                community_cost = _row(savings.community_cost_nct)
                supplier_cost = _row(savings.grid_cost_nct)
                if pricing.emission_factor_g_per_kwh is not None:
                    co2 = _row(savings.co2_avoided_mg)
            except CommunityError as exc:
                note = str(exc)
        if co2 is None and pricing.emission_factor_g_per_kwh is not None:
            co2 = per_day(values.covered_wh) * pricing.emission_factor_g_per_kwh
    else:
        assert credited is not None
        community_price = per_day(credited) * pricing.producer_price_uct_per_kwh
        if tariffs.feed_in is None:
            note = "no feed-in tariff set for this membership"
        else:
            try:
                revenue = producer_revenue(
                    _allocation(model, values, role),
                    starts,
                    prices=prices,
                    feed_in=Schedule.constant("feed-in tariff", tariffs.feed_in),
                ).daily()
                feed_in = _row(revenue.feed_in_revenue_nct)
            except CommunityError as exc:
                note = str(exc)
    return DailyFigures(
        participant=participant,
        days=days,
        source=sources,
        taking_intervals=taking,
        missing_intervals=taking - official - estimated,
        measured_wh=per_day(values.measured_wh),
        participating_wh=per_day(values.participating_wh),
        allocated_wh=per_day(values.allocated_wh),
        covered_wh=per_day(values.covered_wh),
        credited_wh=zero_days if credited is None else per_day(credited),
        surplus_wh=per_day(values.surplus_wh),
        community_price_nct=community_price,
        community_cost_nct=community_cost,
        supplier_cost_nct=supplier_cost,
        feed_in_revenue_nct=feed_in,
        co2_avoided_mg=co2,
        pricing_note=note,
    )


def _row(array: NDArray[Any]) -> Int64Array:
    return np.asarray(array[0], dtype=np.int64)


def _allocation(model: AllocationModel, values: _Merged, role: Role) -> Allocation:
    """A one-point allocation of the merged values, for the domain's money functions."""
    one = values.measured_wh[None, :]
    empty = np.zeros((0, one.shape[1]), dtype=np.int64)
    narrow: Any = np.int32  # G.02, G.03, P.01T are int32 in the domain's allocation
    if role is Role.CONSUMER:
        return Allocation(
            model=model,
            consumption_wh=one,
            consumer_tf_percent=np.full_like(one, 100),
            allocated_wh=values.allocated_wh[None, :].astype(narrow),
            covered_wh=values.covered_wh[None, :].astype(narrow),
            production_wh=empty,
            producer_tf_percent=empty,
            surplus_wh=empty.astype(narrow),
        )
    # The participating production as G.01 at 100 %: G.01T − P.01T is then exactly what
    # consumers took, whatever factor the grid operator applied.
    participating = values.participating_wh[None, :]
    return Allocation(
        model=model,
        consumption_wh=empty,
        consumer_tf_percent=empty,
        allocated_wh=empty.astype(narrow),
        covered_wh=empty.astype(narrow),
        production_wh=participating,
        producer_tf_percent=np.full_like(participating, 100),
        surplus_wh=values.surplus_wh[None, :].astype(narrow),
    )
