"""A real ``ecommunity gateway run`` process with its local API on a free loopback port, for
the gateway tests (local API, dashboard in a browser, MQTT)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.processes import clean_env, free_port, wait_until


@dataclass
class Gateway:
    """A running ``ecommunity gateway run`` with its local API on ``port``."""

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=10)

    def post(self, path: str, body: dict[str, Any], timeout_s: float = 30) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=timeout_s)

    def logs(self) -> str:
        return "\n".join(self.log.read_text().splitlines()[-40:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=15)


def start_gateway(
    tmp_path: Path, *args: str, name: str = "gateway", env: dict[str, str] | None = None
) -> Gateway:
    """Start ``gateway run`` with a data dir in ``tmp_path`` and its local API on a free port."""
    port = free_port()
    data_dir = tmp_path / name
    log = tmp_path / f"{name}.log"
    environment = clean_env(
        ECOMMUNITY_GATEWAY_METER_CHECK_TIMEOUT_S="3",
        ECOMMUNITY_GATEWAY_MDNS="false",  # on only where a test needs it
    ) | (env or {})
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecommunity", "gateway", "run", "--data-dir", str(data_dir),
             "--http-host", "127.0.0.1", "--http-port", str(port), *args],
            env=environment, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    gateway = Gateway(proc, port, data_dir, log)

    def answers() -> bool:
        assert proc.poll() is None, f"the gateway exited:\n{gateway.logs()}"
        try:
            return gateway.get("/api/v1/status").is_success
        except httpx.TransportError:
            return False

    wait_until(answers, 20, "the local API")
    return gateway
