"""The uplink to the cloud: one outbound WebSocket, store-and-forward minute readings, live pushes.

While paired, the gateway keeps one WebSocket open to ``/api/v1/gateway/ws`` (outbound, so it
works behind home NAT), authenticated with its device token. Over it go:

- one **minute reading** per UTC minute of each meter: the reading with the latest meter clock
  in that minute, sent once the minute is over (a reading of a later minute is stored, or the
  meter has been silent for :attr:`Uplink.quiet_close_s`). The cloud acknowledges each with
  ``{"type": "ack", "measured_at": ...}`` once it is committed;
- every **raw reading**, as it is stored, but only while the cloud asks for them
  (``{"type": "stream", "raw": true}``: someone watches the meter live).

Store-and-forward: an upload watermark per meter in the gateway's SQLite store records the last
minute the cloud confirmed, and moves only on a confirmation. After an outage or a restart,
every minute after it is uploaded oldest first in batches of at most :data:`MAX_BATCH` through
``POST /api/v1/gateway/readings``, which is idempotent: a batch resent after a lost answer is not
stored twice. A minute the cloud refuses for good (HTTP 4xx other than 401, e.g. a meter clock
far in the future) is found by halving the batch, logged, and skipped, so that one bad reading
cannot stop every later one; it stays in the local store.

Failures reconnect with exponential back-off and jitter. A revoked or unknown device token
(HTTP 401, or the socket closed with 4401) ends the uplink for good with state ``revoked``;
the local store is left as it is.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TypedDict

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from ecommunity.gateway.settings import DeviceCredentials
from ecommunity.gateway.store import (
    ReadingStore,
    StoredReading,
    from_epoch_ms,
    to_epoch_ms,
)
from ecommunity.meter import Reading

logger = logging.getLogger(__name__)

WS_PATH: Final = "/api/v1/gateway/ws"
BATCH_PATH: Final = "/api/v1/gateway/readings"
#: Readings per batch upload.
MAX_BATCH: Final = 1000
#: The cloud's close code for an unknown or revoked device token.
CLOSE_UNAUTHORIZED: Final = 4401
#: The cloud's close code after repeated invalid messages: a bug here, not a revocation.
CLOSE_POLICY: Final = 1008
MINUTE_MS: Final = 60_000
#: The cloud refuses readings from before 2000 (a meter clock that lost power): not sent.
EARLIEST_MS: Final = to_epoch_ms(datetime(2000, 1, 1, tzinfo=UTC))
#: A connection that lasted this long counts as healthy: the back-off starts over. [s]
HEALTHY_AFTER_S: Final = 30.0
#: Raw readings waiting to be sent; the oldest are dropped beyond this (live data only).
RAW_QUEUE_MAX: Final = 100


class UplinkState(StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    REVOKED = "revoked"
    STOPPED = "stopped"


class ReadingPayload(TypedDict):
    """A reading on the wire: the cloud's ``ReadingIn``."""

    meter_serial: str
    profile: str
    measured_at: str
    energy_import_wh: int | None
    energy_export_wh: int | None
    power_import_w: int | None
    power_export_w: int | None


@dataclass
class UplinkStatus:
    """The uplink as the status file and the local API show it."""

    state: UplinkState = UplinkState.CONNECTING
    #: What happens, in words (why offline, why revoked).
    detail: str = ""
    #: Whether the cloud wants raw readings now (someone watches live).
    raw_streaming: bool = False
    #: Finished minutes not yet confirmed by the cloud (all meters).
    backlog_minutes: int = 0
    #: The start of the newest minute the cloud confirmed. [UTC]
    uploaded_through: datetime | None = None
    minutes_uploaded: int = 0
    #: Minutes the cloud refused for good (kept locally, not retried).
    minutes_skipped: int = 0
    raw_sent: int = 0
    connects: int = 0

    def to_json(self) -> dict[str, Any]:
        through = self.uploaded_through
        return {
            "state": self.state.value,
            "detail": self.detail,
            "raw_streaming": self.raw_streaming,
            "backlog_minutes": self.backlog_minutes,
            "uploaded_through": None if through is None else through.isoformat(),
            "minutes_uploaded": self.minutes_uploaded,
            "minutes_skipped": self.minutes_skipped,
            "raw_sent": self.raw_sent,
            "connects": self.connects,
        }


class DeviceRevokedError(Exception):
    """The cloud no longer accepts the device token."""


