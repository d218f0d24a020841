"""End to end, with real processes: ``ecommunity cloud serve`` and ``ecommunity gateway run``
reading a fake AMIS meter on a pty.

The meter's clock runs 200 times faster than the wall clock (a push every 50 ms carrying 10 s
more meter time), so that a minute passes in 0.3 s. The scenario: a user signs up; the gateway
shows a pairing code, the user confirms it, the gateway collects its token; a browser-like
client watches live and sees raw readings arrive; the cloud goes down while the gateway goes on
storing, comes back, and gets every missing minute exactly once; the history has energy per
quarter hour from the counters; the user revokes the gateway, whose uplink stops with a clear
status while it goes on storing readings locally.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from websockets.sync.client import connect

from ecommunity.gateway.service import read_status
from tests.gateway.fake_meter import KEY, FakeAmisMeter, Pty, open_pty

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
#: Meter time per push and wall time between pushes: meter time runs 200 times faster.
STEP = timedelta(seconds=10)
PUSH_INTERVAL_S = 0.05
MINUTE = timedelta(minutes=1)
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
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} ignored {sig.name}:\n{self.logs()}") from None


@dataclass
class Cloud(Process):
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_and_wait(self) -> None:
        self.start()

        def ready() -> bool:
            assert self.alive(), f"the cloud exited:\n{self.logs()}"
            try:
                return httpx.get(self.url + "/openapi.json", timeout=1).is_success
            except httpx.TransportError:
                return False

        wait_until(ready, 20, "the cloud to answer")


def local_readings(db: Path) -> list[tuple[datetime, int]]:
    """(meter time, +A) of every reading the gateway stored, read beside the running gateway."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                "SELECT meter_timestamp_ms, energy_import_wh FROM readings "
                "WHERE meter_timestamp_ms IS NOT NULL ORDER BY meter_timestamp_ms"
            ).fetchall()
    except sqlite3.OperationalError:  # not created yet, or still being migrated
        return []
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return [(epoch + timedelta(milliseconds=ms), wh) for ms, wh in rows]


def last_of_each_minute(
    readings: list[tuple[datetime, int]], before: datetime
) -> list[tuple[datetime, int]]:
    by_minute: dict[datetime, tuple[datetime, int]] = {}
    for at, wh in readings:  # sorted by time: the last one of a minute wins
        if at < before:
            by_minute[at.replace(second=0, microsecond=0)] = (at, wh)
    return [by_minute[minute] for minute in sorted(by_minute)]


@pytest.fixture
def pty_pair() -> Iterator[Pty]:
    pair = open_pty()
    yield pair
    pair.close()


