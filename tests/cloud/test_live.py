"""The live relay in one instance (in-process bus), on SQLite and PostgreSQL: the gateway's
uplink socket, the browser's live socket, and the stream orders between them."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from ecommunity.cloud.db.models import Device, Meter, MinuteReading, RawReading, User, UserSession
from ecommunity.cloud.live.bus import InProcessBus
from ecommunity.cloud.live.hub import LiveHub
from ecommunity.cloud.live.uplink import MAX_INVALID_IN_A_ROW
from ecommunity.cloud.security import new_token, token_hash

GATEWAY_WS = "/api/v1/gateway/ws"
SESSION_COOKIE = "ecommunity_session"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

_numbers = itertools.count(1)


@dataclass(frozen=True)
class Owner:
    """A user with a login, a paired gateway and its meter, inserted straight into the DB."""

    user_id: int
    session_token: str
    device_id: int
    device_token: str
    meter_id: int

    @property
    def user_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.session_token}"}

    @property
    def device_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.device_token}"}

    def live_url(self, meter_id: int | None = None) -> str:
        return f"/api/v1/live?meter={meter_id or self.meter_id}"


def seed_owner(sessions: sessionmaker[Session], *, session_ttl: timedelta | None = None) -> Owner:
    """Insert a user, a login, a device and its meter (serial ``""``) and return their secrets."""
    number = next(_numbers)
    now = datetime.now(UTC)
    session_token, device_token = new_token(), new_token()
    with sessions() as db:
        user = User(
            email=f"live{number}@example.org",
            display_name="Live",
            password_hash="not used",
            created_at=now,
        )
        db.add(user)
        db.flush()
        db.add(
            UserSession(
                user_id=user.id,
                token_hash=token_hash(session_token),
                csrf_token=new_token(),
                created_at=now,
                expires_at=now + (session_ttl or timedelta(days=1)),
            )
        )
        device = Device(
            user_id=user.id,
            hardware_id=f"hw-{number}",
            name="Gateway",
            token_hash=token_hash(device_token),
            created_at=now,
        )
        db.add(device)
        db.flush()
        meter = Meter(device_id=device.id, serial="", profile="amis", created_at=now)
        db.add(meter)
        db.commit()
        return Owner(user.id, session_token, device.id, device_token, meter.id)


def reading(index: int, **changes: Any) -> dict[str, Any]:
    """A ReadingIn as JSON; ``power_import_w`` carries the index so receivers can match it."""
    body: dict[str, Any] = {
        "meter_serial": "",
        "profile": "amis",
        "measured_at": (T0 + timedelta(seconds=index)).isoformat(),
        "energy_import_wh": 1_000_000 + index,
        "energy_export_wh": 500_000,
        "power_import_w": index,
        "power_export_w": 0,
    }
    body.update(changes)
    return body


def receive(ws: WebSocketTestSession, timeout_s: float = 5.0) -> dict[str, Any]:
    """The next JSON message; a close raises WebSocketDisconnect; nothing within the timeout
    fails the test instead of hanging it."""

    async def next_message() -> Any:
        with anyio.fail_after(timeout_s):
            return await ws._send_rx.receive()

    message = ws.portal.call(next_message)
    ws._raise_on_close(message)
    data: dict[str, Any] = json.loads(message.get("text") or message["bytes"])
    return data


def closed_with(ws: WebSocketTestSession) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as closed:
        receive(ws)
    return closed.value


@contextlib.contextmanager
def watching(
    client: TestClient, owner: Owner, headers: dict[str, str] | None = None
) -> Iterator[WebSocketTestSession]:
    """A watcher of the owner's meter, subscribed (it got its first message)."""
    url = owner.live_url()
    with client.websocket_connect(url, headers=headers or owner.user_headers) as ws:
        assert receive(ws) == {"type": "watching", "meter_id": owner.meter_id}
        yield ws


@pytest.fixture
def sessions(client: TestClient) -> sessionmaker[Session]:
    made: sessionmaker[Session] = client.app.state.sessions  # type: ignore[attr-defined]
    return made


