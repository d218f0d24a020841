"""The local API and dashboard of the real ``ecommunity gateway run`` process, reading a fake AMIS
meter on a pty: status, latest reading, live WebSocket, energy per interval from the counters,
bad parameters, and the setup mode that checks a key against the live meter before saving it.

The meter's clock runs 200 times faster than the wall clock (a push every 50 ms carrying 10 s
of meter time), so that quarter hours pass in seconds.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.e2e.processes import clean_env, free_port, wait_until
from tests.gateway.fake_meter import KEY, START, FakeAmisMeter, Pty, open_pty
from tests.gateway.gateway_process import start_gateway

pytestmark = pytest.mark.slow

STEP = timedelta(seconds=10)
PUSH_INTERVAL_S = 0.05


@pytest.fixture
def pty_pair() -> Iterator[Pty]:
    pair = open_pty()
    yield pair
    pair.close()


@pytest.fixture
def meter(pty_pair: Pty) -> Iterator[FakeAmisMeter]:
    fake = FakeAmisMeter(pty_pair.master, push_interval_s=PUSH_INTERVAL_S, step=STEP)
    yield fake
    fake.stop()


def stored_counters(db: Path) -> list[tuple[int, int, int]]:
    """(meter time [ms], +A, -A) of every stored reading, oldest first."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT meter_timestamp_ms, energy_import_wh, energy_export_wh FROM readings "
            "ORDER BY meter_timestamp_ms"
        ).fetchall()
    return [(int(a), int(b), int(c)) for a, b, c in rows]


def counter_at(rows: list[tuple[int, int, int]], at_ms: int) -> tuple[int, int] | None:
    before = [row for row in rows if row[0] <= at_ms]
    return None if not before else (before[-1][1], before[-1][2])


def iso(at: datetime) -> str:
    return at.isoformat()


def test_local_only_gateway_serves_status_readings_history_and_live(
    pty_pair: Pty, meter: FakeAmisMeter, tmp_path: Path
) -> None:
    meter.start()
    gateway = start_gateway(
        tmp_path, "--serial-port", pty_pair.path, "--line", "9600-8N1", "--key", KEY.hex(),
        "--name", "Keller",
    )  # fmt: skip
    try:
        # Live: the latest reading at once, then every new one within 100 ms of its commit.
        with connect(f"ws://127.0.0.1:{gateway.port}/api/v1/live", open_timeout=5) as ws:
            json.loads(ws.recv(timeout=5))
            delays_ms = []
            live: list[dict[str, Any]] = []
            while len(live) < 60:
                message = json.loads(ws.recv(timeout=5))
                arrived = datetime.now(UTC)
                stored = datetime.fromisoformat(message["received_at"])
                delays_ms.append((arrived - stored) / timedelta(milliseconds=1))
                live.append(message)
        assert max(delays_ms) < 100, sorted(delays_ms)[-5:]
        stamps = [item["meter_timestamp"] for item in live]
        assert len(set(stamps)) == len(stamps), "a reading came twice"
        assert all(
            later["energy_import_wh"] > earlier["energy_import_wh"]
            for earlier, later in itertools.pairwise(live)
        )

        # Forty minutes of meter time: two whole quarter hours and more.
        wait_until(lambda: meter.next_index > 250, 30, "40 minutes of meter time")
        db = gateway.data_dir / "readings.sqlite3"
        rows = stored_counters(db)

        status = gateway.get("/api/v1/status").json()
        assert status["name"] == "Keller"
        assert status["setup"] == "ready"
        assert status["meter"] == {"profile": "amis", "serial_port": pty_pair.path}
        assert status["reader"]["running"] is True
        assert status["reader"]["readings_stored"] >= len(live)
        assert status["reader"]["frame_errors"] == {}
        assert 0 <= status["reader"]["last_reading_age_s"] < 2
        assert status["uplink"] is None
        assert status["cloud_url"] is None

        latest = gateway.get("/api/v1/readings/latest").json()
        assert latest["profile"] == "amis"
        assert latest["energy_import_wh"] >= rows[-1][1]
        assert set(latest) >= {"meter_timestamp", "power_import_w", "obis", "received_at"}

        # Energy per quarter hour equals the counter differences at the boundaries.
        start, end = START, START + timedelta(minutes=30)
        answer = gateway.get(
            "/api/v1/readings", resolution="15min", **{"from": iso(start), "to": iso(end)}
        )
        assert answer.status_code == 200, answer.text
        intervals = answer.json()["intervals"]
        assert [item["start"] for item in intervals] == [
            iso(start), iso(start + timedelta(minutes=15))
        ]  # fmt: skip
        for item in intervals:
            first = counter_at(rows, int(datetime.fromisoformat(item["start"]).timestamp() * 1000))
            last = counter_at(rows, int(datetime.fromisoformat(item["end"]).timestamp() * 1000))
            assert last is not None
            assert first is not None  # the first push comes at START
            assert item["complete"] is True
            assert item["energy_import_wh"] == last[0] - first[0]
            assert item["energy_export_wh"] == last[1] - first[1]
        # The meter adds 3 Wh per push of 10 s: 270 Wh in a whole quarter hour.
        assert intervals[1]["energy_import_wh"] == 270

        minutes = gateway.get(
            "/api/v1/readings", resolution="1min", **{"from": iso(start), "to": iso(end)}
        ).json()["intervals"]
        assert len(minutes) == 30
        # Six pushes of 3 Wh a minute.
        assert [m["energy_import_wh"] for m in minutes] == [18] * 30
        assert sum(m["energy_import_wh"] for m in minutes) == sum(
            q["energy_import_wh"] for q in intervals
        )
        raw = gateway.get(
            "/api/v1/readings", resolution="raw",
            **{"from": iso(start), "to": iso(start + timedelta(minutes=5))},
        ).json()["readings"]  # fmt: skip
        assert len(raw) == 30  # pushes at 0 s, 10 s, ... 290 s
        assert [item["energy_import_wh"] for item in raw] == [12_000_000 + 3 * i for i in range(30)]

        today = gateway.get("/api/v1/energy/today").json()
        assert set(today) == {"meter_id", "day", "since", "energy_import_wh", "energy_export_wh"}

        # The dashboard and its assets are served from the package.
        page = gateway.get("/")
        assert page.status_code == 200
        assert 'src="/assets/app.js"' in page.text
        for asset in ("/assets/app.js", "/assets/style.css", "/manifest.webmanifest"):
            assert gateway.get(asset).status_code == 200, asset
        assert "/api/v1/readings" in gateway.get("/openapi.json").json()["paths"]
    finally:
        code = gateway.stop()
    assert code == 0, gateway.logs()


