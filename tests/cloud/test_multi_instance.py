"""Several cloud instances as one, through the Redis live bus: first the bus and the hub in this
process, then two real ``ecommunity cloud serve`` processes on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ecommunity.cloud.db.models import MinuteReading
from ecommunity.cloud.live.bus import RedisBus
from ecommunity.cloud.live.hub import LiveHub
from tests.cloud.test_live import Owner, reading, seed_owner
from tests.services import REDIS_URL, require, scratch_postgres_database

T_MINUTES = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The machine's Redis, on a database of its own (the bus names channels after it)."""
    url = make_url(REDIS_URL.replace("redis://", "postgresql://", 1))
    require("Redis", url.host or "127.0.0.1", url.port or 6379)
    return f"redis://{url.host or '127.0.0.1'}:{url.port or 6379}/{random.randrange(1, 16)}"


# --- the Redis bus and the hub, two instances in this process ------------------------------------


def test_redis_bus_spans_instances(redis_url: str) -> None:
    async def scenario() -> None:
        a, b = RedisBus(redis_url), RedisBus(redis_url)
        await a.start()
        await b.start()
        channel = f"test:{uuid.uuid4().hex}"
        try:
            assert await a.subscriber_count(channel) == 0
            first, second = await b.subscribe(channel), await b.subscribe(channel)
            # One Redis subscription per instance, however many local subscribers it has.
            assert await a.subscriber_count(channel) == 1
            await a.publish(channel, "hello")
            got = await asyncio.wait_for(asyncio.gather(first.get(), second.get()), 2)
            assert got == ["hello", "hello"]
            await first.close()
            assert await a.subscriber_count(channel) == 1
            await second.close()
            assert await a.subscriber_count(channel) == 0
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


@dataclass
class FakeSocket:
    """Records what the hub sends to a gateway (the socket is the only part not real here)."""

    sent: list[str] = field(default_factory=list)
    closed: tuple[int, str | None] | None = None

    async def send_text(self, data: str) -> None:
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)


