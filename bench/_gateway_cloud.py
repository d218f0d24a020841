"""The cloud side of ``gateway.py``: a real ``ecommunity cloud serve``, pairing through the real
device grant, and the bytes a reading takes on the wire, counted by a TCP proxy in between."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
from websockets.asyncio.client import ClientConnection, connect

from ecommunity.gateway.pairing import Pairing, PairingState, PairingStatus
from ecommunity.gateway.settings import DeviceCredentials
from ecommunity.gateway.store import ReadingStore, StoredReading, to_epoch_ms
from ecommunity.gateway.uplink import BATCH_PATH, MAX_BATCH, stored_payload, websocket_url

if TYPE_CHECKING:
    from gateway import Backlog

PASSWORD: Final = "bench horse battery staple"
#: How the gateway's uplink opens its socket (``Uplink._session``), but for ``compression``.
WS_OPTIONS: Final[dict[str, Any]] = {
    "open_timeout": 10,
    "ping_interval": 20,
    "ping_timeout": 20,
    "close_timeout": 5,
}


class CloudError(Exception):
    """The cloud did not start, refused a step, or gave a wrong answer."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMMUNITY_")}
    return env | extra


class CloudProcess:
    """``python -m ecommunity cloud serve`` on a free port with the embedded SQLite database."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "cloud.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.bearer = ""

    def start(self) -> None:
        env = clean_env(
            ECOMMUNITY_CLOUD_DEVICE_POLL_INTERVAL_S="1", ECOMMUNITY_CLOUD_PUBLIC_URL=self.url
        )
        args = [sys.executable, "-m", "ecommunity", "cloud", "serve", "--port", str(self.port)]
        args += ["--data-dir", str(self.data_dir)]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise CloudError(f"cloud serve exited with {self.proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/openapi.json", timeout=1).is_success:
                    return
            if time.monotonic() > deadline:
                raise CloudError("cloud serve did not answer within 30 s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise CloudError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def pair_device(cloud: CloudProcess) -> DeviceCredentials:
    """Sign a user up and pair a gateway with the gateway's own :class:`Pairing`."""
    with httpx.Client(base_url=cloud.url, timeout=10) as api:
        user = {"email": "bench@example.org", "password": PASSWORD, "display_name": "Bench"}
        _expect(api.post("/api/v1/auth/register", json=user), 201, "register")
        login = api.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
        cloud.bearer = _expect(login, 200, "login")["access_token"]
    return asyncio.run(_pair(cloud))


