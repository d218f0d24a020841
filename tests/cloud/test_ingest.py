"""Ingestion: POST /api/v1/gateway/readings and the ingest action, on SQLite and PostgreSQL.

Users and devices are made directly in the database (the account and pairing endpoints are
tested on their own): a session token and a device token, as the real flows would leave them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecommunity.cloud.actions.ingest import (
    JUMP_SLACK_WH,
    MAX_METERS_PER_DEVICE,
    ingest_readings,
    purge_old_readings,
)
from ecommunity.cloud.app import create_app
from ecommunity.cloud.db.models import (
    FLAG_COUNTER_BACKWARDS,
    FLAG_IMPLAUSIBLE_JUMP,
    Device,
    Meter,
    MinuteReading,
    RawReading,
    User,
    UserSession,
)
from ecommunity.cloud.db.readings import StoredReading, insert_readings
from ecommunity.cloud.schemas import ReadingIn
from ecommunity.cloud.security import new_token, token_hash
from ecommunity.cloud.settings import CloudSettings

URL = "/api/v1/gateway/readings"
T0 = datetime(2024, 6, 15, 10, 0, 7, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Account:
    user_id: int
    headers: dict[str, str]


@dataclass(frozen=True)
class Gateway:
    device_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def db_session(client: TestClient) -> Session:
    session: Session = client.app.state.sessions()  # type: ignore[attr-defined]
    return session


def add_account(client: TestClient, email: str = "anna@example.org") -> Account:
    """A user with a live session, as a login leaves them."""
    now = datetime.now(UTC)
    token = new_token()
    with db_session(client) as db:
        user = User(email=email, display_name="Anna", password_hash="x", created_at=now)
        db.add(user)
        db.flush()
        db.add(
            UserSession(
                user_id=user.id,
                token_hash=token_hash(token),
                csrf_token=new_token(),
                created_at=now,
                expires_at=now + timedelta(days=1),
            )
        )
        db.commit()
        return Account(user_id=user.id, headers={"Authorization": f"Bearer {token}"})


def add_gateway(client: TestClient, account: Account, hardware_id: str = "pi-1") -> Gateway:
    """A gateway paired to ``account``, as the device grant leaves it."""
    token = new_token()
    with db_session(client) as db:
        device = Device(
            user_id=account.user_id,
            hardware_id=hardware_id,
            name="Keller",
            token_hash=token_hash(token),
            created_at=datetime.now(UTC),
        )
        db.add(device)
        db.commit()
        return Gateway(device_id=device.id, token=token)


def device_row(client: TestClient, gateway: Gateway) -> Device:
    with db_session(client) as db:
        device = db.get(Device, gateway.device_id)
        assert device is not None
        return device


def reading(
    at: datetime,
    energy_import_wh: int | None = 1000,
    energy_export_wh: int | None = 0,
    serial: str = "1KFM0200012345",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "meter_serial": serial,
        "profile": "amis",
        "measured_at": at.isoformat(),
        "energy_import_wh": energy_import_wh,
        "energy_export_wh": energy_export_wh,
        **extra,
    }


def upload(client: TestClient, gateway: Gateway, readings: list[dict[str, Any]]) -> dict[str, int]:
    response = client.post(URL, json={"readings": readings}, headers=gateway.headers)
    assert response.status_code == 200, response.text
    body: dict[str, int] = response.json()
    return body


def stored_flags(client: TestClient) -> dict[datetime, int]:
    with db_session(client) as db:
        rows = db.execute(select(MinuteReading.measured_at, MinuteReading.flags)).all()
    return {(at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC): f for at, f in rows}


@pytest.fixture
def gateway(client: TestClient) -> Gateway:
    return add_gateway(client, add_account(client))


def test_upload_stores_once_and_reupload_counts_duplicates(
    client: TestClient, gateway: Gateway
) -> None:
    day = [reading(T0 + k * MINUTE, 1000 + 5 * k, 10 + k) for k in range(30)]
    assert upload(client, gateway, day) == {"accepted": 30, "duplicates": 0, "flagged": 0}
    assert upload(client, gateway, day) == {"accepted": 0, "duplicates": 30, "flagged": 0}
    # Part old, part new, and one reading twice in the same upload.
    more = day[-5:] + [reading(T0 + k * MINUTE, 1000 + 5 * k, 10 + k) for k in range(30, 35)]
    more.append(more[-1])
    assert upload(client, gateway, more) == {"accepted": 5, "duplicates": 6, "flagged": 0}
    assert len(stored_flags(client)) == 35


def test_same_instant_in_another_offset_is_a_duplicate(
    client: TestClient, gateway: Gateway
) -> None:
    upload(client, gateway, [reading(T0)])
    vienna = reading(T0)
    vienna["measured_at"] = T0.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert upload(client, gateway, [vienna]) == {"accepted": 0, "duplicates": 1, "flagged": 0}


def test_first_reading_binds_the_meter(client: TestClient, gateway: Gateway) -> None:
    with db_session(client) as db:
        assert db.scalar(select(func.count()).select_from(Meter)) == 0
    upload(client, gateway, [reading(T0), reading(T0, serial="second", profile="dsmr")])
    with db_session(client) as db:
        meters = db.scalars(select(Meter).order_by(Meter.id)).all()
        assert [(m.device_id, m.serial, m.profile) for m in meters] == [
            (gateway.device_id, "1KFM0200012345", "amis"),
            (gateway.device_id, "second", "dsmr"),
        ]
        device = db.get(Device, gateway.device_id)
        assert device is not None
        assert device.last_seen_at is not None


def test_late_reading_is_accepted_between_stored_ones(client: TestClient, gateway: Gateway) -> None:
    upload(client, gateway, [reading(T0, 1000), reading(T0 + 2 * MINUTE, 1020)])
    late = upload(client, gateway, [reading(T0 + MINUTE, 1010)])
    assert late == {"accepted": 1, "duplicates": 0, "flagged": 0}
    # Older than everything stored: accepted too.
    earlier = upload(client, gateway, [reading(T0 - MINUTE, 995)])
    assert earlier == {"accepted": 1, "duplicates": 0, "flagged": 0}
    assert set(stored_flags(client).values()) == {0}


def test_counter_running_backwards_is_flagged_and_later_readings_are_not(
    client: TestClient, gateway: Gateway
) -> None:
    readings = [
        reading(T0, 1000, 50),
        reading(T0 + MINUTE, 900, 50),  # import ran backwards
        reading(T0 + 2 * MINUTE, 1010, 40),  # export ran backwards
        reading(T0 + 3 * MINUTE, 1020, 50),  # fine against the last good reading
    ]
    assert upload(client, gateway, readings) == {"accepted": 4, "duplicates": 0, "flagged": 2}
    flags = stored_flags(client)
    assert flags[T0 + MINUTE] == FLAG_COUNTER_BACKWARDS
    assert flags[T0 + 2 * MINUTE] == FLAG_COUNTER_BACKWARDS
    assert flags[T0 + 3 * MINUTE] == 0


def test_late_reading_above_its_stored_successor_is_flagged(
    client: TestClient, gateway: Gateway
) -> None:
    upload(client, gateway, [reading(T0, 1000), reading(T0 + 2 * MINUTE, 1020)])
    assert upload(client, gateway, [reading(T0 + MINUTE, 1500)])["flagged"] == 1
    assert stored_flags(client)[T0 + MINUTE] == FLAG_COUNTER_BACKWARDS


def test_implausible_jump_is_flagged(client: TestClient, gateway: Gateway) -> None:
    # 100 kW for one minute is 1666.7 Wh; the slack allows JUMP_SLACK_WH more.
    limit = 100_000 // 60 + JUMP_SLACK_WH
    readings = [
        reading(T0, 1000),
        reading(T0 + MINUTE, 1000 + limit),  # just believable
        reading(T0 + 2 * MINUTE, 1000 + limit + limit + 2),  # 2 Wh too much
        reading(T0 + 3 * MINUTE, 10**12),  # a glitch
        reading(T0 + 63 * MINUTE, 1000 + limit + 90_000),  # an hour of 90 kW: believable
    ]
    assert upload(client, gateway, readings) == {"accepted": 5, "duplicates": 0, "flagged": 2}
    flags = stored_flags(client)
    assert flags[T0 + MINUTE] == 0
    assert flags[T0 + 2 * MINUTE] == FLAG_IMPLAUSIBLE_JUMP
    assert flags[T0 + 3 * MINUTE] == FLAG_IMPLAUSIBLE_JUMP
    assert flags[T0 + 63 * MINUTE] == 0


def test_flagged_readings_are_marked_and_left_out_of_energy(
    client: TestClient, gateway: Gateway
) -> None:
    account = add_account(client, "owner2@example.org")
    own = add_gateway(client, account, "pi-2")
    start = datetime(2024, 6, 15, 10, 0, tzinfo=UTC)
    readings = [
        reading(start, 1000),
        reading(start + 5 * MINUTE, 1010),
        reading(start + 10 * MINUTE, 500),  # backwards
        reading(start + 14 * MINUTE, 10**9),  # jump, the last reading before the boundary
        reading(start + 20 * MINUTE, 1030),
        reading(start + 30 * MINUTE, 1040),
    ]
    assert upload(client, own, readings)["flagged"] == 2
    meter_id = client.get("/api/v1/meters", headers=account.headers).json()[0]["id"]
    params = {"from": start.isoformat(), "to": (start + 30 * MINUTE).isoformat()}
    response = client.get(
        f"/api/v1/meters/{meter_id}/readings", params=params, headers=account.headers
    )
    assert response.status_code == 200, response.text
    energies = [i["energy_import_wh"] for i in response.json()]
    assert energies == [10, 30]  # 1010 - 1000, then 1040 - 1010: the flagged ones skipped
    minute = client.get(
        f"/api/v1/meters/{meter_id}/readings",
        params={**params, "resolution": "1min"},
        headers=account.headers,
    ).json()
    assert [r["flags"] for r in minute] == [
        [],
        [],
        ["counter_backwards"],
        ["implausible_jump"],
        [],
    ]


def test_large_batch_with_duplicates(
    client: TestClient, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """Big enough for PostgreSQL's COPY path; 10 % of it was stored before."""
    caplog.set_level(logging.DEBUG, "ecommunity.cloud.db.postgres")
    rows = [reading(T0 + k * MINUTE, 1000 + 3 * k, 7 * k) for k in range(2000)]
    assert upload(client, gateway, rows[:200])["accepted"] == 200
    assert upload(client, gateway, rows) == {"accepted": 1800, "duplicates": 200, "flagged": 0}
    assert upload(client, gateway, rows) == {"accepted": 0, "duplicates": 2000, "flagged": 0}
    # A flagged reading in a large batch is flagged on the COPY path too.
    late = [
        reading(T0 + k * MINUTE + timedelta(seconds=30), 1000 + 3 * k + 1, 7 * k + 1)
        for k in range(150)
    ]
    late[75]["energy_import_wh"] = 0
    assert upload(client, gateway, late) == {"accepted": 150, "duplicates": 0, "flagged": 1}
    on_postgres = client.app.state.engine.dialect.name == "postgresql"  # type: ignore[attr-defined]
    assert ("COPY path: 150 of 150 rows new" in caplog.text) == on_postgres


