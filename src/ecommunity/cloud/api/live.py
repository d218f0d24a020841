"""/api/v1 routes: live, the browser's WebSocket onto one meter's readings.

``WS /api/v1/live?meter={id}``: signed in with the session cookie (browsers) or
``Authorization: Bearer`` (API clients). Each reading of the meter, raw live pushes and minute
readings alike, arrives as one JSON text frame (``LiveReading``) as soon as it is stored, after
a first ``{"type": "watching", "meter_id": id}`` that says the subscription is in place. While
the socket is open, the meter's gateway streams raw readings (in whichever instance it is).

Refusals come right after the handshake as a close code with a reason, since a browser cannot
read a refused handshake's response: 4400 (``meter`` is not an id), 4401 (not signed in, or the
session ended), 4403 (a cookie sent from a page of another site), 4404 (no such meter among
yours), 1011 (the live bus is unavailable).
"""

from __future__ import annotations

import contextlib
import logging
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, WebSocket
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from ecommunity.cloud.db.readings import meter_of_user
from ecommunity.cloud.deps import SESSION_COOKIE, bearer_token, find_login
from ecommunity.cloud.errors import NotAuthenticatedError
from ecommunity.cloud.live.bus import BusError, Subscription
from ecommunity.cloud.live.hub import CLOSE_UNAUTHORIZED, LiveHub
from ecommunity.cloud.settings import CloudSettings

logger = logging.getLogger(__name__)

router = APIRouter()

CLOSE_BAD_REQUEST = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_INTERNAL = 1011
#: How often an open live socket re-checks its session and the meter's ownership. [s]
RECHECK_INTERVAL_S = 30.0

_NOT_FOUND = "no such meter among yours"


def same_site(websocket: WebSocket, settings: CloudSettings) -> bool:
    """Whether a cookie-authenticated handshake comes from one of our pages.

    Browsers send the cookie with a WebSocket handshake that any site opens, and no CORS check
    applies to it: without this check another site could watch a signed-in user's meters.
    Browsers always send ``Origin``; a client without it is no browser, so no cookie was
    borrowed.
    """
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    sent = urlsplit(origin)
    public = urlsplit(settings.public_url)
    if (sent.scheme, sent.netloc) == (public.scheme, public.netloc):
        return True
    return sent.netloc != "" and sent.netloc == websocket.headers.get("host")


def _authorize(sessions: sessionmaker[Session], token: str, meter_id: int) -> int | None:
    """The close code refusing ``token`` the meter, or None if it may watch."""
    with sessions() as db:
        login = find_login(db, token)
        if login is None:
            return CLOSE_UNAUTHORIZED
        if meter_of_user(db, login.user_id, meter_id) is None:
            return CLOSE_NOT_FOUND
        return None


@router.websocket("/live")
async def watch_meter(websocket: WebSocket) -> None:
    """Push each reading of ``meter`` (query parameter: a meter id) to its owner."""
    hub: LiveHub = websocket.app.state.live
    settings: CloudSettings = websocket.app.state.settings
    sessions: sessionmaker[Session] = websocket.app.state.sessions
    await websocket.accept()
    raw_meter = websocket.query_params.get("meter", "")
    if not raw_meter.isdigit() or not 0 < int(raw_meter) < 2**31:
        await websocket.close(CLOSE_BAD_REQUEST, "the query parameter meter must be a meter id")
        return
    meter_id = int(raw_meter)
    try:
        token = bearer_token(websocket.headers.get("authorization"))
    except NotAuthenticatedError as exc:
        await websocket.close(CLOSE_UNAUTHORIZED, exc.detail)
        return
    if token is None:
        token = websocket.cookies.get(SESSION_COOKIE)
        if not token:
            await websocket.close(CLOSE_UNAUTHORIZED, "sign in first (session cookie or token)")
            return
        if not same_site(websocket, settings):
            await websocket.close(CLOSE_FORBIDDEN, "this site's cookie is not for other sites")
            return
    refusal = await run_in_threadpool(_authorize, sessions, token, meter_id)
    if refusal is not None:
        reason = _NOT_FOUND if refusal == CLOSE_NOT_FOUND else "the session is unknown or ended"
        await websocket.close(refusal, reason)
        return
    try:
        async with hub.watch(meter_id) as subscription:
            # Tells the client that readings flow from now on (and tests when to start).
            await websocket.send_text(f'{{"type":"watching","meter_id":{meter_id}}}')
            await _stream(websocket, subscription, sessions, token, meter_id)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the client left before the first message
    except BusError as exc:
        logger.warning("live socket for meter %d: %s", meter_id, exc)
        await _close(websocket, CLOSE_INTERNAL, "the live bus is unavailable: try again later")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # The client may have gone already.
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.close(code, reason)


async def _stream(
    websocket: WebSocket,
    subscription: Subscription,
    sessions: sessionmaker[Session],
    token: str,
    meter_id: int,
) -> None:
    """Forward until the client leaves or its session ends."""
    async with anyio.create_task_group() as tasks:

        async def forward() -> None:
            try:
                async for data in subscription:
                    await websocket.send_text(data)
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass
            tasks.cancel_scope.cancel()

        async def drain() -> None:
            # Watchers send nothing that matters; reading tells when they leave.
            try:
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
            except (WebSocketDisconnect, RuntimeError):
                pass
            tasks.cancel_scope.cancel()

        async def recheck() -> None:
            while True:
                await anyio.sleep(RECHECK_INTERVAL_S)
                refusal = await run_in_threadpool(_authorize, sessions, token, meter_id)
                if refusal is not None:
                    reason = _NOT_FOUND if refusal == CLOSE_NOT_FOUND else "the session ended"
                    await _close(websocket, refusal, reason)
                    tasks.cancel_scope.cancel()
                    return

        tasks.start_soon(forward)
        tasks.start_soon(drain)
        tasks.start_soon(recheck)
