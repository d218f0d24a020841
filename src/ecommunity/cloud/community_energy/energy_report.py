"""A community's energy figures over Vienna days, per member and in total, per day or month:
loads the participation, the official values, the members' meters and tariffs, runs the
estimate where official values are missing, and adds the days up into periods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final

import numpy as np
from sqlalchemy.orm import Session

from ecommunity.cloud.community_energy.estimate import Estimate, estimate, measured_g01
from ecommunity.cloud.community_energy.member_figures import (
    DailyFigures,
    Pricing,
    Source,
    Tariffs,
    daily_figures,
)
from ecommunity.cloud.community_energy.meter_links import meter_links
from ecommunity.cloud.community_energy.official_csv import ROLE_QUANTITIES, Quantity
from ecommunity.cloud.community_energy.participants import (
    QUARTER_HOUR,
    Int64Array,
    Official,
    Participation,
    epoch_s,
    lay_out,
    load_participation,
    vienna_midnight,
)
from ecommunity.cloud.db.communities import plants_of
from ecommunity.cloud.db.community_models import Community
from ecommunity.cloud.db.energy_models import MemberEnergySettings
from ecommunity.cloud.db.official_energy import official_values, settings_of
from ecommunity.community import (
    AllocationModel,
    CommunityError,
    CommunityKind,
    ConsumerCategory,
    ConsumerTariff,
    GenerationSource,
    ProducerTariff,
    Role,
)

#: Estimates reach this far back: gateway data is read per quarter hour and member. [days]
MAX_ESTIMATE_DAYS: Final = 62


class Resolution(StrEnum):
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True)
class Period:
    """Sums over the days of one period. Energy [Wh], money [nct], CO₂ [mg]."""

    label: str
    start: datetime
    end: datetime
    source: Source
    official_days: int
    estimated_days: int
    taking_intervals: int
    missing_intervals: int
    measured_wh: int
    participating_wh: int
    allocated_wh: int
    covered_wh: int
    credited_wh: int
    surplus_wh: int
    community_price_nct: int
    community_cost_nct: int | None
    supplier_cost_nct: int | None
    feed_in_revenue_nct: int | None
    co2_avoided_mg: int | None


@dataclass(frozen=True)
class EnergyReport:
    start: datetime
    end: datetime
    members: list[DailyFigures]
    #: Why there is no estimate where official values are missing, if so.
    estimate_note: str | None


def energy_report(
    db: Session,
    community: Community,
    first_day: date,
    last_day: date,
    *,
    user_id: int | None,
    emission_factor_g_per_kwh: int | None,
    now: datetime,
) -> EnergyReport:
    """Figures per day of ``[first_day, last_day)`` for the points of ``user_id`` (None: all)."""
    days = [first_day + timedelta(days=k) for k in range((last_day - first_day).days)]
    midnights = [vienna_midnight(day) for day in [*days, last_day]]
    start, end = midnights[0], midnights[-1]
    participation = load_participation(db, community.id, start, end)
    official = lay_out(official_values(db, community.id, start, end), participation)
    subjects = [
        (role, row)
        for role in Role
        for row, p in enumerate(participation.side(role).participants)
        if user_id is None or p.user_id == user_id
    ]
    model = AllocationModel(community.allocation_model)
    guess, note = _estimate(db, participation, official, subjects, model, now)
    settings = settings_of(
        db,
        [
            m
            for role, row in subjects
            for m in participation.side(role).participants[row].membership_ids
        ],
    )
    tariffs = {
        participation.side(role).participants[row]: _tariffs(
            participation.side(role).participants[row].membership_ids, settings
        )
        for role, row in subjects
    }
    plants = plants_of(db, [community.id]).get(community.id, [])
    pricing = Pricing(
        kind=CommunityKind(community.kind),
        sources=frozenset(GenerationSource(p.source) for p in plants),
        consumer_price_uct_per_kwh=community.consumer_price_uct_per_kwh,
        producer_price_uct_per_kwh=community.producer_price_uct_per_kwh,
        emission_factor_g_per_kwh=emission_factor_g_per_kwh,
    )
    members = daily_figures(
        participation,
        official,
        guess,
        subjects,
        days=days,
        midnights=midnights,
        model=model,
        pricing=pricing,
        tariffs=tariffs,
    )
    return EnergyReport(start, end, members, note)


def _estimate(
    db: Session,
    participation: Participation,
    official: dict[tuple[Role, Quantity], Official],
    subjects: Sequence[tuple[Role, int]],
    model: AllocationModel,
    now: datetime,
) -> tuple[Estimate | None, str | None]:
    """Our estimate in the quarter hours a subject lacks official values, if any: only those
    that ended, and only within the last :data:`MAX_ESTIMATE_DAYS`."""
    starts = participation.starts_s
    lacking = np.zeros(starts.size, dtype=bool)
    for role, row in subjects:
        taking = participation.side(role).tf_percent[row] > 0
        needed = [
            q for q in (Quantity.G01, Quantity.G03, Quantity.P01T) if q in ROLE_QUANTITIES[role]
        ]
        complete = np.ones_like(taking)
        for quantity in needed:
            complete &= official[(role, quantity)].present[row]
        lacking |= taking & ~complete
    ended = starts + QUARTER_HOUR.total_seconds() <= epoch_s(now)
    recent = starts >= epoch_s(now) - MAX_ESTIMATE_DAYS * 86_400
    columns = lacking & ended & recent
    note = None
    if (lacking & ended & ~recent).any():
        note = (
            f"estimates reach back {MAX_ESTIMATE_DAYS} days; older days without official "
            "values have none"
        )
    if not columns.any():
        return None, note
    links = meter_links(
        db, [*participation.consumers.participants, *participation.producers.participants]
    )
    measured = measured_g01(db, participation, official, links, columns, now=now)
    try:
        return estimate(participation, measured, columns, model), note
    except CommunityError as exc:
        return None, f"no estimate: our engine refused the input ({exc})"


def _tariffs(membership_ids: Sequence[int], settings: dict[int, MemberEnergySettings]) -> Tariffs:
    """The latest membership's tariffs."""
    for membership_id in reversed(membership_ids):
        own = settings.get(membership_id)
        if own is None:
            continue
        consumer = feed_in = None
        if own.energy_price_uct_per_kwh is not None and own.grid_usage_uct_per_kwh is not None:
            consumer = ConsumerTariff(
                energy_ct_per_kwh=_ct(own.energy_price_uct_per_kwh),
                grid_usage_ct_per_kwh=_ct(own.grid_usage_uct_per_kwh),
                renewable_levy_ct_per_kwh=_ct(own.renewable_levy_uct_per_kwh or 0),
                grid_level=own.grid_level or 7,
                category=ConsumerCategory(own.consumer_category or ConsumerCategory.HOUSEHOLD),
            )
        if own.feed_in_uct_per_kwh is not None:
            feed_in = ProducerTariff(_ct(own.feed_in_uct_per_kwh))
        return Tariffs(consumer, feed_in)
    return Tariffs()