async def _until(condition: Any, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_hubs_share_watchers_and_revocations(redis_url: str) -> None:
    async def scenario() -> None:
        bus_a, bus_b = RedisBus(redis_url), RedisBus(redis_url)
        await bus_a.start()
        await bus_b.start()
        hub_a, hub_b = LiveHub(bus_a), LiveHub(bus_b)
        await hub_a.start()
        await hub_b.start()
        device_id, meter_id = random.randrange(10**6, 10**7), random.randrange(10**6, 10**7)
        socket_a = FakeSocket()
        try:
            await hub_a.connect_gateway(device_id, socket_a, [meter_id])
            assert socket_a.sent == ['{"type":"stream","raw":false}']
            async with hub_b.watch(meter_id):
                await _until(lambda: len(socket_a.sent) == 2)
                assert socket_a.sent[1] == '{"type":"stream","raw":true}'
            await _until(lambda: len(socket_a.sent) == 3)
            assert socket_a.sent[2] == '{"type":"stream","raw":false}'
            await hub_b.device_revoked(device_id)
            await _until(lambda: socket_a.closed is not None)
            assert socket_a.closed == (4401, "the device token was revoked")
            assert hub_a.gateway_count() == 0
        finally:
            await hub_a.close()
            await hub_b.close()
            await bus_a.close()
            await bus_b.close()

    asyncio.run(scenario())


# --- two real cloud processes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this module's own, dropped at the end."""
    with scratch_postgres_database("ecommunity_multi") as url:
        yield url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Instance:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def ws(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


@pytest.fixture
def serve(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """``serve(*names)`` starts one ``cloud serve`` process per name, all at once, and returns
    them once they answer; all are stopped at the end."""
    started: list[Instance] = []

    def launch(name: str) -> Instance:
        port = _free_port()
        log = tmp_path / f"{name}.log"
        env = {
            **os.environ,
            "ECOMMUNITY_CLOUD_DATABASE_URL": postgres_url,
            "ECOMMUNITY_CLOUD_BUS_URL": redis_url,
            "ECOMMUNITY_CLOUD_DATA_DIR": str(tmp_path / name),
        }
        command = [sys.executable, "-m", "ecommunity", "cloud", "serve", "--port", str(port)]
        with log.open("wb") as output:
            process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        instance = Instance(port, process, log)
        started.append(instance)
        return instance

    def ready(instance: Instance, deadline: float) -> None:
        while True:
            assert instance.process.poll() is None, f"exited:\n{instance.log.read_text()}"
            try:
                url = f"http://127.0.0.1:{instance.port}/openapi.json"
                if httpx.get(url, timeout=1).is_success:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"did not start:\n{instance.log.read_text()}"
            time.sleep(0.05)

    def start(*names: str) -> list[Instance]:
        instances = [launch(name) for name in names]
        deadline = time.monotonic() + 30
        for instance in instances:
            ready(instance, deadline)
        return instances

    yield start
    for instance in started:
        if instance.process.poll() is None:
            instance.process.send_signal(signal.SIGINT)
    for instance in started:
        try:
            instance.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait()


async def _next(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
    return data


@asynccontextmanager
async def _gateway(instance: Instance, owner: Owner) -> AsyncIterator[ClientConnection]:
    async with connect(
        instance.ws("/api/v1/gateway/ws"), additional_headers=owner.device_headers
    ) as ws:
        yield ws


def test_two_instances_behave_as_one(serve: Any, postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    owner = seed_owner(sessions)
    a, b = serve("a", "b")

    async def scenario() -> list[datetime]:
        async with _gateway(a, owner) as gateway:
            assert await _next(gateway) == {"type": "stream", "raw": False}

            # A watcher on B: the gateway on A is told to stream, and its readings cross over.
            async with connect(
                b.ws(f"/api/v1/live?meter={owner.meter_id}"), additional_headers=owner.user_headers
            ) as watcher:
                assert await _next(watcher) == {"type": "watching", "meter_id": owner.meter_id}
                assert await _next(gateway) == {"type": "stream", "raw": True}
                sent_at: dict[int, float] = {}
                latencies_s: list[float] = []

                async def receive_all() -> None:
                    while len(latencies_s) < 200:
                        message = await _next(watcher)
                        assert message["raw"] is True
                        latencies_s.append(time.perf_counter() - sent_at[message["power_import_w"]])

                receiving = asyncio.create_task(receive_all())
                for index in range(200):
                    sent_at[index] = time.perf_counter()
                    await gateway.send(json.dumps({"type": "raw", "reading": reading(index)}))
                    await asyncio.sleep(0.005)
                await asyncio.wait_for(receiving, 10)
                latencies_s.sort()
                p99 = latencies_s[int(len(latencies_s) * 0.99) - 1]
                assert p99 < 0.250, f"p99 {p99 * 1000:.1f} ms across instances"

            # The watcher left B: the gateway on A stops streaming.
            assert await _next(gateway) == {"type": "stream", "raw": False}

            # Revoked through B: the gateway's socket on A closes at once.
            other = seed_owner(sessions)
            async with _gateway(a, other) as revoked:
                assert await _next(revoked) == {"type": "stream", "raw": False}
                async with httpx.AsyncClient() as http:
                    response = await http.delete(
                        f"http://127.0.0.1:{b.port}/api/v1/devices/{other.device_id}",
                        headers=other.user_headers,
                    )
                assert response.status_code == 204
                with pytest.raises(ConnectionClosed) as closed:
                    await _next(revoked, timeout_s=2)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 4401

            # Minute readings as fast as the gateway can, and A is killed meanwhile: every
            # reading whose ack arrived must be stored.
            acked: list[datetime] = []

            async def collect_acks() -> None:
                try:
                    while True:
                        message = json.loads(await gateway.recv())
                        if message["type"] == "ack":
                            acked.append(datetime.fromisoformat(message["measured_at"]))
                except ConnectionClosed:
                    pass

            acks = asyncio.create_task(collect_acks())
            try:
                for index in range(1000, 100_000):
                    at = T_MINUTES + timedelta(minutes=index)
                    body = reading(index, measured_at=at.isoformat())
                    await gateway.send(json.dumps({"type": "minute", "reading": body}))
                    if len(acked) >= 50 and a.process.returncode is None:
                        a.process.send_signal(signal.SIGKILL)
                        a.process.wait()
                    await asyncio.sleep(0.001)
            except ConnectionClosed:
                pass
            await asyncio.wait_for(acks, 10)
            return acked

    acked = asyncio.run(scenario())
    assert a.process.returncode == -signal.SIGKILL
    assert len(acked) >= 50
    with sessions() as db:
        stored = {
            at.astimezone(UTC)
            for at in db.scalars(
                select(MinuteReading.measured_at).where(MinuteReading.meter_id == owner.meter_id)
            )
        }
    missing = [at for at in acked if at not in stored]
    assert not missing, f"{len(missing)} acknowledged readings lost"

    # B carries on: the gateway reconnects there, and nobody watches.
    async def reconnect() -> None:
        async with _gateway(b, owner) as gateway:
            assert await _next(gateway) == {"type": "stream", "raw": False}

    asyncio.run(reconnect())
    engine.dispose()
