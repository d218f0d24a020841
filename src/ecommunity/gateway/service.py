"""The gateway service behind ``ecommunity gateway run``: read the meter, store, serve, upload.

The parts run side by side: the serial reader in a thread of its own (blocking pyserial reads,
an SQLite commit per reading), and in the asyncio event loop of the main thread the local API
and dashboard, the mDNS announcement, the MQTT publisher and the cloud side (pairing, then the
uplink). They meet in the SQLite store, which each opens with its own connection, and in
:meth:`GatewayService._on_reading`, which the reader calls for each reading it committed.

Without a meter configuration (serial port and key) the gateway starts in setup mode: it reads
nothing yet, announces itself over mDNS as needing setup and serves the setup page, which checks
the settings against the live meter before it saves them and starts reading. Without a cloud
URL the gateway runs local-only. SIGTERM and SIGINT stop it cleanly: the reader finishes the
reading it is storing, the uplink closes its socket, the databases are closed.

The service writes its state to ``status.json`` in the data directory (meter, reader counters,
pairing code while pairing, uplink state and backlog) whenever the state changes, for people and
scripts; it holds no secrets. ``GET /api/v1/status`` serves the same, current.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx
import uvicorn
from pydantic import SecretStr, ValidationError

from ecommunity import __version__
from ecommunity.gateway.live import LiveFeed
from ecommunity.gateway.local_api import GatewaySetupIn, MeterSetupIn, create_local_app
from ecommunity.gateway.meter_check import MeterCheck, check_meter
from ecommunity.gateway.pairing import Pairing, PairingError, PairingState, PairingStatus
from ecommunity.gateway.serial_reader import (
    PortOpener,
    ReaderSettings,
    ReaderStats,
    open_serial_port,
    run_reader,
)
from ecommunity.gateway.settings import (
    GatewaySettings,
    SecretsFile,
    SettingsError,
    hardware_id,
    parse_hex_key,
    parse_line,
    redacted,
)
from ecommunity.gateway.store import ReadingStore, StoreError
from ecommunity.gateway.uplink import Uplink, UplinkState, UplinkStatus
from ecommunity.meter import PROFILES, Profile, Reading, get_profile

if TYPE_CHECKING:
    from ecommunity.gateway.mdns import Announcer
    from ecommunity.gateway.mqtt import MqttPublisher

logger = logging.getLogger(__name__)

#: How long to wait before restarting the cloud side after an unexpected error. [s]
_CLOUD_RESTART_S = 30.0


class ServiceError(Exception):
    """The service cannot start: the data directory, the database or the port is unusable."""


def meter_profile(settings: GatewaySettings) -> Profile:
    """The profile the settings name, with their line settings if they override the profile's.

    Raises:
        ValueError: no such profile.
    """
    try:
        profile = get_profile(settings.profile)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    if settings.line_settings is not None:
        profile = dataclasses.replace(profile, line=settings.line_settings)
    return profile


class _Server(uvicorn.Server):
    """uvicorn inside our event loop: the service handles the signals, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class GatewayService:
    """One run of the gateway. :meth:`run` blocks until SIGTERM/SIGINT or :meth:`stop`."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        out: TextIO | None = None,
        open_port: PortOpener = open_serial_port,
        force_setup: bool = False,
    ) -> None:
        self.settings = settings
        self.profile = meter_profile(settings)
        self.out = out
        self.open_port = open_port
        #: Keep the setup page open for changes from the network for the whole run.
        self.force_setup = force_setup
        #: The current reader's counters (a new reader, after setup, counts afresh).
        self.reader_stats = ReaderStats()
        self.readings_stored = 0
        self.last_reading_at: datetime | None = None
        self.pairing: PairingStatus | None = None
        self.uplink: Uplink | None = None
        self.mqtt: MqttPublisher | None = None
        self.started_at = datetime.now(UTC)
        self.stopped = False
        self.gateway_id = ""
        #: The port the local API listens on (``http_port``, or the one picked for 0).
        self.http_port = settings.http_port
        self.store: ReadingStore
        self.live = LiveFeed()
        self._reader_store: ReadingStore | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._mqtt_task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: threading.Thread | None = None
        self._reader_stop = threading.Event()
        self._reader_failed = threading.Event()
        self._cloud: asyncio.Task[None] | None = None
        self._uplink_store: ReadingStore | None = None
        self._announcer: Announcer | None = None
        self._setup_lock = asyncio.Lock()
        self._shown_code: str | None = None

    def run(self) -> int:
        """Run until stopped. Returns the exit code: 0 after a clean stop, 1 on failure.

        Raises:
            ServiceError: the data directory, the database or the HTTP port cannot be used.
        """
        return asyncio.run(self._main())

    def stop(self) -> None:
        """Ask the service to stop (any thread)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    # -- state ------------------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        return self.settings.configured

    @property
    def setup_open(self) -> bool:
        return self.force_setup or not self.configured

    @property
    def setup_state(self) -> str:
        """``setup`` (no meter configuration), ``ready`` (reading) or ``paired``."""
        if not self.configured:
            return "setup"
        if self.uplink is not None and self.uplink.status.state is not UplinkState.REVOKED:
            return "paired"
        return "ready"

    # -- run --------------------------------------------------------------------------------

    async def _main(self) -> int:
        settings = self.settings
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        stores: list[ReadingStore] = []
        try:
            try:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
                self.gateway_id = hardware_id(settings)
                for _ in range(3):  # the reader's, the uplink's and the local API's
                    stores.append(ReadingStore(settings.database_path))
            except (OSError, sqlite3.Error, StoreError) as exc:
                raise ServiceError(f"cannot open {settings.database_path}: {exc}") from exc
            reader_store, self._uplink_store, self.store = stores
            return await self._serve(reader_store)
        finally:
            for store in stores:
                store.close()
            self.stopped = True
            self._write_status()
            self._loop = None

    async def _serve(self, reader_store: ReadingStore) -> int:
        settings = self.settings
        loop = asyncio.get_running_loop()
        stop = self._stop
        assert stop is not None
        logger.info(
            "gateway %s starting: %s",
            __version__,
            ", ".join(f"{name}={value}" for name, value in redacted(settings)),
        )
        server = await self._start_http()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            self._reader_store = reader_store
            await self._start_announcing()
            self._start_mqtt()
            if self.configured:
                self._start_reader(reader_store)
            else:
                self._say(
                    "No meter configured yet: open the setup page at "
                    f"http://{_display_host(settings.http_host)}:{self.http_port}/#setup"
                )
            self._restart_cloud()
            self._write_status()
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            logger.info("stopping the gateway")
            await self._stop_cloud(forget=False)
            if self._mqtt_task is not None:
                self._mqtt_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._mqtt_task
            if self._announcer is not None:
                await self._announcer.close()
            server.should_exit = True
            alive = await self._stop_reader()
            if self._server_task is not None:
                await self._server_task
        if alive:
            logger.error("the serial reader did not stop within 10 s")
            return 1
        return 1 if self._reader_failed.is_set() else 0

    async def _start_http(self) -> _Server:
        settings = self.settings
        config = uvicorn.Config(
            create_local_app(self),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws_max_size=64 * 1024,
            timeout_graceful_shutdown=3,
        )
        server = _Server(config)
        task = self._server_task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                self._server_task = None
                # uvicorn logs why (the port is taken) and exits the task with SystemExit.
                with contextlib.suppress(BaseException):
                    task.result()
                raise ServiceError(
                    f"cannot serve the local API on {settings.http_host}:{settings.http_port}"
                )
            await asyncio.sleep(0.02)
        for listener in server.servers:
            for sock in listener.sockets:
                self.http_port = sock.getsockname()[1]
        logger.info(
            "local API and dashboard on http://%s:%d/",
            _display_host(settings.http_host),
            self.http_port,
        )
        return server

    # -- the serial reader ------------------------------------------------------------------

    def _start_reader(self, store: ReadingStore) -> None:
        settings = self.settings
        assert settings.serial_port is not None
        self._reader_stop = threading.Event()
        self.reader_stats = ReaderStats()
        reader_settings = ReaderSettings(
            port=settings.serial_port,
            profile=self.profile,
            key=settings.key_bytes,
            auth_key=settings.auth_key_bytes,
        )
        self._reader = threading.Thread(
            target=self._read,
            args=(reader_settings, store, self._reader_stop, self.reader_stats),
            name="serial-reader",
            daemon=True,
        )
        self._reader.start()

    async def _stop_reader(self) -> bool:
        """Stop the reader, if one runs; True if it did not stop in time."""
        reader = self._reader
        if reader is None:
            return False
        self._reader_stop.set()
        await asyncio.to_thread(reader.join, 10)
        self._reader = None
        return reader.is_alive()

    def _read(
        self,
        reader_settings: ReaderSettings,
        store: ReadingStore,
        stop_reading: threading.Event,
        stats: ReaderStats,
    ) -> None:
        """The reader thread. Ends the service when the reader ends by itself (an error)."""
        try:
            run_reader(
                reader_settings,
                store,
                self._on_reading,
                stop_reading,
                open_port=self.open_port,
                stats=stats,
                on_change=self._reader_changed,
            )
        except Exception:
            # The supervision boundary: whatever ended the reader, the service must not go on
            # pretending to read the meter.
            logger.exception("the serial reader failed")
            stop_reading.set()
            self._reader_failed.set()
            self.stop()
            return
        if not stop_reading.is_set():
            self._reader_failed.set()
            self.stop()

    def _reader_changed(self, stats: ReaderStats) -> None:
        # Reader thread: a wrong key, a full disk or recovery from them; say so in status.json.
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._write_status)

    def _on_reading(self, reading: Reading) -> None:
        # Runs in the reader thread, after the commit; plain attribute writes are safe to read
        # from the loop, and the rest is handed over to it.
        self.readings_stored += 1
        self.last_reading_at = datetime.now(UTC)
        uplink = self.uplink
        if uplink is not None:
            uplink.notify(reading)
        self.live.publish_threadsafe(reading.to_json() | {"received_at": _now_text()})
        mqtt = self.mqtt
        loop = self._loop
        if mqtt is not None and loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(mqtt.publish, reading)

    # -- setup ------------------------------------------------------------------------------

    def setup_info(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "state": self.setup_state,
            "open": self.setup_open,
            "gateway_id": self.gateway_id,
            "name": settings.name,
            "cloud_url": settings.cloud_url,
            "meter": {
                "serial_port": settings.serial_port,
                "profile": settings.profile,
                "line": settings.line,
                "key_set": settings.key is not None,
                "auth_key_set": settings.auth_key is not None,
            },
            "serial_ports": _serial_ports(settings.serial_port),
            "profiles": [
                {
                    "name": profile.name,
                    "title": profile.title,
                    "operators": list(profile.operators),
                    "meters": list(profile.meters),
                }
                for profile in PROFILES.values()
            ],
            "pairing": None if self.pairing is None else self.pairing.to_json(),
        }

    async def configure_meter(self, setup: MeterSetupIn) -> MeterCheck:
        key = parse_hex_key(setup.key)
        auth_key = parse_hex_key(setup.auth_key) if setup.auth_key else None
        line = setup.line or None
        if line is not None:
            parse_line(line)
        candidate = self.settings.model_copy(
            update={
                "serial_port": setup.serial_port,
                "profile": setup.profile,
                "line": line,
                "key": SecretStr(key.hex()),
                "auth_key": None if auth_key is None else SecretStr(auth_key.hex()),
            }
        )
        profile = meter_profile(candidate)
        async with self._setup_lock:
            # The port can have one reader only: stop the running one while checking.
            if await self._stop_reader():
                raise ValueError("the running reader does not stop; restart the gateway")
            try:
                check = await asyncio.to_thread(
                    check_meter,
                    setup.serial_port,
                    profile,
                    key,
                    auth_key,
                    timeout_s=self.settings.meter_check_timeout_s,
                    open_port=self.open_port,
                )
                if check.ok:
                    await asyncio.to_thread(self._save_meter, candidate)
                    self.settings, self.profile = candidate, profile
                    self._say(f"Meter set up: {profile.name} on {setup.serial_port}.")
                else:
                    logger.warning("meter check on %s: %s", setup.serial_port, check.message)
            finally:
                if self.configured and self._reader_store is not None:
                    self._start_reader(self._reader_store)
            await self._announce()
            self._write_status()
        return check

    def _save_meter(self, settings: GatewaySettings) -> None:
        try:
            SecretsFile(settings.setup_path).update(
                serial_port=settings.serial_port, profile=settings.profile, line=settings.line
            )
            SecretsFile(settings.secrets_path).update(
                key=None if settings.key is None else settings.key.get_secret_value(),
                auth_key=None
                if settings.auth_key is None
                else settings.auth_key.get_secret_value(),
            )
        except SettingsError as exc:
            raise ValueError(f"cannot save the settings: {exc}") from None

    async def configure_gateway(self, setup: GatewaySetupIn) -> None:
        changes: dict[str, Any] = {}
        if setup.name is not None:
            changes["name"] = setup.name
        if setup.cloud_url is not None:
            changes["cloud_url"] = setup.cloud_url or None
        try:
            checked = GatewaySettings.model_validate(changes)
        except ValidationError as exc:
            raise ValueError(
                "; ".join(
                    f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                    for error in exc.errors(include_input=False, include_url=False)
                )
            ) from None
        update = {name: getattr(checked, name) for name in changes}
        async with self._setup_lock:
            stored = {name: "" if value is None else value for name, value in update.items()}
            try:
                await asyncio.to_thread(SecretsFile(self.settings.setup_path).update, **stored)
            except SettingsError as exc:
                raise ValueError(f"cannot save the settings: {exc}") from None
            cloud_changed = "cloud_url" in update and update["cloud_url"] != self.settings.cloud_url
            self.settings = self.settings.model_copy(update=update)
            if cloud_changed:
                await self._stop_cloud()
                self._restart_cloud()
            await self._announce()
            self._write_status()

    # -- mDNS and MQTT ----------------------------------------------------------------------

    async def _start_announcing(self) -> None:
        if not self.settings.mdns:
            return
        from ecommunity.gateway.mdns import Announcer, MdnsError

        announcer = Announcer(interfaces=self.settings.mdns_interfaces)
        try:
            await announcer.start(self._announcement())
        except (MdnsError, ValueError) as exc:
            # Discovery is a convenience: the gateway works without it.
            logger.warning("cannot announce the gateway over mDNS: %s", exc)
            with contextlib.suppress(MdnsError):
                await announcer.close()
            return
        self._announcer = announcer

    async def _announce(self) -> None:
        if self._announcer is None:
            return
        from ecommunity.gateway.mdns import MdnsError

        try:
            await self._announcer.update(self._announcement())
        except (MdnsError, ValueError) as exc:
            logger.warning("cannot update the mDNS announcement: %s", exc)

    def _announcement(self) -> Any:
        from ecommunity.gateway.mdns import Announcement

        return Announcement(
            gateway_id=self.gateway_id,
            name=self.settings.name,
            port=self.http_port,
            version=__version__,
            setup_state=self.setup_state,
        )

    def _start_mqtt(self) -> None:
        url = self.settings.mqtt_url
        if url is None:
            return
        from ecommunity.gateway.mqtt import MqttPublisher, MqttSettings

        try:
            mqtt_settings = MqttSettings.from_url(
                url.get_secret_value(),
                base_topic=self.settings.mqtt_base_topic,
                discovery_prefix=self.settings.mqtt_discovery_prefix,
                interval_s=self.settings.mqtt_interval_s,
            )
        except ValueError as exc:
            logger.error("MQTT is off: %s", exc)
            return
        self.mqtt = MqttPublisher(
            mqtt_settings,
            gateway_id=self.gateway_id,
            gateway_name=self.settings.name,
            version=__version__,
        )
        self._mqtt_task = asyncio.create_task(self.mqtt.run())

    # -- the cloud side ---------------------------------------------------------------------

    def _restart_cloud(self) -> None:
        cloud_url = self.settings.cloud_url
        if cloud_url is None:
            logger.info("no cloud URL: running local-only")
            return
        assert self._uplink_store is not None
        self._cloud = asyncio.create_task(self._supervise_cloud(cloud_url, self._uplink_store))

    async def _stop_cloud(self, *, forget: bool = True) -> None:
        """Stop pairing or uploading; ``forget``: drop their state (a new cloud URL), rather
        than keep it for the last status (shutdown)."""
        cloud, self._cloud = self._cloud, None
        if cloud is not None:
            cloud.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cloud
        if forget:
            self.uplink = None
            self.pairing = None

    async def _supervise_cloud(self, cloud_url: str, store: ReadingStore) -> None:
        while True:
            try:
                await self._cloud_session(cloud_url, store)
                return
            except Exception:
                # The supervision loop: an unexpected error must not end local reading.
                logger.exception(
                    "the cloud uplink failed; restarting it in %.0f s", _CLOUD_RESTART_S
                )
                await asyncio.sleep(_CLOUD_RESTART_S)

    async def _cloud_session(self, cloud_url: str, store: ReadingStore) -> None:
        settings = self.settings
        secrets = SecretsFile(settings.secrets_path)
        timeout = httpx.Timeout(30.0, connect=10.0)
        async with httpx.AsyncClient(timeout=timeout) as http:
            credentials = await asyncio.to_thread(secrets.credentials, cloud_url)
            if credentials is None:
                pairing = Pairing(
                    http,
                    cloud_url,
                    self.gateway_id,
                    on_change=self._pairing_changed,
                    retry_initial_s=settings.uplink_retry_initial_s,
                    retry_max_s=settings.uplink_retry_max_s,
                )
                self.pairing = pairing.status
                try:
                    credentials = await pairing.run()
                except PairingError as exc:
                    self._say(f"Pairing stopped: {exc}")
                    return
                await asyncio.to_thread(secrets.save_credentials, credentials)
                self._say(f"Paired with {cloud_url} as device {credentials.device_id}.")
            uplink = Uplink(
                store,
                credentials,
                http,
                on_change=self._uplink_changed,
                retry_initial_s=settings.uplink_retry_initial_s,
                retry_max_s=settings.uplink_retry_max_s,
            )
            self.uplink = uplink
            await self._announce()
            status = await uplink.run()
            if status.state is UplinkState.REVOKED:
                # The token is worthless now; without it the next start pairs again.
                try:
                    await asyncio.to_thread(secrets.forget_credentials)
                except SettingsError as exc:
                    logger.error("cannot remove the revoked device token: %s", exc)
                self._say(
                    "The cloud revoked this gateway: uploading stopped, readings are still "
                    "stored locally. Restart the gateway to pair it again."
                )
                await self._announce()

    def _pairing_changed(self, status: PairingStatus) -> None:
        if status.state is PairingState.WAITING and status.user_code != self._shown_code:
            self._shown_code = status.user_code
            self._say(
                f"To pair this gateway, sign in at {status.verification_uri} and enter the "
                f"code {status.user_code}"
            )
        self._write_status()

    def _uplink_changed(self, status: UplinkStatus) -> None:
        self._write_status()

    def _say(self, text: str) -> None:
        """A message for the person running the gateway (stdout), besides the log."""
        logger.info("%s", text)
        if self.out is not None:
            with contextlib.suppress(OSError, ValueError):
                self.out.write(text + "\n")
                self.out.flush()

    # -- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The service's state, as ``GET /api/v1/status`` shows it and ``status.json`` holds
        it (written on changes of the setup, pairing and uplink state)."""
        settings = self.settings
        now = datetime.now(UTC)
        last = self.last_reading_at
        reader: dict[str, Any] = {
            "running": self._reader is not None and self._reader.is_alive(),
            "readings_stored": self.readings_stored,
            "last_reading_at": None if last is None else last.isoformat(),
            "last_reading_age_s": None if last is None else round((now - last).total_seconds(), 1),
        } | _counters(self.reader_stats)
        return {
            "version": __version__,
            "gateway_id": self.gateway_id,
            "name": settings.name,
            "state": "stopped" if self.stopped else "running",
            "setup": self.setup_state,
            "started_at": self.started_at.isoformat(),
            "updated_at": now.isoformat(),
            "cloud_url": settings.cloud_url,
            "http_port": self.http_port,
            "meter": {"profile": self.profile.name, "serial_port": settings.serial_port},
            "reader": reader,
            "pairing": None if self.pairing is None else self.pairing.to_json(),
            "uplink": None if self.uplink is None else self.uplink.status.to_json(),
            "mqtt": None if self.mqtt is None else dict(self.mqtt.status),
            "live_subscribers": self.live.subscribers,
        }

    def _write_status(self) -> None:
        try:
            write_json_atomically(self.settings.status_path, self.status())
        except OSError as exc:
            logger.debug("cannot write the status file: %s", exc)


def _counters(stats: ReaderStats) -> dict[str, Any]:
    """The reader's counters, read while the reader thread may be counting: no
    ``dataclasses.asdict``, whose walk over ``frame_errors`` could see it change size;
    ``dict(...)`` of a dict copies it in one step under the GIL."""
    counters = {field.name: getattr(stats, field.name) for field in dataclasses.fields(stats)}
    counters["frame_errors"] = dict(stats.frame_errors)
    return counters


def _now_text() -> str:
    return datetime.now(UTC).isoformat()


def _display_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "") else host


def _serial_ports(configured: str | None) -> list[dict[str, str]]:
    """Serial devices to choose from: USB adapters, the Pi's UARTs, the configured one."""
    from serial.tools import list_ports

    found = [
        {"device": port.device, "description": port.description or ""}
        for port in list_ports.comports()
    ]
    if configured is not None and all(port["device"] != configured for port in found):
        found.insert(0, {"device": configured, "description": "configured"})
    return found


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON, so that readers never see half a file."""
    fd, temporary = tempfile.mkstemp(prefix=".status-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_status(path: Path) -> dict[str, Any] | None:
    """``status.json`` as the service wrote it, or None if there is none (yet)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None
