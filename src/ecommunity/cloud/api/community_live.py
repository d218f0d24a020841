"""/api/v1 routes: the live community view, for its members and its operator.

- ``GET /communities/{id}/live``: the snapshot (``CommunityLive``) once.
- ``WS /communities/{id}/live``: the snapshot at once, then again whenever a member's meter
  stored a new minute reading (looked for every ``POLL_INTERVAL_S``) and at least every
  ``PUSH_INTERVAL_S``.

The socket polls the database rather than the live bus: a meter's bus channel is for its own
watchers, and subscribing to it makes that meter's gateway stream raw readings every second,
which a community view does not need. A new minute reading is found by one look at the
members' readings of the last day: stored after the last one seen?

Refusals on the socket come right after the handshake as a close code with a reason, as on
``/live`` (``api/live.py``): 4400 (the id is not one), 4401 (not signed in, or the session
ended), 4403 (neither a member nor the operator, or a cookie sent from another site's page),
4404 (no such community), 1011 (a failure of ours). Membership and session are checked again
every ``RECHECK_INTERVAL_S``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, WebSocket
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from ecommunity.cloud.api.auth import ErrorOut
from ecommunity.cloud.api.clock import Now, current_time
from ecommunity.cloud.api.live import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_INTERNAL,
    CLOSE_NOT_FOUND,
    same_site,
)
from ecommunity.cloud.community_energy.participants import load_participation
from ecommunity.cloud.community_view.live import floor_to, live_snapshot
from ecommunity.cloud.community_view.members import QUARTER_HOUR, meters_of
from ecommunity.cloud.community_view.schemas import CommunityLive
from ecommunity.cloud.db.communities import find_community, plants_of
from ecommunity.cloud.db.community_models import Community
from ecommunity.cloud.db.meter_counters import is_active_member, latest_received_at
from ecommunity.cloud.deps import SESSION_COOKIE, CurrentCaller, DbSession, bearer_token, find_login
from ecommunity.cloud.errors import ForbiddenError, NotAuthenticatedError, NotFoundError
from ecommunity.cloud.live.hub import CLOSE_UNAUTHORIZED
from ecommunity.cloud.settings import CloudSettings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["communities"])

#: How often the socket looks for new minute readings of the members. [s]
POLL_INTERVAL_S = 10.0
#: The longest time between two snapshots on the socket. [s]
PUSH_INTERVAL_S = 60.0
#: How often the socket checks the session and the membership again. [s]
RECHECK_INTERVAL_S = 30.0

_NOT_ALLOWED = "only the community's members and its operator see its live view"

CommunityId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The community's id")]


def may_watch(db: Session, community: Community, user_id: int) -> bool:
    """The operator and the members with an active membership."""
    return community.operator_id == user_id or is_active_member(db, community.id, user_id)


def _snapshot(db: Session, community: Community, now: datetime) -> CommunityLive:
    plants = plants_of(db, [community.id]).get(community.id, [])
    return live_snapshot(db, community, plants, now)


@router.get(
    "/communities/{community_id}/live",
    response_model=CommunityLive,
    responses={
        401: {"model": ErrorOut, "description": "Not signed in"},
        403: {"model": ErrorOut, "description": "Neither a member nor the operator"},
        404: {"model": ErrorOut, "description": "No such community"},
    },
)
def community_live(
    community_id: CommunityId, caller: CurrentCaller, db: DbSession, now: Now
) -> CommunityLive:
    """What the members' meters show now: production, consumption, the share being allocated
    in the current quarter hour, self-sufficiency, prices and today's savings. An estimate
    until the grid operator's values arrive (the next day)."""
    community = find_community(db, community_id)
    if community is None:
        raise NotFoundError(f"there is no community {community_id}")
    if not may_watch(db, community, caller.user.id):
        raise ForbiddenError(_NOT_ALLOWED)
    return _snapshot(db, community, now)


def _authorize(
    sessions: sessionmaker[Session], token: str, community_id: int
) -> tuple[int, str] | None:
    """The close code and reason refusing ``token`` the view, or None if it may watch."""
    with sessions() as db:
        login = find_login(db, token)
        if login is None:
            return CLOSE_UNAUTHORIZED, "the session is unknown or ended"
        community = find_community(db, community_id)
        if community is None:
            return CLOSE_NOT_FOUND, f"there is no community {community_id}"
        if not may_watch(db, community, login.user_id):
            return CLOSE_FORBIDDEN, _NOT_ALLOWED
        return None


def _snapshot_text(sessions: sessionmaker[Session], community_id: int, now: datetime) -> str | None:
    with sessions() as db:
        community = find_community(db, community_id)
        if community is None:
            return None
        return _snapshot(db, community, now).model_dump_json()


