"""The gateway's cloud side against the real cloud app, served by uvicorn on loopback.

Settings and the secrets file; the store's uplink queries; pairing through the real device
grant; the uplink's backfill, live minutes and raw streaming, outage and restart, refused
readings and revocation. The cloud runs in a thread of this process (real HTTP and WebSocket
on 127.0.0.1, embedded SQLite); the end-to-end test in ``tests/e2e`` runs both as processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from websockets.asyncio.client import connect

from ecommunity.cloud.app import create_app
from ecommunity.cloud.db.engine import migrate
from ecommunity.cloud.settings import CloudSettings
from ecommunity.gateway.pairing import Pairing, PairingError, PairingState
from ecommunity.gateway.settings import (
    DeviceCredentials,
    SecretsFile,
    SettingsError,
    load_settings,
    parse_line,
)
from ecommunity.gateway.store import ReadingStore, to_epoch_ms
from ecommunity.gateway.uplink import (
    MAX_BATCH,
    Uplink,
    UplinkState,
    minute_start_ms,
    websocket_url,
)
from ecommunity.meter import LineSettings, Reading

KEY_HEX = "00112233445566778899aabbccddeeff"
PASSWORD = "correct horse battery staple"
MINUTE = timedelta(minutes=1)


# -- the cloud, served in a thread ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class CloudServer:
    """The cloud app under uvicorn in a thread; stop and start it again on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.settings = CloudSettings(
            data_dir=data_dir, public_url=self.url, device_poll_interval_s=1
        )
        migrate(self.settings.effective_database_url)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> CloudServer:
        app = create_app(self.settings)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="cloud", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert self._thread.is_alive(), "the cloud did not start"
            assert time.monotonic() < deadline, "the cloud did not start in 10 s"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()
        self._server = None


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CloudServer]:
    server = CloudServer(tmp_path / "cloud").start()
    yield server
    server.stop()


@dataclass
class Account:
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def sign_up(cloud: CloudServer, email: str = "owner@example.org") -> Account:
    with httpx.Client(base_url=cloud.url) as client:
        created = client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Owner"},
        )
        assert created.status_code == 201, created.text
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return Account(login.json()["access_token"])


def pair_quickly(cloud: CloudServer, account: Account) -> DeviceCredentials:
    """The device grant done by hand (no polling interval): a device token for the tests."""
    with httpx.Client(base_url=cloud.url) as client:
        code = client.post("/api/v1/devices/code", json={"hardware_id": "gw-test"}).json()
        activated = client.post(
            "/api/v1/devices/activate",
            json={"user_code": code["user_code"], "name": "Basement"},
            headers=account.headers,
        )
        assert activated.status_code == 201, activated.text
        token = client.post(
            "/api/v1/devices/token",
            json={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": code["device_code"],
            },
        )
        assert token.status_code == 200, token.text
        data = token.json()
        return DeviceCredentials(cloud.url, data["device_id"], SecretStr(data["access_token"]))


def cloud_minutes(cloud: CloudServer, account: Account, start: datetime) -> list[dict[str, Any]]:
    """The cloud's minute readings of the account's (only) meter from ``start`` on."""
    with httpx.Client(base_url=cloud.url, headers=account.headers) as client:
        meters = client.get("/api/v1/meters").json()
        if not meters:
            return []
        (meter,) = meters
        response = client.get(
            f"/api/v1/meters/{meter['id']}/readings",
            params={
                "from": start.isoformat(),
                "to": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                "resolution": "1min",
            },
        )
        assert response.status_code == 200, response.text
        readings: list[dict[str, Any]] = response.json()
        return readings


# -- readings -------------------------------------------------------------------------------


def reading_at(at: datetime, index: int) -> Reading:
    return Reading(
        profile="amis",
        meter_id=None,
        meter_timestamp=at,
        energy_import_wh=1_000_000 + 3 * index,
        energy_export_wh=500 + index,
        power_import_w=300 + index % 7,
        power_export_w=0,
    )


