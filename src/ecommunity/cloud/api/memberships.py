"""/api/v1 routes: joining a community and running its memberships.

- Anyone signed in applies: ``POST /communities/{id}/applications``.
- The operator lists, approves, rejects, activates and sets factors and keys under
  ``/communities/{id}/memberships``.
- The member lists their own (``GET /memberships``) and leaves (``POST /memberships/{id}/leave``).

Every state change notifies the member and the operator (``GET /notifications``, and live on
the bus after the commit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from starlette.concurrency import run_in_threadpool

from ecommunity.cloud.actions import memberships as joining
from ecommunity.cloud.actions.communities import operated_community
from ecommunity.cloud.actions.participation_rules import KEY_SCALE, factor_at, scheduled_factor
from ecommunity.cloud.api.auth import ErrorOut
from ecommunity.cloud.api.clock import Now
from ecommunity.cloud.api.community_schemas import (
    ApplicationCreate,
    ApplicationDecision,
    MemberPublic,
    MembershipActivation,
    MembershipPublic,
    MembershipStatus,
    MembershipUpdate,
    OwnMembership,
)
from ecommunity.cloud.api.notifications import publish_notifications
from ecommunity.cloud.db.communities import (
    MemberRow,
    factors_of,
    members_of_community,
    memberships_of_user,
)
from ecommunity.cloud.db.community_models import CommunityMembership
from ecommunity.cloud.deps import CurrentCaller, DbSession
from ecommunity.community import parse_metering_point

logger = logging.getLogger(__name__)

router = APIRouter(tags=["memberships"])

CommunityId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The community's id")]
MembershipId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The membership's id")]

_SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not signed in"},
}
_OPERATOR: dict[int | str, dict[str, Any]] = {
    **_SIGNED_IN,
    403: {"model": ErrorOut, "description": "Not the operator (or a cookie write without CSRF)"},
    404: {"model": ErrorOut, "description": "No such community, or no such membership in it"},
}
_CHANGE: dict[int | str, dict[str, Any]] = {
    **_OPERATOR,
    409: {"model": ErrorOut, "description": "Not in a state that allows this, or a rule forbids"},
}


def _factors_now(
    rows: Sequence[CommunityMembership], db: DbSession, now: datetime
) -> dict[int, tuple[int, tuple[int, datetime] | None]]:
    """Per membership: the factor in force at ``now`` and a scheduled change, if any."""
    factors = factors_of(db, [row.id for row in rows])
    result: dict[int, tuple[int, tuple[int, datetime] | None]] = {}
    for row in rows:
        own = factors.get(row.id)
        if not own:
            result[row.id] = (row.tf_percent, None)
            continue
        later = scheduled_factor(own, now)
        pending = None if later is None else (later.tf_percent, later.valid_from)
        result[row.id] = (factor_at(own, now), pending)
    return result


def membership_view(db: DbSession, row: CommunityMembership, now: datetime) -> MembershipPublic:
    factor, pending = _factors_now([row], db, now)[row.id]
    return MembershipPublic.of(row, factor, pending)


def member_views(db: DbSession, rows: Sequence[MemberRow], now: datetime) -> list[MemberPublic]:
    factors = _factors_now([r.membership for r in rows], db, now)
    return [
        MemberPublic.of(
            r.membership,
            *factors[r.membership.id],
            user_id=r.membership.user_id,
            display_name=r.display_name,
            email=r.email,
        )
        for r in rows
    ]


@router.post(
    "/communities/{community_id}/applications",
    status_code=status.HTTP_201_CREATED,
    response_model=MembershipPublic,
    responses={
        **_SIGNED_IN,
        403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
        404: {"model": ErrorOut, "description": "No such community"},
        409: {
            "model": ErrorOut,
            "description": "Closed to new members, or the metering point is already in this "
            "community, in five, as the other role, or its factors would exceed 100 %",
        },
    },
)
async def apply_for_membership(
    community_id: CommunityId,
    body: ApplicationCreate,
    request: Request,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
) -> MembershipPublic:
    """Apply to join with a metering point, a participation factor and the statutes accepted.

    The operator approves or rejects; both of you are notified of each step.
    """
    change = await run_in_threadpool(
        joining.apply,
        db,
        caller.user,
        community_id,
        metering_point=parse_metering_point(body.metering_point),
        role=body.role,
        tf_percent=body.participation_factor,
        now=now,
    )
    return await _published(request, db, change, now)


@router.get(
    "/communities/{community_id}/memberships",
    response_model=list[MemberPublic],
    responses=_OPERATOR,
)
def list_memberships(
    community_id: CommunityId,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
    status: Annotated[list[MembershipStatus] | None, Query(description="Only these states")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[MemberPublic]:
    """The community's applications and memberships, oldest first (operator only)."""
    operated_community(db, caller.user, community_id)
    wanted = None if status is None else [s.value for s in status]
    rows = members_of_community(db, community_id, statuses=wanted, limit=limit, offset=offset)
    return member_views(db, rows, now)