@pytest.fixture
def owner(sessions: sessionmaker[Session]) -> Owner:
    return seed_owner(sessions)


@pytest.fixture
def gateway(client: TestClient, owner: Owner) -> Iterator[WebSocketTestSession]:
    """The owner's gateway, connected and told that nobody watches yet."""
    with client.websocket_connect(GATEWAY_WS, headers=owner.device_headers) as ws:
        assert receive(ws) == {"type": "stream", "raw": False}
        yield ws


def count(sessions: sessionmaker[Session], model: type[MinuteReading] | type[RawReading]) -> int:
    with sessions() as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


# --- the gateway's uplink ------------------------------------------------------------------------


def test_uplink_refuses_without_a_device_token(client: TestClient, owner: Owner) -> None:
    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer forged-token"},
        owner.user_headers,
    ):
        with client.websocket_connect(GATEWAY_WS, headers=headers) as ws:
            closed = closed_with(ws)
        assert closed.code == 4401, headers
        assert closed.reason


def test_uplink_refuses_a_revoked_token(
    client: TestClient, owner: Owner, sessions: sessionmaker[Session]
) -> None:
    with sessions() as db:
        device = db.get(Device, owner.device_id)
        assert device is not None
        device.revoked_at = datetime.now(UTC)
        db.commit()
    with client.websocket_connect(GATEWAY_WS, headers=owner.device_headers) as ws:
        closed = closed_with(ws)
    assert (closed.code, closed.reason) == (4401, "the device token is unknown or revoked")


def test_minute_reading_is_stored_then_acknowledged(
    gateway: WebSocketTestSession, sessions: sessionmaker[Session]
) -> None:
    sent = reading(1, measured_at="2025-03-01T13:00:01+01:00")
    gateway.send_json({"type": "minute", "reading": sent})
    ack = receive(gateway)
    assert ack["type"] == "ack"
    assert datetime.fromisoformat(ack["measured_at"]) == datetime.fromisoformat(sent["measured_at"])
    assert count(sessions, MinuteReading) == 1
    # Sent again (the gateway missed the ack): acknowledged again, stored once.
    gateway.send_json({"type": "minute", "reading": sent})
    assert receive(gateway)["type"] == "ack"
    assert count(sessions, MinuteReading) == 1


def test_raw_reading_is_stored_without_ack(
    gateway: WebSocketTestSession, sessions: sessionmaker[Session]
) -> None:
    gateway.send_json({"type": "raw", "reading": reading(1)})
    gateway.send_json({"type": "minute", "reading": reading(2)})
    # The first answer is the minute reading's ack: raw pushes are never acknowledged.
    assert receive(gateway) == {"type": "ack", "measured_at": "2025-03-01T12:00:02Z"}
    assert (count(sessions, RawReading), count(sessions, MinuteReading)) == (1, 1)


INVALID_FRAMES = [
    "not json",
    "{",
    "[]",
    '"minute"',
    json.dumps({"type": "minute"}),
    json.dumps({"type": "hello", "reading": reading(1)}),
    json.dumps({"reading": reading(1)}),
    json.dumps({"type": "minute", "reading": reading(1), "extra": 1}),
    json.dumps({"type": "minute", "reading": reading(1, energy_import_wh="lots")}),
    json.dumps({"type": "minute", "reading": reading(1, energy_import_wh=-5)}),
    json.dumps({"type": "minute", "reading": reading(1, surprise=True)}),
    json.dumps({"type": "minute", "reading": reading(1, measured_at="2025-03-01T12:00:00")}),
    json.dumps({"type": "raw", "reading": reading(1, meter_serial="x" * 65)}),
    json.dumps({"type": "minute", "reading": reading(1, pad="x" * 70_000)}),
]


