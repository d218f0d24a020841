"""Notifications: written in the transaction of the change they report (so that a change and
its notice are committed together), published on the live bus by the route after the commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from ecommunity.cloud.db.community_models import Notification
from ecommunity.cloud.db.models import User
from ecommunity.cloud.db.notifications import find_notification_of_user
from ecommunity.cloud.errors import NotFoundError

logger = logging.getLogger(__name__)


class NotificationKind(StrEnum):
    """What a notification reports."""

    APPLIED = "membership_applied"
    APPROVED = "membership_approved"
    REJECTED = "membership_rejected"
    ACTIVATED = "membership_activated"
    LEFT = "membership_left"
    FACTOR_CHANGED = "participation_factor_changed"
    KEY_CHANGED = "static_key_changed"


def notify(
    db: Session,
    user_ids: Iterable[int],
    kind: NotificationKind,
    message: str,
    *,
    now: datetime,
    community_id: int | None = None,
    membership_id: int | None = None,
) -> list[Notification]:
    """Add one notification per distinct user (an operator who is also the member hears it
    once). Not committed: the caller's transaction carries them."""
    added = [
        Notification(
            user_id=user_id,
            community_id=community_id,
            membership_id=membership_id,
            kind=kind.value,
            message=message[:1000],
            created_at=now,
        )
        for user_id in dict.fromkeys(user_ids)
    ]
    db.add_all(added)
    return added


def mark_read(db: Session, user: User, notification_id: int, *, now: datetime) -> Notification:
    """Mark ``user``'s notification read (again: no change).

    Raises:
        NotFoundError: ``user`` has no such notification.
    """
    notification = find_notification_of_user(db, user.id, notification_id)
    if notification is None:
        raise NotFoundError(f"you have no notification {notification_id}")
    if notification.read_at is None:
        notification.read_at = now
        db.commit()
    return notification