async def _published(
    request: Request, db: DbSession, change: joining.MembershipChange, now: datetime
) -> MembershipPublic:
    """Publish a committed change's notifications; the membership as it is now."""
    await publish_notifications(request, change.notifications)
    return await run_in_threadpool(membership_view, db, change.membership, now)


@router.post(
    "/communities/{community_id}/memberships/{membership_id}/approve",
    response_model=MembershipPublic,
    responses=_CHANGE,
)
async def approve_application(
    community_id: CommunityId,
    membership_id: MembershipId,
    request: Request,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
) -> MembershipPublic:
    """Accept an application (operator only). Register the point with the grid operator next,
    then activate the membership."""
    change = await run_in_threadpool(
        joining.approve, db, caller.user, community_id, membership_id, now=now
    )
    return await _published(request, db, change, now)


@router.post(
    "/communities/{community_id}/memberships/{membership_id}/reject",
    response_model=MembershipPublic,
    responses=_CHANGE,
)
async def reject_application(
    community_id: CommunityId,
    membership_id: MembershipId,
    body: ApplicationDecision,
    request: Request,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
) -> MembershipPublic:
    """Turn an application down, with a reason the applicant sees (operator only)."""
    change = await run_in_threadpool(
        joining.reject, db, caller.user, community_id, membership_id, reason=body.reason, now=now
    )
    return await _published(request, db, change, now)


@router.post(
    "/communities/{community_id}/memberships/{membership_id}/activate",
    response_model=MembershipPublic,
    responses=_CHANGE,
)
async def activate_membership(
    community_id: CommunityId,
    membership_id: MembershipId,
    body: MembershipActivation,
    request: Request,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
) -> MembershipPublic:
    """The grid operator registered the point: it takes part from ``active_on`` (operator
    only)."""
    change = await run_in_threadpool(
        joining.activate,
        db,
        caller.user,
        community_id,
        membership_id,
        active_from=body.active_on,
        now=now,
    )
    return await _published(request, db, change, now)


@router.patch(
    "/communities/{community_id}/memberships/{membership_id}",
    response_model=MembershipPublic,
    responses=_CHANGE,
)
async def change_membership(
    community_id: CommunityId,
    membership_id: MembershipId,
    body: MembershipUpdate,
    request: Request,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
) -> MembershipPublic:
    """Set the participation factor and/or the static key (operator only).

    An active membership's factor changes once a day, 09:00–17:00 Vienna time, from the next
    day on (the grid operators' rule); the factors of one metering point over all its
    communities stay at or below 100 %. Static keys apply in static communities only and add up
    to at most 1.
    """
    key = None if body.static_key is None else int(body.static_key * KEY_SCALE)
    change = await run_in_threadpool(
        joining.change,
        db,
        caller.user,
        community_id,
        membership_id,
        tf_percent=body.participation_factor,
        static_key_ppb=key,
        now=now,
    )
    return await _published(request, db, change, now)


@router.get("/memberships", response_model=list[OwnMembership], responses=_SIGNED_IN)
def list_own_memberships(caller: CurrentCaller, db: DbSession, now: Now) -> list[OwnMembership]:
    """Your applications and memberships in any state, newest first."""
    rows = memberships_of_user(db, caller.user.id)
    factors = _factors_now([r.membership for r in rows], db, now)
    return [
        OwnMembership.of(r.membership, *factors[r.membership.id], community_name=r.community_name)
        for r in rows
    ]


@router.post(
    "/memberships/{membership_id}/leave",
    response_model=MembershipPublic,
    responses={
        **_SIGNED_IN,
        403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
        404: {"model": ErrorOut, "description": "You have no membership with this id"},
        409: {"model": ErrorOut, "description": "Already rejected or left"},
    },
)
async def leave_community(
    membership_id: MembershipId, request: Request, caller: CurrentCaller, db: DbSession, now: Now
) -> MembershipPublic:
    """Leave (or withdraw an application). An active membership takes part until the next
    Vienna midnight; its history stays."""
    change = await run_in_threadpool(joining.leave, db, caller.user, membership_id, now=now)
    return await _published(request, db, change, now)
