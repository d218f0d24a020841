"""``ecommunity cloud serve | migrate`` as an operator runs them: real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.services import scratch_postgres_database


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
