"""Queries on communities, their areas, plants and memberships. Each takes a Session; none
commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy.orm import Session

from ecommunity.cloud.db.community_models import (
    OPEN_STATES,
    Community,
    CommunityMembership,
    CommunityPostalCode,
    GenerationPlant,
    ParticipationFactor,
)
from ecommunity.cloud.db.models import User
from ecommunity.cloud.finder import BoundingBox


@dataclass(frozen=True)
class MemberRow:
    """A membership with the names the operator's list shows."""

    membership: CommunityMembership
    display_name: str
    email: str


@dataclass(frozen=True)
class OwnMembershipRow:
    """A membership with its community's name, for the member's own list."""

    membership: CommunityMembership
    community_name: str


def find_community(db: Session, community_id: int, *, for_update: bool = False) -> Community | None:
    query = select(Community).where(Community.id == community_id)
    if for_update:
        query = query.with_for_update()
    return db.scalar(query)


def search_communities(
    db: Session,
    *,
    postal_code: str | None = None,
    box: BoundingBox | None = None,
    nationwide_kind: str | None = None,
    kinds: Collection[str] | None = None,
    open_only: bool = False,
) -> Sequence[Community]:
    """Finder candidates, by id: those whose area lists ``postal_code`` or whose location is in
    ``box`` (when given), plus every community of ``nationwide_kind`` (BEG); filtered by kind
    and openness."""
    conditions: list[ColumnElement[bool]] = []
    place: list[ColumnElement[bool]] = []
    if postal_code is not None:
        listed = select(CommunityPostalCode.community_id).where(
            CommunityPostalCode.postal_code == postal_code
        )
        place.append(Community.id.in_(listed))
    if box is not None:
        inside = [Community.latitude.between(box.min_latitude, box.max_latitude)]
        if box.min_longitude is not None and box.max_longitude is not None:
            inside.append(Community.longitude.between(box.min_longitude, box.max_longitude))
        place.append(and_(*inside))
    if place:
        if nationwide_kind is not None:
            place.append(Community.kind == nationwide_kind)
        conditions.append(or_(*place))
    if kinds is not None:
        conditions.append(Community.kind.in_(list(kinds)))
    if open_only:
        conditions.append(Community.open_for_members.is_(True))
    return db.scalars(select(Community).where(*conditions).order_by(Community.id)).all()


def postal_codes_of(db: Session, community_ids: Collection[int]) -> dict[int, list[str]]:
    """Each community's postal codes, sorted."""
    codes: dict[int, list[str]] = defaultdict(list)
    rows = db.execute(
        select(CommunityPostalCode.community_id, CommunityPostalCode.postal_code)
        .where(CommunityPostalCode.community_id.in_(list(community_ids)))
        .order_by(CommunityPostalCode.community_id, CommunityPostalCode.postal_code)
    )
    for community_id, code in rows:
        codes[community_id].append(code)
    return codes


def plants_of(db: Session, community_ids: Collection[int]) -> dict[int, list[GenerationPlant]]:
    """Each community's generating plants, oldest first."""
    plants: dict[int, list[GenerationPlant]] = defaultdict(list)
    rows = db.scalars(
        select(GenerationPlant)
        .where(GenerationPlant.community_id.in_(list(community_ids)))
        .order_by(GenerationPlant.community_id, GenerationPlant.id)
    )
    for plant in rows:
        plants[plant.community_id].append(plant)
    return plants


def member_counts(db: Session, community_ids: Collection[int]) -> dict[int, int]:
    """How many users have an active membership in each community (a household with a
    consumption and a generation point counts once)."""
    rows = db.execute(
        select(CommunityMembership.community_id, func.count(CommunityMembership.user_id.distinct()))
        .where(
            CommunityMembership.community_id.in_(list(community_ids)),
            CommunityMembership.status == "active",
        )
        .group_by(CommunityMembership.community_id)
    )
    return {community_id: int(count) for community_id, count in rows}