def test_invalid_messages_get_an_error_and_the_socket_stays(
    gateway: WebSocketTestSession, sessions: sessionmaker[Session]
) -> None:
    for index, frame in enumerate(INVALID_FRAMES):
        gateway.send_text(frame)
        error = receive(gateway)
        assert error["type"] == "error", frame[:80]
        assert error["code"] == "invalid_message"
        assert error["detail"]
        assert "x" * 65 not in error["detail"], "the reason must not echo the message"
        # A valid message in between: the socket is still up, and strikes start afresh.
        gateway.send_json({"type": "minute", "reading": reading(index)})
        assert receive(gateway)["type"] == "ack"
    assert count(sessions, MinuteReading) == len(INVALID_FRAMES)


def test_binary_frames_carry_json_too(gateway: WebSocketTestSession) -> None:
    gateway.send_bytes(b"\xff\xfe garbage")
    assert receive(gateway)["type"] == "error"
    gateway.send_json({"type": "minute", "reading": reading(1)}, mode="binary")
    assert receive(gateway)["type"] == "ack"


def test_repeated_invalid_messages_close_the_uplink(gateway: WebSocketTestSession) -> None:
    for _ in range(MAX_INVALID_IN_A_ROW - 1):
        gateway.send_text("{")
        assert receive(gateway)["type"] == "error"
    gateway.send_text("{")
    closed = closed_with(gateway)
    assert closed.code == 1008
    assert "invalid messages" in (closed.reason or "")


def test_a_flagged_reading_reaches_watchers_with_its_flag(
    gateway: WebSocketTestSession, client: TestClient, owner: Owner
) -> None:
    """A counter that runs backwards is stored flagged; watchers see the flag."""
    with watching(client, owner) as watcher:
        assert receive(gateway) == {"type": "stream", "raw": True}
        gateway.send_json({"type": "minute", "reading": reading(1, energy_import_wh=2_000_000)})
        assert receive(gateway)["type"] == "ack"
        gateway.send_json({"type": "minute", "reading": reading(2, energy_import_wh=1_000)})
        assert receive(gateway)["type"] == "ack"
        assert receive(watcher)["flags"] == []
        assert receive(watcher)["flags"] == ["counter_backwards"]


# --- revocation ---------------------------------------------------------------------------------


def _revoke_in_db(sessions: sessionmaker[Session], device_id: int) -> None:
    with sessions() as db:
        device = db.get(Device, device_id)
        assert device is not None
        device.revoked_at = datetime.now(UTC)
        db.commit()


def test_device_revoked_closes_the_uplink_at_once(
    client: TestClient, gateway: WebSocketTestSession, owner: Owner, sessions: sessionmaker[Session]
) -> None:
    _revoke_in_db(sessions, owner.device_id)
    hub: LiveHub = client.app.state.live  # type: ignore[attr-defined]
    client.portal.call(hub.device_revoked, owner.device_id)  # type: ignore[union-attr]
    closed = closed_with(gateway)
    assert (closed.code, closed.reason) == (4401, "the device token was revoked")
    assert hub.gateway_count() == 0


def test_deleting_the_device_closes_its_uplink(
    client: TestClient, gateway: WebSocketTestSession, owner: Owner, sessions: sessionmaker[Session]
) -> None:
    """Through the devices API: another user cannot, the owner can, and the socket closes."""
    stranger = seed_owner(sessions)
    url = f"/api/v1/devices/{owner.device_id}"
    assert client.delete(url).status_code == 401
    assert client.delete(url, headers=stranger.user_headers).status_code == 404
    gateway.send_json({"type": "minute", "reading": reading(1)})
    assert receive(gateway)["type"] == "ack", "still connected"
    assert client.delete(url, headers=owner.user_headers).status_code == 204
    assert closed_with(gateway).code == 4401


def test_a_revoked_device_cannot_send_even_unannounced(
    gateway: WebSocketTestSession, owner: Owner, sessions: sessionmaker[Session]
) -> None:
    """Revoked in the database, but the hint never came: the next message closes the uplink."""
    _revoke_in_db(sessions, owner.device_id)
    gateway.send_json({"type": "minute", "reading": reading(1)})
    assert closed_with(gateway).code == 4401
    assert count(sessions, MinuteReading) == 0


