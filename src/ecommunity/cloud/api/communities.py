"""/api/v1 routes: creating, editing, finding and showing energy communities.

Anyone signed in finds communities and sees their public page; the user who created a community
is its operator and the only one who edits it or sees its members. The finder's rule is in
``cloud.finder`` and docs/cloud-communities.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import AfterValidator

from ecommunity.cloud.actions import communities as operating
from ecommunity.cloud.api.auth import ErrorOut
from ecommunity.cloud.api.clock import Now
from ecommunity.cloud.api.community_schemas import (
    CommunityCreate,
    CommunityExtras,
    CommunityPublic,
    CommunitySummary,
    CommunityUpdate,
)
from ecommunity.cloud.api.memberships import member_views
from ecommunity.cloud.community_view.performance import performances
from ecommunity.cloud.db.communities import (
    find_community,
    member_counts,
    members_of_community,
    plants_of,
    postal_codes_of,
    search_communities,
)
from ecommunity.cloud.db.community_models import Community
from ecommunity.cloud.deps import CurrentCaller, DbSession
from ecommunity.cloud.errors import NotFoundError
from ecommunity.cloud.finder import (
    Coordinates,
    Match,
    area_id_fits,
    bounding_box,
    distance_km,
    is_area_bound,
    parse_near,
)
from ecommunity.community import CommunityKind

logger = logging.getLogger(__name__)

router = APIRouter(tags=["communities"])

CommunityId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The community's id")]


def _valid_near(value: str | None) -> str | None:
    if value is not None:
        parse_near(value)
    return value


_SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not signed in"},
}
_CSRF: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
}


def _extras(
    db: DbSession, communities: Sequence[Community], now: datetime
) -> dict[int, CommunityExtras]:
    ids = [c.id for c in communities]
    codes, plants, counts = postal_codes_of(db, ids), plants_of(db, ids), member_counts(db, ids)
    recent = performances(db, communities, now)
    return {
        i: CommunityExtras(codes.get(i, []), plants.get(i, []), counts.get(i, 0), recent[i])
        for i in ids
    }


def _page(db: DbSession, community: Community, caller: CurrentCaller, now: Now) -> CommunityPublic:
    operates = community.operator_id == caller.user.id
    members = None
    if operates:
        rows = members_of_community(db, community.id, statuses=["active"])
        members = member_views(db, rows, now)
    return CommunityPublic.of(
        community,
        _extras(db, [community], now)[community.id],
        statutes=community.statutes,
        operator_id=community.operator_id,
        you_operate=operates,
        members=members,
        created_at=community.created_at,
        updated_at=community.updated_at,
    )


@router.post(
    "/communities",
    status_code=status.HTTP_201_CREATED,
    response_model=CommunityPublic,
    responses={
        **_SIGNED_IN,
        **_CSRF,
        400: {"model": ErrorOut, "description": "A non-renewable plant in an EEG"},
    },
)
def create_community(
    body: CommunityCreate, caller: CurrentCaller, db: DbSession, now: Now
) -> CommunityPublic:
    """Create a community; you become its operator. Kind and allocation model are fixed from
    now on (they are part of the contract with the grid operator)."""
    community_id = operating.create_community(db, caller.user, body.to_spec(), now=now)
    community = find_community(db, community_id)
    assert community is not None
    return _page(db, community, caller, now)


@router.get("/communities", response_model=list[CommunitySummary], responses=_SIGNED_IN)
def find_communities(
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
    near: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Your address: an Austrian postal code (4020) or 'lat,lon' (48.31,14.29)",
        ),
        AfterValidator(_valid_near),
    ] = None,
    radius_km: Annotated[
        float, Query(gt=0, le=1000, description="Search radius around 'lat,lon'. [km]")
    ] = 25.0,
    kind: Annotated[list[CommunityKind] | None, Query(description="Only these kinds")] = None,
    open_: Annotated[
        bool | None,
        Query(alias="open", description="true: only open to new members; false: only closed"),
    ] = None,
    area_id: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="Your metering point's local or regional area id: narrows EEGs to it",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[CommunitySummary]:
    """Communities you could join at an address, with price, members, generation and recent
    performance.

    A postal code matches GEAs and EEGs whose area lists it; coordinates match those within
    ``radius_km``, nearest first; BEGs match everywhere. Only the grid operator can confirm that
    a metering point is behind the same transformer (local EEG) or substation (regional EEG):
    give ``area_id`` to narrow EEGs to yours.
    """
    place = None if near is None else parse_near(near)
    postal_code = place if isinstance(place, str) else None
    centre = place if isinstance(place, Coordinates) else None
    candidates = search_communities(
        db,
        postal_code=postal_code,
        box=None if centre is None else bounding_box(centre, radius_km),
        nationwide_kind=CommunityKind.BEG.value,
        kinds=None if kind is None else [k.value for k in kind],
        open_only=bool(open_),
    )
    found: list[tuple[float, Community, Match, float | None]] = []
    for community in candidates:
        if open_ is False and community.open_for_members:
            continue
        community_kind = CommunityKind(community.kind)
        if not area_id_fits(community_kind, community.area_id, area_id):
            continue
        distance = None
        if centre is not None:
            distance = distance_km(centre, Coordinates(community.latitude, community.longitude))
        if not is_area_bound(community_kind):
            match = Match.NATIONWIDE if place is not None else Match.ANY
        elif centre is not None:
            assert distance is not None
            if distance > radius_km:
                continue
            match = Match.DISTANCE
        else:
            match = Match.POSTAL_CODE if postal_code is not None else Match.ANY
        found.append((distance or 0.0, community, match, distance))
    found.sort(key=lambda item: (item[0], item[1].id))
    page = found[offset : offset + limit]
    extras = _extras(db, [community for _, community, _, _ in page], now)
    return [
        CommunitySummary.of(
            community,
            extras[community.id],
            match=match,
            distance_km=None if distance is None else round(distance, 3),
        )
        for _, community, match, distance in page
    ]


@router.get(
    "/communities/{community_id}",
    response_model=CommunityPublic,
    responses={**_SIGNED_IN, 404: {"model": ErrorOut, "description": "No such community"}},
)
def show_community(
    community_id: CommunityId, caller: CurrentCaller, db: DbSession, now: Now
) -> CommunityPublic:
    """A community's page; its members only for its operator."""
    community = find_community(db, community_id)
    if community is None:
        raise NotFoundError(f"there is no community {community_id}")
    return _page(db, community, caller, now)


@router.patch(
    "/communities/{community_id}",
    response_model=CommunityPublic,
    responses={
        **_SIGNED_IN,
        400: {"model": ErrorOut, "description": "A non-renewable plant in an EEG"},
        403: {
            "model": ErrorOut,
            "description": "Not the operator (or a cookie write without CSRF)",
        },
        404: {"model": ErrorOut, "description": "No such community"},
        409: {"model": ErrorOut, "description": "A different kind or allocation model (fixed)"},
    },
)
def edit_community(
    community_id: CommunityId,
    body: CommunityUpdate,
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
) -> CommunityPublic:
    """Edit a community you operate; fields left out stay as they are."""
    operating.update_community(db, caller.user, community_id, body.to_changes(), now=now)
    community = find_community(db, community_id)
    assert community is not None
    return _page(db, community, caller, now)
