"""``ecommunity cloud serve | migrate`` as an operator runs them: real processes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from websockets.asyncio.client import ClientConnection, connect

from tests.cloud.test_live import reading, seed_owner
from tests.services import REDIS_URL, require, scratch_postgres_database


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    # The embedded defaults: no database or bus URL from the caller's environment.
    return {k: v for k, v in os.environ.items() if not k.startswith("ECOMMUNITY_CLOUD_")}


def test_serve_embedded_then_sigterm_exits_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecommunity", "cloud", "serve", "--port", str(port),
         "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "cloud serve ended before it answered"
                assert time.monotonic() < deadline, "cloud serve did not answer within 30 s"
                time.sleep(0.1)
        assert response.status_code == 200
        assert (tmp_path / "data" / "cloud.sqlite3").exists()  # migrated by serve itself
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def test_serve_refuses_an_unmigrated_postgresql_then_migrate_fixes_it() -> None:
    with scratch_postgres_database("ecommunity_cli", migrated=False) as url:
        env = {**_env(), "ECOMMUNITY_CLOUD_DATABASE_URL": url}
        serve = [sys.executable, "-m", "ecommunity", "cloud", "serve", "--port", str(_free_port())]
        refused = subprocess.run(
            serve, capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert refused.returncode == 1
        assert "not migrated" in refused.stderr
        assert "ecommunity cloud migrate" in refused.stderr
        migrated = subprocess.run(
            [sys.executable, "-m", "ecommunity", "cloud", "migrate"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        assert "current schema" in migrated.stderr


def test_serve_workers_refuses_without_a_bus(tmp_path: Path) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "ecommunity", "cloud", "serve", "--workers", "2",
         "--port", str(_free_port()), "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, env=_env(), timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "ECOMMUNITY_CLOUD_BUS_URL" in refused.stderr
    assert not (tmp_path / "data").exists()  # refused before doing anything


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _holder(workers: set[int], server_port: int, client_port: int) -> int:
    """The worker whose socket is the server end of the client's connection from client_port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1].rpartition(":")[2], fields[2].rpartition(":")[2]
            if int(local, 16) == server_port and int(remote, 16) == client_port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds the connection from port {client_port}")


async def _next(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
    return data


def test_serve_workers_on_postgresql_and_redis(tmp_path: Path) -> None:
    redis = make_url(REDIS_URL.replace("redis://", "postgresql://", 1))
    require("Redis", redis.host or "127.0.0.1", redis.port or 6379)
    bus_url = f"redis://{redis.host or '127.0.0.1'}:{redis.port or 6379}/{random.randrange(1, 16)}"
    with scratch_postgres_database("ecommunity_workers") as url:
        engine = create_engine(url)
        owner = seed_owner(sessionmaker(engine, expire_on_commit=False))
        engine.dispose()
        port = _free_port()
        log = tmp_path / "serve.log"
        env = {**_env(), "ECOMMUNITY_CLOUD_DATABASE_URL": url, "ECOMMUNITY_CLOUD_BUS_URL": bus_url}
        with log.open("wb") as output:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ecommunity", "cloud", "serve", "--workers", "2",
                 "--port", str(port)],
                stdout=output, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        try:
            _serve_workers_scenario(proc, port, log, owner)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _serve_workers_scenario(
    proc: subprocess.Popen[bytes], port: int, log: Path, owner: Any
) -> None:
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"cloud serve ended:\n{log.read_text()}"
        with httpx.Client() as http:
            try:
                if http.get(f"{base}/openapi.json", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
        assert time.monotonic() < deadline, f"did not answer within 30 s:\n{log.read_text()}"
        time.sleep(0.1)
    # Both workers up (each logs its start-up), alive, and children of the supervisor.
    deadline = time.monotonic() + 30
    while len(re.findall(r"Application startup complete", log.read_text())) < 2:
        assert time.monotonic() < deadline, f"second worker did not start:\n{log.read_text()}"
        time.sleep(0.1)
    workers = {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log.read_text())}
    assert len(workers) == 2
    assert workers <= _children(proc.pid)

    async def scenario() -> None:
        # Many requests, each on a connection of its own, all answered.
        async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as http:
            responses = await asyncio.gather(
                *(http.get(f"{base}/openapi.json", timeout=10) for _ in range(100))
            )
        assert all(response.status_code == 200 for response in responses)

        # A gateway and several watchers land on whichever workers: live data reaches all.
        ws = f"ws://127.0.0.1:{port}"
        async with connect(
            f"{ws}/api/v1/gateway/ws", additional_headers=owner.device_headers
        ) as gateway:
            assert await _next(gateway) == {"type": "stream", "raw": False}
            watchers = [
                await connect(
                    f"{ws}/api/v1/live?meter={owner.meter_id}",
                    additional_headers=owner.user_headers,
                )
                for _ in range(4)
            ]
            try:
                # Until some watcher is on the other worker than the gateway (the kernel hands
                # each connection to whichever worker accepts first).
                holders = {_holder(workers, port, gateway.local_address[1])}
                while len(holders) < 2 and len(watchers) < 40:
                    holders |= {_holder(workers, port, w.local_address[1]) for w in watchers}
                    if len(holders) < 2:
                        watchers.append(
                            await connect(
                                f"{ws}/api/v1/live?meter={owner.meter_id}",
                                additional_headers=owner.user_headers,
                            )
                        )
                assert holders == workers, "every connection landed on one worker"
                for watcher in watchers:
                    assert await _next(watcher) == {"type": "watching", "meter_id": owner.meter_id}
                assert await _next(gateway) == {"type": "stream", "raw": True}
                for index in range(20):
                    await gateway.send(json.dumps({"type": "raw", "reading": reading(index)}))
                for watcher in watchers:
                    got = [(await _next(watcher))["power_import_w"] for _ in range(20)]
                    assert got == list(range(20))
            finally:
                for watcher in watchers:
                    await watcher.close()
            assert await _next(gateway) == {"type": "stream", "raw": False}

    asyncio.run(scenario())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, log.read_text()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