class _CloudUnavailableError(Exception):
    """The cloud answered, but cannot take readings now (5xx, 429, a closed socket)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def minute_start_ms(epoch_ms: int) -> int:
    """The start of the UTC minute holding ``epoch_ms``. [epoch ms]"""
    return epoch_ms - epoch_ms % MINUTE_MS


def stored_payload(row: StoredReading) -> ReadingPayload:
    """The wire form of a stored reading (it must have a meter clock)."""
    if row.meter_timestamp is None:
        raise ValueError(f"reading {row.id} has no meter time stamp")
    return ReadingPayload(
        meter_serial=row.meter_id,
        profile=row.profile,
        measured_at=row.meter_timestamp.isoformat(),
        energy_import_wh=row.energy_import_wh,
        energy_export_wh=row.energy_export_wh,
        power_import_w=row.power_import_w,
        power_export_w=row.power_export_w,
    )


def live_payload(reading: Reading) -> ReadingPayload | None:
    """The wire form of a reading just decoded; None if it has no meter clock."""
    if reading.meter_timestamp is None:
        return None
    return ReadingPayload(
        meter_serial=reading.meter_id or "",
        profile=reading.profile,
        measured_at=reading.meter_timestamp.astimezone(UTC).isoformat(),
        energy_import_wh=reading.energy_import_wh,
        energy_export_wh=reading.energy_export_wh,
        power_import_w=reading.power_import_w,
        power_export_w=reading.power_export_w,
    )


def websocket_url(cloud_url: str) -> str:
    """``http(s)://host[/prefix]`` → ``ws(s)://host[/prefix]/api/v1/gateway/ws``."""
    base = cloud_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + WS_PATH
    return "ws://" + base.removeprefix("http://") + WS_PATH


@dataclass(frozen=True)
class _Batch:
    meter_id: str
    rows: list[StoredReading]


