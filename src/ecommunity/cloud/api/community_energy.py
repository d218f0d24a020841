"""/api/v1 routes: a community's energy figures and their reconciliation with members' meters.

- ``GET /communities/{id}/members/me/energy``: the caller's own figures per day or month.
- ``GET /communities/{id}/energy``: the community's totals and every member's (operator).
- ``GET /communities/{id}/reconciliation``: official G.01 against the members' meters; the
  operator sees every point, a member their own.
- ``GET|PUT /memberships/{id}/energy-settings``: the meter and tariff of one's membership.

No member sees another member's figures: a member's answers hold their own metering points
only; anyone else who is not the operator is refused.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime

from ecommunity.cloud.actions.energy_settings import set_energy_settings
from ecommunity.cloud.api.auth import ErrorOut
from ecommunity.cloud.api.clock import Now
from ecommunity.cloud.api.community_energy_schemas import (
    CommunityEnergyOut,
    CommunityPeriodOut,
    EnergySettingsIn,
    EnergySettingsOut,
    MemberEnergyOut,
    PeriodOut,
    PointEnergyOut,
    PointReconciliationOut,
    ReconciliationOut,
)
from ecommunity.cloud.api.energy_ranges import EnergyRangeError, day_range, quarter_hour_range
from ecommunity.cloud.community_energy.energy_report import (
    EnergyReport,
    Resolution,
    community_totals,
    energy_report,
    periods,
)
from ecommunity.cloud.community_energy.meter_links import meter_links
from ecommunity.cloud.community_energy.participants import (
    lay_out,
    load_participation,
    vienna_midnight,
)
from ecommunity.cloud.community_energy.reconciliation import (
    Resolution as Step,
)
from ecommunity.cloud.community_energy.reconciliation import (
    Thresholds,
    reconcile,
)
from ecommunity.cloud.db.communities import find_community, find_membership_of_user
from ecommunity.cloud.db.community_models import Community
from ecommunity.cloud.db.energy_models import MemberEnergySettings
from ecommunity.cloud.db.models import User
from ecommunity.cloud.db.official_energy import has_taken_part, official_values
from ecommunity.cloud.deps import CurrentCaller, DbSession
from ecommunity.cloud.errors import ForbiddenError, NotFoundError
from ecommunity.community import VIENNA, Role

logger = logging.getLogger(__name__)

router = APIRouter(tags=["community energy"])

CommunityId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The community's id")]
MembershipId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The membership's id")]
#: Longest range of figures. [days]
MAX_FIGURE_DAYS: Final = 366
#: Longest range of a reconciliation, and most intervals in it.
MAX_RECONCILIATION_DAYS: Final = 366
MAX_RECONCILIATION_INTERVALS: Final = 3_000
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_STEPS = {Step.QUARTER_HOUR: timedelta(minutes=15), Step.HOUR: timedelta(hours=1)}

_VIEWER: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A bad range"},
    401: {"model": ErrorOut, "description": "Not signed in"},
    403: {"model": ErrorOut, "description": "Neither the operator nor a member"},
    404: {"model": ErrorOut, "description": "No such community"},
}


class NotMemberError(ForbiddenError):
    code = "not_member"


def _viewer(db: DbSession, user: User, community_id: int) -> tuple[Community, bool]:
    """The community and whether ``user`` operates it; members who took part may look too.

    Raises:
        NotFoundError: no such community.
        NotMemberError: neither its operator nor a member who took part.
    """
    community = find_community(db, community_id)
    if community is None:
        raise NotFoundError(f"there is no community {community_id}")
    if community.operator_id == user.id:
        return community, True
    if has_taken_part(db, community_id, user.id):
        return community, False
    raise NotMemberError(f"only the operator and members see community {community_id}'s energy")


Emission = Annotated[
    int | None,
    Query(
        ge=0,
        le=10_000,
        description="CO₂ avoided per kWh covered (published factors for Austria's electricity "
        "range from about 60 to 350 g/kWh, by method); none: no CO₂ figures. [g/kWh]",
    ),
]
FirstDay = Annotated[date, Query(alias="from", description="First Vienna day")]
EndDay = Annotated[date, Query(alias="to", description="The day after the last")]


@router.get(
    "/communities/{community_id}/members/me/energy",
    response_model=MemberEnergyOut,
    responses=_VIEWER,
)
def my_energy(
    community_id: CommunityId,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
    first: FirstDay,
    end: EndDay,
    resolution: Resolution = Resolution.DAY,
    emission_factor_g_per_kwh: Emission = None,
) -> MemberEnergyOut:
    """Your consumption, covered share, price and savings (or production and revenue) per day
    or month, for each of your metering points in the community: ``official`` where the grid
    operator's values cover the period, ``estimate`` where ours (from the members' meters) fill
    in. Savings need your supplier tariff (``PUT /memberships/{id}/energy-settings``)."""
    community = find_community(db, community_id)
    if community is None:
        raise NotFoundError(f"there is no community {community_id}")
    if not has_taken_part(db, community_id, caller.user.id):
        raise NotMemberError(f"you have not taken part in community {community_id}")
    day_range(first, end, max_days=MAX_FIGURE_DAYS)
    report = energy_report(
        db,
        community,
        first,
        end,
        user_id=caller.user.id,
        emission_factor_g_per_kwh=emission_factor_g_per_kwh,
        now=now,
    )
    return MemberEnergyOut(
        community_id=community_id,
        start=report.start,
        end=report.end,
        resolution=resolution.value,
        estimate_note=report.estimate_note,
        points=_points(report, resolution),
    )


@router.get(
    "/communities/{community_id}/energy",
    response_model=CommunityEnergyOut,
    responses=_VIEWER,
)
def community_energy(
    community_id: CommunityId,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
    first: FirstDay,
    end: EndDay,
    resolution: Resolution = Resolution.DAY,
    emission_factor_g_per_kwh: Emission = None,
) -> CommunityEnergyOut:
    """The community's totals per day or month and every member's figures (operator only)."""
    community, operates = _viewer(db, caller.user, community_id)
    if not operates:
        raise NotMemberError("only the operator sees every member's figures")
    day_range(first, end, max_days=MAX_FIGURE_DAYS)
    report = energy_report(
        db,
        community,
        first,
        end,
        user_id=None,
        emission_factor_g_per_kwh=emission_factor_g_per_kwh,
        now=now,
    )
    midnights = _midnights(first, end)
    totals = community_totals(
        [(f.participant.role, periods(f, resolution, midnights)) for f in report.members]
    )
    return CommunityEnergyOut(
        community_id=community_id,
        start=report.start,
        end=report.end,
        resolution=resolution.value,
        estimate_note=report.estimate_note,
        totals=[CommunityPeriodOut.of(p) for p in totals],
        members=_points(report, resolution),
    )


def _midnights(first: date, end: date) -> list[datetime]:
    return [vienna_midnight(first + timedelta(days=k)) for k in range((end - first).days + 1)]


def _points(report: EnergyReport, resolution: Resolution) -> list[PointEnergyOut]:
    if not report.members:
        return []
    days = report.members[0].days
    midnights = _midnights(days[0], days[-1] + timedelta(days=1))
    return [
        PointEnergyOut(
            metering_point=f.participant.metering_point,
            role=f.participant.role.value,
            user_id=f.participant.user_id,
            pricing_note=f.pricing_note,
            periods=[
                PeriodOut.of(p, f.participant.role is Role.CONSUMER)
                for p in periods(f, resolution, midnights)
            ],
        )
        for f in report.members
    ]


@router.get(
    "/communities/{community_id}/reconciliation",
    response_model=ReconciliationOut,
    responses=_VIEWER,
)
def reconciliation(
    community_id: CommunityId,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
    start: Annotated[
        AwareDatetime, Query(alias="from", description="Start (ISO 8601 with offset)")
    ],
    end: Annotated[AwareDatetime, Query(alias="to", description="End, excluded")],
    resolution: Step = Step.HOUR,
    threshold_wh: Annotated[
        int, Query(ge=0, le=10_000_000, description="Flag differences above this… [Wh]")
    ] = 50,
    threshold_percent: Annotated[
        Decimal,
        Query(ge=0, le=1000, decimal_places=2, description="…and above this share. [%]"),
    ] = Decimal(5),
    flagged_only: bool = False,
) -> ReconciliationOut:
    """The grid operator's G.01 against the members' meters (consumption: import counter;
    production: export counter) per quarter hour, hour or Vienna day; a difference above both
    thresholds is flagged. The operator sees every metering point, a member their own."""
    first, last = quarter_hour_range(start, end, max_days=MAX_RECONCILIATION_DAYS)
    boundaries = _boundaries(first, last, resolution)
    community, operates = _viewer(db, caller.user, community_id)
    participation = load_participation(db, community_id, first, last)
    subjects = [
        (role, row)
        for role in Role
        for row, p in enumerate(participation.side(role).participants)
        if operates or p.user_id == caller.user.id
    ]
    subject_points = [participation.side(role).participants[row] for role, row in subjects]
    official = lay_out(
        official_values(
            db, community.id, first, last, points=[p.metering_point for p in subject_points]
        ),
        participation,
    )
    results = reconcile(
        db,
        participation,
        official,
        subjects,
        meter_links(db, subject_points),
        boundaries,
        thresholds=Thresholds(threshold_wh, Fraction(threshold_percent)),
        now=now,
        flagged_only=flagged_only,
    )
    return ReconciliationOut(
        community_id=community_id,
        start=first,
        end=last,
        resolution=resolution.value,
        threshold_wh=threshold_wh,
        threshold_percent=threshold_percent,
        points=[PointReconciliationOut.of(r) for r in results],
    )


def _boundaries(first: datetime, last: datetime, resolution: Step) -> list[datetime]:
    if resolution is Step.DAY:
        day, end_day = first.astimezone(VIENNA).date(), last.astimezone(VIENNA).date()
        if vienna_midnight(day) != first or vienna_midnight(end_day) != last:
            raise EnergyRangeError("daily reconciliation runs from a Vienna midnight to another")
        boundaries = [
            vienna_midnight(day + timedelta(days=k)) for k in range((end_day - day).days + 1)
        ]
    else:
        step = _STEPS[resolution]
        if (first - _EPOCH) % step or (last - first) % step:
            raise EnergyRangeError(f"'from' and 'to' must be on whole {resolution.value} steps")
        boundaries = [first + k * step for k in range((last - first) // step + 1)]
    if len(boundaries) - 1 > MAX_RECONCILIATION_INTERVALS:
        raise EnergyRangeError(
            f"more than {MAX_RECONCILIATION_INTERVALS} intervals: narrow the range or choose a "
            "coarser resolution"
        )
    return boundaries


@router.get(
    "/memberships/{membership_id}/energy-settings",
    response_model=EnergySettingsOut,
    responses={
        401: {"model": ErrorOut, "description": "Not signed in"},
        404: {"model": ErrorOut, "description": "Not one of your memberships"},
    },
)
def show_energy_settings(
    membership_id: MembershipId, caller: CurrentCaller, db: DbSession
) -> EnergySettingsOut:
    """The meter and tariff your figures of this membership use."""
    if find_membership_of_user(db, caller.user.id, membership_id) is None:
        raise NotFoundError(f"you have no membership {membership_id}")
    return EnergySettingsOut.of(membership_id, db.get(MemberEnergySettings, membership_id))


@router.put(
    "/memberships/{membership_id}/energy-settings",
    response_model=EnergySettingsOut,
    responses={
        400: {"model": ErrorOut, "description": "A tariff of the other role"},
        401: {"model": ErrorOut, "description": "Not signed in"},
        403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
        404: {"model": ErrorOut, "description": "Not one of your memberships or meters"},
    },
)
def put_energy_settings(
    membership_id: MembershipId,
    body: EnergySettingsIn,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
) -> EnergySettingsOut:
    """Set the meter that measures this membership's metering point (for reconciliation and
    estimates; default: your only meter) and the tariff savings are priced against: a
    consumer's supplier energy price and grid usage fee, a producer's feed-in tariff."""
    row = set_energy_settings(db, caller.user, membership_id, body.to_spec(), now=now)
    return EnergySettingsOut.of(membership_id, row)
