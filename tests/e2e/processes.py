"""Real processes for the end-to-end tests, and what the tests read of them.

``ecommunity cloud serve`` (embedded SQLite in its data directory) and ``ecommunity gateway run``
(against a fake meter on a pty, see ``tests/gateway/fake_meter.py``) run as child processes with
their output in files; the tests read the gateway's SQLite file and ``status.json`` beside it, and
the cloud through its HTTP API.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ecommunity.gateway.service import read_status
from tests.gateway.fake_meter import KEY

PASSWORD = "correct horse battery staple"
MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll ``probe`` until it returns something other than None/False; return that."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without our settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMMUNITY_")}
    return env | extra


@dataclass
class Process:
    """A child process with its output in files (no pipe to fill up)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def stdout(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.out"

    @property
    def stderr(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.err"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.starts += 1
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=err)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        return f"--- {self.name} stdout\n{self.stdout.read_text()}\n--- stderr\n" + "\n".join(
            self.stderr.read_text().splitlines()[-40:]
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` unless it has ended; return its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} ignored {sig.name}:\n{self.logs()}") from None

    def kill(self) -> None:
        """SIGKILL, if it still runs (cleanup)."""
        if self.alive():
            self.stop(signal.SIGKILL)


@dataclass
class Cloud(Process):
    port: int = field(default_factory=free_port)

    @classmethod
    def embedded(cls, tmp_path: Path, name: str = "cloud", **env: str) -> Cloud:
        """``ecommunity cloud serve`` with SQLite in ``tmp_path / name``, polled fast."""
        port = free_port()
        return cls(
            name,
            [sys.executable, "-m", "ecommunity", "cloud", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / name)],
            clean_env(
                ECOMMUNITY_CLOUD_DEVICE_POLL_INTERVAL_S="1",
                ECOMMUNITY_CLOUD_PUBLIC_URL=f"http://127.0.0.1:{port}",
                **env,
            ),
            tmp_path,
            port=port,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        """The embedded database (``cloud serve`` without a database URL)."""
        data_dir = Path(self.args[self.args.index("--data-dir") + 1])
        return data_dir / "cloud.sqlite3"

    def start_and_wait(self) -> None:
        self.start()

        def ready() -> bool:
            assert self.alive(), f"the cloud exited:\n{self.logs()}"
            try:
                return httpx.get(self.url + "/openapi.json", timeout=1).is_success
            except httpx.TransportError:
                return False

        wait_until(ready, 20, "the cloud to answer")

    def user(self, email: str = "anna@example.org") -> httpx.Client:
        """A new account, signed in: a client that sends its bearer token (close it)."""
        api = httpx.Client(base_url=self.url, timeout=10)
        created = api.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Anna"},
        )
        assert created.status_code == 201, created.text
        login = api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        api.cookies.clear()
        return api


@dataclass
class Gateway(Process):
    """``ecommunity gateway run`` reading an AMIS meter on a pty at 9600 8N1 (ptys have no
    parity), its local API on a loopback port of its own, no mDNS."""

    data_dir: Path = Path()
    http_port: int = 0

    @classmethod
    def create(
        cls,
        tmp_path: Path,
        serial_port: str,
        *,
        data_dir: Path | None = None,
        cloud_url: str | None = None,
        key: bytes = KEY,
        verbosity: int = 1,
        name: str = "gateway",
        **env: str,
    ) -> Gateway:
        data_dir = tmp_path / name if data_dir is None else data_dir
        args = [
            sys.executable, "-m", "ecommunity", *["-v"] * verbosity, "gateway", "run",
            "--serial-port", serial_port, "--profile", "amis", "--line", "9600-8N1",
            "--key", key.hex(), "--data-dir", str(data_dir),
        ]  # fmt: skip
        if cloud_url is not None:
            args += ["--cloud-url", cloud_url]
        http_port = free_port()
        environment = clean_env(
            ECOMMUNITY_GATEWAY_HTTP_HOST="127.0.0.1",
            ECOMMUNITY_GATEWAY_HTTP_PORT=str(http_port),
            ECOMMUNITY_GATEWAY_MDNS="false",
            ECOMMUNITY_GATEWAY_UPLINK_RETRY_INITIAL_S="0.2",
            ECOMMUNITY_GATEWAY_UPLINK_RETRY_MAX_S="1",
            **env,
        )
        return cls(name, args, environment, tmp_path, data_dir=data_dir, http_port=http_port)

    @property
    def db(self) -> Path:
        return self.data_dir / "readings.sqlite3"

    def status(self) -> dict[str, Any]:
        """``status.json`` as last written ({} before the first write)."""
        return read_status(self.data_dir / "status.json") or {}

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def live_status(self) -> dict[str, Any]:
        """``GET /api/v1/status``: the state now (``status.json`` is written on changes)."""
        assert self.alive(), f"the gateway exited:\n{self.logs()}"
        answer = httpx.get(self.http_url + "/api/v1/status", timeout=5)
        assert answer.status_code == 200, answer.text
        status: dict[str, Any] = answer.json()
        return status

    def uplink(self, key: str) -> Any:
        """A field of the uplink's status; fails at once if the gateway has exited."""
        assert self.alive(), f"the gateway exited:\n{self.logs()}"
        return (self.status().get("uplink") or {}).get(key)

    def pair(self, api: httpx.Client, device_name: str = "Home") -> int:
        """Confirm the gateway's pairing code as ``api``'s user; wait until its uplink is online.

        Returns the device id.
        """

        def user_code() -> str | None:
            assert self.alive(), f"the gateway exited:\n{self.logs()}"
            code: str | None = (self.status().get("pairing") or {}).get("user_code")
            return code

        code = wait_until(user_code, 20, "the pairing code")
        activated = api.post(
            "/api/v1/devices/activate", json={"user_code": code, "name": device_name}
        )
        assert activated.status_code == 201, activated.text
        wait_until(lambda: self.uplink("state") == "online", 15, "the uplink to connect")
        device_id: int = activated.json()["id"]
        return device_id

    def wait_uploaded_through(self, minute: datetime, timeout_s: float) -> datetime:
        """Wait until the cloud has confirmed every minute up to ``minute``; return how far."""

        def through() -> datetime | None:
            value = self.uplink("uploaded_through")
            if value is None or datetime.fromisoformat(value) < minute:
                return None
            return datetime.fromisoformat(value)

        return wait_until(through, timeout_s, f"the uplink to confirm the minute {minute}")


# -- the gateway's database, read beside it ----------------------------------------------------


def connect_read_only(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def local_readings(db: Path) -> list[tuple[datetime, int]]:
    """(meter time, +A) of every reading the gateway stored, read beside the running gateway."""
    try:
        with contextlib.closing(connect_read_only(db)) as conn:
            rows = conn.execute(
                "SELECT meter_timestamp_ms, energy_import_wh FROM readings "
                "WHERE meter_timestamp_ms IS NOT NULL ORDER BY meter_timestamp_ms"
            ).fetchall()
    except sqlite3.OperationalError:  # not created yet, or still being migrated
        return []
    return [(_EPOCH + timedelta(milliseconds=ms), wh) for ms, wh in rows]


def latest_reading_at(db: Path) -> datetime | None:
    """The newest meter time stored (a cheap probe: the test's meter shares its GIL)."""
    try:
        with contextlib.closing(connect_read_only(db)) as conn:
            (ms,) = conn.execute("SELECT max(meter_timestamp_ms) FROM readings").fetchone()
    except sqlite3.OperationalError:  # not created yet, or still being migrated
        return None
    return None if ms is None else _EPOCH + timedelta(milliseconds=ms)


def count_readings(db: Path) -> int:
    """How many readings are stored (0 before the database exists)."""
    try:
        with contextlib.closing(connect_read_only(db)) as conn:
            (count,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(count)


def integrity_check(db: Path) -> list[str]:
    """``PRAGMA integrity_check``'s findings: ``["ok"]`` for a sound file."""
    with contextlib.closing(connect_read_only(db)) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]


def last_of_each_minute(
    readings: list[tuple[datetime, int]], before: datetime
) -> list[tuple[datetime, int]]:
    """The reading with the latest meter time of each UTC minute before ``before``."""
    by_minute: dict[datetime, tuple[datetime, int]] = {}
    for at, wh in readings:  # sorted by time: the last one of a minute wins
        if at < before:
            by_minute[at.replace(second=0, microsecond=0)] = (at, wh)
    return [by_minute[minute] for minute in sorted(by_minute)]


def cloud_minutes(
    api: httpx.Client, meter_id: int, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """(measured at, +A) of the minute readings the cloud holds in ``[start, end)``."""
    got = api.get(
        f"/api/v1/meters/{meter_id}/readings",
        params={"from": start.isoformat(), "to": end.isoformat(), "resolution": "1min"},
    )
    assert got.status_code == 200, got.text
    assert all(r["flags"] == [] for r in got.json())
    return [(datetime.fromisoformat(r["measured_at"]), r["energy_import_wh"]) for r in got.json()]
