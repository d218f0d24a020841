"""The live hub of one cloud instance: its gateway uplinks and browser watchers, joined to the
other instances through the live bus.

Channels:

- ``meter:<id>``: every reading of a meter, as the JSON a watcher receives (``LiveReading``).
  Only watchers subscribe to it, so its subscriber count says whether anyone watches.
- ``control``: hints between instances (``ControlMessage``): "the watchers of meter m changed"
  (the instance holding m's gateway re-counts and tells the gateway to start or stop raw
  streaming) and "device d was revoked" (whoever holds d's socket closes it).

Hints can be lost (Redis pub/sub is at most once, and a reconnecting instance misses some), so
every instance also re-counts the watchers of its gateways' meters every ``reconcile_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import anyio
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketDisconnect

from ecommunity.cloud.actions.ingest import flag_names
from ecommunity.cloud.db.readings import StoredReading
from ecommunity.cloud.live.bus import BusError, LiveBus, Subscription

logger = logging.getLogger(__name__)

CONTROL_CHANNEL = "control"
#: Close code for a revoked or unknown token (4000 + the HTTP status).
CLOSE_UNAUTHORIZED = 4401


def meter_channel(meter_id: int) -> str:
    return f"meter:{meter_id}"


class LiveReading(BaseModel):
    """A reading as watchers receive it: raw live pushes and minute readings alike."""

    type: Literal["reading"] = "reading"
    meter_id: int
    #: True for a raw live push, False for a minute reading.
    raw: bool
    measured_at: datetime
    energy_import_wh: int | None
    energy_export_wh: int | None
    power_import_w: int | None
    power_export_w: int | None
    #: Why the reading is kept out of energy sums (``counter_backwards``, ``implausible_jump``).
    flags: list[str]


class ControlMessage(BaseModel):
    """A hint from one instance to all (see the module docstring)."""

    kind: Literal["watchers", "revoke", "meters"]
    meter_id: int | None = None
    device_id: int | None = None
    meter_ids: list[int] | None = None


class GatewaySocket(Protocol):
    """What the hub needs of a gateway's WebSocket (Starlette's ``WebSocket`` fits)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass(eq=False)
class GatewayLink:
    """One connected gateway uplink. All sends go through here, one at a time."""

    device_id: int
    socket: GatewaySocket
    meter_ids: set[int] = field(default_factory=set)
    #: What the gateway was last told about raw streaming (None: nothing yet).
    raw: bool | None = None
    closed: bool = False
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _stream_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, data: str) -> bool:
        """Send unless closed; False if the socket is gone."""
        async with self._send_lock:
            if self.closed:
                return False
            try:
                await self.socket.send_text(data)
            except (OSError, RuntimeError, WebSocketDisconnect) as exc:
                logger.debug("gateway %d: send failed: %s", self.device_id, exc)
                self.closed = True
                return False
            return True

    async def close(self, code: int, reason: str) -> None:
        async with self._send_lock:
            if self.closed:
                return
            self.closed = True
            with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
                await self.socket.close(code, reason)


