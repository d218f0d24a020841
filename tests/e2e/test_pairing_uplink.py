"""End to end, with real processes: ``ecommunity cloud serve`` and ``ecommunity gateway run``
reading a fake AMIS meter on a pty.

The meter's clock runs 200 times faster than the wall clock (a push every 50 ms carrying 10 s
more meter time), so that a minute passes in 0.3 s. The scenario: a user signs up; the gateway
shows a pairing code, the user confirms it, the gateway collects its token; a browser-like
client watches live and sees raw readings arrive; the cloud goes down while the gateway goes on
storing, comes back, and gets every missing minute exactly once; the history has energy per
quarter hour from the counters; the user revokes the gateway, whose uplink stops with a clear
status while it goes on storing readings locally.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from ecommunity.gateway.service import read_status
from tests.e2e.processes import (
    MINUTE,
    PASSWORD,
    Cloud,
    Gateway,
    free_port,
    last_of_each_minute,
    local_readings,
    wait_until,
)
from tests.gateway.fake_meter import KEY, FakeAmisMeter, Pty

pytestmark = pytest.mark.slow

#: Meter time per push and wall time between pushes: meter time runs 200 times faster.
STEP = timedelta(seconds=10)
PUSH_INTERVAL_S = 0.05


def test_pair_stream_outage_backfill_history_revoke(pty_pair: Pty, tmp_path: Path) -> None:
    cloud = Cloud.embedded(tmp_path)
    gateway = Gateway.create(tmp_path, pty_pair.path, cloud_url=cloud.url)
    gateway_dir = gateway.data_dir
    db = gateway.db
    # A minute before a quarter hour: the first quarter hour has a counter reading before it.
    four_hours_ago = datetime.now(UTC) - timedelta(hours=4)
    start = four_hours_ago.replace(minute=four_hours_ago.minute // 15 * 15, second=0, microsecond=0)
    start -= MINUTE
    meter = FakeAmisMeter(pty_pair.master, push_interval_s=PUSH_INTERVAL_S, step=STEP, start=start)

    def status() -> dict[str, Any]:
        return read_status(gateway_dir / "status.json") or {}

    def uplink(key: str) -> Any:
        assert gateway.alive(), f"the gateway exited:\n{gateway.logs()}"
        return (status().get("uplink") or {}).get(key)

    api = httpx.Client(base_url=cloud.url, timeout=10)
    try:
        cloud.start_and_wait()
        created = api.post(
            "/api/v1/auth/register",
            json={"email": "anna@example.org", "password": PASSWORD, "display_name": "Anna"},
        )
        assert created.status_code == 201, created.text
        login = api.post(
            "/api/v1/auth/login", json={"email": "anna@example.org", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        api.cookies.clear()

        meter.start()
        gateway.start()

        # -- pairing: the gateway shows a code, the user confirms it -------------------------
        def user_code() -> str | None:
            assert gateway.alive(), f"the gateway exited:\n{gateway.logs()}"
            pairing = status().get("pairing") or {}
            code: str | None = pairing.get("user_code")
            return code

        code = wait_until(user_code, 20, "the pairing code")
        assert f"enter the code {code}" in gateway.stdout.read_text()
        activated = api.post("/api/v1/devices/activate", json={"user_code": code, "name": "Home"})
        assert activated.status_code == 201, activated.text
        device_id = activated.json()["id"]
        wait_until(lambda: uplink("state") == "online", 15, "the uplink to connect")
        assert status()["pairing"]["state"] == "paired"
        secrets = json.loads((gateway_dir / "secrets.json").read_text())
        assert secrets["device_id"] == device_id
        assert secrets["key"] == KEY.hex()
        assert oct((gateway_dir / "secrets.json").stat().st_mode & 0o777) == "0o600"
        assert secrets["device_token"] not in gateway.stderr.read_text()  # never logged

        meters = wait_until(lambda: api.get("/api/v1/meters").json() or None, 10, "the meter")
        (cloud_meter,) = meters
        meter_id = cloud_meter["id"]
        assert cloud_meter["profile"] == "amis"

        # -- live: raw readings arrive while someone watches ---------------------------------
        live_url = f"ws://127.0.0.1:{cloud.port}/api/v1/live?meter={meter_id}"
        bearer = {"Authorization": api.headers["Authorization"]}
        with connect(live_url, additional_headers=bearer, open_timeout=5) as live:
            assert json.loads(live.recv(timeout=5)) == {"type": "watching", "meter_id": meter_id}
            raw: list[dict[str, Any]] = []
            deadline = time.monotonic() + 10
            while len(raw) < 10:
                assert time.monotonic() < deadline, f"only {len(raw)} raw readings arrived"
                message = json.loads(live.recv(timeout=5))
                if message["raw"]:
                    raw.append(message)
        times = [datetime.fromisoformat(m["measured_at"]) for m in raw]
        assert times == sorted(times)
        assert len(set(times)) == len(times)
        sent = {frame.reading.meter_timestamp for frame in meter.sent}
        assert set(times) <= sent
        wait_until(lambda: uplink("raw_streaming") is False, 10, "raw streaming to stop")
        raw_sent = uplink("raw_sent")
        assert raw_sent >= 10

        # -- outage: the cloud goes away, the gateway keeps storing --------------------------
        cloud.stop()  # uvicorn re-raises SIGTERM after its clean shutdown: no exit code 0
        wait_until(lambda: uplink("state") == "offline", 10, "the uplink to notice")
        through_before = uplink("uploaded_through")
        outage_from = local_readings(db)[-1][0]
        wait_until(
            lambda: local_readings(db)[-1][0] >= outage_from + 20 * MINUTE, 15, "20 meter minutes"
        )
        assert uplink("uploaded_through") == through_before
        assert uplink("raw_sent") == raw_sent

        cloud.start_and_wait()
        back_at = local_readings(db)[-1][0]
        target = (back_at - MINUTE).replace(second=0, microsecond=0)
        wait_until(
            lambda: (
                (t := uplink("uploaded_through")) is not None
                and datetime.fromisoformat(t) >= target
            ),
            20,
            "the backfill",
        )
        through = datetime.fromisoformat(uplink("uploaded_through"))

        # -- every minute exactly once: the last reading of each, as stored locally ----------
        history = api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={
                "from": start.isoformat(),
                "to": (through + MINUTE).isoformat(),
                "resolution": "1min",
            },
        )
        assert history.status_code == 200, history.text
        got = [
            (datetime.fromisoformat(r["measured_at"]), r["energy_import_wh"])
            for r in history.json()
        ]
        expected = last_of_each_minute(local_readings(db), through + MINUTE)
        assert got == expected
        assert expected[0][0] < start + MINUTE  # from the very first minute on
        assert all(r["flags"] == [] for r in history.json())
        outage = [at for at, _ in got if outage_from <= at <= back_at]
        assert len(outage) >= 19

        # -- history: energy per quarter hour from the counters ------------------------------
        quarters = api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={"from": start.isoformat(), "to": through.isoformat(), "resolution": "15min"},
        )
        assert quarters.status_code == 200, quarters.text
        # Only quarter hours whose minutes have all been uploaded by now.
        complete = [
            q
            for q in quarters.json()
            if q["complete"] and datetime.fromisoformat(q["end"]) <= through
        ]
        assert complete
        # 3 Wh imported and 1 Wh exported per push, 90 pushes per quarter hour.
        assert {(q["energy_import_wh"], q["energy_export_wh"]) for q in complete} == {(270, 90)}

        # -- revocation: the uplink stops, local storing goes on -----------------------------
        revoked = api.delete(f"/api/v1/devices/{device_id}")
        assert revoked.status_code == 204, revoked.text
        wait_until(lambda: uplink("state") == "revoked", 10, "the uplink to stop")
        assert "revoked" in uplink("detail")
        # Said once the worthless token is gone from the secrets file.
        wait_until(lambda: "revoked this gateway" in gateway.stdout.read_text(), 5, "the notice")
        assert "device_token" not in json.loads((gateway_dir / "secrets.json").read_text())
        stored = len(local_readings(db))
        wait_until(lambda: len(local_readings(db)) >= stored + 20, 10, "more local readings")
        assert uplink("state") == "revoked"
        minutes_now = len(api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={"from": start.isoformat(), "to": (datetime.now(UTC)).isoformat(),
                    "resolution": "1min"},
        ).json())  # fmt: skip
        time.sleep(0.5)  # two more meter minutes
        assert len(api.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={"from": start.isoformat(), "to": (datetime.now(UTC)).isoformat(),
                    "resolution": "1min"},
        ).json()) == minutes_now  # fmt: skip

        # -- a clean stop ---------------------------------------------------------------------
        assert gateway.stop() == 0, gateway.logs()
        assert status()["state"] == "stopped"
    finally:
        api.close()
        meter.stop()
        for process in (gateway, cloud):
            if process.alive():
                process.stop(signal.SIGKILL)


@pytest.mark.parametrize("cloud_url", [None, "unreachable"])
def test_without_a_cloud_the_gateway_reads_and_stores(
    pty_pair: Pty, tmp_path: Path, cloud_url: str | None
) -> None:
    """Local-only (no cloud URL), or a cloud that never answers: the meter is read all the
    same, and SIGTERM stops the gateway cleanly."""
    if cloud_url is not None:
        cloud_url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    gateway = Gateway.create(tmp_path, pty_pair.path, cloud_url=cloud_url, verbosity=0)
    gateway_dir = gateway.data_dir
    meter = FakeAmisMeter(pty_pair.master, push_interval_s=PUSH_INTERVAL_S, step=STEP).start()
    db = gateway.db
    try:
        gateway.start()
        wait_until(lambda: len(local_readings(db)) >= 20, 10, "20 readings")
        assert gateway.alive(), gateway.logs()
        assert gateway.stop() == 0, gateway.logs()
    finally:
        meter.stop()
        if gateway.alive():
            gateway.stop(signal.SIGKILL)
    status = read_status(gateway_dir / "status.json")
    assert status is not None
    assert status["state"] == "stopped"
    assert status["uplink"] is None  # never paired
    if cloud_url is None:
        assert status["pairing"] is None
    else:
        assert status["pairing"]["state"] == "requesting_code"
        assert "retrying" in status["pairing"]["detail"]
    stored = {at for at, _ in local_readings(db)}
    assert {frame.reading.meter_timestamp for frame in meter.acked} <= stored
