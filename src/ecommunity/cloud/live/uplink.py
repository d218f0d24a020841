"""A gateway's uplink socket (``WS /api/v1/gateway/ws``): its protocol and its message loop.

Gateway → cloud, one JSON text (or UTF-8 binary) frame each::

    {"type": "minute", "reading": ReadingIn}   stored as a minute reading, then acknowledged
    {"type": "raw", "reading": ReadingIn}      a raw live push, stored while someone watches

Cloud → gateway::

    {"type": "stream", "raw": true|false}    start/stop raw pushes (at connect and on change)
    {"type": "ack", "measured_at": ...}      the minute reading is committed: move the watermark
    {"type": "error", "code": ..., "detail": ...}    the message was refused; the socket stays up

Raw pushes are not acknowledged: they are live data, and an ack for one must never move the
gateway's minute watermark past minute readings it has not uploaded yet.

Close codes: 4401 (no, unknown or revoked device token; also sent the moment the device is
revoked), 1008 (too many invalid messages in a row), 1011 (the database failed: reconnect).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from ecommunity.cloud.actions.ingest import IngestResult, ingest_readings
from ecommunity.cloud.db.live import active_device, meter_ids_of_device
from ecommunity.cloud.deps import bearer_token, find_device
from ecommunity.cloud.errors import CloudError, NotAuthenticatedError
from ecommunity.cloud.live.bus import BusError
from ecommunity.cloud.live.hub import CLOSE_UNAUTHORIZED, GatewayLink, LiveHub
from ecommunity.cloud.schemas import ReadingIn

logger = logging.getLogger(__name__)

#: Largest message a gateway may send; one reading is a few hundred bytes. [bytes]
MAX_MESSAGE_BYTES = 64 * 1024
#: Invalid messages in a row after which the socket is closed (1008).
MAX_INVALID_IN_A_ROW = 10
#: Messages read ahead of the writer, and the most it stores in one transaction.
MAX_PENDING = 1000
MAX_BATCH = 500
#: The uplink's close code when storage fails (the gateway reconnects and re-sends).
CLOSE_INTERNAL = 1011
CLOSE_POLICY = 1008


class MinuteMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["minute"]
    reading: ReadingIn


class RawMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["raw"]
    reading: ReadingIn


UplinkMessage = Annotated[MinuteMessage | RawMessage, Field(discriminator="type")]
_uplink_messages: TypeAdapter[MinuteMessage | RawMessage] = TypeAdapter(UplinkMessage)


class Ack(BaseModel):
    type: Literal["ack"] = "ack"
    measured_at: datetime


class UplinkError(BaseModel):
    type: Literal["error"] = "error"
    code: str
    detail: str


@dataclass(frozen=True)
class _Revoked:
    """The device lost its token while its socket was open."""


def _authenticate(sessions: sessionmaker[Session], token: str) -> tuple[int, list[int]] | None:
    """The device id and its meter ids, or None for an unknown or revoked token."""
    with sessions() as db:
        device = find_device(db, token)
        if device is None:
            return None
        return device.id, meter_ids_of_device(db, device.id)


def _store(
    sessions: sessionmaker[Session], device_id: int, readings: list[ReadingIn], raw: bool
) -> IngestResult | _Revoked:
    # The token is checked again per transaction: a revocation that another instance's hint did
    # not deliver still stops the uplink at its next message.
    with sessions() as db:
        device = active_device(db, device_id)
        if device is None:
            return _Revoked()
        return ingest_readings(db, device, readings, raw=raw)


def describe(exc: ValidationError) -> str:
    """A short reason for a refused message (without echoing its content)."""
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'message'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)[:5]
    ]
    return "; ".join(problems)


async def serve_uplink(websocket: WebSocket) -> None:
    """Run one gateway's uplink until it disconnects, is revoked, or misbehaves."""
    hub: LiveHub = websocket.app.state.live
    sessions: sessionmaker[Session] = websocket.app.state.sessions
    # Accept first, then refuse with a close code and a reason: a refusal before the handshake
    # reaches the client as a bare HTTP 403 without any reason.
    await websocket.accept()
    try:
        token = bearer_token(websocket.headers.get("authorization"))
    except NotAuthenticatedError as exc:
        await websocket.close(CLOSE_UNAUTHORIZED, exc.detail)
        return
    if token is None:
        await websocket.close(
            CLOSE_UNAUTHORIZED, "gateways authenticate with 'Authorization: Bearer <device token>'"
        )
        return
    found = await run_in_threadpool(_authenticate, sessions, token)
    if found is None:
        await websocket.close(CLOSE_UNAUTHORIZED, "the device token is unknown or revoked")
        return
    device_id, meter_ids = found
    logger.info("gateway %d connected", device_id)
    link = await hub.connect_gateway(device_id, websocket, meter_ids)
    try:
        await _relay(websocket, link, hub, sessions)
    except WebSocketDisconnect:
        pass
    finally:
        hub.disconnect_gateway(link)
        logger.info("gateway %d disconnected", device_id)