def test_bad_requests_get_4xx_with_a_reason(pty_pair: Pty, tmp_path: Path) -> None:
    gateway = start_gateway(
        tmp_path, "--serial-port", pty_pair.path, "--line", "9600-8N1", "--key", KEY.hex()
    )
    try:
        # No reading yet (the meter is not started): a clear 404, not an empty 200.
        nothing = gateway.get("/api/v1/readings/latest")
        assert nothing.status_code == 404
        assert nothing.json() == {"detail": "no reading stored yet", "code": "no-reading"}
        cases: list[tuple[dict[str, str], int, str]] = [
            ({"resolution": "5min"}, 422, "resolution"),
            ({"from": "yesterday"}, 422, "from"),
            ({"from": "2024-06-01T10:00:00"}, 422, "UTC offset"),
            ({"from": "2024-06-02T00:00:00Z", "to": "2024-06-01T00:00:00Z"}, 422, "before"),
            (
                {
                    "from": "2000-01-01T00:00:00Z",
                    "to": "2024-01-01T00:00:00Z",
                    "resolution": "1min",
                },
                422,
                "coarser resolution",
            ),
            ({"meter": "x" * 100}, 422, "meter"),
        ]
        for params, status, reason in cases:
            answer = gateway.get("/api/v1/readings", **params)
            assert answer.status_code == status, (params, answer.text)
            assert reason in answer.json()["detail"], (params, answer.text)
        assert gateway.get("/api/v1/nothing").status_code == 404
        assert httpx.delete(gateway.url + "/api/v1/status").status_code == 405
        # The gateway is set up: writes need JSON, and a reason when refused.
        plain = httpx.post(
            gateway.url + "/api/v1/setup/gateway",
            content=b"name=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert plain.status_code == 415
        assert plain.json()["code"] == "json-only"
        invalid = gateway.post("/api/v1/setup/gateway", {"name": "", "colour": "red"})
        assert invalid.status_code == 422
        assert "name" in invalid.json()["detail"]
        assert "colour" in invalid.json()["detail"]
        assert gateway.proc.poll() is None
    finally:
        code = gateway.stop()
    assert code == 0, gateway.logs()


def test_setup_mode_checks_the_key_against_the_meter_before_saving(
    pty_pair: Pty, tmp_path: Path
) -> None:
    meter = FakeAmisMeter(pty_pair.master, push_interval_s=0.2, step=STEP).start()
    gateway = start_gateway(tmp_path)
    try:
        status = gateway.get("/api/v1/status").json()
        assert status["setup"] == "setup"
        assert status["reader"]["running"] is False
        setup = gateway.get("/api/v1/setup").json()
        assert setup["open"] is True
        assert setup["meter"]["key_set"] is False
        assert "amis" in {profile["name"] for profile in setup["profiles"]}
        assert "/#setup" in gateway.log.read_text()

        choice = {"serial_port": pty_pair.path, "profile": "amis", "line": "9600-8N1"}
        wrong = gateway.post("/api/v1/setup/meter", choice | {"key": "00" * 16})
        assert wrong.status_code == 422
        assert wrong.json()["code"] == "wrong-key"
        assert wrong.json()["detail"].startswith("wrong key")
        assert not (gateway.data_dir / "secrets.json").exists()
        assert gateway.get("/api/v1/status").json()["setup"] == "setup"

        short = gateway.post("/api/v1/setup/meter", choice | {"key": "0011" * 7 + "zz" * 2})
        assert short.status_code == 422
        assert "hex" in short.json()["detail"]
        missing = gateway.post(
            "/api/v1/setup/meter", choice | {"serial_port": "/dev/ttyNOPE", "key": KEY.hex()}
        )
        assert missing.status_code == 422
        assert missing.json()["code"] == "port-error"
        assert "/dev/ttyNOPE" in missing.json()["detail"]

        right = gateway.post("/api/v1/setup/meter", choice | {"key": KEY.hex(" ")})
        assert right.status_code == 200, right.text
        assert right.json()["reading"]["energy_import_wh"] >= 12_000_000
        wait_until(
            lambda: gateway.get("/api/v1/status").json()["reader"]["readings_stored"] >= 5,
            10,
            "readings after setup",
        )
        assert gateway.get("/api/v1/status").json()["setup"] == "ready"
        secrets = gateway.data_dir / "secrets.json"
        assert secrets.stat().st_mode & 0o777 == 0o600
        assert json.loads(secrets.read_text())["key"] == KEY.hex()
        saved = json.loads((gateway.data_dir / "setup.json").read_text())
        assert saved == {"serial_port": pty_pair.path, "profile": "amis", "line": "9600-8N1"}
        assert KEY.hex() not in gateway.log.read_text()
        named = gateway.post("/api/v1/setup/gateway", {"name": "  Keller   Nord "})
        assert named.json()["name"] == "Keller Nord"
    finally:
        code = gateway.stop()
    assert code == 0, gateway.logs()

    # A restart needs no setup: the saved settings are used.
    again = start_gateway(tmp_path)
    try:
        wait_until(
            lambda: again.get("/api/v1/status").json()["reader"]["readings_stored"] >= 3,
            10,
            "readings after the restart",
        )
        status = again.get("/api/v1/status").json()
        assert (status["setup"], status["name"]) == ("ready", "Keller Nord")
        assert again.get("/api/v1/setup").json()["open"] is False
    finally:
        code = again.stop()
        meter.stop()
    assert code == 0, again.logs()


def host_address() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_settings_are_closed_to_the_network_once_set_up(pty_pair: Pty, tmp_path: Path) -> None:
    address = host_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    port = free_port()
    env = clean_env()
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecommunity", "gateway", "run", "--data-dir",
             str(tmp_path / "gw"), "--http-host", "0.0.0.0", "--http-port", str(port),
             "--no-mdns", "--serial-port", pty_pair.path, "--line", "9600-8N1",
             "--key", KEY.hex()],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://{address}:{port}"

        def answers() -> bool:
            try:
                return httpx.get(url + "/api/v1/status", timeout=2).is_success
            except httpx.TransportError:
                return False

        wait_until(answers, 20, "the local API on the host address")
        # Reading is open to the home network; changing settings is not.
        refused = httpx.post(url + "/api/v1/setup/gateway", json={"name": "Evil"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "setup-closed"
        allowed = httpx.post(f"http://127.0.0.1:{port}/api/v1/setup/gateway", json={"name": "Ok"})
        assert allowed.status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, log.read_text()[-3000:]


def discover(interface: str, gateway_id: str) -> dict[str, Any] | None:
    """What ``ecommunity gateway discover --json`` (a real process) says about one gateway."""
    done = subprocess.run(
        [sys.executable, "-m", "ecommunity", "gateway", "discover", "--json", "--timeout", "2",
         "--interface", interface],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    found = [entry for entry in json.loads(done.stdout) if entry["id"] == gateway_id]
    return found[0] if found else None


def test_the_gateway_announces_itself_and_its_setup_state_over_mdns(
    pty_pair: Pty, tmp_path: Path
) -> None:
    from tests.multicast import multicast_interface

    interface = multicast_interface()
    meter = FakeAmisMeter(pty_pair.master, push_interval_s=0.2, step=STEP).start()
    gateway = start_gateway(
        tmp_path, "--name", "Keller", env={"ECOMMUNITY_GATEWAY_MDNS": "true",
        "ECOMMUNITY_GATEWAY_MDNS_INTERFACES": json.dumps([interface])},
    )  # fmt: skip
    try:
        gateway_id = gateway.get("/api/v1/status").json()["gateway_id"]
        found = wait_until(lambda: discover(interface, gateway_id), 20, "the announcement")
        assert found["setup_state"] == "setup"
        assert found["name"] == "Keller"
        assert found["url"] == f"http://{interface}:{gateway.port}/"
        # The dashboard is where the announcement says.
        assert httpx.get(found["url"], timeout=5).status_code == 200

        choice = {"serial_port": pty_pair.path, "profile": "amis", "line": "9600-8N1"}
        assert gateway.post("/api/v1/setup/meter", choice | {"key": KEY.hex()}).is_success
        again = wait_until(
            lambda: (
                (entry := discover(interface, gateway_id))
                and entry["setup_state"] == "ready"
                and entry
            ),
            20,
            "the announcement of the new setup state",
        )
        assert again["id"] == gateway_id
    finally:
        code = gateway.stop()
        meter.stop()
    assert code == 0, gateway.logs()
    # The goodbye packets withdrew the announcement.
    assert discover(interface, gateway_id) is None