async def _pair(cloud: CloudProcess) -> DeviceCredentials:
    codes: asyncio.Queue[str] = asyncio.Queue()

    def changed(status: PairingStatus) -> None:
        if status.state is PairingState.WAITING and status.user_code:
            codes.put_nowait(status.user_code)

    async with httpx.AsyncClient(timeout=10) as http:
        pairing = Pairing(http, cloud.url, "gw-bench", on_change=changed, retry_max_s=2)
        task = asyncio.create_task(pairing.run())
        try:
            code = await asyncio.wait_for(codes.get(), 20)
            activated = await http.post(
                cloud.url + "/api/v1/devices/activate",
                json={"user_code": code, "name": "Bench"},
                headers={"Authorization": f"Bearer {cloud.bearer}"},
            )
            _expect(activated, 201, "activate")
            return await asyncio.wait_for(task, 20)
        except TimeoutError:
            raise CloudError(f"pairing did not finish: {pairing.status.to_json()}") from None
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class CountingProxy:
    """A TCP proxy on loopback that counts the bytes each way (TCP payload: "on the wire")."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = 0  # gateway → cloud
        self.down = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CountingProxy:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self._writers:
            writer.close()  # the pipes read EOF and end
        if self._pipes:
            await asyncio.wait(self._pipes, timeout=5)
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def counts(self) -> tuple[int, int]:
        return self.up, self.down

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            return
        self._writers |= {writer, target_writer}
        for pipe in (
            self._pipe(reader, target_writer, up=True),
            self._pipe(target_reader, writer, up=False),
        ):
            task = asyncio.create_task(pipe)
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if up:
                    self.up += len(data)
                else:
                    self.down += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


def _minute_rows(backlog: Backlog) -> list[StoredReading]:
    rows: list[StoredReading] = []
    with ReadingStore(backlog.path) as store:
        from_ms, end_ms = to_epoch_ms(backlog.start), to_epoch_ms(backlog.end)
        while batch := store.minute_readings("", from_ms=from_ms, before_ms=end_ms):
            rows += batch
            last = batch[-1].meter_timestamp
            assert last is not None
            from_ms = to_epoch_ms(last.replace(second=0, microsecond=0) + timedelta(minutes=1))
    if len(rows) != backlog.minutes:
        raise CloudError(f"{len(rows)} minute rows in a backlog of {backlog.minutes} minutes")
    return rows


async def _settle(proxy: CountingProxy) -> tuple[int, int]:
    """The counts once the proxy has relayed what is in flight."""
    await asyncio.sleep(0.05)
    return proxy.counts()


async def _ws_minutes(
    proxy: CountingProxy, credentials: DeviceCredentials, rows: list[StoredReading], deflate: bool
) -> dict[str, Any]:
    """Send ``rows`` as minute messages, each after the ack of the one before, as the uplink."""
    url = websocket_url(proxy.url)
    headers = {"Authorization": f"Bearer {credentials.token.get_secret_value()}"}
    options = dict(WS_OPTIONS) | ({} if deflate else {"compression": None})
    before = proxy.counts()
    ws = await connect(url, additional_headers=headers, **options)
    async with ws:
        handshake = await _settle(proxy)
        await _wait_for(ws, lambda m: m.get("type") == "stream", "the stream order")
        start = await _settle(proxy)
        text_bytes = 0
        for row in rows:
            text = json.dumps({"type": "minute", "reading": stored_payload(row)})
            text_bytes += len(text.encode())
            await ws.send(text)
            assert row.meter_timestamp is not None
            sent_at = row.meter_timestamp
            await _wait_for(
                ws,
                lambda m, at=sent_at: (
                    m.get("type") == "ack" and datetime.fromisoformat(m["measured_at"]) == at
                ),
                f"the ack of {sent_at}",
            )
        end = await _settle(proxy)
        extensions = ", ".join(repr(e) for e in ws.protocol.extensions)
    count = len(rows)
    return {
        "minutes": count,
        "extensions": extensions,
        "json_bytes_per_minute": text_bytes / count,
        "up_bytes_per_minute": (end[0] - start[0]) / count,
        "down_bytes_per_minute": (end[1] - start[1]) / count,
        "handshake_up_bytes": handshake[0] - before[0],
        "handshake_down_bytes": handshake[1] - before[1],
    }


async def _wait_for(ws: ClientConnection, match: Any, what: str) -> dict[str, Any]:
    try:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message.get("type") == "error":
                raise CloudError(f"the cloud refused a message: {message}")
            if match(message):
                return dict(message)
    except TimeoutError:
        raise CloudError(f"no answer from the cloud: waited for {what}") from None


async def _post_batches(
    proxy: CountingProxy, credentials: DeviceCredentials, rows: list[StoredReading]
) -> dict[str, Any]:
    """Upload ``rows`` as the uplink's backfill does: batches of MAX_BATCH, httpx's JSON."""
    headers = {"Authorization": f"Bearer {credentials.token.get_secret_value()}"}
    body_bytes = gzip_bytes = requests = 0
    encoding = "uncompressed"
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
        # The connection is opened outside the count, as the uplink keeps it open.
        await http.get(proxy.url + "/openapi.json")
        start = await _settle(proxy)
        for first in range(0, len(rows), MAX_BATCH):
            chunk = rows[first : first + MAX_BATCH]
            body = {"readings": [stored_payload(row) for row in chunk]}
            response = await http.post(proxy.url + BATCH_PATH, json=body, headers=headers)
            summary = _expect(response, 200, "batch upload")
            if summary.get("accepted") != len(chunk) or summary.get("flagged"):
                raise CloudError(f"a batch of {len(chunk)} gave {summary}")
            content = response.request.content
            body_bytes += len(content)
            gzip_bytes += len(gzip.compress(content))
            requests += 1
            encoding = response.request.headers.get("content-encoding", encoding)
        end = await _settle(proxy)
    count = len(rows)
    return {
        "readings": count,
        "requests": requests,
        "compression": f"body {encoding}",
        "body_bytes_per_reading": body_bytes / count,
        "gzip_body_bytes_per_reading": gzip_bytes / count,
        "up_bytes_per_reading": (end[0] - start[0]) / count,
        "down_bytes_per_request": (end[1] - start[1]) / requests,
    }


async def _wire(
    cloud: CloudProcess, credentials: DeviceCredentials, rows: list[StoredReading], ws_count: int
) -> dict[str, Any]:
    async with CountingProxy(cloud.port) as proxy:
        deflate = await _ws_minutes(proxy, credentials, rows[:ws_count], deflate=True)
        plain = await _ws_minutes(proxy, credentials, rows[ws_count : 2 * ws_count], deflate=False)
        post = await _post_batches(proxy, credentials, rows[2 * ws_count :])
    return {"ws_deflate": deflate, "ws_plain": plain, "post": post}


def _cloud_minutes(cloud: CloudProcess, backlog: Backlog) -> list[dict[str, Any]]:
    """The minute readings the cloud holds for the backlog's meter."""
    with httpx.Client(base_url=cloud.url, timeout=30) as api:
        api.headers["Authorization"] = f"Bearer {cloud.bearer}"
        meters = _expect(api.get("/api/v1/meters"), 200, "meters")
        if len(meters) != 1:
            raise CloudError(f"the cloud lists {len(meters)} meters, not 1")
        params = {
            "from": backlog.start.isoformat(),
            "to": (backlog.end + timedelta(minutes=1)).isoformat(),
            "resolution": "1min",
        }
        history = api.get(f"/api/v1/meters/{meters[0]['id']}/readings", params=params)
        readings: list[dict[str, Any]] = _expect(history, 200, "history")
        return readings


def bench_wire(
    cloud: CloudProcess, credentials: DeviceCredentials, backlog: Backlog, ws_count: int
) -> dict[str, Any]:
    """Upload the whole backlog (minute messages, then batches) and count its bytes; check
    that the cloud then holds every minute exactly once, unflagged."""
    rows = _minute_rows(backlog)
    result = asyncio.run(_wire(cloud, credentials, rows, ws_count))
    stored = _cloud_minutes(cloud, backlog)
    got = [(datetime.fromisoformat(r["measured_at"]), r["energy_import_wh"]) for r in stored]
    expected = [(r.meter_timestamp, r.energy_import_wh) for r in rows]
    if got != expected:
        raise CloudError(f"the cloud holds {len(got)} minutes, not the {len(expected)} uploaded")
    if any(r.get("flags") for r in stored):
        raise CloudError("the cloud flagged uploaded minutes")
    result["cloud"] = "embedded SQLite, uvicorn"
    result["minutes_checked"] = len(stored)
    return result