def _ct(uct: int) -> Decimal:
    return Decimal(uct).scaleb(-6)


def periods(
    figures: DailyFigures, resolution: Resolution, midnights: Sequence[datetime]
) -> list[Period]:
    """The days added up per day or calendar month (Vienna)."""
    groups: dict[str, list[int]] = {}
    for index, day in enumerate(figures.days):
        label = day.isoformat() if resolution is Resolution.DAY else f"{day:%Y-%m}"
        groups.setdefault(label, []).append(index)
    return [_period(label, indices, figures, midnights) for label, indices in groups.items()]


def _period(
    label: str, indices: list[int], f: DailyFigures, midnights: Sequence[datetime]
) -> Period:
    def total(values: Int64Array) -> int:
        return int(sum(int(values[i]) for i in indices))

    def optional(values: Int64Array | None) -> int | None:
        return None if values is None else total(values)

    # Days the point does not take part in say nothing about the period's source.
    sources = [f.source[i] for i in indices if f.taking_intervals[i] > 0]
    return Period(
        label=label,
        start=midnights[indices[0]],
        end=midnights[indices[-1] + 1],
        source=combined(sources),
        official_days=sources.count(Source.OFFICIAL),
        estimated_days=sources.count(Source.ESTIMATE),
        taking_intervals=total(f.taking_intervals),
        missing_intervals=total(f.missing_intervals),
        measured_wh=total(f.measured_wh),
        participating_wh=total(f.participating_wh),
        allocated_wh=total(f.allocated_wh),
        covered_wh=total(f.covered_wh),
        credited_wh=total(f.credited_wh),
        surplus_wh=total(f.surplus_wh),
        community_price_nct=total(f.community_price_nct),
        community_cost_nct=optional(f.community_cost_nct),
        supplier_cost_nct=optional(f.supplier_cost_nct),
        feed_in_revenue_nct=optional(f.feed_in_revenue_nct),
        co2_avoided_mg=optional(f.co2_avoided_mg),
    )


def combined(sources: Sequence[Source]) -> Source:
    """official when every day is official; none when no day has data (or there is no day);
    else estimate (partly estimated, or partly without data: see the missing intervals)."""
    if all(s is Source.NONE for s in sources):
        return Source.NONE
    if all(s is Source.OFFICIAL for s in sources):
        return Source.OFFICIAL
    return Source.ESTIMATE


@dataclass(frozen=True)
class CommunityPeriod:
    """The community's sums over its members for one period. Energy [Wh], money [nct]."""

    label: str
    start: datetime
    end: datetime
    source: Source
    consumption_wh: int
    covered_wh: int
    production_wh: int
    credited_wh: int
    surplus_wh: int
    #: What consumers pay the community for G.03, and producers are credited.
    consumers_paid_nct: int
    producers_credited_nct: int
    #: Savings of the consumers who set a tariff, and how many did.
    savings_nct: int
    priced_consumers: int
    missing_intervals: int


def community_totals(members: Sequence[tuple[Role, list[Period]]]) -> list[CommunityPeriod]:
    """Each period's sums over the members' periods (all have the same labels)."""
    if not members:
        return []
    result = []
    for index, first in enumerate(members[0][1]):
        rows = [(role, periods[index]) for role, periods in members]
        consumers = [p for role, p in rows if role is Role.CONSUMER]
        producers = [p for role, p in rows if role is Role.PRODUCER]
        priced = [
            p
            for p in consumers
            if p.community_cost_nct is not None and p.supplier_cost_nct is not None
        ]
        taking = [p.source for _, p in rows if p.taking_intervals > 0]
        result.append(
            CommunityPeriod(
                label=first.label,
                start=first.start,
                end=first.end,
                source=combined(taking),
                consumption_wh=sum(p.measured_wh for p in consumers),
                covered_wh=sum(p.covered_wh for p in consumers),
                production_wh=sum(p.measured_wh for p in producers),
                credited_wh=sum(p.credited_wh for p in producers),
                surplus_wh=sum(p.surplus_wh for p in producers),
                consumers_paid_nct=sum(p.community_price_nct for p in consumers),
                producers_credited_nct=sum(p.community_price_nct for p in producers),
                savings_nct=sum(
                    (p.supplier_cost_nct or 0) - (p.community_cost_nct or 0) for p in priced
                ),
                priced_consumers=len(priced),
                missing_intervals=sum(p.missing_intervals for _, p in rows),
            )
        )
    return result