def test_ingest_action_returns_new_rows_and_stores_raw_readings(
    client: TestClient, gateway: Gateway
) -> None:
    device = device_row(client, gateway)
    live = [
        ReadingIn(
            measured_at=T0 + timedelta(seconds=s), energy_import_wh=1000 + s, power_import_w=9
        )
        for s in range(3)
    ]
    with db_session(client) as db:
        result = ingest_readings(db, device, live, raw=True)
        again = ingest_readings(db, device, live[1:], raw=True)
        nothing = ingest_readings(db, device, [], raw=True)
        assert db.scalar(select(func.count()).select_from(RawReading)) == 3
        assert db.scalar(select(func.count()).select_from(MinuteReading)) == 0
    assert (result.accepted, result.duplicates, result.flagged) == (3, 0, 0)
    assert [row.measured_at for row in result.new] == [r.measured_at for r in live]
    assert {row.power_import_w for row in result.new} == {9}
    assert (again.accepted, again.duplicates, again.new) == (0, 2, [])
    assert nothing.accepted == 0


def test_concurrent_uploads_of_the_same_readings_store_them_once(
    client: TestClient, gateway: Gateway
) -> None:
    """A gateway that retries while its first upload is still running: no reading twice."""
    device = device_row(client, gateway)
    batch = [
        ReadingIn(meter_serial="m", measured_at=T0 + k * MINUTE, energy_import_wh=1000 + k)
        for k in range(300)
    ]
    with db_session(client) as db:
        ingest_readings(db, device, batch[:1])  # the meter exists; the race is on readings

    def run(_: int) -> tuple[int, int]:
        with db_session(client) as db:
            result = ingest_readings(db, device, batch)
            return result.accepted, result.duplicates

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(4)))
    assert sum(accepted for accepted, _ in results) == 299
    assert all(accepted + duplicates == 300 for accepted, duplicates in results)
    assert len(stored_flags(client)) == 300