async def _relay(
    websocket: WebSocket, link: GatewayLink, hub: LiveHub, sessions: sessionmaker[Session]
) -> None:
    """Read and validate on this task; store, publish and acknowledge on a writer task.

    The writer stores whatever queued up while it was busy in one transaction, so a burst of
    readings costs a few commits rather than one each, and live readings stay on time.
    """
    pending: asyncio.Queue[MinuteMessage | RawMessage | None] = asyncio.Queue(MAX_PENDING)
    writer = asyncio.create_task(_write(link, hub, sessions, pending))
    try:
        await _read(websocket, link, pending)
    except BaseException:
        writer.cancel()
        raise
    if not writer.done():
        await pending.put(None)
    await writer


async def _read(
    websocket: WebSocket,
    link: GatewayLink,
    pending: asyncio.Queue[MinuteMessage | RawMessage | None],
) -> None:
    invalid_in_a_row = 0
    while not link.closed:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        data: str | bytes | None = frame.get("text")
        if data is None:
            data = frame.get("bytes") or b""
        problem = ""
        message: MinuteMessage | RawMessage | None = None
        if len(data) > MAX_MESSAGE_BYTES:
            problem = f"message larger than {MAX_MESSAGE_BYTES} bytes"
        else:
            try:
                message = _uplink_messages.validate_json(data)
            except ValidationError as exc:
                problem = describe(exc)
        if message is None:
            invalid_in_a_row += 1
            if invalid_in_a_row >= MAX_INVALID_IN_A_ROW:
                logger.warning(
                    "gateway %d: closing after repeated invalid messages", link.device_id
                )
                await link.close(CLOSE_POLICY, f"{invalid_in_a_row} invalid messages in a row")
                return
            await link.send(UplinkError(code="invalid_message", detail=problem).model_dump_json())
            continue
        invalid_in_a_row = 0
        # Waits while the writer is MAX_PENDING behind: back-pressure onto the gateway's socket.
        await pending.put(message)


async def _write(
    link: GatewayLink,
    hub: LiveHub,
    sessions: sessionmaker[Session],
    pending: asyncio.Queue[MinuteMessage | RawMessage | None],
) -> None:
    while True:
        first = await pending.get()
        if first is None:
            return
        batch, last = [first], False
        while len(batch) < MAX_BATCH and not pending.empty():
            queued = pending.get_nowait()
            if queued is None:
                last = True
                break
            batch.append(queued)
        # Runs of the same kind, in order: minute readings and raw pushes go to their own tables.
        for kind, run in itertools.groupby(batch, key=lambda message: message.type):
            if not await _store_run(link, hub, sessions, list(run), raw=kind == "raw"):
                return
        if last:
            return


async def _store_run(
    link: GatewayLink,
    hub: LiveHub,
    sessions: sessionmaker[Session],
    run: list[MinuteMessage | RawMessage],
    *,
    raw: bool,
) -> bool:
    """Store, publish and acknowledge messages of one kind; False when the uplink must end."""
    readings = [message.reading for message in run]
    try:
        outcome = await run_in_threadpool(_store, sessions, link.device_id, readings, raw)
    except CloudError as exc:
        if len(run) > 1:
            # One reading spoilt the batch: store the others, refuse only that one.
            for message in run:
                if not await _store_run(link, hub, sessions, [message], raw=raw):
                    return False
            return True
        await link.send(UplinkError(code=exc.code, detail=exc.detail).model_dump_json())
        return True
    except SQLAlchemyError:
        logger.exception("gateway %d: storing readings failed", link.device_id)
        await link.close(CLOSE_INTERNAL, "storage unavailable: reconnect and send again")
        return False
    if isinstance(outcome, _Revoked):
        await link.close(CLOSE_UNAUTHORIZED, "the device token was revoked")
        return False
    await hub.add_meters(link, {row.meter_id for row in outcome.new})
    for row in outcome.new:
        try:
            await hub.publish_reading(row, raw=raw)
        except BusError as exc:
            # Stored is what counts; watchers miss this one.
            logger.debug("gateway %d: not published: %s", link.device_id, exc)
    if not raw:
        for reading in readings:
            await link.send(Ack(measured_at=reading.measured_at).model_dump_json())
    return not link.closed
