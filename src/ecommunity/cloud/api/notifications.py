"""/api/v1 routes: the caller's notifications; and publishing them on the live bus.

A notification is committed with the change it reports, then published on the bus channel
``notifications:<user id>`` (in any instance, with the Redis bus) as the JSON of
:class:`NotificationPublic` with ``"type": "notification"``. The bus delivers at most once;
``GET /notifications`` is the record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator, BaseModel

from ecommunity.cloud.actions.notifications import NotificationKind, mark_read
from ecommunity.cloud.api.auth import ErrorOut
from ecommunity.cloud.api.clock import Now
from ecommunity.cloud.db.community_models import Notification
from ecommunity.cloud.db.notifications import notifications_of_user
from ecommunity.cloud.deps import CurrentCaller, DbSession
from ecommunity.cloud.live.bus import BusError, LiveBus

logger = logging.getLogger(__name__)

router = APIRouter(tags=["notifications"])


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class NotificationPublic(BaseModel):
    type: Literal["notification"] = "notification"
    id: int
    kind: NotificationKind
    message: str
    community_id: int | None
    membership_id: int | None
    created_at: UtcDatetime
    read_at: UtcDatetime | None

    @classmethod
    def of(cls, row: Notification) -> NotificationPublic:
        return cls(
            id=row.id,
            kind=NotificationKind(row.kind),
            message=row.message,
            community_id=row.community_id,
            membership_id=row.membership_id,
            created_at=row.created_at,
            read_at=row.read_at,
        )


def notification_channel(user_id: int) -> str:
    return f"notifications:{user_id}"


async def publish_notifications(request: Request, rows: Iterable[Notification]) -> None:
    """Send committed notifications to their users' channels; a bus failure is logged only
    (they are stored)."""
    bus: LiveBus = request.app.state.bus
    for row in rows:
        try:
            await bus.publish(
                notification_channel(row.user_id), NotificationPublic.of(row).model_dump_json()
            )
        except BusError as exc:
            logger.debug("notification %d not published: %s", row.id, exc)


_SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not signed in"},
}


@router.get("/notifications", response_model=list[NotificationPublic], responses=_SIGNED_IN)
def list_notifications(
    caller: CurrentCaller,
    db: DbSession,
    unread: Annotated[bool, Query(description="Only those not marked read")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[NotificationPublic]:
    """Your notifications, newest first."""
    rows = notifications_of_user(db, caller.user.id, unread_only=unread, limit=limit, offset=offset)
    return [NotificationPublic.of(row) for row in rows]


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationPublic,
    responses={
        **_SIGNED_IN,
        403: {"model": ErrorOut, "description": "Cookie write without X-CSRF-Token"},
        404: {"model": ErrorOut, "description": "You have no notification with this id"},
    },
)
def read_notification(
    notification_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
) -> NotificationPublic:
    """Mark one of your notifications read."""
    return NotificationPublic.of(mark_read(db, caller.user, notification_id, now=now))