class Uplink:
    """Uploads the readings of ``store`` to the cloud ``credentials`` name, until revoked.

    ``store`` is the uplink's own connection to the gateway's database (the serial reader
    writes through another). Call :meth:`notify` from any thread for each reading stored, and
    run :meth:`run` in the event loop.
    """

    def __init__(
        self,
        store: ReadingStore,
        credentials: DeviceCredentials,
        http: httpx.AsyncClient,
        *,
        on_change: Callable[[UplinkStatus], None] = lambda status: None,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 60.0,
        batch_size: int = MAX_BATCH,
        ack_timeout_s: float = 10.0,
        quiet_close_s: float = 120.0,
        ws_minutes_max: int = 5,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1…{MAX_BATCH}, got {batch_size}")
        self.store = store
        self.credentials = credentials
        self.http = http
        self.status = UplinkStatus()
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.batch_size = batch_size
        self.ack_timeout_s = ack_timeout_s
        #: After this long without a new reading, a meter's last minute counts as finished. [s]
        self.quiet_close_s = quiet_close_s
        #: Up to this many pending minutes go over the socket; more go as batch uploads.
        self.ws_minutes_max = ws_minutes_max
        self._on_change = on_change
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._raw: collections.deque[Reading] = collections.deque(maxlen=RAW_QUEUE_MAX)
        self._raw_ready = asyncio.Event()
        self._last_minute_ms: int | None = None
        self._in_flight: tuple[datetime, asyncio.Future[bool]] | None = None
        self._backlog: dict[str, int] = {}
        self._counted: set[str] = set()
        self._progress = False
        self._warned_offline = False
        self._refusals_seen: set[str] = set()
        #: Meters the cloud was told about on this connection (see _introduce_meters).
        self._introduced: set[str] = set()
        self._online = False
        self._headers = {"Authorization": f"Bearer {credentials.token.get_secret_value()}"}

    # -- called from the reader thread ------------------------------------------------------

    def notify(self, reading: Reading) -> None:
        """A reading was stored (any thread): stream it if asked to, and look for finished
        minutes when it starts a new one."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: shutting down
            loop.call_soon_threadsafe(self._on_reading, reading)

    def _on_reading(self, reading: Reading) -> None:
        if reading.meter_timestamp is not None:
            minute = minute_start_ms(to_epoch_ms(reading.meter_timestamp))
            if minute != self._last_minute_ms:
                self._last_minute_ms = minute
                self._wake.set()
        if self.status.raw_streaming:
            self._raw.append(reading)  # a full deque drops the oldest
            self._raw_ready.set()
        elif self._online and (reading.meter_id or "") not in self._introduced:
            # A meter that started after the connection: introduce it with this push.
            self._introduced.add(reading.meter_id or "")
            self._raw.append(reading)
            self._raw_ready.set()

    # -- the connection loop ----------------------------------------------------------------

    async def run(self) -> UplinkStatus:
        """Upload until the token is revoked (returns) or the task is cancelled."""
        self._loop = asyncio.get_running_loop()
        failures = 0
        try:
            while True:
                started = time.monotonic()
                self._progress = False
                self._set_state(UplinkState.CONNECTING, "connecting to " + self._ws_url)
                try:
                    await self._session()
                    reason = "the cloud closed the uplink"
                except DeviceRevokedError as exc:
                    self._set_state(UplinkState.REVOKED, str(exc))
                    logger.error(
                        "the cloud no longer accepts this gateway's device token (%s): the "
                        "uplink is stopped; readings are still stored locally",
                        exc,
                    )
                    return self.status
                except (
                    OSError,
                    TimeoutError,
                    WebSocketException,
                    httpx.HTTPError,
                    _CloudUnavailableError,
                ) as exc:
                    reason = _describe(exc)
                if self._progress or time.monotonic() - started >= HEALTHY_AFTER_S:
                    failures = 0
                delay = min(self.retry_initial_s * 2**failures, self.retry_max_s)
                failures += 1
                # Jitter: gateways that lost the cloud at the same moment do not all come
                # back at the same moment.
                delay = random.uniform(delay / 2, delay)
                self._set_state(UplinkState.OFFLINE, f"{reason}; reconnecting in {delay:.1f} s")
                level = logging.DEBUG if self._warned_offline else logging.WARNING
                self._warned_offline = True
                logger.log(level, "uplink offline: %s; reconnecting in %.1f s", reason, delay)
                await asyncio.sleep(delay)
        finally:
            if self.status.state is not UplinkState.REVOKED:
                self._set_state(UplinkState.STOPPED, "stopped")
            self._loop = None

    @property
    def _ws_url(self) -> str:
        return websocket_url(self.credentials.cloud_url)

    async def _session(self) -> None:
        """One connection: until it fails. Raises what ended it."""
        try:
            ws = await connect(
                self._ws_url,
                additional_headers=self._headers,
                open_timeout=10,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=5,
            )
        except InvalidStatus as exc:
            if exc.response.status_code == 401:
                raise DeviceRevokedError("the cloud refused the device token (HTTP 401)") from None
            raise
        async with ws:
            self.status.connects += 1
            self._backlog.clear()
            self._counted.clear()
            self._set_state(UplinkState.ONLINE, "connected")
            level = logging.WARNING if self._warned_offline else logging.INFO
            self._warned_offline = False
            logger.log(level, "uplink connected to %s", self._ws_url)
            await self._introduce_meters(ws)
            tasks = [
                asyncio.create_task(self._receive(ws), name="uplink-receive"),
                asyncio.create_task(self._send_minutes(ws), name="uplink-minutes"),
                asyncio.create_task(self._send_raw(ws), name="uplink-raw"),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._online = False
                self._set_streaming(False)
                self._in_flight = None
            errors = [error for task in done if (error := task.exception()) is not None]
            for error in errors:
                if isinstance(error, DeviceRevokedError):
                    raise error
            if ws.close_code == CLOSE_UNAUTHORIZED:
                raise DeviceRevokedError(ws.close_reason or "the device token was revoked")
            if ws.close_code == CLOSE_POLICY:
                logger.error(
                    "the cloud closed the uplink for invalid messages: %s", ws.close_reason
                )
            for error in errors:
                if not isinstance(error, ConnectionClosed):
                    raise error
            reason = f": {ws.close_reason}" if ws.close_reason else ""
            raise _CloudUnavailableError(
                f"the cloud closed the uplink (code {ws.close_code}{reason})"
            )

    async def _introduce_meters(self, ws: ClientConnection) -> None:
        """Send each meter's latest reading as a live push, so that the cloud knows the meters
        at once: a gateway paired a moment ago would otherwise show none until its first
        minute is complete (and the minute readings' watermark is not touched)."""
        latest = await asyncio.to_thread(self._latest_of_each_meter)
        self._raw.clear()  # pushes queued for an earlier connection are stale
        self._introduced = {row.meter_id for row in latest}
        self._online = True
        for row in latest:
            await ws.send(json.dumps({"type": "raw", "reading": stored_payload(row)}))

    def _latest_of_each_meter(self) -> list[StoredReading]:
        rows = (self.store.latest_timed(meter_id) for meter_id in self.store.meter_ids())
        return [row for row in rows if row is not None]

    async def _receive(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                try:
                    data = json.loads(message)
                except ValueError:
                    logger.warning("the cloud sent a message that is not JSON")
                    continue
                if not isinstance(data, dict):
                    continue
                kind = data.get("type")
                if kind == "stream":
                    self._set_streaming(data.get("raw") is True)
                elif kind == "ack":
                    self._acknowledged(data.get("measured_at"))
                elif kind == "error":
                    code = str(data.get("code"))
                    # Once per kind at WARNING: a meter clock the cloud refuses would repeat
                    # the same refusal with every push.
                    level = logging.DEBUG if code in self._refusals_seen else logging.WARNING
                    self._refusals_seen.add(code)
                    logger.log(
                        level,
                        "the cloud refused an uplink message: %s %s",
                        code,
                        str(data.get("detail"))[:200],
                    )
                    if self._in_flight is not None and not self._in_flight[1].done():
                        # It may concern a raw push; the batch upload gives a sure answer.
                        self._in_flight[1].set_result(False)
                else:
                    logger.debug("ignoring an uplink message of type %r", kind)

    def _acknowledged(self, measured_at: object) -> None:
        if not isinstance(measured_at, str) or self._in_flight is None:
            return
        try:
            at = datetime.fromisoformat(measured_at)
        except ValueError:
            return
        expected, future = self._in_flight
        if at.tzinfo is not None and at == expected and not future.done():
            future.set_result(True)

    def _set_streaming(self, raw: bool) -> None:
        if raw == self.status.raw_streaming:
            return
        self.status.raw_streaming = raw
        self._raw.clear()  # what was queued is no longer wanted, or stale
        logger.info("the cloud %s raw readings", "wants" if raw else "no longer wants")
        self._on_change(self.status)

    async def _send_raw(self, ws: ClientConnection) -> None:
        while True:
            await self._raw_ready.wait()
            self._raw_ready.clear()
            while self._raw:
                payload = live_payload(self._raw.popleft())
                if payload is not None:
                    await ws.send(json.dumps({"type": "raw", "reading": payload}))
                    self.status.raw_sent += 1

    # -- minute readings --------------------------------------------------------------------

    async def _send_minutes(self, ws: ClientConnection) -> None:
        while True:
            self._wake.clear()
            batch, backlog = await asyncio.to_thread(self._next_batch, frozenset(self._counted))
            self._backlog.update(backlog)
            self._counted.update(backlog)
            self.status.backlog_minutes = sum(self._backlog.values())
            if batch is None:
                with contextlib.suppress(TimeoutError):
                    # Also wakes now and then: a meter that went quiet finishes its minute.
                    await asyncio.wait_for(self._wake.wait(), timeout=self.quiet_close_s / 2)
                continue
            if len(batch.rows) <= self.ws_minutes_max:
                for row in batch.rows:
                    await self._send_minute(ws, batch.meter_id, row)
            else:
                await self._upload(batch.meter_id, batch.rows)

    def _next_batch(self, counted: frozenset[str]) -> tuple[_Batch | None, dict[str, int]]:
        """The oldest finished minutes not yet uploaded, of the first meter that has any, and
        the backlog of the meters whose backlog is known anew.

        Runs in a worker thread (SQLite); changes nothing of ``self``. A meter with a backlog
        longer than a batch is counted once per connection (not in ``counted`` yet) and then
        counted down as batches go out: counting per batch would scan the whole backlog again.
        """
        target = self.credentials.target
        now_ms = to_epoch_ms(self._clock())
        found: _Batch | None = None
        backlog: dict[str, int] = {}
        for meter_id in self.store.meter_ids():
            latest = self.store.latest_timed(meter_id)
            if latest is None or latest.meter_timestamp is None:
                continue
            finished_before = minute_start_ms(to_epoch_ms(latest.meter_timestamp))
            if now_ms - to_epoch_ms(latest.received_at) >= self.quiet_close_s * 1000:
                finished_before += MINUTE_MS  # the meter went quiet: its last minute is over
            watermark = self.store.watermark(target, meter_id)
            start = EARLIEST_MS if watermark is None else max(EARLIEST_MS, watermark + MINUTE_MS)
            if start >= finished_before:
                backlog[meter_id] = 0
                continue
            rows = self.store.minute_readings(
                meter_id, from_ms=start, before_ms=finished_before, limit=self.batch_size
            )
            if len(rows) < self.batch_size:
                backlog[meter_id] = len(rows)
            elif meter_id not in counted:
                backlog[meter_id] = self.store.count_minutes(
                    meter_id, from_ms=start, before_ms=finished_before
                )
            if rows and found is None:
                found = _Batch(meter_id, rows)
        return found, backlog

    async def _send_minute(self, ws: ClientConnection, meter_id: str, row: StoredReading) -> None:
        """Send one minute over the socket and wait for its ack; if none comes, upload it."""
        assert row.meter_timestamp is not None
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_flight = (row.meter_timestamp, future)
        try:
            await ws.send(json.dumps({"type": "minute", "reading": stored_payload(row)}))
            try:
                acknowledged = await asyncio.wait_for(future, self.ack_timeout_s)
            except TimeoutError:
                logger.debug("no ack for the minute at %s", row.meter_timestamp)
                acknowledged = False
        finally:
            self._in_flight = None
        if acknowledged:
            await self._confirmed(meter_id, [row])
        else:
            await self._upload(meter_id, [row])

    async def _upload(self, meter_id: str, rows: list[StoredReading]) -> None:
        """Upload minutes in batches, oldest first; halve a refused batch to find the culprit.

        Raises:
            DeviceRevokedError: HTTP 401.
            _CloudUnavailableError: 5xx, 429 or another answer that may change later.
            httpx.HTTPError: the cloud cannot be reached.
        """
        url = self.credentials.cloud_url + BATCH_PATH
        chunks = collections.deque([rows])
        while chunks:
            chunk = chunks.popleft()
            body = {"readings": [stored_payload(row) for row in chunk]}
            response = await self.http.post(url, json=body, headers=self._headers)
            status = response.status_code
            if status == 200:
                await self._confirmed(meter_id, chunk)
            elif status == 401:
                raise DeviceRevokedError(
                    f"the cloud refused the device token (HTTP 401: {_reason(response)})"
                )
            elif status in (400, 409, 413, 422):
                if len(chunk) > 1:
                    half = len(chunk) // 2
                    chunks.extendleft((chunk[half:], chunk[:half]))  # first half first
                    continue
                row = chunk[0]
                logger.error(
                    "the cloud refuses the reading of meter %r at %s for good (HTTP %d: %s): "
                    "skipped; it stays in the local store",
                    meter_id,
                    row.meter_timestamp,
                    status,
                    _reason(response),
                )
                self.status.minutes_skipped += 1
                await self._confirmed(meter_id, chunk, skipped=True)
            else:
                raise _CloudUnavailableError(
                    f"batch upload failed: HTTP {status} {_reason(response)}"
                )

    async def _confirmed(
        self, meter_id: str, rows: list[StoredReading], *, skipped: bool = False
    ) -> None:
        """Move the watermark past ``rows`` (the cloud has them, or refuses them for good)."""
        last = rows[-1].meter_timestamp
        assert last is not None
        minute_ms = minute_start_ms(to_epoch_ms(last))
        await asyncio.to_thread(
            self.store.set_watermark, self.credentials.target, meter_id, minute_ms, self._clock()
        )
        self._progress = True
        if not skipped:
            self.status.minutes_uploaded += len(rows)
        through = from_epoch_ms(minute_ms)
        if self.status.uploaded_through is None or through > self.status.uploaded_through:
            self.status.uploaded_through = through
        left = max(0, self._backlog.get(meter_id, 0) - len(rows))
        self._backlog[meter_id] = left
        self.status.backlog_minutes = sum(self._backlog.values())
        self._on_change(self.status)

    def _set_state(self, state: UplinkState, detail: str) -> None:
        self.status.state = state
        self.status.detail = detail
        self._on_change(self.status)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _CloudUnavailableError):
        return str(exc)
    if isinstance(exc, InvalidStatus):
        return f"the cloud refused the uplink (HTTP {exc.response.status_code})"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _reason(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(data, dict):
        detail = data.get("detail")
        if isinstance(detail, str):
            return detail[:200]
        if detail is not None:
            return json.dumps(detail)[:200]
    return response.reason_phrase