# --- the browser's live socket ------------------------------------------------------------------


def test_watcher_receives_readings_and_the_gateway_streams_meanwhile(
    client: TestClient, gateway: WebSocketTestSession, owner: Owner
) -> None:
    with watching(client, owner) as watcher:
        assert receive(gateway) == {"type": "stream", "raw": True}
        gateway.send_json({"type": "raw", "reading": reading(1)})
        gateway.send_json({"type": "minute", "reading": reading(2)})
        assert receive(watcher) == {
            "type": "reading",
            "meter_id": owner.meter_id,
            "raw": True,
            "measured_at": "2025-03-01T12:00:01Z",
            "energy_import_wh": 1_000_001,
            "energy_export_wh": 500_000,
            "power_import_w": 1,
            "power_export_w": 0,
            "flags": [],
        }
        minute = receive(watcher)
        assert (minute["raw"], minute["power_import_w"]) == (False, 2)
        assert receive(gateway)["type"] == "ack"
    assert receive(gateway) == {"type": "stream", "raw": False}


def test_gateway_connecting_while_watched_streams_at_once(client: TestClient, owner: Owner) -> None:
    with (
        watching(client, owner),
        client.websocket_connect(GATEWAY_WS, headers=owner.device_headers) as gateway,
    ):
        assert receive(gateway) == {"type": "stream", "raw": True}


def test_two_watchers_keep_the_stream_until_both_leave(
    client: TestClient, gateway: WebSocketTestSession, owner: Owner
) -> None:
    with watching(client, owner):
        assert receive(gateway) == {"type": "stream", "raw": True}
        with watching(client, owner) as second:
            gateway.send_json({"type": "raw", "reading": reading(1)})
            assert receive(second)["power_import_w"] == 1
        # One left, one watches: no stop order. The next message proves nothing else came.
        gateway.send_json({"type": "minute", "reading": reading(2)})
        assert receive(gateway)["type"] == "ack"
    assert receive(gateway) == {"type": "stream", "raw": False}


def test_watcher_signed_in_by_cookie(
    client: TestClient, gateway: WebSocketTestSession, owner: Owner
) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={owner.session_token}", "Origin": "http://testserver"}
    with watching(client, owner, cookie) as watcher:
        assert receive(gateway) == {"type": "stream", "raw": True}
        gateway.send_json({"type": "raw", "reading": reading(7)})
        assert receive(watcher)["power_import_w"] == 7


LIVE_REFUSALS = [
    ("/api/v1/live?meter={meter}", {}, 4401),
    ("/api/v1/live?meter={meter}", {"Authorization": "Bearer forged"}, 4401),
    ("/api/v1/live?meter={meter}", {"Authorization": "Token abc"}, 4401),
    ("/api/v1/live?meter={meter}", {"Cookie": f"{SESSION_COOKIE}=forged"}, 4401),
    ("/api/v1/live?meter={meter}", {"Authorization": "Bearer {device}"}, 4401),
    ("/api/v1/live?meter={other}", {"Authorization": "Bearer {session}"}, 4404),
    ("/api/v1/live?meter=99999", {"Authorization": "Bearer {session}"}, 4404),
    ("/api/v1/live", {"Authorization": "Bearer {session}"}, 4400),
    ("/api/v1/live?meter=abc", {"Authorization": "Bearer {session}"}, 4400),
    ("/api/v1/live?meter=-1", {"Authorization": "Bearer {session}"}, 4400),
    ("/api/v1/live?meter=99999999999999999999", {"Authorization": "Bearer {session}"}, 4400),
    (
        "/api/v1/live?meter={meter}",
        {"Cookie": f"{SESSION_COOKIE}={{session}}", "Origin": "https://evil.example"},
        4403,
    ),
]


