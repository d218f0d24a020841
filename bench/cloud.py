"""Cloud benchmarks, in one run, on the machine's PostgreSQL and Redis.

1. Ingest: readings/s through ``POST /api/v1/gateway/readings`` of a real ``ecommunity cloud
   serve`` process (uvicorn, a subprocess), fed by ``--gateways`` gateways' minute readings
   (one device token each, one batch per request and gateway, 10 % of each batch resent),
   from ``--clients`` concurrent httpx clients; vs. a raw ``COPY`` of the same rows into the
   same ``minute_readings`` table (same indexes and constraints, truncated between the sides),
   in the same batches from as many connections, one transaction per batch.
2. Live fan-out: one gateway on ``WS /api/v1/gateway/ws`` sends raw readings at ``--rate``
   messages/s for ``--seconds``; ``--watchers`` browser sockets (``WS /api/v1/live``, the
   meter owner's bearer tokens, one session each) receive them through the Redis bus. Each
   message carries its send instant as ``measured_at``: the latency of a delivery is the
   watcher's receive instant minus that (one machine, one clock). Server CPU per delivery
   comes from ``/proc/<pid>/stat``.

The benchmark creates a database of its own (migrated with Alembic) and drops it at the end.

Run: ``python bench/cloud.py [--seconds S] [--json] [--gateways N] [--watchers N]``. Exit 1
if the server gives wrong results (counts, rows, messages), 2 if PostgreSQL or Redis is not
reachable, else 0 (targets missed are reported, not failed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any, Final, TypeVar

import httpx
import psycopg
import redis
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from websockets.asyncio.client import ClientConnection, connect

from ecommunity.cloud.db.engine import migrate
from ecommunity.cloud.db.models import Device, Meter, MinuteReading, User, UserSession
from ecommunity.cloud.security import new_token, token_hash

POSTGRES_ADMIN_URL: Final = os.environ.get(
    "ECOMMUNITY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: Redis pub/sub channels carry the database number: 14 keeps clear of the tests' 0.
REDIS_URL: Final = os.environ.get("ECOMMUNITY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

INGEST_TARGET: Final = 0.25
LATENCY_TARGET_S: Final = 0.250
#: Share of all cores that other processes may use before the figures are called contended.
CONTENDED_SHARE: Final = 0.10
COPY_COLUMNS: Final = (
    "meter_id, measured_at, energy_import_wh, energy_export_wh, "
    "power_import_w, power_export_w, flags, received_at"
)
PROFILE: Final = "amis"
#: Watcher sockets opened at once while connecting (the listen backlog stays short).
CONNECT_CONCURRENCY: Final = 50
#: How long the live side waits for stragglers after the last message. [s]
DRAIN_S: Final = 3.0
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
#: PostgreSQL's own processes, counted with the bench database's backends (mostly our work).
POSTGRES_AUXILIARY: Final = (
    ": checkpointer",
    ": walwriter",
    ": background writer",
    ": autovacuum worker",
)
CORES: Final = os.cpu_count() or 1
UPLOAD_PATH: Final = "/api/v1/gateway/readings"

T = TypeVar("T")


class WrongResultError(Exception):
    """The server gave a wrong answer: the benchmark exits 1."""


class ServiceError(Exception):
    """PostgreSQL or Redis is not reachable: the benchmark exits 2."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise WrongResultError(message)


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "?"


