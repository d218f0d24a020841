"""Estimated yearly savings of one user in each of a few communities (``GET
/communities/compare``).

The year is the 365 days before today (Vienna), in quarter hours; prices and statutory rules
are today's for all of it.

- **Your consumption.** With a paired gateway: its import counters per quarter hour over that
  year (``basis: metered``; at least a day of complete quarter hours), the result scaled from
  the quarter hours used to a year. Otherwise ``annual_kwh`` shaped by the standard load
  profile H0 (``basis: h0``).
- **The community's production.** When every producer member's meters reported: their export
  per quarter hour (``production_basis: metered``), over the quarter hours where both you and
  they have data. Otherwise its PV plants' kWp through a typical PV year at its location
  (``ecommunity.forecast``, ``production_basis: kwp``; the plants' whole output is taken as
  shared; other sources have no profile and are left out, with a note).
- **The other members' consumption.** Each consumer's yearly energy from their meters'
  counters (first and last reading of the year, scaled to 365 days), or 3,500 kWh without one,
  times their factor; together shaped by H0, which is what the mean of many households
  follows. In the dynamic model your share depends only on their total, in the static one not
  at all, so they are one row of the allocation.
- **You join** with factor 100 %; in a static community with the key
  ``min(1 − Σ keys, 1 / (consumers + 1))``: an equal share if one is free, else what is left.
- The allocation, and the prices of your covered energy at the community's consumer price and
  at the reference tariff (or yours), are ``ecommunity.community``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from ecommunity.cloud.actions.participation_rules import vienna_midnight
from ecommunity.cloud.community_energy.participants import Participant, load_participation
from ecommunity.cloud.community_view.assumptions import (
    HOUSEHOLD_ANNUAL_KWH,
    QUARTERS_PER_YEAR,
    rules_on,
)
from ecommunity.cloud.community_view.cache import EngineCache
from ecommunity.cloud.community_view.live import floor_to, tariff_out
from ecommunity.cloud.community_view.members import (
    EURO_PLACES,
    QUARTER_HOUR,
    TOLERANCE,
    BoolArray,
    Int64Array,
    SideCounters,
    meters_of,
    ratio,
    savings_of,
    starts_from,
    vienna_day_of,
)
from ecommunity.cloud.community_view.schemas import (
    CommunityEstimate,
    CompareAssumptions,
    HistoryUsed,
)
from ecommunity.cloud.db.community_models import Community, GenerationPlant
from ecommunity.cloud.db.meter_counters import (
    BoundaryCounters,
    counters_at_boundaries,
    import_spans,
    meter_ids_of_users,
)
from ecommunity.cloud.errors import CloudError
from ecommunity.community import (
    AllocationModel,
    CommunityError,
    ConsumerTariff,
    GenerationSource,
    Role,
    StaticKeys,
    StatutoryParameters,
    allocate,
)
from ecommunity.forecast import PVSystem, Site, StandardLoadProfile, typical_energies_wh

#: The least history an estimate stands on: a day of quarter hours.
MIN_INTERVALS: Final = 96
#: Your factor in the communities compared. [%]
YOUR_TF_PERCENT: Final = 100
#: Counters of a year are one scan of a year of minute readings (about a second per meter
#: here): kept a while for the next comparison.
_COUNTERS: Final = EngineCache[dict[int, BoundaryCounters]](ttl_s=600.0, size=256)
_DAY: Final = timedelta(days=1)
_YEAR: Final = timedelta(days=365)


class ConsumptionNeededError(CloudError):
    """Neither a gateway's history nor an annual consumption to estimate from."""

    code = "consumption_needed"


@dataclass(frozen=True, eq=False)
class Year:
    """The quarter hours estimated over."""

    first: datetime
    end: datetime
    intervals: int
    starts_s: NDArray[np.int64]

    @classmethod
    def before(cls, now: datetime) -> Year:
        today = vienna_day_of(now)
        end = vienna_midnight(today)
        first = vienna_midnight(today - timedelta(days=365))
        intervals = int((end - first) / QUARTER_HOUR)
        return cls(first, end, intervals, starts_from(first, intervals))


@dataclass(frozen=True, eq=False)
class CallerConsumption:
    """The caller's consumption per quarter hour of the year, and where it is known. [Wh]"""

    basis: Literal["metered", "h0"]
    energy_wh: NDArray[np.int64]
    known: NDArray[np.bool_]
    annual_kwh: Decimal
    history: HistoryUsed | None
    notes: list[str] = field(default_factory=list)