def fill(store: ReadingStore, start: datetime, count: int, step: timedelta) -> list[Reading]:
    readings = [reading_at(start + i * step, i) for i in range(count)]
    store.add_many((reading, datetime.now(UTC)) for reading in readings)
    return readings


def last_per_minute(readings: list[Reading], before: datetime) -> list[tuple[datetime, int]]:
    """(instant, +A) of the latest reading of each minute that starts before ``before``."""
    by_minute: dict[int, Reading] = {}
    for reading in readings:
        assert reading.meter_timestamp is not None
        at_ms = to_epoch_ms(reading.meter_timestamp)
        if at_ms < to_epoch_ms(before):
            minute = minute_start_ms(at_ms)
            best = by_minute.get(minute)
            if (
                best is None
                or best.meter_timestamp is None
                or reading.meter_timestamp > best.meter_timestamp
            ):
                by_minute[minute] = reading
    out = []
    for minute in sorted(by_minute):
        reading = by_minute[minute]
        assert reading.meter_timestamp is not None
        assert reading.energy_import_wh is not None
        out.append((reading.meter_timestamp.astimezone(UTC), reading.energy_import_wh))
    return out


def as_keys(rows: list[dict[str, Any]]) -> list[tuple[datetime, int]]:
    return [
        (datetime.fromisoformat(row["measured_at"]).astimezone(UTC), row["energy_import_wh"])
        for row in rows
    ]


def floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


