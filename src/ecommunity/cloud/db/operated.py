"""Queries on the communities a user operates. Each takes a Session; none commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecommunity.cloud.db.community_models import Community, CommunityMembership


def communities_operated_by(db: Session, user_id: int) -> Sequence[Community]:
    """The communities ``user_id`` operates, oldest first."""
    return db.scalars(
        select(Community).where(Community.operator_id == user_id).order_by(Community.id)
    ).all()


def membership_counts_by_status(
    db: Session, community_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """Per community, how many memberships are in each state."""
    counts: dict[int, dict[str, int]] = {community_id: {} for community_id in community_ids}
    rows = db.execute(
        select(
            CommunityMembership.community_id,
            CommunityMembership.status,
            func.count(CommunityMembership.id),
        )
        .where(CommunityMembership.community_id.in_(list(community_ids)))
        .group_by(CommunityMembership.community_id, CommunityMembership.status)
    )
    for community_id, state, count in rows:
        counts[community_id][state] = int(count)
    return counts