class LiveHub:
    """The registry of this instance's live sockets; see the module docstring."""

    def __init__(self, bus: LiveBus, *, reconcile_interval_s: float = 5.0) -> None:
        self.bus = bus
        self.reconcile_interval_s = reconcile_interval_s
        self._links: dict[int, set[GatewayLink]] = {}
        self._links_by_meter: dict[int, set[GatewayLink]] = {}
        self._control: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._bus_failures = 0

    async def start(self) -> None:
        self._control = await self.bus.subscribe(CONTROL_CHANNEL)
        self._tasks = [
            asyncio.create_task(self._follow_control(self._control), name="live-control"),
            asyncio.create_task(self._reconcile(), name="live-reconcile"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._control is not None:
            await self._control.close()
            self._control = None
        for link in [link for links in self._links.values() for link in links]:
            await link.close(1001, "the server is shutting down")

    # Gateways

    async def connect_gateway(
        self, device_id: int, socket: GatewaySocket, meter_ids: Iterable[int]
    ) -> GatewayLink:
        """Register an authenticated uplink and tell it whether to stream raw readings."""
        link = GatewayLink(device_id, socket)
        self._links.setdefault(device_id, set()).add(link)
        await self.add_meters(link, meter_ids)
        if link.raw is None:
            await self._update_stream(link)
        return link

    def disconnect_gateway(self, link: GatewayLink) -> None:
        """Forget an uplink (synchronous: safe in a cancelled handler's cleanup)."""
        link.closed = True
        links = self._links.get(link.device_id)
        if links is not None:
            links.discard(link)
            if not links:
                del self._links[link.device_id]
        for meter_id in link.meter_ids:
            by_meter = self._links_by_meter.get(meter_id)
            if by_meter is not None:
                by_meter.discard(link)
                if not by_meter:
                    del self._links_by_meter[meter_id]

    async def add_meters(self, link: GatewayLink, meter_ids: Iterable[int]) -> None:
        """The uplink reads these meters too (e.g. a meter its first reading created)."""
        new = set(meter_ids) - link.meter_ids
        if not new:
            return
        link.meter_ids |= new
        for meter_id in new:
            self._links_by_meter.setdefault(meter_id, set()).add(link)
        await self._update_stream(link)

    def gateway_count(self) -> int:
        return sum(len(links) for links in self._links.values())

    async def publish_reading(self, row: StoredReading, *, raw: bool) -> None:
        """Tell every watcher of the row's meter, in any instance. Call after the commit.

        :raises BusError: the bus is unreachable (the reading is stored all the same).
        """
        message = LiveReading(
            meter_id=row.meter_id,
            raw=raw,
            measured_at=row.measured_at,
            energy_import_wh=row.energy_import_wh,
            energy_export_wh=row.energy_export_wh,
            power_import_w=row.power_import_w,
            power_export_w=row.power_export_w,
            flags=flag_names(row.flags),
        )
        await self.bus.publish(meter_channel(row.meter_id), message.model_dump_json())

    async def meters_bound(self, device_id: int, meter_ids: Iterable[int]) -> None:
        """An upload that did not come through the uplink (a backfill over HTTP) bound these
        meters to the device: its uplink, in whichever instance holds it, reads them too, so
        that a watcher of them gets raw readings at once."""
        meter_ids = sorted(meter_ids)
        await self._add_device_meters(device_id, meter_ids)
        try:
            await self._hint(
                ControlMessage(kind="meters", device_id=device_id, meter_ids=meter_ids)
            )
        except BusError as exc:
            # The uplink learns them with its next minute reading all the same.
            logger.warning("cannot tell other instances of device %d's meters: %s", device_id, exc)

    async def _add_device_meters(self, device_id: int, meter_ids: Iterable[int]) -> None:
        for link in tuple(self._links.get(device_id, ())):
            await self.add_meters(link, meter_ids)

    async def device_revoked(self, device_id: int) -> None:
        """Close the device's uplink at once, here and in every other instance."""
        await self._close_device(device_id)
        try:
            await self._hint(ControlMessage(kind="revoke", device_id=device_id))
        except BusError as exc:
            # Other instances still refuse its next message: they re-check the token per message.
            logger.warning("cannot tell other instances of revoked device %d: %s", device_id, exc)

    # Watchers

    @contextlib.asynccontextmanager
    async def watch(self, meter_id: int) -> AsyncIterator[Subscription]:
        """Subscribe to a meter's readings; its gateway streams raw readings meanwhile.

        :raises BusError: the bus is unreachable.
        """
        subscription = await self.bus.subscribe(meter_channel(meter_id))
        try:
            await self._hint(ControlMessage(kind="watchers", meter_id=meter_id))
            yield subscription
        finally:
            # Shielded: a handler is often cancelled when its client goes, and the gateway
            # must still learn that nobody watches any more.
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await subscription.close()
                try:
                    await self._hint(ControlMessage(kind="watchers", meter_id=meter_id))
                except BusError as exc:
                    logger.debug("watchers hint for meter %d lost: %s", meter_id, exc)

    # Internals

    async def _hint(self, message: ControlMessage) -> None:
        await self.bus.publish(CONTROL_CHANNEL, message.model_dump_json(exclude_none=True))

    async def _close_device(self, device_id: int) -> None:
        for link in tuple(self._links.get(device_id, ())):
            logger.info("closing the uplink of revoked device %d", device_id)
            await link.close(CLOSE_UNAUTHORIZED, "the device token was revoked")
            self.disconnect_gateway(link)

    async def _update_stream(self, link: GatewayLink) -> None:
        """Tell the gateway to stream raw readings iff one of its meters is watched anywhere."""
        async with link._stream_lock:
            if link.closed:
                return
            wanted = False
            try:
                for meter_id in link.meter_ids:
                    if await self.bus.subscriber_count(meter_channel(meter_id)) > 0:
                        wanted = True
                        break
            except BusError as exc:
                # Storage goes on without the bus; the reconcile loop retries.
                self._bus_failures += 1
                level = logging.WARNING if self._bus_failures == 1 else logging.DEBUG
                logger.log(
                    level, "cannot count watchers (%d in a row): %s", self._bus_failures, exc
                )
                return
            self._bus_failures = 0
            if wanted != link.raw:
                link.raw = wanted
                await link.send(f'{{"type":"stream","raw":{"true" if wanted else "false"}}}')

    async def _follow_control(self, control: Subscription) -> None:
        async for data in control:
            try:
                message = ControlMessage.model_validate_json(data)
            except ValidationError:
                logger.warning("ignoring a malformed control message on the live bus")
                continue
            if message.kind == "revoke" and message.device_id is not None:
                await self._close_device(message.device_id)
            elif message.kind == "meters" and message.device_id is not None:
                await self._add_device_meters(message.device_id, message.meter_ids or ())
            elif message.kind == "watchers" and message.meter_id is not None:
                for link in tuple(self._links_by_meter.get(message.meter_id, ())):
                    await self._update_stream(link)

    async def _reconcile(self) -> None:
        while True:
            await asyncio.sleep(self.reconcile_interval_s)
            for links in tuple(self._links.values()):
                for link in tuple(links):
                    await self._update_stream(link)