def whole_wh(energies_wh: NDArray[np.float64]) -> NDArray[np.int64]:
    """Energies as whole Wh that add up as the exact ones do (rounded running sums)."""
    running = np.round(np.cumsum(energies_wh)).astype(np.int64)
    return np.diff(running, prepend=np.int64(0))


def _h0_wh(annual_kwh: float, year: Year) -> NDArray[np.int64]:
    if annual_kwh <= 0:
        return np.zeros(year.intervals, dtype=np.int64)
    profile = StandardLoadProfile(annual_kwh)
    return whole_wh(profile.quarter_hour_energies_wh(year.first, year.intervals))


def _counters(db: Session, meter_ids: Sequence[int], year: Year) -> dict[int, BoundaryCounters]:
    return _COUNTERS.get(
        db,
        (tuple(meter_ids), year.first, year.intervals),
        lambda: counters_at_boundaries(
            db, meter_ids, year.first, year.intervals, QUARTER_HOUR, tolerance=TOLERANCE
        ),
    )


def caller_consumption(
    db: Session, user_id: int, annual_kwh: Decimal | None, year: Year
) -> CallerConsumption:
    """The caller's year: metered when their gateway has a day of history, else H0.

    Raises:
        ConsumptionNeededError: neither is there.
    """
    notes: list[str] = []
    meters = meter_ids_of_users(db, [user_id]).get(user_id, [])
    too_little = ""
    if meters:
        counters = _counters(db, meters, year)
        value = np.zeros(year.intervals + 1, dtype=np.int64)
        fresh = np.ones(year.intervals + 1, dtype=np.bool_)
        for meter_id in meters:
            meter = counters[meter_id]
            value += meter.import_wh
            fresh &= meter.import_fresh
        known = fresh[1:] & fresh[:-1]
        energy = np.where(known, np.diff(value), 0)
        used = int(known.sum())
        if used >= MIN_INTERVALS:
            positions = np.flatnonzero(known)
            total_wh = int(energy.sum())
            annual = Decimal(total_wh * QUARTERS_PER_YEAR) / Decimal(used * 1000)
            if annual_kwh is not None:
                notes.append("annual_kwh is ignored: your gateway's history is used instead")
            notes.append(
                f"your consumption: {used} quarter hours ({used / 96:.1f} days) of your meter's "
                f"readings in the last year, {total_wh / 1000:.1f} kWh, scaled to a year"
            )
            return CallerConsumption(
                basis="metered",
                energy_wh=energy,
                known=known,
                annual_kwh=annual.quantize(Decimal("0.1")),
                history=HistoryUsed(
                    intervals=used,
                    days=round(used / 96, 2),
                    first=year.first + int(positions[0]) * QUARTER_HOUR,
                    last=year.first + (int(positions[-1]) + 1) * QUARTER_HOUR,
                ),
                notes=notes,
            )
        too_little = (
            f"your gateway has {used} complete quarter hours of readings in the last year, "
            f"less than a day"
        )
    if annual_kwh is None:
        reason = too_little or "you have no paired gateway"
        raise ConsumptionNeededError(
            f"{reason}: give your yearly consumption as annual_kwh (e.g. annual_kwh=3500)"
        )
    if too_little:
        notes.append(f"{too_little}: annual_kwh is used instead")
    notes.append(
        f"your consumption: {annual_kwh} kWh a year shaped by the standard load profile H0"
    )
    return CallerConsumption(
        basis="h0",
        energy_wh=_h0_wh(float(annual_kwh), year),
        known=np.ones(year.intervals, dtype=np.bool_),
        annual_kwh=annual_kwh,
        history=None,
        notes=notes,
    )


def assumptions_of(
    caller: CallerConsumption, year: Year, now: datetime, tariff: ConsumerTariff
) -> CompareAssumptions:
    return CompareAssumptions(
        basis=caller.basis,
        annual_consumption_kwh=caller.annual_kwh,
        history=caller.history,
        year_start=year.first,
        year_end=year.end,
        priced_on=vienna_day_of(now),
        tariff=tariff_out(tariff),
        participation_factor=YOUR_TF_PERCENT,
        notes=caller.notes,
    )