def test_pair_stream_outage_backfill_history_revoke(pty_pair: Pty, tmp_path: Path) -> None:
    cloud_port = free_port()
    cloud = Cloud(
        "cloud",
        [sys.executable, "-m", "ecommunity", "cloud", "serve", "--port", str(cloud_port),
         "--data-dir", str(tmp_path / "cloud")],
        clean_env(
            ECOMMUNITY_CLOUD_DEVICE_POLL_INTERVAL_S="1",
            ECOMMUNITY_CLOUD_PUBLIC_URL=f"http://127.0.0.1:{cloud_port}",
        ),
        tmp_path,
        port=cloud_port,
    )  # fmt: skip
    gateway_dir = tmp_path / "gateway"
    gateway = Process(
        "gateway",
        [sys.executable, "-m", "ecommunity", "-v", "gateway", "run",
         "--serial-port", pty_pair.path, "--profile", "amis", "--line", "9600-8N1",
         "--key", KEY.hex(), "--data-dir", str(gateway_dir), "--cloud-url", cloud.url],
        clean_env(
            ECOMMUNITY_GATEWAY_UPLINK_RETRY_INITIAL_S="0.2",
            ECOMMUNITY_GATEWAY_UPLINK_RETRY_MAX_S="1",
        ),
        tmp_path,
    )  # fmt: skip
    db = gateway_dir / "readings.sqlite3"
    # A minute before a quarter hour: the first quarter hour has a counter reading before it.
    four_hours_ago = datetime.now(UTC) - timedelta(hours=4)
    start = four_hours_ago.replace(minute=four_hours_ago.minute // 15 * 15, second=0, microsecond=0)
    start -= MINUTE
    meter = FakeAmisMeter(pty_pair.master, push_interval_s=PUSH_INTERVAL_S, step=STEP, start=start)

    def status() -> dict[str, Any]:
        return read_status(gateway_dir / "status.json") or {}

    def uplink(key: str) -> Any:
        assert gateway.alive(), f"the gateway exited:\n{gateway.logs()}"
        return (status().get("uplink") or {}).get(key)

    api = httpx.Client(base_url=cloud.url, timeout=10)
    try:
        cloud.start_and_wait()
        created = api.post(
            "/api/v1/auth/register",
            json={"email": "anna@example.org", "password": PASSWORD, "display_name": "Anna"},
        )
        assert created.status_code == 201, created.text
        login = api.post(
            "/api/v1/auth/login", json={"email": "anna@example.org", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        api.cookies.clear()

        meter.start()
        gateway.start()

        # -- pairing: the gateway shows a code, the user confirms it -------------------------
        def user_code() -> str | None:
            assert gateway.alive(), f"the gateway exited:\n{gateway.logs()}"
            pairing = status().get("pairing") or {}
            code: str | None = pairing.get("user_code")
            return code

        code = wait_until(user_code, 20, "the pairing code")
        assert f"enter the code {code}" in gateway.stdout.read_text()
        activated = api.post("/api/v1/devices/activate", json={"user_code": code, "name": "Home"})
        assert activated.status_code == 201, activated.text
        device_id = activated.json()["id"]
        wait_until(lambda: uplink("state") == "online", 15, "the uplink to connect")
        assert status()["pairing"]["state"] == "paired"
        secrets = json.loads((gateway_dir / "secrets.json").read_text())
        assert secrets["device_id"] == device_id
        assert secrets["key"] == KEY.hex()
        assert oct((gateway_dir / "secrets.json").stat().st_mode & 0o777) == "0o600"
        assert secrets["device_token"] not in gateway.stderr.read_text()  # never logged

        meters = wait_until(lambda: api.get("/api/v1/meters").json() or None, 10, "the meter")
        (cloud_meter,) = meters
        meter_id = cloud_meter["id"]
        assert cloud_meter["profile"] == "amis"

        # -- live: raw readings arrive while someone watches ---------------------------------
        live_url = f"ws://127.0.0.1:{cloud.port}/api/v1/live?meter={meter_id}"
        bearer = {"Authorization": api.headers["Authorization"]}
        with connect(live_url, additional_headers=bearer, open_timeout=5) as live:
            assert json.loads(live.recv(timeout=5)) == {"type": "watching", "meter_id": meter_id}
            raw: list[dict[str, Any]] = []
            deadline = time.monotonic() + 10
            while len(raw) < 10:
                assert time.monotonic() < deadline, f"only {len(raw)} raw readings arrived"
                message = json.loads(live.recv(timeout=5))
                if message["raw"]:
                    raw.append(message)
        times = [datetime.fromisoformat(m["measured_at"]) for m in raw]
        assert times == sorted(times)
        assert len(set(times)) == len(times)
        sent = {frame.reading.meter_timestamp for frame in meter.sent}
        assert set(times) <= sent
        wait_until(lambda: uplink("raw_streaming") is False, 10, "raw streaming to stop")
        raw_sent = uplink("raw_sent")
        assert raw_sent >= 10

        # -- outage: the cloud goes away, the gateway keeps storing --------------------------
        cloud.stop()  # uvicorn re-raises SIGTERM after its clean shutdown: no exit code 0
        wait_until(lambda: uplink("state") == "offline", 10, "the uplink to notice")
        through_before = uplink("uploaded_through")
        outage_from = local_readings(db)[-1][0]
        wait_until(
            lambda: local_readings(db)[-1][0] >= outage_from + 20 * MINUTE, 15, "20 meter minutes"
        )
        assert uplink("uploaded_through") == through_before
        assert uplink("raw_sent") == raw_sent

        cloud.start_and_wait()
        back_at = local_readings(db)[-1][0]
        target = (back_at - MINUTE).replace(second=0, microsecond=0)
        wait_until(
            lambda: (
                (t := uplink("uploaded_through")) is not None
                and datetime.fromisoformat(t) >= target
            ),
            20,
            "the backfill",
        )
        through = datetime.fromisoformat(uplink("uploaded_through"))

        # -- every minute exactly once: the last reading of each, as stored locally ----------
        history = api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={
                "from": start.isoformat(),
                "to": (through + MINUTE).isoformat(),
                "resolution": "1min",
            },
        )
        assert history.status_code == 200, history.text
        got = [
            (datetime.fromisoformat(r["measured_at"]), r["energy_import_wh"])
            for r in history.json()
        ]
        expected = last_of_each_minute(local_readings(db), through + MINUTE)
        assert got == expected
        assert expected[0][0] < start + MINUTE  # from the very first minute on
        assert all(r["flags"] == [] for r in history.json())
        outage = [at for at, _ in got if outage_from <= at <= back_at]
        assert len(outage) >= 19

        # -- history: energy per quarter hour from the counters ------------------------------
        quarters = api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={"from": start.isoformat(), "to": through.isoformat(), "resolution": "15min"},
        )
        assert quarters.status_code == 200, quarters.text
        # Only quarter hours whose minutes have all been uploaded by now.
        complete = [
            q
            for q in quarters.json()
            if q["complete"] and datetime.fromisoformat(q["end"]) <= through
        ]
        assert complete
        # 3 Wh imported and 1 Wh exported per push, 90 pushes per quarter hour.
        assert {(q["energy_import_wh"], q["energy_export_wh"]) for q in complete} == {(270, 90)}

        # -- revocation: the uplink stops, local storing goes on -----------------------------
        revoked = api.delete(f"/api/v1/devices/{device_id}")
        assert revoked.status_code == 204, revoked.text
        wait_until(lambda: uplink("state") == "revoked", 10, "the uplink to stop")
        assert "revoked" in uplink("detail")
        # Said once the worthless token is gone from the secrets file.
        wait_until(lambda: "revoked this gateway" in gateway.stdout.read_text(), 5, "the notice")
        assert "device_token" not in json.loads((gateway_dir / "secrets.json").read_text())
        stored = len(local_readings(db))
        wait_until(lambda: len(local_readings(db)) >= stored + 20, 10, "more local readings")
        assert uplink("state") == "revoked"
        minutes_now = len(api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={"from": start.isoformat(), "to": (datetime.now(UTC)).isoformat(),
                    "resolution": "1min"},
        ).json())  # fmt: skip
        time.sleep(0.5)  # two more meter minutes
        assert len(api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={"from": start.isoformat(), "to": (datetime.now(UTC)).isoformat(),
                    "resolution": "1min"},
        ).json()) == minutes_now  # fmt: skip

        # -- a clean stop ---------------------------------------------------------------------
        assert gateway.stop() == 0, gateway.logs()
        assert status()["state"] == "stopped"
    finally:
        api.close()
        meter.stop()
        for process in (gateway, cloud):
            if process.alive():
                process.stop(signal.SIGKILL)


