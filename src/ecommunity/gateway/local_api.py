"""The gateway's local API and dashboard, for phones and home automation on the home network.

``/api/v1`` (OpenAPI at ``/openapi.json``): the status, the latest reading, history as energy per
interval from the meter's counters, a WebSocket of new readings, and the setup endpoints the
setup page uses. ``/`` serves the dashboard, whose assets ship inside the package, so that it
works without internet.

The local API has no accounts: whoever is on the home network may read it, as they could read
the meter's own display. Changing settings is different: the setup endpoints accept writes
while the gateway is in setup mode (it has no meter configuration yet), and otherwise only from
the gateway itself (loopback). Writes must be JSON, which a foreign web page cannot send to
another origin without a CORS preflight that this API never grants.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ecommunity import __version__
from ecommunity.gateway.history import (
    MAX_POINTS,
    RangeTooLargeError,
    Resolution,
    energy_intervals,
    energy_since,
    interval_boundaries_ms,
)
from ecommunity.gateway.live import LiveFeed
from ecommunity.gateway.meter_check import MeterCheck
from ecommunity.gateway.store import ReadingStore, StoredReading, to_epoch_ms

logger = logging.getLogger(__name__)

VIENNA = ZoneInfo("Europe/Vienna")
_WEB = resources.files("ecommunity.gateway") / "web"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class ApiError(Exception):
    """A request the API refuses: ``status`` with a reason for people and a stable code."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


class MeterSetupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    serial_port: str = Field(min_length=1, max_length=200, examples=["/dev/ttyUSB0"])
    profile: str = Field(min_length=1, max_length=40, examples=["amis"])
    #: 32 hex digits; spaces and colons are allowed.
    key: str = Field(min_length=32, max_length=64)
    auth_key: str | None = Field(default=None, max_length=64)
    #: Line settings instead of the profile's, e.g. ``9600-8N1``.
    line: str | None = Field(default=None, max_length=20)


class GatewaySetupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=40)
    #: The cloud to pair with; ``""`` removes it (local-only).
    cloud_url: str | None = Field(default=None, max_length=300)


class WifiConnectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ssid: str = Field(min_length=1, max_length=32)
    password: str | None = Field(default=None, min_length=8, max_length=63)


class GatewayRuntime(Protocol):
    """What the local API needs of the running gateway (:class:`GatewayService`)."""

    store: ReadingStore
    live: LiveFeed

    @property
    def setup_open(self) -> bool:
        """Whether anyone on the network may change the settings (setup mode)."""
        ...

    def status(self) -> dict[str, Any]: ...

    def setup_info(self) -> dict[str, Any]: ...

    async def configure_meter(self, setup: MeterSetupIn) -> MeterCheck:
        """Check the settings against the live meter; save them and read with them if right.

        Raises:
            ValueError: a setting is invalid (the message says which and why).
        """
        ...

    async def configure_gateway(self, setup: GatewaySetupIn) -> None:
        """Save a new name or cloud URL.

        Raises:
            ValueError: a setting is invalid.
        """
        ...