class Recorder:
    """httpx event hooks: the batch uploads the uplink makes, and what the cloud answered."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []

    async def on_request(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/gateway/readings"):
            body = json.loads(request.content)
            self.batches.append([reading["measured_at"] for reading in body["readings"]])

    async def on_response(self, response: httpx.Response) -> None:
        if response.request.url.path.endswith("/gateway/readings"):
            await response.aread()
            self.answers.append((response.status_code, response.json()))

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=10, event_hooks={"request": [self.on_request], "response": [self.on_response]}
        )


async def eventually(condition: Any, timeout_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running(uplink: Uplink) -> AsyncIterator[asyncio.Task[Any]]:
    task = asyncio.create_task(uplink.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def make_uplink(
    store: ReadingStore, credentials: DeviceCredentials, http: httpx.AsyncClient
) -> Uplink:
    return Uplink(store, credentials, http, retry_initial_s=0.05, retry_max_s=0.3, ack_timeout_s=2)


# -- settings -------------------------------------------------------------------------------


def test_settings_sources_and_their_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        'serial_port = "/dev/ttyAMA0"\nprofile = "amis"\ncloud_url = "https://toml.example.org/"\n'
        f'data_dir = "{tmp_path / "data"}"\nhttp_port = 8081\n'
    )
    SecretsFile(tmp_path / "data" / "secrets.json").update(key=KEY_HEX)
    monkeypatch.setenv("ECOMMUNITY_GATEWAY_CLOUD_URL", "https://env.example.org")
    monkeypatch.setenv("ECOMMUNITY_GATEWAY_HTTP_PORT", "8082")

    settings = load_settings(config_file=config, http_port=8083, line="9600-8N1")

    assert settings.serial_port == "/dev/ttyAMA0"  # TOML
    assert settings.cloud_url == "https://env.example.org"  # the environment beats TOML
    assert settings.http_port == 8083  # a flag beats both
    assert settings.key_bytes == bytes.fromhex(KEY_HEX)  # from the secrets file
    assert settings.line_settings == LineSettings(9600, 8, "N", 1)
    assert KEY_HEX not in repr(settings)
    assert KEY_HEX not in str(settings.model_dump())
    # Without a cloud URL anywhere, the gateway runs local-only.
    monkeypatch.delenv("ECOMMUNITY_GATEWAY_CLOUD_URL")
    assert load_settings(data_dir=tmp_path / "empty").cloud_url is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"key": "0011"}, "key"),
        ({"key": "zz" * 16}, "key"),
        ({"cloud_url": "ftp://x"}, "cloud_url"),
        ({"line": "fast"}, "line"),
        ({"http_port": 70000}, "http_port"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        load_settings(data_dir=tmp_path, **overrides)
    assert "zz" * 16 not in str(raised.value)  # the value itself is not echoed


def test_missing_or_broken_files_are_settings_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(config_file=tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("serial_port = ")
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(config_file=broken)
    (tmp_path / "secrets.json").write_text("[1, 2]")
    with pytest.raises(SettingsError, match="JSON object"):
        load_settings(data_dir=tmp_path)


def test_secrets_file_is_private_and_holds_the_credentials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = SecretsFile(tmp_path / "data" / "secrets.json")
    credentials = DeviceCredentials("https://c.example.org", 7, SecretStr("s3cret-token"))
    secrets.save_credentials(credentials)
    assert stat.S_IMODE(secrets.path.stat().st_mode) == 0o600
    assert secrets.credentials("https://c.example.org") == credentials
    assert secrets.credentials("https://other.example.org") is None  # paired elsewhere
    assert "s3cret-token" not in repr(credentials)

    secrets.path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        secrets.update(key=KEY_HEX)
    assert stat.S_IMODE(secrets.path.stat().st_mode) == 0o600
    assert "readable by others" in caplog.text
    secrets.forget_credentials()
    assert secrets.load() == {"key": KEY_HEX}
    assert [p.name for p in secrets.path.parent.iterdir()] == ["secrets.json"]  # no temp files


def test_line_settings_parse() -> None:
    assert parse_line("2400 8e1") == LineSettings(2400, 8, "E", 1)
    with pytest.raises(ValueError, match="9600-8E1"):
        parse_line("9600")


def test_gateway_package_does_not_import_the_cloud() -> None:
    code = (
        "import sys\n"
        "import ecommunity.gateway.service, ecommunity.commands.gateway\n"
        "assert not [m for m in sys.modules if m.startswith('ecommunity.cloud')]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


# -- the store's uplink queries -------------------------------------------------------------


def test_minute_readings_are_the_last_of_each_minute(tmp_path: Path) -> None:
    start = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    with ReadingStore(tmp_path / "r.sqlite3") as store:
        readings = fill(store, start, 200, timedelta(seconds=7))  # 23 minutes
        store.add(dataclasses.replace(reading_at(start, 999), meter_id="X"), start)
        end = start + timedelta(minutes=20)
        rows = store.minute_readings("", from_ms=to_epoch_ms(start), before_ms=to_epoch_ms(end))
        expected = last_per_minute(readings, end)
        assert [(r.meter_timestamp, r.energy_import_wh) for r in rows] == expected
        assert len(rows) == 20
        assert store.count_minutes("", from_ms=to_epoch_ms(start), before_ms=to_epoch_ms(end)) == 20
        limited = store.minute_readings(
            "", from_ms=to_epoch_ms(start), before_ms=to_epoch_ms(end), limit=3
        )
        assert limited == rows[:3]
        assert store.meter_ids() == ["", "X"]
        latest = store.latest_timed("")
        assert latest is not None
        assert latest.meter_timestamp == start + 199 * timedelta(seconds=7)

        assert store.watermark("t", "") is None
        store.set_watermark("t", "", 120_000, start)
        store.set_watermark("t", "", 60_000, start)  # never backwards
        assert store.watermark("t", "") == 120_000
        assert store.watermark("other", "") is None
        with pytest.raises(ValueError, match="negative"):
            store.minute_readings("", from_ms=-1, before_ms=0)


# -- pairing --------------------------------------------------------------------------------


def test_pairing_gets_a_token_once_the_user_confirms(cloud: CloudServer) -> None:
    account = sign_up(cloud)
    changes: list[PairingState] = []

    async def scenario() -> DeviceCredentials:
        async with httpx.AsyncClient(timeout=5) as http:
            pairing = Pairing(http, cloud.url, "gw-1", on_change=lambda s: changes.append(s.state))
            task = asyncio.create_task(pairing.run())
            await eventually(lambda: pairing.status.user_code is not None, what="a user code")
            assert pairing.status.state is PairingState.WAITING
            assert pairing.status.verification_uri == cloud.url + "/pair"
            async with httpx.AsyncClient(base_url=cloud.url, headers=account.headers) as user:
                activated = await user.post(
                    "/api/v1/devices/activate",
                    json={"user_code": pairing.status.user_code, "name": "Basement"},
                )
                assert activated.status_code == 201, activated.text
            return await asyncio.wait_for(task, 10)

    credentials = asyncio.run(scenario())
    assert credentials.cloud_url == cloud.url
    assert changes[0] is PairingState.REQUESTING
    assert changes[-1] is PairingState.PAIRED
    with httpx.Client(base_url=cloud.url, headers=account.headers) as client:
        (device,) = client.get("/api/v1/devices").json()
    assert device["id"] == credentials.device_id
    assert device["hardware_id"] == "gw-1"


def test_pairing_stops_when_the_user_denies(cloud: CloudServer) -> None:
    account = sign_up(cloud)

    async def scenario() -> PairingError:
        async with httpx.AsyncClient(timeout=5) as http:
            pairing = Pairing(http, cloud.url, "gw-2")
            task = asyncio.create_task(pairing.run())
            await eventually(lambda: pairing.status.user_code is not None, what="a user code")
            async with httpx.AsyncClient(base_url=cloud.url, headers=account.headers) as user:
                denied = await user.post(
                    "/api/v1/devices/deny", json={"user_code": pairing.status.user_code}
                )
                assert denied.status_code == 204, denied.text
            with pytest.raises(PairingError) as raised:
                await asyncio.wait_for(task, 10)
            return raised.value

    error = asyncio.run(scenario())
    assert error.status.state is PairingState.DENIED
    assert "refused" in str(error)


def test_pairing_stops_when_the_code_expires(cloud: CloudServer) -> None:
    now = [datetime.now(UTC)]

    async def scenario() -> PairingError:
        async with httpx.AsyncClient(timeout=5) as http:
            pairing = Pairing(http, cloud.url, "gw-3", clock=lambda: now[0])
            task = asyncio.create_task(pairing.run())
            await eventually(lambda: pairing.status.user_code is not None, what="a user code")
            now[0] += timedelta(hours=1)  # nobody typed the code in
            with pytest.raises(PairingError) as raised:
                await asyncio.wait_for(task, 10)
            return raised.value

    assert asyncio.run(scenario()).status.state is PairingState.EXPIRED


def test_pairing_retries_while_the_cloud_is_down(tmp_path: Path) -> None:
    server = CloudServer(tmp_path / "cloud")  # not started yet

    async def scenario() -> str:
        async with httpx.AsyncClient(timeout=5) as http:
            pairing = Pairing(http, server.url, "gw-4", retry_initial_s=0.05, retry_max_s=0.1)
            task = asyncio.create_task(pairing.run())
            await eventually(lambda: "retrying" in pairing.status.detail, what="a retry")
            await asyncio.to_thread(server.start)
            try:
                await eventually(lambda: pairing.status.user_code is not None, what="a code")
                code = pairing.status.user_code
                assert code is not None
                return code
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    try:
        assert len(asyncio.run(scenario())) == 9  # XXXX-XXXX
    finally:
        server.stop()


@pytest.mark.slow
def test_pairing_slows_down_when_told_to(cloud: CloudServer) -> None:
    account = sign_up(cloud)
    polls: list[float] = []
    extra: list[bool] = []

    async def scenario() -> DeviceCredentials:
        async def on_request(request: httpx.Request) -> None:
            if request.url.path.endswith("/devices/token"):
                polls.append(time.monotonic())
                if not extra:
                    # Another poll with the same code just before this one: the cloud answers
                    # this one with slow_down.
                    extra.append(True)
                    async with httpx.AsyncClient() as other:
                        await other.post(
                            str(request.url),
                            content=request.content,
                            headers={"content-type": "application/json"},
                        )

        async with httpx.AsyncClient(timeout=5, event_hooks={"request": [on_request]}) as http:
            pairing = Pairing(http, cloud.url, "gw-5")
            task = asyncio.create_task(pairing.run())
            await eventually(lambda: len(polls) >= 1, what="the first poll")
            await asyncio.sleep(0.3)  # its answer: slow_down
            async with httpx.AsyncClient(base_url=cloud.url, headers=account.headers) as user:
                await user.post(
                    "/api/v1/devices/activate",
                    json={"user_code": pairing.status.user_code, "name": "Slow"},
                )
            return await asyncio.wait_for(task, 15)

    asyncio.run(scenario())
    # 1 s interval, then 6 s after slow_down (RFC 8628: 5 s more).
    assert polls[1] - polls[0] >= 6.0


# -- the uplink -----------------------------------------------------------------------------


def test_backfill_uploads_every_finished_minute_once_in_batches(
    cloud: CloudServer, tmp_path: Path
) -> None:
    account = sign_up(cloud)
    credentials = pair_quickly(cloud, account)
    start = floor_minute(datetime.now(UTC) - timedelta(days=3))
    recorder = Recorder()
    with ReadingStore(tmp_path / "gw.sqlite3") as store:
        # 2,500 minutes at two readings a minute, the last minute still running.
        readings = fill(store, start, 5001, timedelta(seconds=30))
        last_minute = start + 2500 * MINUTE

        async def scenario() -> None:
            async with recorder.client() as http:
                uplink = make_uplink(store, credentials, http)
                async with running(uplink):
                    await eventually(
                        lambda: uplink.status.uploaded_through == last_minute - MINUTE,
                        what="the backfill",
                    )
                    assert uplink.status.backlog_minutes == 0
                    assert uplink.status.state is UplinkState.ONLINE

        asyncio.run(scenario())

        expected = last_per_minute(readings, last_minute)
        assert len(expected) == 2500
        assert as_keys(cloud_minutes(cloud, account, start)) == expected
        sizes = [len(batch) for batch in recorder.batches]
        assert sizes == [MAX_BATCH, MAX_BATCH, 500]
        sent = [datetime.fromisoformat(at) for batch in recorder.batches for at in batch]
        assert sent == sorted(sent)  # oldest first
        assert all(code == 200 and body["duplicates"] == 0 for code, body in recorder.answers)
        assert store.watermark(credentials.target, "") == to_epoch_ms(last_minute - MINUTE)

        # A restart sends nothing again; new minutes go out, over the socket.
        later: list[Reading] = []
        recorder.batches.clear()

        async def restart() -> None:
            async with recorder.client() as http:
                uplink = make_uplink(store, credentials, http)
                async with running(uplink):
                    await eventually(lambda: uplink.status.state is UplinkState.ONLINE)
                    for i in range(3):
                        reading = reading_at(
                            last_minute + timedelta(seconds=5 + 60 * i), 5001 + 2 * i
                        )
                        store.add(reading, datetime.now(UTC))
                        uplink.notify(reading)
                        later.append(reading)
                    await eventually(
                        lambda: uplink.status.uploaded_through == last_minute + MINUTE,
                        what="two new minutes",
                    )
                    assert uplink.status.minutes_uploaded == 2

        asyncio.run(restart())
        assert recorder.batches == []  # nothing re-sent; the new minutes went over the socket
        expected = last_per_minute(readings + later, last_minute + 2 * MINUTE)
        assert as_keys(cloud_minutes(cloud, account, start)) == expected


def test_raw_readings_flow_only_while_someone_watches(cloud: CloudServer, tmp_path: Path) -> None:
    account = sign_up(cloud)
    credentials = pair_quickly(cloud, account)
    start = floor_minute(datetime.now(UTC) - timedelta(hours=1))
    with ReadingStore(tmp_path / "gw.sqlite3") as store:
        fill(store, start, 3, timedelta(seconds=30))  # creates the meter in the cloud

        async def scenario() -> list[dict[str, Any]]:
            async with httpx.AsyncClient(timeout=5) as http:
                uplink = make_uplink(store, credentials, http)
                async with running(uplink):
                    await eventually(lambda: uplink.status.uploaded_through == start)
                    with httpx.Client(base_url=cloud.url, headers=account.headers) as client:
                        (meter,) = client.get("/api/v1/meters").json()
                    url = f"ws://127.0.0.1:{cloud.port}/api/v1/live?meter={meter['id']}"
                    index = 3
                    received: list[dict[str, Any]] = []
                    async with connect(url, additional_headers=account.headers) as watcher:
                        assert json.loads(await watcher.recv())["type"] == "watching"
                        await eventually(lambda: uplink.status.raw_streaming, what="stream")
                        while len(received) < 5:
                            reading = reading_at(start + timedelta(seconds=60 + index), index)
                            index += 1
                            store.add(reading, datetime.now(UTC))
                            uplink.notify(reading)
                            received.append(json.loads(await asyncio.wait_for(watcher.recv(), 5)))
                    await eventually(lambda: not uplink.status.raw_streaming, what="stream off")
                    sent = uplink.status.raw_sent
                    reading = reading_at(start + timedelta(seconds=60 + index), index)
                    store.add(reading, datetime.now(UTC))
                    uplink.notify(reading)
                    await asyncio.sleep(0.2)
                    assert uplink.status.raw_sent == sent  # nobody watches: nothing sent
                    return received

        received = asyncio.run(scenario())
    assert [message["raw"] for message in received] == [True] * 5
    assert [message["energy_import_wh"] for message in received] == [
        1_000_000 + 3 * i for i in range(3, 8)
    ]


def test_an_outage_is_backfilled_exactly_once(cloud: CloudServer, tmp_path: Path) -> None:
    account = sign_up(cloud)
    credentials = pair_quickly(cloud, account)
    start = floor_minute(datetime.now(UTC) - timedelta(hours=5))
    recorder = Recorder()
    with ReadingStore(tmp_path / "gw.sqlite3") as store:
        readings = fill(store, start, 61, timedelta(seconds=20))  # 20 minutes and one

        async def scenario() -> None:
            async with recorder.client() as http:
                uplink = make_uplink(store, credentials, http)
                async with running(uplink):
                    await eventually(lambda: uplink.status.uploaded_through == start + 19 * MINUTE)
                    await asyncio.to_thread(cloud.stop)
                    await eventually(lambda: uplink.status.state is UplinkState.OFFLINE)
                    for i in range(61, 61 + 3 * 90):  # 90 more minutes while the cloud is away
                        reading = reading_at(start + i * timedelta(seconds=20), i)
                        store.add(reading, datetime.now(UTC))
                        uplink.notify(reading)
                        readings.append(reading)
                    await asyncio.sleep(0.5)
                    assert uplink.status.uploaded_through == start + 19 * MINUTE
                    await asyncio.to_thread(cloud.start)
                    await eventually(
                        lambda: uplink.status.uploaded_through == start + 109 * MINUTE,
                        what="the backfill after the outage",
                    )
                    assert uplink.status.state is UplinkState.ONLINE

        asyncio.run(scenario())
    assert as_keys(cloud_minutes(cloud, account, start)) == last_per_minute(
        readings, start + 110 * MINUTE
    )
    assert all(body["duplicates"] == 0 for _, body in recorder.answers)


def test_a_reading_the_cloud_refuses_is_skipped_not_blocking(
    cloud: CloudServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    account = sign_up(cloud)
    credentials = pair_quickly(cloud, account)
    start = floor_minute(datetime.now(UTC) - timedelta(hours=2))
    future = floor_minute(datetime.now(UTC) + timedelta(days=3))  # a meter clock gone wrong
    with ReadingStore(tmp_path / "gw.sqlite3") as store:
        readings = fill(store, start, 10, MINUTE)
        store.add(reading_at(future, 10), datetime.now(UTC))
        store.add(reading_at(future + MINUTE, 11), datetime.now(UTC))

        async def scenario() -> Uplink:
            async with httpx.AsyncClient(timeout=5) as http:
                uplink = make_uplink(store, credentials, http)
                async with running(uplink):
                    await eventually(lambda: uplink.status.uploaded_through == future)
                    return uplink

        with caplog.at_level(logging.ERROR, logger="ecommunity.gateway.uplink"):
            uplink = asyncio.run(scenario())
        assert uplink.status.minutes_skipped == 1
        assert uplink.status.minutes_uploaded == 10
        assert "refuses the reading" in caplog.text
        assert store.count() == 12  # kept locally
    assert as_keys(cloud_minutes(cloud, account, start)) == last_per_minute(readings, future)


def test_revoking_the_device_stops_the_uplink_and_keeps_local_data(
    cloud: CloudServer, tmp_path: Path
) -> None:
    account = sign_up(cloud)
    credentials = pair_quickly(cloud, account)
    start = floor_minute(datetime.now(UTC) - timedelta(hours=1))
    with ReadingStore(tmp_path / "gw.sqlite3") as store:
        fill(store, start, 5, MINUTE)

        async def scenario() -> None:
            async with httpx.AsyncClient(timeout=5) as http:
                uplink = make_uplink(store, credentials, http)
                task = asyncio.create_task(uplink.run())
                await eventually(lambda: uplink.status.uploaded_through == start + 3 * MINUTE)
                async with httpx.AsyncClient(base_url=cloud.url, headers=account.headers) as user:
                    revoked = await user.delete(f"/api/v1/devices/{credentials.device_id}")
                    assert revoked.status_code == 204
                status = await asyncio.wait_for(task, 5)  # run() returns by itself
                assert status.state is UplinkState.REVOKED
                assert "revoked" in status.detail

                # Started again with the revoked token, it stops at once too.
                again = make_uplink(store, credentials, http)
                assert (await asyncio.wait_for(again.run(), 5)).state is UplinkState.REVOKED

        asyncio.run(scenario())
        assert store.count() == 5


def test_websocket_url() -> None:
    assert websocket_url("http://h:8000") == "ws://h:8000/api/v1/gateway/ws"
    assert websocket_url("https://h/prefix/") == "wss://h/prefix/api/v1/gateway/ws"


def test_run_refuses_bad_flags_with_exit_code_2(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMMUNITY_")}
        return subprocess.run(
            [sys.executable, "-m", "ecommunity", "gateway", "run",
             "--data-dir", str(tmp_path), *args],
            capture_output=True, text=True, check=False, env=env, timeout=30,
        )  # fmt: skip

    # (Without a serial port the gateway starts in setup mode: tests/gateway/test_local_api.py.)
    bad_port = run("--serial-port", "/dev/null", "--http-port", "70000")
    assert bad_port.returncode == 2
    assert "http_port" in bad_port.stderr
    bad_profile = run("--serial-port", "/dev/null", "--profile", "nope")
    assert bad_profile.returncode == 2
    assert "nope" in bad_profile.stderr
    bad_url = run("--serial-port", "/dev/null", "--cloud-url", "cloud")
    assert bad_url.returncode == 2
    assert "cloud_url" in bad_url.stderr