def test_insert_skips_rows_stored_behind_the_callers_back(
    client: TestClient, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """What a concurrent upload leaves: rows the caller thinks new are stored already. On
    PostgreSQL the direct COPY fails then and the staging path takes over."""
    device = device_row(client, gateway)
    with db_session(client) as db:
        ingest_readings(db, device, [ReadingIn(measured_at=T0 - MINUTE, energy_import_wh=1)])
        meter_id = db.scalars(select(Meter.id)).one()
    rows = [
        StoredReading(meter_id, T0 + k * MINUTE, 1 + k, None, None, None, 0) for k in range(200)
    ]
    caplog.set_level(logging.DEBUG, "ecommunity.cloud.db.postgres")
    with db_session(client) as db:
        assert len(insert_readings(db, MinuteReading, rows[:150], T0)) == 150
        db.commit()
        inserted = insert_readings(db, MinuteReading, rows, T0)
        db.commit()
    assert inserted == {(meter_id, row.measured_at) for row in rows[150:]}
    assert len(stored_flags(client)) == 201
    on_postgres = client.app.state.engine.dialect.name == "postgresql"  # type: ignore[attr-defined]
    assert ("concurrent duplicate: staging instead" in caplog.text) == on_postgres


def test_retention_drops_old_readings(client: TestClient, gateway: Gateway) -> None:
    now = datetime.now(UTC)
    device = device_row(client, gateway)
    old = [ReadingIn(measured_at=now - timedelta(days=10), energy_import_wh=1)]
    new = [ReadingIn(measured_at=now - timedelta(days=1), energy_import_wh=2)]
    with db_session(client) as db:
        for raw in (True, False):
            ingest_readings(db, device, old, raw=raw)
            ingest_readings(db, device, new, raw=raw)
        gone = purge_old_readings(db, raw_retention_days=7, minute_retention_days=30, now=now)
        assert gone == (1, 0)
        assert db.scalar(select(func.count()).select_from(RawReading)) == 1
        assert db.scalar(select(func.count()).select_from(MinuteReading)) == 2


def test_too_many_meters_is_refused_and_stores_nothing(
    client: TestClient, gateway: Gateway
) -> None:
    rows = [reading(T0, serial=f"m{k}") for k in range(MAX_METERS_PER_DEVICE + 1)]
    response = client.post(URL, json={"readings": rows}, headers=gateway.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "too_many_meters"
    assert stored_flags(client) == {}


# --- authentication ---------------------------------------------------------------------------


def test_upload_needs_a_live_device_token(client: TestClient, gateway: Gateway) -> None:
    body = {"readings": [reading(T0)]}
    assert client.post(URL, json=body).status_code == 401
    forged = {"Authorization": f"Bearer {new_token()}"}
    assert client.post(URL, json=body, headers=forged).status_code == 401
    assert client.post(URL, json=body, headers={"Authorization": "Basic eDp5"}).status_code == 401
    # A user's session token is not a device token.
    user = add_account(client, "someone@example.org")
    assert client.post(URL, json=body, headers=user.headers).status_code == 401
    with db_session(client) as db:
        device = db.get(Device, gateway.device_id)
        assert device is not None
        device.revoked_at = datetime.now(UTC)
        db.commit()
    response = client.post(URL, json=body, headers=gateway.headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert stored_flags(client) == {}


# --- bad input --------------------------------------------------------------------------------


BAD_BATCHES: list[Any] = [
    {"readings": []},
    {},
    {"readings": [reading(T0)], "extra": 1},
    {"readings": [reading(T0, unknown_field=1)]},
    {"readings": [reading(T0, -1)]},
    {"readings": [reading(T0, energy_export_wh=-5)]},
    {"readings": [reading(T0, "lots")]},
    {"readings": [reading(T0, power_import_w=-1)]},
    {"readings": [reading(T0, 10**16)]},
    {"readings": [{**reading(T0), "measured_at": "2024-06-15T10:00:00"}]},
    {"readings": [{**reading(T0), "measured_at": "yesterday"}]},
    {"readings": [{**reading(T0), "meter_serial": "x" * 65}]},
    {"readings": [{"energy_import_wh": 1}]},
    {"readings": "not a list"},
    {"readings": [None]},
    [reading(T0)],
]


def test_bad_batches_are_refused(client: TestClient, gateway: Gateway) -> None:
    # One test for all: each case needs a fresh app, and these are cheap to check together.
    for body in BAD_BATCHES:
        response = client.post(URL, json=body, headers=gateway.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"]
    assert stored_flags(client) == {}


def test_impossible_times_are_refused(client: TestClient, gateway: Gateway) -> None:
    for measured_at in (
        "1999-12-31T23:59:59+00:00",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        (datetime.now(UTC) + timedelta(days=2)).isoformat(),
    ):
        body = {"readings": [reading(T0), {**reading(T0), "measured_at": measured_at}]}
        response = client.post(URL, json=body, headers=gateway.headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "implausible_time"
        assert "clock" in response.json()["detail"]
    assert stored_flags(client) == {}


def test_unstorable_text_is_refused(client: TestClient, gateway: Gateway) -> None:
    headers = {**gateway.headers, "content-type": "application/json"}
    # json.dumps escapes both, as a client would: "\u0000", "\ud800". Validation refuses
    # the lone surrogate; PostgreSQL would refuse the NUL, so ingestion does first.
    for serial, code in (("a\x00b", "bad_text"), ("\ud800", "invalid_request")):
        content = json.dumps({"readings": [reading(T0, serial=serial)]}).encode()
        response = client.post(URL, content=content, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code, response.text
    assert stored_flags(client) == {}


def test_malformed_json_is_refused(client: TestClient, gateway: Gateway) -> None:
    headers = {**gateway.headers, "content-type": "application/json"}
    for content in (b'{"readings": [', b"\xff\xfe", b"null", b""):
        response = client.post(URL, content=content, headers=headers)
        assert response.status_code == 422, (content, response.text)


def test_a_body_not_sent_as_json_is_refused(client: TestClient, gateway: Gateway) -> None:
    content = json.dumps({"readings": [reading(T0)]}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "json"):
        headers = {**gateway.headers, "content-type": content_type}
        response = client.post(URL, content=content, headers=headers)
        assert response.status_code == 422, (content_type, response.text)
        assert response.json()["code"] == "invalid_request"
    for content_type in ("application/json; charset=utf-8", "application/vnd.reading+json"):
        headers = {**gateway.headers, "content-type": content_type}
        assert client.post(URL, content=content, headers=headers).status_code == 200
    assert len(stored_flags(client)) == 1


def test_openapi_documents_the_batch_body(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][URL]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert operation["requestBody"]["required"] is True
    readings = schema["properties"]["readings"]
    assert readings["maxItems"] == 5000
    assert "measured_at" in readings["items"]["required"]
    assert "$ref" not in json.dumps(schema)


@pytest.fixture
def roomy_client(settings: CloudSettings) -> Iterator[TestClient]:
    """A client whose body limit lets 5,001 readings reach validation."""
    app = create_app(settings.model_copy(update={"max_request_bytes": 4_000_000}))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def test_batch_size_is_bounded(roomy_client: TestClient) -> None:
    gateway = add_gateway(roomy_client, add_account(roomy_client))
    rows = [reading(T0 + k * MINUTE, 1000 + k) for k in range(5001)]
    response = roomy_client.post(URL, json={"readings": rows}, headers=gateway.headers)
    assert response.status_code == 422
    assert "5000" in json.dumps(response.json())
    assert upload(roomy_client, gateway, rows[:5000])["accepted"] == 5000


def test_body_over_the_limit_is_refused(
    client: TestClient, gateway: Gateway, settings: CloudSettings
) -> None:
    copies = settings.max_request_bytes // len(json.dumps(reading(T0))) + 1
    body = json.dumps({"readings": [reading(T0)] * copies}).encode()
    assert len(body) > settings.max_request_bytes
    response = client.post(
        URL, content=body, headers={**gateway.headers, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert str(settings.max_request_bytes) in response.json()["detail"]
