"""Queries on users' notifications. Each takes a Session; none commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecommunity.cloud.db.community_models import Notification


def notifications_of_user(
    db: Session, user_id: int, *, unread_only: bool = False, limit: int = 100, offset: int = 0
) -> Sequence[Notification]:
    """``user_id``'s notifications, newest first."""
    query = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
    return db.scalars(query.limit(limit).offset(offset)).all()


def find_notification_of_user(
    db: Session, user_id: int, notification_id: int
) -> Notification | None:
    """The notification if it is ``user_id``'s; None for anyone else's."""
    return db.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user_id
        )
    )