def find_membership(
    db: Session, community_id: int, membership_id: int, *, for_update: bool = False
) -> CommunityMembership | None:
    """The membership ``membership_id`` if it belongs to ``community_id``."""
    query = select(CommunityMembership).where(
        CommunityMembership.id == membership_id, CommunityMembership.community_id == community_id
    )
    if for_update:
        query = query.with_for_update()
    return db.scalar(query)


def find_membership_of_user(
    db: Session, user_id: int, membership_id: int, *, for_update: bool = False
) -> CommunityMembership | None:
    """The membership ``membership_id`` if ``user_id`` applied for it; None for anyone else's."""
    query = select(CommunityMembership).where(
        CommunityMembership.id == membership_id, CommunityMembership.user_id == user_id
    )
    if for_update:
        query = query.with_for_update()
    return db.scalar(query)


def participations_of_point(
    db: Session, metering_point: str, *, now: datetime
) -> Sequence[CommunityMembership]:
    """The memberships of a metering point that hold or will hold a place at or after ``now``:
    open ones, and those that left but are active until later."""
    return db.scalars(
        select(CommunityMembership)
        .where(
            CommunityMembership.metering_point == metering_point,
            or_(
                CommunityMembership.status.in_(OPEN_STATES),
                and_(
                    CommunityMembership.status == "left",
                    CommunityMembership.active_until > now,
                ),
            ),
        )
        .order_by(CommunityMembership.id)
    ).all()


def factors_of(
    db: Session, membership_ids: Collection[int]
) -> dict[int, list[ParticipationFactor]]:
    """Each membership's participation factors, in the order they apply."""
    factors: dict[int, list[ParticipationFactor]] = defaultdict(list)
    rows = db.scalars(
        select(ParticipationFactor)
        .where(ParticipationFactor.membership_id.in_(list(membership_ids)))
        .order_by(
            ParticipationFactor.membership_id,
            ParticipationFactor.valid_from,
            ParticipationFactor.id,
        )
    )
    for factor in rows:
        factors[factor.membership_id].append(factor)
    return factors


def members_of_community(
    db: Session,
    community_id: int,
    *,
    statuses: Collection[str] | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[MemberRow]:
    """The community's applications and memberships (of ``statuses``), oldest first."""
    query = (
        select(CommunityMembership, User.display_name, User.email)
        .join(User, User.id == CommunityMembership.user_id)
        .where(CommunityMembership.community_id == community_id)
    )
    if statuses is not None:
        query = query.where(CommunityMembership.status.in_(list(statuses)))
    query = query.order_by(CommunityMembership.id).limit(limit).offset(offset)
    return [MemberRow(m, name, email) for m, name, email in db.execute(query)]


def memberships_of_user(db: Session, user_id: int) -> list[OwnMembershipRow]:
    """Everything ``user_id`` applied for, in any state, newest first."""
    rows = db.execute(
        select(CommunityMembership, Community.name)
        .join(Community, Community.id == CommunityMembership.community_id)
        .where(CommunityMembership.user_id == user_id)
        .order_by(CommunityMembership.id.desc())
    )
    return [OwnMembershipRow(m, name) for m, name in rows]


def static_keys_of_community(db: Session, community_id: int) -> dict[int, int]:
    """Static keys in parts per billion of the community's approved and active memberships."""
    rows = db.execute(
        select(CommunityMembership.id, CommunityMembership.static_key_ppb).where(
            CommunityMembership.community_id == community_id,
            CommunityMembership.status.in_(("approved", "active")),
            CommunityMembership.static_key_ppb.is_not(None),
        )
    )
    return {membership_id: key for membership_id, key in rows if key is not None}


def lock_metering_point(db: Session, metering_point: str) -> None:
    """Serialise the checks of one metering point's participations until the commit.

    On PostgreSQL a transaction-level advisory lock on the point: two applications of the same
    point to different communities cannot both pass the five-community and 100 % checks. On
    SQLite a transaction whose snapshot went stale cannot write, so the second of two racing
    checks fails instead of slipping in.
    """
    if db.get_bind().dialect.name == "postgresql":
        db.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:point, 0))"),
            {"point": metering_point},
        )
