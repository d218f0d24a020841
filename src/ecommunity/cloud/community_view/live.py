"""The live community view: production, consumption, the share being allocated in the current
quarter hour, self-sufficiency, prices and today's savings, from the members' minute readings.

- ``as_of`` is the latest complete minute: ``now`` less ``SETTLE`` (a gateway sends a minute's
  reading once the minute is over), floored to the minute. A minute boundary counts with a
  reading at most ``MINUTE_TOLERANCE`` before it (the last one of the minute before: a lost
  minute shows), a quarter-hour boundary with one at most ``TOLERANCE`` before it.
- The current quarter hour so far, from its start to ``as_of``, is allocated with the
  community's model, as are today's earlier quarter hours (Vienna day); a member without data
  in an interval does not take part in it (``members.py``).
- Today's savings price the covered energy at the community's price and at a reference tariff
  (``assumptions.py``), with the statutory rules of the day.
- Everything is an estimate (``estimate: true``): the grid operator's values for a day come
  the day after.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

import numpy as np
from sqlalchemy.orm import Session

from ecommunity.cloud.actions.participation_rules import vienna_midnight
from ecommunity.cloud.community_energy.participants import load_participation
from ecommunity.cloud.community_view.assumptions import REFERENCE_TARIFF
from ecommunity.cloud.community_view.members import (
    EURO_PLACES,
    QUARTER_HOUR,
    TOLERANCE,
    BoolArray,
    Int64Array,
    SideCounters,
    allocate_known,
    meters_of,
    prices_per_kwh,
    ratio,
    savings_of,
    vienna_day_of,
)
from ecommunity.cloud.community_view.schemas import (
    CommunityLive,
    LivePower,
    LivePrices,
    LiveQuarterHour,
    LiveToday,
    ReferenceTariffOut,
)
from ecommunity.cloud.db.community_models import Community, GenerationPlant
from ecommunity.cloud.db.meter_counters import counters_at_boundaries
from ecommunity.community import (
    AllocationModel,
    ConsumerTariff,
    MissingParameterError,
    Role,
    nct_to_euro,
)

MINUTE: Final = timedelta(minutes=1)
#: How long after a minute its readings are waited for: the gateway sends a minute's reading
#: when the next minute's first reading comes (``gateway.uplink``), seconds after it ends.
SETTLE: Final = timedelta(seconds=15)
#: A minute boundary's reading must lie in the minute before it (a meter pushing once a minute
#: at :00 has its reading exactly a minute before): a lost minute reading shows.
MINUTE_TOLERANCE: Final = timedelta(seconds=60)
_MICRO: Final = 10**6


def floor_to(at: datetime, step: timedelta) -> datetime:
    """``at`` rounded down to a multiple of ``step`` since 1970 (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=at.tzinfo)
    return at - (at - epoch) % step


def tariff_out(tariff: ConsumerTariff) -> ReferenceTariffOut:
    return ReferenceTariffOut(
        energy_ct_per_kwh=tariff.energy_ct_per_kwh,
        grid_usage_ct_per_kwh=tariff.grid_usage_ct_per_kwh,
        renewable_levy_ct_per_kwh=tariff.renewable_levy_ct_per_kwh,
        grid_level=tariff.grid_level,
    )