def create_local_app(runtime: GatewayRuntime) -> FastAPI:
    app = FastAPI(
        title="eCommunity gateway",
        version=__version__,
        description="The local API of an eCommunity home gateway: meter status, readings, "
        "energy history and setup.",
        docs_url="/api/docs",
        redoc_url=None,
    )
    _add_error_handlers(app)

    @app.get("/api/v1/status", tags=["status"])
    def get_status() -> dict[str, Any]:
        """The meter, the reader's counters, pairing and uplink state, version."""
        return runtime.status()

    @app.get("/api/v1/readings/latest", tags=["readings"])
    def get_latest(meter: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
        """The latest reading, as ``ecommunity meter decode --json`` prints it."""
        latest = runtime.store.latest(meter)
        if latest is None:
            raise ApiError(404, "no-reading", "no reading stored yet")
        return _reading_out(latest)

    @app.get("/api/v1/readings", tags=["readings"])
    def get_readings(
        from_: Annotated[
            datetime | None, Query(alias="from", description="start, ISO 8601 with offset")
        ] = None,
        to: Annotated[datetime | None, Query(description="end, ISO 8601 with offset")] = None,
        resolution: Resolution = Resolution.QUARTER_HOUR,
        meter: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        """``raw``: the stored readings in ``[from, to)``. ``1min``, ``15min``, ``1h``: energy
        per interval from the meter's counters (whole intervals covering the range). The range
        defaults to the last 24 hours."""
        now = datetime.now(UTC)
        end = _aware(to, "to") if to is not None else now
        start = _aware(from_, "from") if from_ is not None else end - timedelta(days=1)
        if start >= end:
            raise ApiError(422, "bad-range", "`from` must be before `to`")
        boundaries: list[int] = []
        if resolution is not Resolution.RAW:
            try:
                boundaries = interval_boundaries_ms(
                    to_epoch_ms(start), to_epoch_ms(end), resolution.step_ms
                )
            except RangeTooLargeError as exc:
                raise ApiError(422, "range-too-large", str(exc)) from None
        meter_id = _meter_id(runtime.store, meter)
        result: dict[str, Any] = {
            "meter_id": meter_id,
            "resolution": resolution.value,
            "from": start.isoformat(),
            "to": end.isoformat(),
        }
        if meter_id is None:
            return result | {"readings" if resolution is Resolution.RAW else "intervals": []}
        if resolution is Resolution.RAW:
            rows = runtime.store.readings_between(
                meter_id,
                from_ms=to_epoch_ms(start),
                before_ms=to_epoch_ms(end),
                limit=MAX_POINTS + 1,
            )
            if len(rows) > MAX_POINTS:
                raise ApiError(
                    422,
                    "range-too-large",
                    f"more than {MAX_POINTS} readings: narrow the range or choose a coarser "
                    "resolution",
                )
            return result | {"readings": [_reading_out(row) for row in rows]}
        intervals = energy_intervals(runtime.store, meter_id, boundaries, now_ms=to_epoch_ms(now))
        return result | {
            "intervals": [
                {
                    "start": interval.start.isoformat(),
                    "end": interval.end.isoformat(),
                    "energy_import_wh": interval.energy_import_wh,
                    "energy_export_wh": interval.energy_export_wh,
                    "complete": interval.complete,
                }
                for interval in intervals
            ]
        }

    @app.get("/api/v1/energy/today", tags=["readings"])
    def get_today(meter: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
        """Energy imported and exported since midnight in Austria, from the counters."""
        today = datetime.now(VIENNA).date()
        midnight = datetime.combine(today, datetime.min.time(), VIENNA).astimezone(UTC)
        meter_id = _meter_id(runtime.store, meter)
        energy_import, energy_export = (
            (None, None)
            if meter_id is None
            else energy_since(runtime.store, meter_id, to_epoch_ms(midnight))
        )
        return {
            "meter_id": meter_id,
            "day": today.isoformat(),
            "since": midnight.isoformat(),
            "energy_import_wh": energy_import,
            "energy_export_wh": energy_export,
        }

    @app.websocket("/api/v1/live")
    async def live(websocket: WebSocket) -> None:
        """The latest reading on connect, then every new reading as soon as it is stored."""
        await websocket.accept()
        async with runtime.live.subscribe() as queue:
            latest = await asyncio.to_thread(runtime.store.latest)
            if latest is not None:
                await websocket.send_json(_reading_out(latest))
            receiving = asyncio.ensure_future(_drain(websocket))
            try:
                while not receiving.done():
                    getting = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        {getting, receiving}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getting not in done:
                        getting.cancel()
                        break
                    await websocket.send_json(getting.result())
            except WebSocketDisconnect:
                pass
            finally:
                receiving.cancel()

    @app.get("/api/v1/setup", tags=["setup"])
    def get_setup() -> dict[str, Any]:
        """Setup state, current choices (never keys), serial ports and profiles to pick from."""
        return runtime.setup_info()

    def may_configure(request: Request) -> None:
        _may_configure(runtime, request)

    configuring = [Depends(may_configure)]

    @app.post("/api/v1/setup/meter", tags=["setup"], dependencies=configuring)
    async def post_meter(setup: MeterSetupIn) -> dict[str, Any]:
        """Check the meter settings against live frames; saved only if a frame decodes."""
        try:
            check = await runtime.configure_meter(setup)
        except ValueError as exc:
            raise ApiError(422, "invalid-setting", str(exc)) from None
        if not check.ok:
            raise ApiError(422, check.result.value, check.message)
        assert check.reading is not None
        return {
            "result": check.result.value,
            "message": check.message,
            "reading": check.reading.to_json(),
        }

    @app.post("/api/v1/setup/gateway", tags=["setup"], dependencies=configuring)
    async def post_gateway(setup: GatewaySetupIn) -> dict[str, Any]:
        """Name the gateway and choose the cloud to pair with."""
        try:
            await runtime.configure_gateway(setup)
        except ValueError as exc:
            raise ApiError(422, "invalid-setting", str(exc)) from None
        return runtime.setup_info()

    @app.get("/api/v1/setup/wifi", tags=["setup"])
    async def get_wifi() -> dict[str, Any]:
        """Wi-Fi networks in reach, through NetworkManager."""
        from ecommunity.gateway import wifi

        try:
            networks = await wifi.list_networks()
        except wifi.WifiUnavailableError as exc:
            raise ApiError(503, "wifi-unavailable", str(exc)) from None
        except wifi.WifiError as exc:
            raise ApiError(502, "wifi-error", str(exc)) from None
        return {"networks": [_wifi_network(network) for network in networks]}

    @app.post("/api/v1/setup/wifi", tags=["setup"], dependencies=configuring)
    async def post_wifi(connect: WifiConnectIn) -> dict[str, Any]:
        """Join a Wi-Fi network through NetworkManager."""
        from ecommunity.gateway import wifi

        try:
            await wifi.connect(connect.ssid, connect.password)
        except wifi.WifiUnavailableError as exc:
            raise ApiError(503, "wifi-unavailable", str(exc)) from None
        except wifi.WifiError as exc:
            raise ApiError(502, "wifi-error", str(exc)) from None
        return {"connected": connect.ssid}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(_WEB / "index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/manifest.webmanifest", include_in_schema=False)
    def manifest() -> FileResponse:
        return FileResponse(
            str(_WEB / "manifest.webmanifest"), media_type="application/manifest+json"
        )

    app.mount("/assets", StaticFiles(directory=str(_WEB / "assets")), name="assets")
    return app


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it goes away."""
    try:
        while True:
            await websocket.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return


def _reading_out(row: StoredReading) -> dict[str, Any]:
    return row.reading_data() | {"received_at": row.received_at.isoformat()}


def _wifi_network(network: object) -> dict[str, Any]:
    fields = ("ssid", "signal_percent", "security", "in_use")
    return {name: getattr(network, name, None) for name in fields}


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ApiError(
            422, "naive-time", f"`{name}` needs a UTC offset, e.g. 2026-11-26T00:00:00+01:00"
        )
    return value.astimezone(UTC)


def _meter_id(store: ReadingStore, meter: str | None) -> str | None:
    """The meter asked for, or the one that sent the latest reading."""
    if meter is not None:
        return meter
    latest = store.latest()
    return None if latest is None else latest.meter_id


def _may_configure(runtime: GatewayRuntime, request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "json-only", "send the settings as JSON (application/json)")
    host = request.client.host if request.client is not None else ""
    if not runtime.setup_open and host not in _LOOPBACK:
        raise ApiError(
            403,
            "setup-closed",
            "the gateway is set up: change its settings on the gateway itself "
            "(http://localhost:PORT/ there) or start it with `ecommunity gateway run --setup`",
        )


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # Name the field and the problem, without echoing what was sent (it may be a key).
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'] if part != 'body') or 'body'}: "
            f"{error['msg']}"
            for error in exc.errors()
        )
        return JSONResponse({"detail": problems, "code": "invalid-request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return JSONResponse(
            {"detail": str(exc.detail), "code": code},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