@pytest.mark.parametrize("cloud_url", [None, "unreachable"])
def test_without_a_cloud_the_gateway_reads_and_stores(
    pty_pair: Pty, tmp_path: Path, cloud_url: str | None
) -> None:
    """Local-only (no cloud URL), or a cloud that never answers: the meter is read all the
    same, and SIGTERM stops the gateway cleanly."""
    gateway_dir = tmp_path / "gateway"
    args = [
        sys.executable, "-m", "ecommunity", "gateway", "run", "--serial-port", pty_pair.path,
        "--line", "9600-8N1", "--key", KEY.hex(), "--data-dir", str(gateway_dir),
    ]  # fmt: skip
    if cloud_url is not None:
        args += ["--cloud-url", f"http://127.0.0.1:{free_port()}"]  # nobody listens there
    gateway = Process("gateway", args, clean_env(), tmp_path)
    meter = FakeAmisMeter(pty_pair.master, push_interval_s=PUSH_INTERVAL_S, step=STEP).start()
    db = gateway_dir / "readings.sqlite3"
    try:
        gateway.start()
        wait_until(lambda: len(local_readings(db)) >= 20, 10, "20 readings")
        assert gateway.alive(), gateway.logs()
        assert gateway.stop() == 0, gateway.logs()
    finally:
        meter.stop()
        if gateway.alive():
            gateway.stop(signal.SIGKILL)
    status = read_status(gateway_dir / "status.json")
    assert status is not None
    assert status["state"] == "stopped"
    assert status["uplink"] is None  # never paired
    if cloud_url is None:
        assert status["pairing"] is None
    else:
        assert status["pairing"]["state"] == "requesting_code"
        assert "retrying" in status["pairing"]["detail"]
    stored = {at for at, _ in local_readings(db)}
    assert {frame.reading.meter_timestamp for frame in meter.acked} <= stored