def live_snapshot(
    db: Session,
    community: Community,
    plants: Sequence[GenerationPlant],
    now: datetime,
    *,
    tariff: ConsumerTariff = REFERENCE_TARIFF,
) -> CommunityLive:
    """The community as its members' meters show it at ``now`` (timezone-aware)."""
    as_of = floor_to(now - SETTLE, MINUTE)
    day = vienna_day_of(as_of)
    midnight = vienna_midnight(day)
    quarter_start = floor_to(as_of, QUARTER_HOUR)
    quarters = int((quarter_start - midnight) / QUARTER_HOUR)
    partial = as_of > quarter_start
    # Today's quarter hours up to and with the current one (its column is used only once a
    # minute of it is complete), so that the grid also says who takes part now.
    participation = load_participation(db, community.id, midnight, quarter_start + QUARTER_HOUR)
    meters = meters_of(db, participation)
    all_meters = sorted({m for side in meters.values() for m in side if m is not None})
    # Minute boundaries from the quarter hour's start (or the minute before, so that there is a
    # last minute at a quarter hour's first boundary) up to as_of.
    first_minute = min(quarter_start, as_of - MINUTE)
    minutes = int((as_of - first_minute) / MINUTE)
    into_quarter = int((quarter_start - first_minute) / MINUTE)
    by_quarter = counters_at_boundaries(
        db, all_meters, midnight, quarters, QUARTER_HOUR, tolerance=TOLERANCE
    )
    by_minute = counters_at_boundaries(
        db, all_meters, first_minute, minutes, MINUTE, tolerance=MINUTE_TOLERANCE
    )
    energy: dict[Role, Int64Array] = {}
    known: dict[Role, BoolArray] = {}
    power_w: dict[Role, int] = {}
    reporting: dict[Role, int] = {}
    members = 0
    for role in Role:
        quarterly = SideCounters.of(role, meters[role], by_quarter, quarters + 1)
        minutely = SideCounters.of(role, meters[role], by_minute, minutes + 1)
        done, done_known = quarterly.energies()
        so_far, so_far_known = minutely.between(into_quarter, minutes)
        energy[role] = np.column_stack([done, so_far])
        known[role] = np.column_stack([done_known, so_far_known])
        taking_now = participation.side(role).tf_percent[:, -1] > 0
        last_minute, reported = minutely.between(minutes - 1, minutes)
        members += int(taking_now.sum())
        reporting[role] = int((taking_now & reported).sum())
        power_w[role] = int(last_minute[taking_now & reported].sum()) * 60

    model = AllocationModel(community.allocation_model)
    columns = np.ones(quarters + 1, dtype=np.bool_)
    columns[-1] = partial
    allocation = allocate_known(participation, energy, known, model, columns)

    quarter_hour = None
    if partial:
        consumed = int(allocation.consumption_wh[:, -1].sum())
        covered = int(allocation.covered_wh[:, -1].sum())
        quarter_hour = LiveQuarterHour(
            start=quarter_start,
            end=as_of,
            production_wh=int(allocation.production_wh[:, -1].sum()),
            consumption_wh=consumed,
            allocated_wh=int(allocation.allocated_wh[:, -1].sum()),
            covered_wh=covered,
            surplus_wh=int(allocation.surplus_wh[:, -1].sum()),
            residual_wh=consumed - covered,
            self_sufficiency=ratio(covered, consumed),
        )

    totals = allocation.totals()
    starts = participation.starts_s[columns].astype("datetime64[s]")
    community_cost = grid_cost = savings = None
    savings_unavailable = None
    try:
        priced = savings_of(allocation, starts, community, plants, tariff).totals()
        community_cost = _euro(priced["community_cost_nct"])
        grid_cost = _euro(priced["grid_cost_nct"])
        savings = _euro(priced["savings_nct"])
        rates = prices_per_kwh(community, plants, tariff, quarter_start)
    except MissingParameterError as exc:
        savings_unavailable = str(exc)
        rates = None

    return CommunityLive(
        community_id=community.id,
        as_of=as_of,
        estimate=True,
        basis="members_meters",
        members=members,
        members_reporting=reporting[Role.CONSUMER] + reporting[Role.PRODUCER],
        current=LivePower(
            start=as_of - MINUTE,
            end=as_of,
            production_w=power_w[Role.PRODUCER],
            consumption_w=power_w[Role.CONSUMER],
            producers_reporting=reporting[Role.PRODUCER],
            consumers_reporting=reporting[Role.CONSUMER],
        ),
        quarter_hour=quarter_hour,
        today=LiveToday(
            day=day,
            start=midnight,
            end=as_of,
            production_wh=totals.production_wh,
            consumption_wh=totals.consumption_wh,
            covered_wh=totals.covered_wh,
            surplus_wh=totals.surplus_wh,
            self_sufficiency=ratio(totals.covered_wh, totals.consumption_wh),
            community_cost_eur=community_cost,
            grid_cost_eur=grid_cost,
            savings_eur=savings,
            savings_unavailable=savings_unavailable,
        ),
        prices=LivePrices(
            day=day,
            internal_ct_per_kwh=Decimal(community.consumer_price_uct_per_kwh) / _MICRO,
            community_ct_per_kwh=None if rates is None else rates.community_ct_per_kwh,
            grid_ct_per_kwh=None if rates is None else rates.grid_ct_per_kwh,
            unavailable=savings_unavailable,
            tariff=tariff_out(tariff),
        ),
    )


def _euro(nct: int) -> Decimal:
    return nct_to_euro(nct).quantize(EURO_PLACES)
