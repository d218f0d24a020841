"""GET /api/v1/meters and /api/v1/meters/{id}/readings, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.cloud.test_ingest import Account, Gateway, add_account, add_gateway, reading, upload

VIENNA = ZoneInfo("Europe/Vienna")
MINUTE = timedelta(minutes=1)


def minute_day(start: datetime, minutes: int, seed: int = 7) -> list[dict[str, Any]]:
    """Minute readings of a household with a PV system: a base load with appliance spikes,
    export around noon. Counters in whole Wh; stamps a few seconds past each minute."""
    rng = random.Random(seed)
    import_wh, export_wh = 5_123_456, 1_234_567
    carry_import = carry_export = 0.0
    readings = []
    for k in range(minutes):
        at = start + k * MINUTE + timedelta(seconds=rng.randint(0, 20))
        hour = at.astimezone(VIENNA).hour + at.minute / 60
        load_w = 250 + (2000 if rng.random() < 0.05 else 0) + rng.randint(0, 150)
        pv_w = max(0.0, 5000 * (1 - ((hour - 13) / 5) ** 2)) if 8 <= hour <= 18 else 0.0
        carry_import += max(0.0, load_w - pv_w) / 60
        carry_export += max(0.0, pv_w - load_w) / 60
        import_wh += int(carry_import)
        export_wh += int(carry_export)
        carry_import -= int(carry_import)
        carry_export -= int(carry_export)
        readings.append(
            reading(at, import_wh, export_wh, power_import_w=load_w, power_export_w=int(pv_w))
        )
    return readings


def counter_at(readings: list[dict[str, Any]], at: datetime, key: str) -> int | None:
    """The last counter at or before ``at``: the definition, computed the slow way."""
    before = [r for r in readings if datetime.fromisoformat(r["measured_at"]) <= at]
    return before[-1][key] if before else None


def history(
    client: TestClient, account: Account, meter_id: int, start: datetime, end: datetime, **q: str
) -> Any:
    params = {"from": start.isoformat(), "to": end.isoformat(), **q}
    response = client.get(
        f"/api/v1/meters/{meter_id}/readings", params=params, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def meter_id_of(client: TestClient, account: Account) -> int:
    meters = client.get("/api/v1/meters", headers=account.headers).json()
    assert len(meters) == 1
    meter_id: int = meters[0]["id"]
    return meter_id


def check_against_counters(intervals: list[dict[str, Any]], readings: list[dict[str, Any]]) -> None:
    for interval in intervals:
        start = datetime.fromisoformat(interval["start"])
        end = datetime.fromisoformat(interval["end"])
        for key in ("energy_import_wh", "energy_export_wh"):
            first, last = counter_at(readings, start, key), counter_at(readings, end, key)
            assert first is not None
            assert last is not None
            assert interval[key] == last - first, (interval, key)


@pytest.fixture
def owner(client: TestClient) -> Account:
    return add_account(client)


@pytest.fixture
def gateway(client: TestClient, owner: Account) -> Gateway:
    return add_gateway(client, owner)


def test_interval_sums_are_counter_differences_on_a_day_of_minute_data(
    client: TestClient, owner: Account, gateway: Gateway
) -> None:
    midnight = datetime(2024, 6, 15, tzinfo=VIENNA).astimezone(UTC)
    # Half an hour more on each side, so that every boundary has a reading before it.
    readings = minute_day(midnight - 30 * MINUTE, 24 * 60 + 60)
    assert upload(client, gateway, readings)["accepted"] == len(readings)
    meter_id = meter_id_of(client, owner)
    end = midnight + timedelta(days=1)
    total_import = counter_at(readings, end, "energy_import_wh")
    assert total_import is not None
    total_import -= counter_at(readings, midnight, "energy_import_wh") or 0
    counts = {"15min": 96, "1h": 24, "1d": 1}
    for resolution, count in counts.items():
        intervals = history(client, owner, meter_id, midnight, end, resolution=resolution)
        assert len(intervals) == count
        assert intervals[0]["start"] == "2024-06-14T22:00:00Z"
        assert intervals[-1]["end"] == "2024-06-15T22:00:00Z"
        assert all(i["complete"] for i in intervals)
        check_against_counters(intervals, readings)
        assert sum(i["energy_import_wh"] for i in intervals) == total_import
    # Noon exports, night imports only.
    hours = history(client, owner, meter_id, midnight, end, resolution="1h")
    assert hours[13]["energy_export_wh"] > 1000
    assert hours[2]["energy_export_wh"] == 0
    # The default resolution is a quarter hour; a range inside intervals is widened to them.
    quarter = history(client, owner, meter_id, midnight + 20 * MINUTE, midnight + 40 * MINUTE)
    assert [(q["start"], q["end"]) for q in quarter] == [
        ("2024-06-14T22:15:00Z", "2024-06-14T22:30:00Z"),
        ("2024-06-14T22:30:00Z", "2024-06-14T22:45:00Z"),
    ]


@pytest.mark.parametrize(
    ("day", "hours"), [(datetime(2024, 3, 31), 23), (datetime(2024, 10, 27), 25)]
)
def test_days_follow_vienna_midnight_on_dst_days(
    client: TestClient, owner: Account, gateway: Gateway, day: datetime, hours: int
) -> None:
    before = (day - timedelta(days=1)).replace(tzinfo=VIENNA)
    after = (day + timedelta(days=2)).replace(tzinfo=VIENNA)
    start = before.astimezone(UTC) - 5 * MINUTE
    # (Aware datetimes in the same zone subtract as wall times: convert to UTC first.)
    span = after.astimezone(UTC) - before.astimezone(UTC)
    assert span == timedelta(hours=48 + hours)
    readings = minute_day(start, span // MINUTE + 10)
    upload(client, gateway, readings)
    meter_id = meter_id_of(client, owner)
    days = history(client, owner, meter_id, before, after, resolution="1d")
    lengths = [
        (datetime.fromisoformat(d["end"]) - datetime.fromisoformat(d["start"])) / timedelta(hours=1)
        for d in days
    ]
    assert lengths == [24, hours, 24]
    for interval in days:
        local = datetime.fromisoformat(interval["start"]).astimezone(VIENNA)
        assert (local.hour, local.minute) == (0, 0)
    check_against_counters(days, readings)
    assert all(d["complete"] for d in days), days
    # Hours are UTC-aligned and as many as the local day has.
    dst_day = history(
        client,
        owner,
        meter_id,
        datetime.fromisoformat(days[1]["start"]),
        datetime.fromisoformat(days[1]["end"]),
        resolution="1h",
    )
    assert len(dst_day) == hours
    assert sum(h["energy_import_wh"] for h in dst_day) == days[1]["energy_import_wh"]
    # A range given in Vienna time that starts mid-day is widened to the local midnight.
    midday = (day + timedelta(hours=12)).replace(tzinfo=VIENNA)
    widened = history(client, owner, meter_id, midday, midday + MINUTE, resolution="1d")
    assert [(w["start"], w["end"]) for w in widened] == [(days[1]["start"], days[1]["end"])]


def test_raw_and_minute_resolutions_return_stored_readings(
    client: TestClient, owner: Account, gateway: Gateway
) -> None:
    start = datetime(2024, 6, 15, 10, tzinfo=UTC)
    readings = [reading(start + k * MINUTE, 1000 + k, 0, power_import_w=60) for k in range(10)]
    upload(client, gateway, readings)
    meter_id = meter_id_of(client, owner)
    stored = history(client, owner, meter_id, start, start + 5 * MINUTE, resolution="1min")
    # ``to`` is excluded.
    assert [r["measured_at"] for r in stored] == [
        (start + k * MINUTE).isoformat().replace("+00:00", "Z") for k in range(5)
    ]
    assert stored[0] == {
        "measured_at": "2024-06-15T10:00:00Z",
        "energy_import_wh": 1000,
        "energy_export_wh": 0,
        "power_import_w": 60,
        "power_export_w": None,
        "flags": [],
    }
    # Minute uploads are not raw live readings.
    assert history(client, owner, meter_id, start, start + MINUTE, resolution="raw") == []


def test_gaps_and_the_future_make_intervals_incomplete(
    client: TestClient, owner: Account, gateway: Gateway
) -> None:
    start = datetime(2024, 6, 15, 10, tzinfo=UTC)
    # Readings up to 10:14, none from 10:15 to 10:40, then again.
    times = [start + k * MINUTE for k in (*range(15), *range(41, 46))]
    upload(client, gateway, [reading(t, 1000 + i) for i, t in enumerate(times)])
    meter_id = meter_id_of(client, owner)
    quarters = history(client, owner, meter_id, start - timedelta(minutes=15), start + 60 * MINUTE)
    assert [q["complete"] for q in quarters] == [False, True, False, False, False]
    # Before the first reading nothing is known; with a stale end the energy is still the
    # counter difference (so sums stay right), only marked incomplete.
    assert quarters[0]["energy_import_wh"] is None
    assert [q["energy_import_wh"] for q in quarters[1:]] == [14, 0, 5, 0]
    now = datetime.now(UTC)
    upload(client, gateway, [reading(now - MINUTE, 5000)])
    upload(client, gateway, [reading(now - 40 * MINUTE, 4000)])
    current = history(client, owner, meter_id, now - 30 * MINUTE, now, resolution="1h")
    assert current[-1]["complete"] is False


def test_the_interval_where_a_meter_begins_counts_from_its_first_reading(
    client: TestClient, owner: Account, gateway: Gateway
) -> None:
    # A gateway paired at 10:07: its first minute reading says 1,000 Wh.
    start = datetime(2024, 6, 15, 10, tzinfo=UTC)
    times = [start + k * MINUTE for k in range(7, 31)]
    upload(client, gateway, [reading(t, 1000 + 2 * i) for i, t in enumerate(times)])
    meter_id = meter_id_of(client, owner)
    quarters = history(client, owner, meter_id, start - timedelta(minutes=15), start + 30 * MINUTE)
    # Nothing before the meter's history; from its first reading in the quarter it begins in
    # (never complete: the counter at the quarter's start is unknown); then whole quarters.
    assert [q["energy_import_wh"] for q in quarters] == [None, 16, 30]
    assert [q["complete"] for q in quarters] == [False, False, True]
    day = history(client, owner, meter_id, start, start + MINUTE, resolution="1d")
    assert day[0]["energy_import_wh"] == 2 * (len(times) - 1)  # the day so far, from 10:07
    assert day[0]["complete"] is False


# --- the meter list and authorization ----------------------------------------------------------


def test_meters_lists_only_the_callers_meters(
    client: TestClient, owner: Account, gateway: Gateway
) -> None:
    at = datetime(2024, 6, 15, 10, tzinfo=UTC)
    upload(client, gateway, [reading(at)])
    other = add_account(client, "other@example.org")
    other_gateway = add_gateway(client, other, "pi-other")
    upload(client, other_gateway, [reading(at, serial="theirs", profile="dsmr")])
    mine = client.get("/api/v1/meters", headers=owner.headers)
    assert mine.status_code == 200
    assert [(m["serial"], m["profile"], m["device_id"]) for m in mine.json()] == [
        ("1KFM0200012345", "amis", gateway.device_id)
    ]
    assert set(mine.json()[0]) == {"id", "serial", "profile", "device_id"}
    theirs = client.get("/api/v1/meters", headers=other.headers).json()
    assert [m["serial"] for m in theirs] == ["theirs"]
    assert (
        client.get("/api/v1/meters", headers=add_account(client, "new@x.org").headers).json() == []
    )


def test_history_of_another_users_meter_is_not_found(
    client: TestClient, owner: Account, gateway: Gateway
) -> None:
    at = datetime(2024, 6, 15, 10, tzinfo=UTC)
    upload(client, gateway, [reading(at)])
    meter_id = meter_id_of(client, owner)
    other = add_account(client, "other@example.org")
    params = {"from": at.isoformat(), "to": (at + timedelta(hours=1)).isoformat()}
    url = f"/api/v1/meters/{meter_id}/readings"
    for resolution in ("raw", "1min", "1h"):
        response = client.get(
            url, params={**params, "resolution": resolution}, headers=other.headers
        )
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    missing = client.get(
        f"/api/v1/meters/{meter_id + 1}/readings", params=params, headers=owner.headers
    )
    assert missing.status_code == 404
    # A device token is not a user's: the gateway cannot read history.
    assert client.get(url, params=params, headers=gateway.headers).status_code == 401
    assert client.get("/api/v1/meters", headers=gateway.headers).status_code == 401


def test_history_needs_a_signed_in_user(client: TestClient) -> None:
    at = datetime(2024, 6, 15, 10, tzinfo=UTC).isoformat()
    assert client.get("/api/v1/meters").status_code == 401
    assert client.get("/api/v1/meters/1/readings", params={"from": at, "to": at}).status_code == 401
    forged = {"Authorization": "Bearer not-a-session"}
    assert client.get("/api/v1/meters", headers=forged).status_code == 401


def test_bad_history_queries_are_refused(
    client: TestClient, owner: Account, gateway: Gateway
) -> None:
    at = datetime(2024, 6, 15, 10, tzinfo=UTC)
    upload(client, gateway, [reading(at)])
    meter_id = meter_id_of(client, owner)
    url = f"/api/v1/meters/{meter_id}/readings"
    later = (at + timedelta(hours=1)).isoformat()
    cases: list[tuple[dict[str, str], int]] = [
        ({"from": at.isoformat(), "to": later, "resolution": "5min"}, 422),
        ({"from": "2024-06-15T10:00:00", "to": later}, 422),
        ({"from": "soon", "to": later}, 422),
        ({"to": later}, 422),
        ({"from": later, "to": at.isoformat()}, 400),
        ({"from": at.isoformat(), "to": at.isoformat()}, 400),
        ({"from": "1970-01-01T00:00:00+00:00", "to": later}, 400),
        ({"from": at.isoformat(), "to": "9999-12-31T23:59:59-05:00"}, 400),
        ({"from": at.isoformat(), "to": "2030-01-01T00:00:00+00:00"}, 400),  # 15 min
        ({"from": at.isoformat(), "to": "2024-07-15T00:00:00+00:00", "resolution": "1min"}, 400),
        ({"from": "2000-01-01T00:00:00Z", "to": "2199-01-01T00:00:00Z", "resolution": "1d"}, 400),
    ]
    for params, status in cases:
        response = client.get(url, params=params, headers=owner.headers)
        assert response.status_code == status, (params, response.text)
        if status == 400:
            assert response.json()["code"] == "bad_range"
    for bad_id in ("abc", "0", str(2**63)):
        response = client.get(
            f"/api/v1/meters/{bad_id}/readings",
            params={"from": at.isoformat(), "to": later},
            headers=owner.headers,
        )
        assert response.status_code == 422
    # Up to the bound is allowed: a year of days, 10,000 minutes.
    year = history(client, owner, meter_id, at, at + timedelta(days=365), resolution="1d")
    assert len(year) == 366  # widened to whole Vienna days
    minutes = history(client, owner, meter_id, at, at + 10_000 * MINUTE, resolution="1min")
    assert len(minutes) == 1