@dataclass(frozen=True)
class _Members:
    """The community's points taking part now, without the caller's."""

    consumers: list[tuple[Participant, int, int | None]]
    producers: list[tuple[Participant, int, int | None]]
    caller_is_member: bool


def _members_now(db: Session, community: Community, user_id: int, now: datetime) -> _Members:
    """Each point taking part in the current quarter hour, with its factor and meter."""
    quarter = floor_to(now, QUARTER_HOUR)
    participation = load_participation(db, community.id, quarter, quarter + QUARTER_HOUR)
    meters = meters_of(db, participation)
    found: dict[Role, list[tuple[Participant, int, int | None]]] = {}
    caller_is_member = False
    for role in Role:
        side = participation.side(role)
        found[role] = []
        for row, participant in enumerate(side.participants):
            tf = int(side.tf_percent[row, 0])
            if tf <= 0:
                continue
            if participant.user_id == user_id:
                caller_is_member = True
                continue
            found[role].append((participant, tf, meters[role][row]))
    return _Members(found[Role.CONSUMER], found[Role.PRODUCER], caller_is_member)


@dataclass(frozen=True, eq=False)
class _Production:
    basis: Literal["metered", "kwp"]
    #: ``(N_p, T)`` energy [Wh] and factors [%].
    energy_wh: Int64Array
    tf_percent: Int64Array
    #: Where the estimate can look: the caller's known quarter hours, and for metered
    #: production also the producers'.
    columns: BoolArray


def _production(
    db: Session,
    community: Community,
    plants: Sequence[GenerationPlant],
    producers: Sequence[tuple[Participant, int, int | None]],
    caller: CallerConsumption,
    year: Year,
    notes: list[str],
) -> _Production:
    why_not = "no producer member"
    if producers and any(meter is None for _, _, meter in producers):
        why_not = "not every producer member's meter is known"
    elif producers:
        meters = [meter for _, _, meter in producers if meter is not None]
        side = SideCounters.of(
            Role.PRODUCER, meters, _counters(db, meters, year), year.intervals + 1
        )
        energy, known = side.energies()
        columns = caller.known & known.all(axis=0)
        used = int(columns.sum())
        if used >= MIN_INTERVALS:
            notes.append(
                f"production: the {len(producers)} producer members' meters over {used} quarter "
                f"hours ({used / 96:.1f} days) where they and you have readings, scaled to a year"
            )
            tf = np.array([[factor] for _, factor, _ in producers], dtype=np.int64)
            return _Production("metered", energy, np.broadcast_to(tf, energy.shape), columns)
        why_not = f"the producer members' meters and yours share {used} complete quarter hours"
    pv_wp = sum(p.peak_power_wp for p in plants if p.source == GenerationSource.PV.value)
    others = sorted({p.source for p in plants if p.source != GenerationSource.PV.value})
    notes.append(
        f"production: {why_not}, so the plants' {pv_wp / 1000:g} kWp of PV in a typical year at "
        "the community's location (all of it shared)"
    )
    if others:
        notes.append(
            f"plants without a profile ({', '.join(others)}) are left out: the estimate is low"
        )
    if pv_wp:
        system = PVSystem(pv_wp / 1000, Site(community.latitude, community.longitude))
        energy = whole_wh(typical_energies_wh(system, year.first, year.intervals))[None, :]
    else:
        energy = np.zeros((0, year.intervals), dtype=np.int64)
    return _Production("kwp", energy, np.full(energy.shape, 100, dtype=np.int64), caller.known)


def _others_consumption(
    db: Session,
    consumers: Sequence[tuple[Participant, int, int | None]],
    year: Year,
    notes: list[str],
) -> tuple[Int64Array, Literal["metered", "assumed", "mixed", "none"]]:
    """The other consumers' consumption times their factors, as one H0-shaped row."""
    if not consumers:
        return np.zeros(year.intervals, dtype=np.int64), "none"
    meters = [meter for _, _, meter in consumers if meter is not None]
    spans = import_spans(db, meters, year.first, year.end)
    total_kwh = 0.0
    metered = assumed = 0
    for _, tf, meter in consumers:
        span = None if meter is None else spans.get(meter)
        length = None if span is None else span.last_at - span.first_at
        if span is None or length is None or length < _DAY:
            annual = float(HOUSEHOLD_ANNUAL_KWH)
            assumed += 1
        else:
            annual = (span.last_wh - span.first_wh) / 1000 * (_YEAR / length)
            metered += 1
        total_kwh += annual * tf / 100
    basis: Literal["metered", "assumed", "mixed"]
    basis = "metered" if not assumed else "assumed" if not metered else "mixed"
    notes.append(
        f"the other {len(consumers)} consumers: {total_kwh:,.0f} kWh a year after their factors "
        f"({metered} from their meters' first and last readings of the year, {assumed} assumed "
        f"at {HOUSEHOLD_ANNUAL_KWH:,} kWh), shaped by H0"
    )
    return _h0_wh(total_kwh, year), basis


