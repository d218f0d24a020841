"""Section 4 of ``gateway.py``: the peak memory of a running ``ecommunity gateway run``.

The gateway reads a pty meter (real AMIS frames, ``rate`` per second), uploads to the bench's
cloud when paired, and has its local API polled (status, latest reading, 15-minute history,
dashboard, one live WebSocket) if it serves one. ``VmHWM`` in ``/proc/PID/status`` is the peak
resident set of the process since it started.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from _gateway_cloud import clean_env, free_port
from _pty_meter import KEY, PtyMeter, make_frame, open_pty
from ecommunity.gateway.service import read_status
from ecommunity.gateway.settings import (
    DATABASE_FILE_NAME,
    STATUS_FILE_NAME,
    DeviceCredentials,
    SecretsFile,
)

RSS_TARGET_MB: Final = 80.0
#: How often the local API is polled and the RSS sampled while the gateway runs. [s]
POLL_S: Final = 0.25


def gateway_command() -> list[str]:
    """``ecommunity`` from the bench's environment (the console script), else ``-m``."""
    script = Path(sys.executable).with_name("ecommunity")
    if script.exists():
        return [str(script)]
    found = shutil.which("ecommunity")
    return [found] if found else [sys.executable, "-m", "ecommunity"]


def memory_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of ``pid`` in kB (empty once the process is gone)."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def _stored(db: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            (count,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(count)


class LocalApiPoller:
    """Polls the gateway's local API, if it answers; counts the answers by endpoint."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.client = httpx.Client(base_url=self.base, timeout=5)
        self.answers: Counter[str] = Counter()
        self.served = False
        self.live_messages = 0
        self.live_error = ""
        self._stop = threading.Event()
        self._live: threading.Thread | None = None

    def probe(self) -> bool:
        with contextlib.suppress(httpx.TransportError):
            self.client.get("/api/v1/status")
            self.served = True
        return self.served

    def poll(self) -> None:
        now = datetime.now(UTC)
        params = {
            "from": (now - timedelta(hours=2)).isoformat(),
            "to": now.isoformat(),
            "resolution": "15min",
        }
        for path, query in (
            ("/api/v1/status", None),
            ("/api/v1/readings/latest", None),
            ("/api/v1/readings", params),
            ("/", None),
        ):
            try:
                response = self.client.get(path, params=query)
                self.answers[f"GET {path} {response.status_code}"] += 1
            except httpx.TransportError as exc:
                self.answers[f"GET {path} {type(exc).__name__}"] += 1
        if self._live is None:
            self._live = threading.Thread(target=self._watch, name="live", daemon=True)
            self._live.start()

    def _watch(self) -> None:
        try:
            with connect(f"ws://127.0.0.1:{self.port}/api/v1/live", open_timeout=5) as ws:
                while not self._stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        ws.recv(timeout=0.2)
                        self.live_messages += 1
        except (OSError, WebSocketException) as exc:
            self.live_error = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        """Stop polling and watching (idempotent)."""
        self._stop.set()
        if self._live is not None:
            self._live.join(5)
        self.client.close()

    def describe(self) -> str:
        if not self.served:
            return f"not served on --http-port {self.port} (connection refused): measured without"
        live = (
            f"WS /api/v1/live {self.live_messages} messages"
            if not self.live_error
            else f"WS /api/v1/live failed ({self.live_error})"
        )
        polled = ", ".join(f"{name} ×{n}" for name, n in sorted(self.answers.items()))
        return f"polled every {POLL_S:g} s: {polled}; {live}"


def bench_rss(
    data_dir: Path,
    *,
    seconds: float,
    rate: float,
    meter_start: datetime,
    first_index: int,
    credentials: DeviceCredentials | None,
) -> dict[str, Any]:
    """Run the gateway for ``seconds`` after its first stored reading; measure its memory."""
    data_dir.mkdir(parents=True)
    if credentials is not None:
        SecretsFile(data_dir / "secrets.json").save_credentials(credentials)
    pty = open_pty()
    port = free_port()
    args = [
        *gateway_command(), "gateway", "run", "--serial-port", pty.path, "--line", "9600-8N1",
        "--key", KEY.hex(), "--data-dir", str(data_dir), "--http-port", str(port),
    ]  # fmt: skip
    if credentials is not None:
        args += ["--cloud-url", credentials.cloud_url]
    meter = PtyMeter(
        pty.master,
        lambda i: make_frame(first_index + i, meter_start),
        count=None,
        interval_s=1 / rate,
    )
    poller = LocalApiPoller(port)
    db = data_dir / DATABASE_FILE_NAME
    errors: list[str] = []
    samples: list[int] = []
    log = data_dir.parent / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=clean_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        meter.start()
        deadline = time.monotonic() + 30
        while _stored(db) == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway stored no reading")
            poller.probe()
            time.sleep(0.1)
        poller.probe()
        end = time.monotonic() + seconds
        while time.monotonic() < end and proc.poll() is None:
            if poller.served:
                poller.poll()
            samples.append(memory_kb(proc.pid).get("VmRSS", 0))
            time.sleep(POLL_S)
        memory = memory_kb(proc.pid)
        status = read_status(data_dir / STATUS_FILE_NAME) or {}
        poller.close()  # before the stop, which closes the live socket with 1012
        if poller.served and not poller.live_error and poller.live_messages == 0:
            errors.append("the live WebSocket of the local API delivered no reading")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
        if code != 0:
            errors.append(f"the gateway exited with {code} after SIGTERM")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        errors.append(f"{exc}\n{_tail(log)}")
        memory, status = memory_kb(proc.pid), {}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        time.sleep(0.2)  # the last acknowledgements reach the meter
        meter.stop()
        poller.close()
        pty.close()
    stored = _stored(db)
    if meter.error is not None:
        errors.append(f"the pty meter failed: {meter.error!r}")
    if stored != meter.acks:
        errors.append(f"{stored} readings stored, {meter.acks} acknowledged")
    hwm_mb = memory.get("VmHWM", 0) / 1024
    uplink = (status.get("uplink") or {}) if credentials is not None else {}
    return {
        "seconds": seconds,
        "rate_per_s": rate,
        "command": " ".join(args[len(gateway_command()) :]),
        "uplink": (
            f"paired: uplink {uplink.get('state', '?')},"
            f" minutes uploaded {uplink.get('minutes_uploaded', 0)}"
            if credentials is not None
            else "local-only"
        ),
        "local_api": poller.describe(),
        "local_api_served": poller.served,
        "vm_hwm_mb": hwm_mb,
        "vm_rss_mb": memory.get("VmRSS", 0) / 1024,
        "vm_rss_first_mb": samples[0] / 1024 if samples else None,
        "vm_rss_median_mb": sorted(samples)[len(samples) // 2] / 1024 if samples else None,
        "readings_stored": stored,
        "target_mb": RSS_TARGET_MB,
        "target_met": 0 < hwm_mb < RSS_TARGET_MB,
        "errors": errors,
    }


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