def _newest_reading(
    sessions: sessionmaker[Session], community_id: int, now: datetime, since: datetime | None
) -> datetime | None:
    """When the newest minute reading of today's members' meters was stored, if after
    ``since`` (the last one seen)."""
    with sessions() as db:
        quarter = floor_to(now, QUARTER_HOUR)
        participation = load_participation(db, community_id, quarter, quarter + QUARTER_HOUR)
        meters = sorted(
            {m for side in meters_of(db, participation).values() for m in side if m is not None}
        )
        return latest_received_at(
            db, meters, measured_after=now - timedelta(days=1), received_after=since
        )


def _token(websocket: WebSocket, settings: CloudSettings) -> str | tuple[int, str]:
    """The session token of the handshake, or the close code and reason refusing it."""
    try:
        token = bearer_token(websocket.headers.get("authorization"))
    except NotAuthenticatedError as exc:
        return CLOSE_UNAUTHORIZED, exc.detail
    if token is not None:
        return token
    cookie = websocket.cookies.get(SESSION_COOKIE)
    if not cookie:
        return CLOSE_UNAUTHORIZED, "sign in first (session cookie or token)"
    if not same_site(websocket, settings):
        return CLOSE_FORBIDDEN, "this site's cookie is not for other sites"
    return cookie


@router.websocket("/communities/{community_id}/live")
async def watch_community(websocket: WebSocket, community_id: str) -> None:
    """Push the live community view to a member or the operator (see the module docstring)."""
    settings: CloudSettings = websocket.app.state.settings
    sessions: sessionmaker[Session] = websocket.app.state.sessions
    # The same clock as the HTTP routes, so that a test's clock applies here too.
    overrides: dict[Any, Any] = websocket.app.dependency_overrides
    clock: Callable[[], datetime] = overrides.get(current_time, current_time)
    await websocket.accept()
    if not community_id.isdigit() or not 0 < int(community_id) < 2**31:
        await _close(websocket, CLOSE_BAD_REQUEST, "the path must hold a community id")
        return
    wanted = int(community_id)
    token = _token(websocket, settings)
    if isinstance(token, tuple):
        await _close(websocket, *token)
        return
    try:
        refused = await run_in_threadpool(_authorize, sessions, token, wanted)
        if refused is not None:
            await _close(websocket, *refused)
            return
        await _stream(websocket, sessions, token, wanted, clock)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the client left
    except SQLAlchemyError:
        logger.exception("live view of community %d failed", wanted)
        await _close(websocket, CLOSE_INTERNAL, "the live view failed: try again later")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # The client may have gone already.
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.close(code, reason)


async def _stream(
    websocket: WebSocket,
    sessions: sessionmaker[Session],
    token: str,
    community_id: int,
    clock: Callable[[], datetime],
) -> None:
    """Send snapshots until the client leaves, or its session or membership ends."""
    async with anyio.create_task_group() as tasks:

        async def push() -> None:
            try:
                await _push(websocket, sessions, community_id, clock)
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass  # the client left
            except SQLAlchemyError:
                logger.exception("live view of community %d failed", community_id)
                await _close(websocket, CLOSE_INTERNAL, "the live view failed: try again later")
            tasks.cancel_scope.cancel()

        async def drain() -> None:
            # Watchers send nothing that matters; reading tells when they leave.
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
            tasks.cancel_scope.cancel()

        async def recheck() -> None:
            while True:
                await anyio.sleep(RECHECK_INTERVAL_S)
                try:
                    refused = await run_in_threadpool(_authorize, sessions, token, community_id)
                except SQLAlchemyError:
                    logger.exception("live view of community %d failed", community_id)
                    refused = CLOSE_INTERNAL, "the live view failed: try again later"
                if refused is not None:
                    await _close(websocket, *refused)
                    tasks.cancel_scope.cancel()
                    return

        tasks.start_soon(push)
        tasks.start_soon(drain)
        tasks.start_soon(recheck)


async def _push(
    websocket: WebSocket,
    sessions: sessionmaker[Session],
    community_id: int,
    clock: Callable[[], datetime],
) -> None:
    """A snapshot now, then on each new minute reading and at least every PUSH_INTERVAL_S;
    returns when the community is gone."""
    newest: datetime | None = None
    sent_at = float("-inf")
    while True:
        now = clock()
        found = await run_in_threadpool(_newest_reading, sessions, community_id, now, newest)
        if found is not None or time.monotonic() - sent_at >= PUSH_INTERVAL_S:
            newest = found or newest
            text = await run_in_threadpool(_snapshot_text, sessions, community_id, now)
            if text is None:
                await _close(websocket, CLOSE_NOT_FOUND, "the community is gone")
                return
            await websocket.send_text(text)
            sent_at = time.monotonic()
        await anyio.sleep(POLL_INTERVAL_S)
