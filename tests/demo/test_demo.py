"""``ecommunity demo`` as a user runs it: a real process that starts the cloud, simulated meters
and gateway processes; ready in under 60 s; live data from the simulated meters through the
public API; the communities set up; Ctrl-C stops everything and exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from ecommunity.community.membership import parse_metering_point
from ecommunity.demo.neighbourhood import (
    DEMO_PASSWORD,
    MEMBER_EMAIL,
    OPERATOR_EMAIL,
    households,
)
from tests.e2e.processes import clean_env, free_port

pytestmark = pytest.mark.slow


def test_the_neighbourhood_is_fixed_and_valid() -> None:
    homes = households(12)
    assert len(homes) == 13
    assert [home.plant for home in homes].count(True) == 1
    assert homes[0].email == MEMBER_EMAIL
    assert homes[-1].email == OPERATOR_EMAIL
    assert homes == households(12)  # the same people on every start
    assert len({home.metering_point for home in homes}) == 13
    for home in homes:
        assert parse_metering_point(home.metering_point) == home.metering_point
        assert len(home.key) == 16
    assert len({home.key for home in homes}) == 13
    assert any(home.pv_kwp > 0 for home in homes if not home.plant)
    assert any(home.pv_kwp == 0 for home in homes)
    assert {home.profile for home in homes} >= {"amis", "wienernetze", "netznoe"}
    with pytest.raises(ValueError, match="between 1 and 200"):
        households(0)


class Demo:
    """The demo process with its output collected line by line."""

    def __init__(self, port: int, data_dir: Path, households: int) -> None:
        self.lines: list[tuple[float, str]] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ecommunity", "demo", "--port", str(port), "--data-dir",
             str(data_dir), "--households", str(households)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))

    def ready_after_s(self, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, line in self.lines:
                if line.startswith("ready: "):
                    return at
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no ready line:\n{self.output()}")

    def output(self) -> str:
        done = self.proc.poll() is not None and self.proc.stderr is not None
        errors = self.proc.stderr.read() if done and self.proc.stderr else ""
        return "\n".join(line for _, line in self.lines) + "\n" + errors


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Demo, str]]:
    port = free_port()
    running = Demo(port, tmp_path / "demo", households=4)
    yield running, f"http://127.0.0.1:{port}"
    if running.proc.poll() is None:
        running.proc.kill()
    running.proc.wait()
    running.reader.join(timeout=10)
    for stream in (running.proc.stdout, running.proc.stderr):
        if stream is not None:
            stream.close()


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_demo_is_ready_with_live_data_and_stops_cleanly(demo: tuple[Demo, str]) -> None:
    running, url = demo
    ready_s = running.ready_after_s(90)
    assert ready_s < 60, running.output()
    text = running.output()
    assert f"ready: {url}/" in text
    assert MEMBER_EMAIL in text
    assert OPERATOR_EMAIL in text
    assert "[1/6]" in text  # progress while it starts
    assert text.rstrip().splitlines()[-1].startswith("ready: ")  # the last start-up line
    # The children it started: the cloud and one gateway per household and the plant.
    assert len(children_of(running.proc.pid)) == 6

    with httpx.Client(base_url=url, timeout=10) as api:
        check_live_data_and_communities(api, url)

    running.proc.send_signal(signal.SIGINT)
    assert running.proc.wait(timeout=60) == 0, running.output()
    assert children_of(running.proc.pid) == []


def check_live_data_and_communities(api: httpx.Client, url: str) -> None:
    login = api.post("/api/v1/auth/login", json={"email": MEMBER_EMAIL, "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.text
    member = {"Authorization": f"Bearer {login.json()['access_token']}"}
    (meter,) = api.get("/api/v1/meters", headers=member).json()

    # Live: watching the meter makes its gateway stream every push (one a second).
    token = login.json()["access_token"]
    ws_url = url.replace("http", "ws") + f"/api/v1/live?meter={meter['id']}"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        times = set()
        deadline = time.monotonic() + 20
        while len(times) < 3 and time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=10))
            if message.get("raw"):
                assert message["meter_id"] == meter["id"]
                times.add(message["measured_at"])
    assert len(times) >= 3

    # The communities the operator set up, with every household a member.
    operator_login = api.post(
        "/api/v1/auth/login", json={"email": OPERATOR_EMAIL, "password": DEMO_PASSWORD}
    )
    operator = {"Authorization": f"Bearer {operator_login.json()['access_token']}"}
    found = api.get("/api/v1/communities", params={"near": "4020"}, headers=operator).json()
    local = next(c for c in found if c["name"] == "Sonnenstrom Lindenweg")
    page = api.get(f"/api/v1/communities/{local['id']}", headers=operator).json()
    assert len(page["members"]) == 5
    assert {m["status"] for m in page["members"]} == {"active"}
    assert len(found) >= 2
    own = api.get("/api/v1/memberships", headers=member).json()
    assert [m["status"] for m in own] == ["active"]