def process_cpu_s(pid: int) -> float:
    """User + system CPU time of a process, all its threads. [s]"""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree_cpu_s(pid: int) -> float:
    """CPU time of a process and its direct children (``cloud serve --workers``). [s]"""
    total = process_cpu_s(pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:  # the parent pid, field 4 (1-based, man 5 proc)
                total += process_cpu_s(int(entry.name))
    return total


def cpu_of_processes(*matches: str) -> float:
    """Summed CPU time of every process whose command line contains one of ``matches``. [s]

    Exited processes (e.g. PostgreSQL backends of closed connections) no longer count, so
    take the difference over a window in which the connections stay open.
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            if any(match in command for match in matches):
                total += process_cpu_s(int(entry.name))
    return total


def machine_busy_s() -> float:
    """CPU time all cores spent on anything but idling since boot. [s]"""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


@dataclasses.dataclass
class CpuWindow:
    """CPU seconds spent in a window by the server, PostgreSQL (our database's backends and
    the server's own writers and vacuum), Redis, this process, and everything else on the
    machine (other users' jobs)."""

    server_pid: int
    database: str
    wall_s: float = 0.0
    server_s: float = 0.0
    postgres_s: float = 0.0
    redis_s: float = 0.0
    client_s: float = 0.0
    machine_s: float = 0.0
    _start: tuple[float, ...] = ()

    def _now(self) -> tuple[float, ...]:
        return (
            perf_counter(),
            process_tree_cpu_s(self.server_pid),
            cpu_of_processes(f" {self.database} ", *POSTGRES_AUXILIARY),
            cpu_of_processes("redis-server"),
            own_cpu_s(),
            machine_busy_s(),
        )

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> None:
        deltas = [b - a for a, b in zip(self._start, self._now(), strict=True)]
        self.wall_s += deltas[0]
        self.server_s += deltas[1]
        self.postgres_s += deltas[2]
        self.redis_s += deltas[3]
        self.client_s += deltas[4]
        self.machine_s += deltas[5]

    @property
    def others_s(self) -> float:
        ours = self.server_s + self.postgres_s + self.redis_s + self.client_s
        return max(0.0, self.machine_s - ours)

    def json(self) -> dict[str, float]:
        return {
            "wall_s": self.wall_s,
            "server_cpu_s": self.server_s,
            "postgres_cpu_s": self.postgres_s,
            "redis_cpu_s": self.redis_s,
            "bench_client_cpu_s": self.client_s,
            "other_processes_cpu_s": self.others_s,
            "machine_busy_share": self.machine_s / (self.wall_s * CORES) if self.wall_s else 0.0,
        }

    def line(self) -> str:
        return (
            f"CPU over {self.wall_s:.1f} s wall: server {self.server_s:.1f} s,"
            f" PostgreSQL {self.postgres_s:.1f} s, Redis {self.redis_s:.1f} s,"
            f" bench clients {self.client_s:.1f} s, other processes {self.others_s:.1f} s"
        )


def machine_facts(admin_url: str, redis_url: str) -> dict[str, Any]:
    try:
        engine = create_engine(admin_url)
        with engine.connect() as connection:
            postgres_version = connection.scalar(text("SHOW server_version"))
            synchronous_commit = connection.scalar(text("SHOW synchronous_commit"))
        engine.dispose()
    except Exception as exc:  # any driver error means the same: no database to run on
        raise ServiceError(f"PostgreSQL at {admin_url}: {exc}") from exc
    try:
        client = redis.Redis.from_url(redis_url)
        redis_version = client.info("server")["redis_version"]
        client.close()
    except (redis.RedisError, OSError) as exc:
        raise ServiceError(f"Redis at {redis_url}: {exc}") from exc
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "postgresql": postgres_version,
        "synchronous_commit": synchronous_commit,
        "redis": redis_version,
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def raise_fd_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards the hard limit; the server inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# --------------------------------------------------------------------------- database


@contextlib.contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """A database of its own, migrated to head, dropped at the end."""
    admin = make_url(admin_url)
    name = f"ecommunity_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclasses.dataclass(frozen=True)
class Gateway:
    device_id: int
    token: str
    meter_id: int
    serial: str


@dataclasses.dataclass(frozen=True)
class Fleet:
    """What the benchmark seeds: one owner, their gateways (one meter each), their sessions."""

    user_id: int
    gateways: list[Gateway]
    watcher_tokens: list[str]


def seed(url: str, gateways: int, watchers: int) -> Fleet:
    """One user owning ``gateways`` devices (a token and a meter each) and ``watchers``
    sessions, written straight into the database (the pairing flow is not measured)."""
    now = datetime.now(UTC)
    engine = create_engine(url)
    tokens = [new_token() for _ in range(gateways)]
    watcher_tokens = [new_token() for _ in range(watchers)]
    with Session(engine) as db:
        user_id = db.scalar(
            insert(User)
            .values(
                email="bench@example.org",
                display_name="Bench Owner",
                password_hash="!not-a-login",
                created_at=now,
            )
            .returning(User.id)
        )
        assert user_id is not None
        device_ids = list(
            db.scalars(
                insert(Device).returning(Device.id, sort_by_parameter_order=True),
                [
                    {
                        "user_id": user_id,
                        "hardware_id": f"bench-hw-{i:05d}",
                        "name": f"Bench gateway {i}",
                        "token_hash": token_hash(token),
                        "created_at": now,
                    }
                    for i, token in enumerate(tokens)
                ],
            )
        )
        serials = [f"BENCH{i:07d}" for i in range(gateways)]
        meter_ids = list(
            db.scalars(
                insert(Meter).returning(Meter.id, sort_by_parameter_order=True),
                [
                    {
                        "device_id": device_id,
                        "serial": serial,
                        "profile": PROFILE,
                        "created_at": now,
                    }
                    for device_id, serial in zip(device_ids, serials, strict=True)
                ],
            )
        )
        if watcher_tokens:
            db.execute(
                insert(UserSession),
                [
                    {
                        "user_id": user_id,
                        "token_hash": token_hash(token),
                        "csrf_token": new_token(),
                        "created_at": now,
                        "expires_at": now + timedelta(days=1),
                    }
                    for token in watcher_tokens
                ],
            )
        db.commit()
    engine.dispose()
    return Fleet(
        user_id=user_id,
        gateways=[
            Gateway(device_id, token, meter_id, serial)
            for device_id, token, meter_id, serial in zip(
                device_ids, tokens, meter_ids, serials, strict=True
            )
        ],
        watcher_tokens=watcher_tokens,
    )


def truncate_minute_readings(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("TRUNCATE minute_readings")


def count_minute_readings(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(MinuteReading)) or 0
    engine.dispose()
    return count


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """``ecommunity cloud serve`` as a subprocess, its output in a log file."""

    def __init__(self, database_url: str, bus_url: str, log_dir: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.database = make_url(database_url).database or ""
        self.log_path = log_dir / "cloud-serve.log"
        env = dict(os.environ)
        env["ECOMMUNITY_CLOUD_DATABASE_URL"] = database_url
        env["ECOMMUNITY_CLOUD_BUS_URL"] = bus_url
        env["ECOMMUNITY_CLOUD_PUBLIC_URL"] = f"http://127.0.0.1:{self.port}"
        self._log = self.log_path.open("wb")
        command = [sys.executable, "-m", "ecommunity", "cloud", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.pid = self.process.pid

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cloud serve exited: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(f"{self.http_url}/openapi.json", timeout=1, trust_env=False)
                if response.status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"cloud serve did not answer within {timeout_s:g} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


# --------------------------------------------------------------------------- 1. ingest


@dataclasses.dataclass(frozen=True)
class Batch:
    """One gateway's upload: the whole HTTP request, what the server must answer, and the new
    rows in both COPY formats for the baseline."""

    request: bytes
    readings: int
    new: int
    copy_text: bytes
    copy_binary: bytes


def _reading(gateway_index: int, serial: str, start: datetime, minute: int) -> dict[str, Any]:
    # Counters rise by a few Wh a minute: plausible, never flagged.
    return {
        "meter_serial": serial,
        "profile": PROFILE,
        "measured_at": (start + timedelta(minutes=minute)).isoformat(),
        "energy_import_wh": 10_000_000 + 7 * minute + gateway_index,
        "energy_export_wh": 2_000_000 + 3 * minute,
        "power_import_w": 300 + minute % 500,
        "power_export_w": minute % 200,
    }


def _copy_line(meter_id: int, reading: dict[str, Any], received: str) -> str:
    return (
        f"{meter_id}\t{reading['measured_at']}\t{reading['energy_import_wh']}\t"
        f"{reading['energy_export_wh']}\t{reading['power_import_w']}\t"
        f"{reading['power_export_w']}\t0\t{received}\n"
    )


#: PostgreSQL's binary COPY: signature, flags, header extension; end marker; an instant counts
#: microseconds from 2000-01-01 UTC; one row of minute_readings (field count, then length and
#: value per column of COPY_COLUMNS).
COPY_BINARY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_BINARY_TRAILER: Final = b"\xff\xff"
POSTGRES_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
COPY_BINARY_ROW: Final = struct.Struct(">h ii iq iq iq ii ii ii iq")


def _postgres_us(at: datetime) -> int:
    return (at - POSTGRES_EPOCH) // timedelta(microseconds=1)


def _copy_binary(meter_id: int, readings: Sequence[dict[str, Any]], received: datetime) -> bytes:
    rows = [
        COPY_BINARY_ROW.pack(
            8,
            4,
            meter_id,
            8,
            _postgres_us(datetime.fromisoformat(r["measured_at"])),
            8,
            r["energy_import_wh"],
            8,
            r["energy_export_wh"],
            4,
            r["power_import_w"],
            4,
            r["power_export_w"],
            4,
            0,
            8,
            _postgres_us(received),
        )
        for r in readings
    ]
    return b"".join([COPY_BINARY_HEADER, *rows, COPY_BINARY_TRAILER])


def _http_request(host: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def make_round(
    fleet: Fleet,
    round_index: int,
    batch_size: int,
    duplicates: int,
    start: datetime,
    *,
    host: str,
    seed: int,
) -> list[Batch]:
    """Round ``r``: every gateway uploads ``batch_size - duplicates`` new minutes, plus
    ``duplicates`` resent ones: the last minutes of its previous batch (as after a lost
    answer), or in the first round repeats inside the batch."""
    rng = random.Random(seed * 1_000_003 + round_index)
    fresh = batch_size - duplicates
    received_at = datetime.now(UTC)
    received = received_at.isoformat()
    batches = []
    for index, gateway in enumerate(fleet.gateways):
        first = round_index * fresh
        new = [_reading(index, gateway.serial, start, m) for m in range(first, first + fresh)]
        if round_index == 0:
            readings = list(new)
            for position in sorted(rng.sample(range(fresh), duplicates), reverse=True):
                readings.insert(position + 1, new[position])
        else:
            resent = range(first - duplicates, first)
            readings = [_reading(index, gateway.serial, start, m) for m in resent] + new
        body = json.dumps({"readings": readings}).encode()
        batches.append(
            Batch(
                request=_http_request(host, gateway.token, body),
                readings=len(readings),
                new=len(new),
                copy_text="".join(_copy_line(gateway.meter_id, r, received) for r in new).encode(),
                copy_binary=_copy_binary(gateway.meter_id, new, received_at),
            )
        )
    rng.shuffle(batches)
    return batches


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response (the server always sends Content-Length)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head.split("\r\n")
    length = None
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    _check(length is not None, f"a response without Content-Length: {status_line}")
    assert length is not None
    return int(status_line.split(" ", 2)[1]), await reader.readexactly(length)


async def _upload(host: str, port: int, batches: Sequence[Batch], clients: int) -> None:
    """Send ``batches`` from ``clients`` concurrent keep-alive connections; check every answer.

    The requests are bytes built before the clock starts, written to a socket as they are:
    the client shares the machine's cores with the server, and httpx spent ~1.7 ms of CPU per
    request, a third of what the server spends on one. The baseline's client, psycopg writing
    prepared COPY data, is as lean.
    """
    queue: asyncio.Queue[Batch] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                try:
                    batch = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                writer.write(batch.request)
                status, body = await _read_response(reader)
                _check(status == 200, f"upload: HTTP {status}: {body[:200]!r}")
                summary = json.loads(body)
                expected = {
                    "accepted": batch.new,
                    "duplicates": batch.readings - batch.new,
                    "flagged": 0,
                }
                _check(summary == expected, f"upload answered {summary}, expected {expected}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    await asyncio.gather(*(client() for _ in range(clients)))


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on uvloop where installed (as the server does), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def _copy_batches(
    connections: Sequence[psycopg.Connection[Any]], batches: Sequence[Batch], copy_format: str
) -> None:
    """COPY each batch's new rows, one transaction per batch, one thread per connection."""
    queue = list(reversed(batches))
    binary = copy_format == "binary"
    statement = f"COPY minute_readings ({COPY_COLUMNS}) FROM STDIN"
    if binary:
        statement += " (FORMAT BINARY)"

    def worker(connection: psycopg.Connection[Any]) -> None:
        while True:
            try:
                batch = queue.pop()
            except IndexError:
                return
            with connection.cursor() as cursor, cursor.copy(statement) as copy:
                copy.write(batch.copy_binary if binary else batch.copy_text)
            connection.commit()

    with ThreadPoolExecutor(len(connections)) as pool:
        for future in [pool.submit(worker, connection) for connection in connections]:
            future.result()


COPY_FORMATS: Final = ("text", "binary")


def bench_ingest(
    server: Server,
    url: str,
    fleet: Fleet,
    *,
    seconds: float,
    batch_size: int,
    duplicates: int,
    clients: int,
    show: bool,
) -> dict[str, Any]:
    start = (datetime.now(UTC) - timedelta(days=60)).replace(second=0, microsecond=0)
    host = f"127.0.0.1:{server.port}"
    rounds: list[list[Batch]] = []
    warmup = make_round(fleet, 0, batch_size, duplicates, start, host=host, seed=1)
    warmup = warmup[: max(1, clients * 5)]
    _run(_upload("127.0.0.1", server.port, warmup, clients))
    truncate_minute_readings(url)
    with contextlib.ExitStack() as stack:
        # Opened before the timed windows, so that their backends' CPU time is counted.
        copiers = [stack.enter_context(psycopg.connect(libpq_url(url))) for _ in range(clients)]
        for copy_format in COPY_FORMATS:
            _copy_batches(copiers, warmup[:clients], copy_format)
            truncate_minute_readings(url)

        server_cpu = CpuWindow(server.pid, server.database)
        sent = new = 0
        while not rounds or server_cpu.wall_s < seconds:
            batches = make_round(
                fleet, len(rounds), batch_size, duplicates, start, host=host, seed=1
            )
            rounds.append(batches)
            server_cpu.start()
            _run(_upload("127.0.0.1", server.port, batches, clients))
            server_cpu.stop()
            sent += sum(batch.readings for batch in batches)
            new += sum(batch.new for batch in batches)
            if show:
                print(f"   … server round {len(rounds)}: {server_cpu.wall_s:.1f} s", flush=True)
        stored = count_minute_readings(url)
        _check(stored == new, f"after the uploads the table holds {stored} rows, not {new}")

        copy_cpu: dict[str, CpuWindow] = {}
        for copy_format in COPY_FORMATS:
            truncate_minute_readings(url)
            window = copy_cpu[copy_format] = CpuWindow(server.pid, server.database)
            for batches in rounds:
                window.start()
                _copy_batches(copiers, batches, copy_format)
                window.stop()
            copied = count_minute_readings(url)
            _check(copied == new, f"after the {copy_format} COPY the table holds {copied} rows")

    server_rate = new / server_cpu.wall_s
    copy_rates = {name: new / window.wall_s for name, window in copy_cpu.items()}
    # The baseline is the faster of the two formats in this run.
    baseline = max(copy_rates, key=lambda name: copy_rates[name])
    ratio = server_rate / copy_rates[baseline]
    return {
        "gateways": len(fleet.gateways),
        "rounds": len(rounds),
        "batch_readings": batch_size,
        "batch_duplicates": duplicates,
        "clients": clients,
        "requests": len(rounds) * len(fleet.gateways),
        "readings_sent": sent,
        "rows_stored": new,
        "server_readings_per_s": sent / server_cpu.wall_s,
        "server_rows_per_s": server_rate,
        "copy_format": baseline,
        "copy_rows_per_s": copy_rates[baseline],
        "copy_text_rows_per_s": copy_rates["text"],
        "copy_binary_rows_per_s": copy_rates["binary"],
        "ratio": ratio,
        "target_ratio": INGEST_TARGET,
        "target_met": ratio >= INGEST_TARGET,
        "server_cpu_us_per_row": server_cpu.server_s / new * 1e6,
        "server_postgres_cpu_us_per_row": server_cpu.postgres_s / new * 1e6,
        "server_client_cpu_us_per_row": server_cpu.client_s / new * 1e6,
        "copy_postgres_cpu_us_per_row": copy_cpu[baseline].postgres_s / new * 1e6,
        "server_side": server_cpu.json(),
        "copy_side": copy_cpu[baseline].json(),
        "copy_text_side": copy_cpu["text"].json(),
        "copy_binary_side": copy_cpu["binary"].json(),
        "_server_cpu": server_cpu,
        "_copy_cpu": copy_cpu,
        "_copy_format": baseline,
    }


# --------------------------------------------------------------------------- 2. live


@dataclasses.dataclass
class Watcher:
    socket: ClientConnection
    received: list[tuple[float, str]] = dataclasses.field(default_factory=list)


async def _watch(server: Server, token: str, meter_id: int, *, deflate: bool) -> Watcher:
    socket = await connect(
        f"{server.ws_url}/api/v1/live?meter={meter_id}",
        additional_headers={"Authorization": f"Bearer {token}"},
        proxy=None,
        max_queue=None,
        open_timeout=60,
        compression="deflate" if deflate else None,
    )
    first = json.loads(await asyncio.wait_for(socket.recv(), 30))
    _check(first == {"type": "watching", "meter_id": meter_id}, f"watcher got {first}")
    return Watcher(socket)


async def _receive(watcher: Watcher) -> None:
    clock = time.time
    append = watcher.received.append
    with contextlib.suppress(Exception):
        async for message in watcher.socket:
            append((clock(), str(message)))


async def _gateway_orders(
    socket: ClientConnection, streaming: asyncio.Event, refusals: list[str]
) -> None:
    """Follow the server's stream orders to the gateway; keep any refusal of a message."""
    with contextlib.suppress(Exception):
        async for message in socket:
            order = json.loads(message)
            if order.get("type") == "stream":
                if order["raw"]:
                    streaming.set()
                else:
                    streaming.clear()
            elif order.get("type") == "error":
                refusals.append(str(message))


async def _loop_lag(lags: list[float], interval_s: float = 0.01) -> None:
    """Record how late this event loop wakes up: the bench client's own stalls."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        lags.append(loop.time() - due)


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def _live(
    server: Server,
    gateway: Gateway,
    tokens: Sequence[str],
    *,
    seconds: float,
    rate: float,
    deflate: bool,
) -> dict[str, Any]:
    uplink = await connect(
        f"{server.ws_url}/api/v1/gateway/ws",
        additional_headers={"Authorization": f"Bearer {gateway.token}"},
        proxy=None,
    )
    streaming = asyncio.Event()
    refusals: list[str] = []
    orders = asyncio.create_task(_gateway_orders(uplink, streaming, refusals))

    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_watcher(token: str) -> Watcher:
        async with limit:
            return await _watch(server, token, gateway.meter_id, deflate=deflate)

    connect_started = perf_counter()
    watchers = list(await asyncio.gather(*(open_watcher(token) for token in tokens)))
    connect_s = perf_counter() - connect_started
    receivers = [asyncio.create_task(_receive(watcher)) for watcher in watchers]
    await asyncio.wait_for(streaming.wait(), 30)

    cpu = CpuWindow(server.pid, server.database)
    count = max(1, round(seconds * rate))
    lags: list[float] = []
    lag_monitor = asyncio.create_task(_loop_lag(lags))
    cpu.start()
    began = time.time()
    for seq in range(count):
        delay = began + seq / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at = datetime.fromtimestamp(time.time(), UTC)
        message = {
            "type": "raw",
            "reading": {
                "meter_serial": gateway.serial,
                "profile": PROFILE,
                "measured_at": sent_at.isoformat(),
                "energy_import_wh": 20_000_000 + seq,
                "power_import_w": seq,
            },
        }
        await uplink.send(json.dumps(message))
    expected = len(watchers) * count
    deadline = time.time() + DRAIN_S
    while time.time() < deadline and sum(len(w.received) for w in watchers) < expected:
        await asyncio.sleep(0.05)
    cpu.stop()
    lag_monitor.cancel()

    await asyncio.gather(*(watcher.socket.close() for watcher in watchers))
    for task in receivers:
        task.cancel()
    await uplink.close()
    orders.cancel()

    _check(not refusals, f"the uplink refused readings: {refusals[:3]}")
    latencies: list[float] = []
    by_seq: dict[int, list[float]] = {}
    missing = 0
    for watcher in watchers:
        seen: set[int] = set()
        for received_at, data in watcher.received:
            message = json.loads(data)
            _check(message.get("type") == "reading", f"watcher got {data[:200]}")
            _check(message["meter_id"] == gateway.meter_id, f"wrong meter in {data[:200]}")
            _check(message["raw"] is True, f"not a raw reading: {data[:200]}")
            _check(message["flags"] == [], f"flagged: {data[:200]}")
            seq = message["power_import_w"]
            _check(message["energy_import_wh"] == 20_000_000 + seq, f"wrong values: {data[:200]}")
            _check(seq not in seen, f"reading {seq} delivered twice to one watcher")
            seen.add(seq)
            sent = datetime.fromisoformat(message["measured_at"]).timestamp()
            latencies.append(received_at - sent)
            by_seq.setdefault(seq, []).append(received_at - sent)
        missing += count - len(seen)
    latencies.sort()
    deliveries = len(latencies)
    p99 = _percentile(latencies, 0.99)
    # Per message: when its first and its last watcher had it. The first is the pipeline
    # (uplink, store, Redis); first to last is the fan-out to every socket.
    firsts = sorted(min(times) for times in by_seq.values())
    spreads = sorted(max(times) - min(times) for times in by_seq.values())
    one_second = max(1, round(rate))
    early = sorted(t for seq in range(one_second) for t in by_seq.get(seq, []))
    late = sorted(t for seq in range(count - one_second, count) for t in by_seq.get(seq, []))
    return {
        "watchers": len(watchers),
        "messages_sent": count,
        "rate_per_s": rate,
        "deliveries": deliveries,
        "deliveries_missing": missing,
        "connect_watchers_s": connect_s,
        "latency_p50_ms": _percentile(latencies, 0.50) * 1000,
        "latency_p90_ms": _percentile(latencies, 0.90) * 1000,
        "latency_p99_ms": p99 * 1000,
        "latency_max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
        "first_watcher_p50_ms": _percentile(firsts, 0.50) * 1000,
        "fan_out_spread_p50_ms": _percentile(spreads, 0.50) * 1000,
        "latency_p50_first_second_ms": _percentile(early, 0.50) * 1000,
        "latency_p50_last_second_ms": _percentile(late, 0.50) * 1000,
        "client_loop_lag_max_ms": max(lags, default=0.0) * 1000,
        "server_cpu_us_per_delivery": cpu.server_s / deliveries * 1e6 if deliveries else None,
        "target_p99_ms": LATENCY_TARGET_S * 1000,
        "target_met": missing == 0 and p99 <= LATENCY_TARGET_S,
        "window": cpu.json(),
        "_cpu": cpu,
        "_latencies_by_message": by_seq,
    }


def bench_live(
    server: Server, fleet: Fleet, *, seconds: float, rate: float, deflate: bool
) -> dict[str, Any]:
    runner: Any
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        loop_name = "uvloop"
    except ImportError:
        runner = asyncio.Runner()
        loop_name = "asyncio"
    with runner:
        result: dict[str, Any] = runner.run(
            _live(
                server,
                fleet.gateways[0],
                fleet.watcher_tokens,
                seconds=seconds,
                rate=rate,
                deflate=deflate,
            )
        )
    result["client_loop"] = loop_name
    result["permessage_deflate"] = deflate
    return result


# --------------------------------------------------------------------------- output


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def print_machine(facts: dict[str, Any]) -> None:
    print(
        f"eCommunity cloud benchmark — {facts['cores']} cores ({facts['cpu']}),"
        f" Python {facts['python']}, PostgreSQL {facts['postgresql']}"
        f" (synchronous_commit={facts['synchronous_commit']}), Redis {facts['redis']},"
        f" open files ≤ {facts['nofile_limit']:,}\n"
    )


def print_ingest_header(args: argparse.Namespace) -> None:
    duplicates = round(args.batch * args.duplicates)
    print(
        f"1. Ingest: {args.gateways:,} gateways, {args.batch} readings per request"
        f" ({duplicates} resent), {args.clients} concurrent clients"
    )


def print_ingest(ingest: dict[str, Any]) -> None:
    server_cpu: CpuWindow = ingest["_server_cpu"]
    copy_cpu: dict[str, CpuWindow] = ingest["_copy_cpu"]
    print(
        f"   POST /api/v1/gateway/readings (cloud serve)    {_rate(ingest['server_rows_per_s']):>9}"
        f" rows/s   ({_rate(ingest['server_readings_per_s'])} readings/s sent incl. resent;"
        f" {ingest['requests']:,} requests, {ingest['rows_stored']:,} rows)"
    )
    print(f"      {server_cpu.line()}")
    print(
        f"      per stored row: server {ingest['server_cpu_us_per_row']:.1f} µs CPU,"
        f" PostgreSQL {ingest['server_postgres_cpu_us_per_row']:.1f} µs,"
        f" bench clients {ingest['server_client_cpu_us_per_row']:.1f} µs"
    )
    for copy_format, window in copy_cpu.items():
        rate = ingest[f"copy_{copy_format}_rows_per_s"]
        label = f"raw COPY ({copy_format}), same rows, batches, table"
        print(
            f"   {label:<47}{_rate(rate):>9} rows/s   (one transaction per batch,"
            f" {ingest['clients']} connections)"
        )
        per_row_us = window.postgres_s / ingest["rows_stored"] * 1e6
        print(f"      {window.line()}; PostgreSQL {per_row_us:.1f} µs CPU per row")
    met = "met" if ingest["target_met"] else "MISSED"
    print(
        f"   server / COPY ({ingest['copy_format']}, the faster): {ingest['ratio']:.0%}"
        f" — target ≥ {INGEST_TARGET:.0%}: {met}"
    )


def print_live(live: dict[str, Any]) -> None:
    cpu: CpuWindow = live["_cpu"]
    print(
        f"2. Live fan-out: 1 gateway at {live['rate_per_s']:g} msgs/s → {live['watchers']:,}"
        f" watchers over Redis ({live['messages_sent']} messages; client loop"
        f" {live['client_loop']}, permessage-deflate"
        f" {'offered as browsers do' if live['permessage_deflate'] else 'off'})"
    )
    print(
        f"   watchers connected in {live['connect_watchers_s']:.1f} s;"
        f" deliveries {live['deliveries']:,} of {live['messages_sent'] * live['watchers']:,}"
    )
    print(
        f"   latency gateway send → watcher receive: p50 {live['latency_p50_ms']:.1f} ms,"
        f" p90 {live['latency_p90_ms']:.1f} ms, p99 {live['latency_p99_ms']:.1f} ms,"
        f" max {live['latency_max_ms']:.1f} ms"
    )
    print(
        f"   per message (p50): first watcher after {live['first_watcher_p50_ms']:.1f} ms"
        f" (uplink, store, Redis), last one {live['fan_out_spread_p50_ms']:.1f} ms later"
        f" (fan-out); p50 in the first second {live['latency_p50_first_second_ms']:.1f} ms,"
        f" in the last {live['latency_p50_last_second_ms']:.1f} ms"
    )
    print(f"   bench client's own event loop stalled up to {live['client_loop_lag_max_ms']:.0f} ms")
    per_delivery = live["server_cpu_us_per_delivery"]
    if per_delivery is not None:
        print(f"   server CPU per delivery: {per_delivery:.0f} µs")
    print(f"   {cpu.line()}")
    met = "met" if live["target_met"] else "MISSED"
    print(f"   target p99 ≤ {LATENCY_TARGET_S * 1000:.0f} ms, nothing lost: {met}")


def print_summary(report: dict[str, Any]) -> None:
    print("Summary")
    ingest = report["ingest"]
    if ingest is not None:
        print(
            f"   Ingest {_rate(ingest['server_rows_per_s'])} rows/s through the API vs"
            f" {_rate(ingest['copy_rows_per_s'])} by raw COPY ({ingest['copy_format']}):"
            f" {ingest['ratio']:.0%},"
            f" {ingest['server_cpu_us_per_row']:.0f} µs server CPU per row"
            f" (target ≥ {INGEST_TARGET:.0%}: {'met' if ingest['target_met'] else 'MISSED'})"
        )
    live = report["live"]
    if live is not None:
        print(
            f"   Live   p50 {live['latency_p50_ms']:.1f} ms, p99 {live['latency_p99_ms']:.1f} ms"
            f" to {live['watchers']:,} watchers,"
            f" {live['server_cpu_us_per_delivery'] or 0:.0f} µs server CPU per delivery"
            f" (target p99 ≤ {LATENCY_TARGET_S * 1000:.0f} ms:"
            f" {'met' if live['target_met'] else 'MISSED'})"
        )
    if report["contended"]:
        print(
            "   NOTE: other processes kept the machine busy during the timed windows"
            f" ({report['others_share']:.0%} of all cores): rates and latencies are worse"
            " than on an idle machine; the CPU per row and per delivery hold."
        )
    for error in report["errors"]:
        print(f"   WRONG RESULT: {error}")
    print(f"   result: {'ok' if report['ok'] else 'FAILED (wrong results)'}")


def _public(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """A result without its private parts, NaN (nothing measured) as null: strict JSON."""
    if section is None:
        return None
    return {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in section.items()
        if not key.startswith("_")
    }


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="least upload time; live window (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    parser.add_argument("--gateways", type=int, default=1000, help="gateways (default 1,000)")
    parser.add_argument("--watchers", type=int, default=1000, help="live sockets (default 1,000)")
    parser.add_argument("--batch", type=int, default=360, help="readings per upload (default 360)")
    parser.add_argument(
        "--duplicates", type=float, default=0.1, help="resent share of a batch (default 0.1)"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent uploaders (default 4)")
    parser.add_argument("--rate", type=float, default=10.0, help="live msgs/s (default 10)")
    parser.add_argument(
        "--no-deflate",
        dest="deflate",
        action="store_false",
        help="watchers do not offer permessage-deflate (browsers do)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2 if (os.cpu_count() or 1) >= 2 else 1,
        help="cloud serve worker processes (default 2 on 2+ cores)",
    )
    parser.add_argument(
        "--only", choices=("ingest", "live"), help="run one of the two benchmarks (default both)"
    )
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL, help="admin database URL")
    parser.add_argument("--redis-url", default=REDIS_URL, help="Redis URL of the live bus")
    args = parser.parse_args(argv)
    duplicates = round(args.batch * args.duplicates)
    if (
        args.seconds <= 0
        or args.gateways < 1
        or args.watchers < 1
        or args.clients < 1
        or args.rate <= 0
        or not 1 <= args.batch <= 5000
        or not 0 <= duplicates < args.batch
    ):
        parser.error(
            "--seconds, --gateways, --watchers, --clients, --rate must be positive;"
            " --batch 1…5000; --duplicates below 1"
        )
    show = not args.json
    raise_fd_limit(args.watchers * 2 + 1024)
    try:
        facts = machine_facts(args.postgres_url, args.redis_url)
    except ServiceError as exc:
        print(f"bench/cloud.py: {exc}", file=sys.stderr)
        return 2
    if show:
        print_machine(facts)

    errors: list[str] = []
    ingest: dict[str, Any] | None = None
    live: dict[str, Any] | None = None
    with (
        tempfile.TemporaryDirectory(prefix="ecommunity-bench-") as tmp,
        bench_database(args.postgres_url) as url,
    ):
        fleet = seed(url, args.gateways, args.watchers)
        server = Server(url, args.redis_url, Path(tmp), workers=args.workers)
        try:
            server.wait_ready()
            if args.only != "live":
                if show:
                    print_ingest_header(args)
                try:
                    ingest = bench_ingest(
                        server,
                        url,
                        fleet,
                        seconds=args.seconds,
                        batch_size=args.batch,
                        duplicates=duplicates,
                        clients=args.clients,
                        show=show,
                    )
                    if show:
                        print_ingest(ingest)
                        print()
                except WrongResultError as exc:
                    errors.append(f"ingest: {exc}")
            if args.only != "ingest":
                try:
                    live = bench_live(
                        server, fleet, seconds=args.seconds, rate=args.rate, deflate=args.deflate
                    )
                    if show:
                        print_live(live)
                        print()
                except WrongResultError as exc:
                    errors.append(f"live: {exc}")
        finally:
            server.stop()
        if errors and show:
            print(f"   server log (last lines):\n{server.log_tail()}")

    windows: list[CpuWindow] = []
    if ingest is not None:
        windows += [ingest["_server_cpu"], *ingest["_copy_cpu"].values()]
    if live is not None:
        windows.append(live["_cpu"])
    wall = sum(window.wall_s for window in windows)
    others_share = sum(window.others_s for window in windows) / (wall * CORES) if wall else 0.0
    report: dict[str, Any] = {
        "machine": facts,
        "others_share": others_share,
        "contended": others_share > CONTENDED_SHARE,
        "seconds": args.seconds,
        "ingest": _public(ingest),
        "live": _public(live),
        "errors": errors,
        "ok": not errors,
    }
    if show:
        print_summary(report)
    else:
        json.dump(report, sys.stdout, indent=2)
        print()
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
