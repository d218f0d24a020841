"""The gateway service behind ``ecommunity gateway run``: read the meter, store, upload.

Two parts run side by side: the serial reader in a thread of its own (blocking pyserial reads,
an SQLite commit per reading), and the cloud side in the asyncio event loop of the main thread
(pairing, then the uplink). They meet in the SQLite store, which each opens with its own
connection, and in :meth:`Uplink.notify`, which the reader calls for each reading it stored.

Without a cloud URL the gateway runs local-only. SIGTERM and SIGINT stop it cleanly: the reader
finishes the reading it is storing, the uplink closes its socket, the databases are closed.

The service writes its state to ``status.json`` in the data directory (meter, reader counters,
pairing code while pairing, uplink state and backlog) whenever the state changes, for people and
scripts; it holds no secrets.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from ecommunity import __version__
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
    redacted,
)
from ecommunity.gateway.store import ReadingStore, StoreError
from ecommunity.gateway.uplink import Uplink, UplinkState, UplinkStatus
from ecommunity.meter import Profile, Reading

logger = logging.getLogger(__name__)

#: How long to wait before restarting the cloud side after an unexpected error. [s]
_CLOUD_RESTART_S = 30.0


class ServiceError(Exception):
    """The service cannot start: the data directory or the database cannot be used."""


class GatewayService:
    """One run of the gateway. :meth:`run` blocks until SIGTERM/SIGINT or :meth:`stop`."""

    def __init__(
        self,
        settings: GatewaySettings,
        profile: Profile,
        *,
        out: TextIO | None = None,
        open_port: PortOpener = open_serial_port,
    ) -> None:
        if settings.serial_port is None:
            raise ValueError("the gateway needs a serial port")
        self.settings = settings
        self.profile = profile
        self.out = out
        self.open_port = open_port
        #: The reader's counters, once it has stopped.
        self.reader_stats: ReaderStats | None = None
        self.readings_stored = 0
        self.last_reading_at: datetime | None = None
        self.pairing: PairingStatus | None = None
        self.uplink: Uplink | None = None
        self.started_at = datetime.now(UTC)
        self.stopped = False
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader_stop = threading.Event()
        self._shown_code: str | None = None

    def run(self) -> int:
        """Run until stopped. Returns the exit code: 0 after a clean stop, 1 on failure.

        Raises:
            ServiceError: the data directory or the database cannot be used.
        """
        return asyncio.run(self._main())

    def stop(self) -> None:
        """Ask the service to stop (any thread)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    async def _main(self) -> int:
        settings = self.settings
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            reader_store = ReadingStore(settings.database_path)
        except (OSError, sqlite3.Error, StoreError) as exc:
            raise ServiceError(f"cannot open {settings.database_path}: {exc}") from exc
        uplink_store: ReadingStore | None = None
        try:
            uplink_store = ReadingStore(settings.database_path)
            return await self._serve(reader_store, uplink_store)
        except (sqlite3.Error, StoreError) as exc:
            raise ServiceError(f"cannot open {settings.database_path}: {exc}") from exc
        finally:
            reader_store.close()
            if uplink_store is not None:
                uplink_store.close()
            self.stopped = True
            self._write_status()
            self._loop = None

    async def _serve(self, reader_store: ReadingStore, uplink_store: ReadingStore) -> int:
        settings = self.settings
        loop = asyncio.get_running_loop()
        stop = self._stop
        assert stop is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        logger.info(
            "gateway %s starting: %s",
            __version__,
            ", ".join(f"{name}={value}" for name, value in redacted(settings)),
        )
        reader_failed = threading.Event()
        reader = threading.Thread(
            target=self._read,
            args=(reader_store, reader_failed, loop, stop),
            name="serial-reader",
            daemon=True,
        )
        reader.start()
        cloud: asyncio.Task[None] | None = None
        if settings.cloud_url is None:
            logger.info("no cloud URL: running local-only")
        else:
            cloud = asyncio.create_task(self._supervise_cloud(settings.cloud_url, uplink_store))
        self._write_status()
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            logger.info("stopping the gateway")
            self._reader_stop.set()
            if cloud is not None:
                cloud.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await cloud
            await asyncio.to_thread(reader.join, 10)
        if reader.is_alive():
            logger.error("the serial reader did not stop within 10 s")
            return 1
        return 1 if reader_failed.is_set() else 0

    def _read(
        self,
        store: ReadingStore,
        failed: threading.Event,
        loop: asyncio.AbstractEventLoop,
        stop: asyncio.Event,
    ) -> None:
        """The reader thread. Ends the service when the reader ends by itself (an error)."""
        settings = self.settings
        assert settings.serial_port is not None
        reader_settings = ReaderSettings(
            port=settings.serial_port,
            profile=self.profile,
            key=settings.key_bytes,
            auth_key=settings.auth_key_bytes,
        )
        try:
            self.reader_stats = run_reader(
                reader_settings,
                store,
                self._on_reading,
                self._reader_stop,
                open_port=self.open_port,
            )
        except Exception:
            # The supervision boundary: whatever ended the reader, the service must not go on
            # pretending to read the meter.
            logger.exception("the serial reader failed")
            failed.set()
        finally:
            if not self._reader_stop.is_set():
                failed.set()
            with contextlib.suppress(RuntimeError):  # the loop is already gone
                loop.call_soon_threadsafe(stop.set)

    def _on_reading(self, reading: Reading) -> None:
        # Runs in the reader thread; plain attribute writes are safe to read from the loop.
        self.readings_stored += 1
        self.last_reading_at = datetime.now(UTC)
        uplink = self.uplink
        if uplink is not None:
            uplink.notify(reading)

    # -- the cloud side ---------------------------------------------------------------------

    async def _supervise_cloud(self, cloud_url: str, store: ReadingStore) -> None:
        while True:
            try:
                await self._cloud(cloud_url, store)
                return
            except Exception:
                # The supervision loop: an unexpected error must not end local reading.
                logger.exception(
                    "the cloud uplink failed; restarting it in %.0f s", _CLOUD_RESTART_S
                )
                await asyncio.sleep(_CLOUD_RESTART_S)

    async def _cloud(self, cloud_url: str, store: ReadingStore) -> None:
        settings = self.settings
        secrets = SecretsFile(settings.secrets_path)
        timeout = httpx.Timeout(30.0, connect=10.0)
        async with httpx.AsyncClient(timeout=timeout) as http:
            credentials = await asyncio.to_thread(secrets.credentials, cloud_url)
            if credentials is None:
                gateway_id = await asyncio.to_thread(hardware_id, settings)
                pairing = Pairing(
                    http,
                    cloud_url,
                    gateway_id,
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
        """The service's state, as ``status.json`` holds it (written on changes of the pairing
        and uplink state, so its reader counters are those of the last change)."""
        settings = self.settings
        reader: dict[str, Any] = {
            "readings_stored": self.readings_stored,
            "last_reading_at": None
            if self.last_reading_at is None
            else self.last_reading_at.isoformat(),
        }
        if self.reader_stats is not None:
            reader |= dataclasses.asdict(self.reader_stats)
        uplink: dict[str, Any] | None = None
        if self.uplink is not None:
            uplink = self.uplink.status.to_json()
        return {
            "version": __version__,
            "state": "stopped" if self.stopped else "running",
            "started_at": self.started_at.isoformat(),
            "updated_at": datetime.now(UTC).isoformat(),
            "cloud_url": settings.cloud_url,
            "meter": {"profile": self.profile.name, "serial_port": settings.serial_port},
            "reader": reader,
            "pairing": None if self.pairing is None else self.pairing.to_json(),
            "uplink": uplink,
        }

    def _write_status(self) -> None:
        try:
            write_json_atomically(self.settings.status_path, self.status())
        except OSError as exc:
            logger.debug("cannot write the status file: %s", exc)


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
