"""A community's recent performance for the finder and its page: over the last
``PERIOD_DAYS`` Vienna days before today, the share of the members' consumption the community
covered and the share of its production the members used, from the members' quarter hours
allocated with the community's model (``members.py``). Null when no member's meter reported.

Each answer is kept for ``CACHE_TTL_S`` per database engine (so per app): computing it scans
the members' minute readings of the period (one grouped scan, about 0.1 s per member here),
and the finder shows many communities at once. The period ends at today's midnight, so a new
day starts a new answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Final

import numpy as np
from sqlalchemy.orm import Session

from ecommunity.cloud.actions.participation_rules import vienna_midnight
from ecommunity.cloud.community_energy.participants import load_participation
from ecommunity.cloud.community_view.cache import EngineCache
from ecommunity.cloud.community_view.members import (
    QUARTER_HOUR,
    TOLERANCE,
    SideCounters,
    allocate_known,
    meters_of,
    ratio,
    vienna_day_of,
)
from ecommunity.cloud.community_view.schemas import CommunityPerformance
from ecommunity.cloud.db.community_models import Community
from ecommunity.cloud.db.meter_counters import counters_at_boundaries
from ecommunity.community import AllocationModel, Role

PERIOD_DAYS: Final = 30
CACHE_TTL_S: Final = 900.0
_CACHE: Final = EngineCache[CommunityPerformance | None](CACHE_TTL_S, size=10_000)


def community_performance(
    db: Session, community: Community, today: date
) -> CommunityPerformance | None:
    """The ``PERIOD_DAYS`` Vienna days before ``today``; None without any member data."""
    end = vienna_midnight(today)
    first = vienna_midnight(today - timedelta(days=PERIOD_DAYS))
    participation = load_participation(db, community.id, first, end)
    intervals = participation.starts_s.size
    meters = meters_of(db, participation)
    all_meters = sorted({m for side in meters.values() for m in side if m is not None})
    if not all_meters:
        return None
    counters = counters_at_boundaries(
        db, all_meters, first, intervals, QUARTER_HOUR, tolerance=TOLERANCE
    )
    energy, known = {}, {}
    for role in Role:
        energy[role], known[role] = SideCounters.of(
            role, meters[role], counters, intervals + 1
        ).energies()
    taking = [known[role] & (participation.side(role).tf_percent > 0) for role in Role]
    if not any(bool(np.any(mask)) for mask in taking):
        return None
    totals = allocate_known(
        participation, energy, known, AllocationModel(community.allocation_model)
    ).totals()
    return CommunityPerformance(
        period_days=PERIOD_DAYS,
        self_sufficiency=ratio(totals.covered_wh, totals.consumption_wh),
        production_used_share=ratio(totals.covered_wh, totals.production_wh),
        consumption_wh=totals.consumption_wh,
        production_wh=totals.production_wh,
        covered_wh=totals.covered_wh,
        estimate=True,
    )


def performances(
    db: Session, communities: Sequence[Community], now: datetime
) -> Mapping[int, CommunityPerformance | None]:
    """Each community's performance, from the cache while it is fresh."""
    today = vienna_day_of(now)
    found: dict[int, CommunityPerformance | None] = {}
    for community in communities:

        def compute(c: Community = community) -> CommunityPerformance | None:
            return community_performance(db, c, today)

        found[community.id] = _CACHE.get(db, (community.id, today), compute)
    return found