def test_live_refusals(client: TestClient, owner: Owner, sessions: sessionmaker[Session]) -> None:
    other = seed_owner(sessions)
    values = {
        "meter": owner.meter_id,
        "other": other.meter_id,
        "session": owner.session_token,
        "device": owner.device_token,
    }
    hub: LiveHub = client.app.state.live  # type: ignore[attr-defined]
    for url, headers, code in LIVE_REFUSALS:
        sent = {name: value.format(**values) for name, value in headers.items()}
        with client.websocket_connect(url.format(**values), headers=sent) as ws:
            closed = closed_with(ws)
        assert (closed.code, url, headers) == (code, url, headers)
        assert closed.reason
    watchers = client.portal.call(hub.bus.subscriber_count, f"meter:{owner.meter_id}")  # type: ignore[union-attr]
    assert watchers == 0


def test_live_refuses_an_expired_session(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    expired = seed_owner(sessions, session_ttl=timedelta(seconds=-1))
    with client.websocket_connect(expired.live_url(), headers=expired.user_headers) as ws:
        assert closed_with(ws).code == 4401


def test_live_delivery_latency_p99_under_250_ms(
    client: TestClient, gateway: WebSocketTestSession, owner: Owner
) -> None:
    """From the gateway's send to the watcher's receipt, stored on the way, 200 times.

    One reading at a time, as meters push (every 1-10 s): a burst would measure the queue
    behind it, not the delivery. (test_multi_instance measures real sockets across two
    instances.)
    """
    latencies_s: list[float] = []
    with watching(client, owner) as watcher:
        assert receive(gateway) == {"type": "stream", "raw": True}
        for index in range(200):
            sent_at = time.perf_counter()
            gateway.send_json({"type": "raw", "reading": reading(index)})
            assert receive(watcher)["power_import_w"] == index
            latencies_s.append(time.perf_counter() - sent_at)
    latencies_s.sort()
    p99 = latencies_s[int(len(latencies_s) * 0.99) - 1]
    assert p99 < 0.250, f"p99 {p99 * 1000:.1f} ms"


# --- the in-process bus -------------------------------------------------------------------------


def test_in_process_bus_counts_and_fans_out() -> None:
    async def scenario() -> None:
        bus = InProcessBus()
        await bus.start()
        first, second = await bus.subscribe("a"), await bus.subscribe("a")
        assert await bus.subscriber_count("a") == 2
        await bus.publish("a", "one")
        await bus.publish("b", "nobody")
        assert (await first.get(), await second.get()) == ("one", "one")
        await first.close()
        await first.close()
        assert await bus.subscriber_count("a") == 1
        await second.close()
        assert await bus.subscriber_count("a") == 0
        await bus.close()

    anyio.run(scenario)


def test_a_slow_subscriber_loses_the_oldest_messages() -> None:
    async def scenario() -> None:
        bus = InProcessBus()
        subscription = await bus.subscribe("a")
        for index in range(1005):
            await bus.publish("a", str(index))
        assert subscription.dropped == 5
        assert await subscription.get() == "5"

    anyio.run(scenario)


def test_a_meter_first_seen_in_a_backfill_streams_once_watched(
    client: TestClient, gateway: WebSocketTestSession, owner: Owner, sessions: sessionmaker[Session]
) -> None:
    """A meter the gateway names first in an HTTP backfill joins its open uplink at once: a
    watcher of it turns raw streaming on without waiting for the next minute reading."""
    response = client.post(
        "/api/v1/gateway/readings",
        json={"readings": [reading(0, meter_serial="SECOND-METER")]},
        headers=owner.device_headers,
    )
    assert response.status_code == 200
    with sessions() as db:
        meter_id = db.scalar(select(Meter.id).where(Meter.serial == "SECOND-METER"))
    assert meter_id is not None
    url = f"/api/v1/live?meter={meter_id}"
    with client.websocket_connect(url, headers=owner.user_headers) as watcher:
        assert receive(watcher) == {"type": "watching", "meter_id": meter_id}
        assert receive(gateway) == {"type": "stream", "raw": True}