def _your_key(
    others: Sequence[tuple[Participant, int, int | None]], notes: list[str]
) -> tuple[Fraction, Fraction]:
    """The others' keys together and yours (see the module docstring)."""
    taken = sum((Fraction(p.static_key_ppb or 0, 10**9) for p, _, _ in others), Fraction(0))
    yours = max(Fraction(0), min(1 - taken, Fraction(1, len(others) + 1)))
    notes.append(
        f"static model: your key is assumed to be {float(yours):.4g} (the others hold "
        f"{float(taken):.4g}; an equal share of {len(others) + 1} consumers if free, else what "
        "is left); the operator sets the real one"
    )
    return taken, yours


def estimate_in(
    db: Session,
    community: Community,
    plants: Sequence[GenerationPlant],
    *,
    user_id: int,
    caller: CallerConsumption,
    year: Year,
    now: datetime,
    tariff: ConsumerTariff,
    rules: StatutoryParameters,
) -> tuple[CommunityEstimate | None, str | None]:
    """The caller's estimate in one community, or None and why not."""
    notes: list[str] = []
    members = _members_now(db, community, user_id, now)
    if members.caller_is_member:
        notes.append("you are a member: your own metering points are left out of the others")
    production = _production(db, community, plants, members.producers, caller, year, notes)
    rest_wh, consumption_basis = _others_consumption(db, members.consumers, year, notes)
    model = AllocationModel(community.allocation_model)
    keys = static_key = None
    if model is AllocationModel.STATIC:
        taken, yours = _your_key(members.consumers, notes)
        static_key = (Decimal(yours.numerator) / Decimal(yours.denominator)).quantize(
            Decimal("0.000000001")
        )
        keys = StaticKeys.from_values([min(taken, 1 - yours), yours])
    columns = production.columns
    count = int(columns.sum())
    if count < MIN_INTERVALS:
        return None, "less than a day of data to estimate from"
    starts = year.starts_s[columns].astype("datetime64[s]")
    try:
        allocation = allocate(
            np.stack([rest_wh[columns], caller.energy_wh[columns]]),
            production.energy_wh[:, columns],
            model=model,
            consumer_tf_percent=YOUR_TF_PERCENT,
            producer_tf_percent=production.tf_percent[:, columns],
            keys=keys,
        )
        daily = savings_of(allocation, starts, community, plants, tariff, rules).daily()
    except CommunityError as exc:
        return None, str(exc)
    scale = Decimal(QUARTERS_PER_YEAR) / Decimal(count)

    def per_year_kwh(wh: int) -> Decimal:
        return (Decimal(wh) * scale / 1000).quantize(Decimal("0.1"))

    def per_year_eur(nct: int) -> Decimal:
        return (Decimal(nct) * scale / 10**11).quantize(EURO_PLACES)

    consumed = int(caller.energy_wh[columns].sum())
    covered = int(allocation.covered_wh[1].sum())
    community_cost = sum(int(v) for v in daily.community_cost_nct[1])
    grid_cost = sum(int(v) for v in daily.grid_cost_nct[1])
    savings = per_year_eur(grid_cost - community_cost)
    fee = (Decimal(community.member_fee_cents_per_year) / 100).quantize(EURO_PLACES)
    return (
        CommunityEstimate(
            production_basis=production.basis,
            community_consumption_basis=consumption_basis,
            static_key=static_key,
            consumption_kwh=per_year_kwh(consumed),
            covered_kwh=per_year_kwh(covered),
            coverage_share=ratio(covered, consumed),
            community_cost_eur=per_year_eur(community_cost),
            grid_cost_eur=per_year_eur(grid_cost),
            savings_eur=savings,
            member_fee_eur=fee,
            net_savings_eur=savings - fee,
            notes=notes,
        ),
        None,
    )


def today_rules(now: datetime) -> StatutoryParameters:
    return rules_on(vienna_day_of(now))
