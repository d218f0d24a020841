"""Pairing gateways with the device authorization grant (RFC 8628), the device list and revoking.

Runs on SQLite and PostgreSQL. Time is moved by editing the stored authorization, not by
sleeping.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from ecommunity.cloud.actions.devices import GRANT_TYPE, USER_CODE_ALPHABET
from ecommunity.cloud.api.devices import ONLINE_WITHIN_S
from ecommunity.cloud.db.models import Device, DeviceAuthorization
from ecommunity.cloud.deps import SESSION_COOKIE, find_device
from ecommunity.cloud.live.hub import CLOSE_UNAUTHORIZED
from ecommunity.cloud.security import token_hash
from ecommunity.cloud.settings import CloudSettings
from tests.cloud.helpers import Login, register_and_login

FORM = {"content-type": "application/x-www-form-urlencoded"}


def db(client: TestClient) -> Session:
    session: Session = client.app.state.sessions()  # type: ignore[attr-defined]
    return session


def request_code(client: TestClient, hardware_id: str = "pi-0001") -> dict[str, Any]:
    response = client.post("/api/v1/devices/code", json={"hardware_id": hardware_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def poll(client: TestClient, device_code: str) -> Response:
    return client.post(
        "/api/v1/devices/token", json={"grant_type": GRANT_TYPE, "device_code": device_code}
    )


def oauth_error(response: Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error_description"]
    error: str = body["error"]
    return error


def activate(client: TestClient, login: Login, user_code: str, name: str = "Keller") -> Response:
    return client.post(
        "/api/v1/devices/activate",
        json={"user_code": user_code, "name": name},
        headers=login.headers,
    )


def move_last_poll_back(client: TestClient, device_code: str, seconds: float) -> None:
    with db(client) as session:
        auth = session.scalar(
            select(DeviceAuthorization).where(
                DeviceAuthorization.device_code_hash == token_hash(device_code)
            )
        )
        assert auth is not None
        assert auth.last_polled_at is not None
        auth.last_polled_at = auth.last_polled_at - timedelta(seconds=seconds)
        session.commit()


def stored_authorization(client: TestClient, device_code: str) -> DeviceAuthorization:
    with db(client) as session:
        auth = session.scalar(
            select(DeviceAuthorization).where(
                DeviceAuthorization.device_code_hash == token_hash(device_code)
            )
        )
        assert auth is not None
        return auth


def pair(client: TestClient, login: Login, hardware_id: str = "pi-0001") -> tuple[int, str]:
    """A paired device: its id and token."""
    code = request_code(client, hardware_id)
    assert activate(client, login, code["user_code"]).status_code == 201
    response = poll(client, code["device_code"])
    assert response.status_code == 200, response.text
    return response.json()["device_id"], response.json()["access_token"]


def close_code(uplink: WebSocketTestSession) -> int:
    """Read past what the hub sent on connecting until the server closes; its close code."""
    for _ in range(10):
        try:
            uplink.receive_text()
        except WebSocketDisconnect as closed:
            return closed.code
    raise AssertionError("the uplink stayed open")


# --- The grant ---------------------------------------------------------------------------


def test_device_code_response(client: TestClient, settings: CloudSettings) -> None:
    code = request_code(client)
    assert set(code) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert re.fullmatch(
        f"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}", code["user_code"]
    )
    assert code["verification_uri"] == "http://testserver/pair"
    assert code["verification_uri_complete"] == f"http://testserver/pair?code={code['user_code']}"
    assert code["expires_in"] == settings.device_code_ttl_s
    assert code["interval"] == settings.device_poll_interval_s
    auth = stored_authorization(client, code["device_code"])
    # Only the hash of the device code is kept.
    assert auth.device_code_hash != code["device_code"]
    assert auth.user_code == code["user_code"].replace("-", "")
    assert auth.hardware_id == "pi-0001"


def test_full_grant_flow(client: TestClient) -> None:
    alice = register_and_login(client)
    code = request_code(client, "pi-alice")
    assert oauth_error(poll(client, code["device_code"])) == "authorization_pending"

    activated = activate(client, alice, code["user_code"], name="  Keller  ")
    assert activated.status_code == 201, activated.text
    device = activated.json()
    assert device["name"] == "Keller"
    assert device["hardware_id"] == "pi-alice"
    assert device["revoked"] is False
    assert device["last_seen_at"] is None
    assert datetime.fromisoformat(device["created_at"]).tzinfo is not None

    # Approved: the token comes at once, whatever the interval.
    response = poll(client, code["device_code"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "bearer"
    assert token["device_id"] == device["id"]
    with db(client) as session:
        found = find_device(session, token["access_token"])
        assert found is not None
        assert (found.id, found.user_id, found.name) == (device["id"], alice.user_id, "Keller")
        # The token itself is not stored.
        assert found.token_hash == token_hash(token["access_token"])

    # The device code is used up.
    assert oauth_error(poll(client, code["device_code"])) == "invalid_grant"


def test_pending_device_cannot_authenticate(client: TestClient) -> None:
    alice = register_and_login(client)
    code = request_code(client)
    device_id = activate(client, alice, code["user_code"]).json()["id"]
    with db(client) as session:
        device = session.get(Device, device_id)
        assert device is not None
        # Its placeholder is no hash of any token: a non-hex character is in it.
        assert not re.fullmatch("[0-9a-f]{64}", device.token_hash)
        assert find_device(session, code["device_code"]) is None


def test_form_encoded_requests(client: TestClient) -> None:
    """RFC 8628 clients send forms; unknown parameters such as client_id are ignored."""
    response = client.post(
        "/api/v1/devices/code", content="hardware_id=pi%2F7&client_id=gateway", headers=FORM
    )
    assert response.status_code == 200, response.text
    code = response.json()
    response = client.post(
        "/api/v1/devices/token",
        content=f"grant_type={GRANT_TYPE}&device_code={code['device_code']}&client_id=gateway",
        headers=FORM,
    )
    assert oauth_error(response) == "authorization_pending"
    assert stored_authorization(client, code["device_code"]).hardware_id == "pi/7"


def test_slow_down_when_polling_too_fast(client: TestClient) -> None:
    code = request_code(client)
    assert code["interval"] == 1
    assert oauth_error(poll(client, code["device_code"])) == "authorization_pending"
    assert oauth_error(poll(client, code["device_code"])) == "slow_down"
    assert stored_authorization(client, code["device_code"]).interval_s == 6
    # Each slow_down adds another 5 s.
    assert oauth_error(poll(client, code["device_code"])) == "slow_down"
    assert stored_authorization(client, code["device_code"]).interval_s == 11
    # Waiting the interval out is fine again.
    move_last_poll_back(client, code["device_code"], 12)
    assert oauth_error(poll(client, code["device_code"])) == "authorization_pending"
    assert stored_authorization(client, code["device_code"]).interval_s == 11


def test_expired_token(client: TestClient) -> None:
    alice = register_and_login(client)
    code = request_code(client)
    with db(client) as session:
        session.execute(
            update(DeviceAuthorization).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()
    assert oauth_error(poll(client, code["device_code"])) == "expired_token"
    response = activate(client, alice, code["user_code"])
    assert response.status_code == 400
    assert response.json()["code"] == "user_code_expired"


def test_access_denied(client: TestClient) -> None:
    alice = register_and_login(client)
    code = request_code(client)
    response = client.post(
        "/api/v1/devices/deny", json={"user_code": code["user_code"]}, headers=alice.headers
    )
    assert response.status_code == 204, response.text
    assert oauth_error(poll(client, code["device_code"])) == "access_denied"
    # A denied code cannot be approved afterwards.
    response = activate(client, alice, code["user_code"])
    assert response.status_code == 400
    assert response.json()["code"] == "user_code_used"
    assert client.get("/api/v1/devices", headers=alice.headers).json() == []


def test_device_removed_before_the_gateway_collected_its_token(client: TestClient) -> None:
    alice = register_and_login(client)
    code = request_code(client)
    device_id = activate(client, alice, code["user_code"]).json()["id"]
    assert client.delete(f"/api/v1/devices/{device_id}", headers=alice.headers).status_code == 204
    assert oauth_error(poll(client, code["device_code"])) == "access_denied"
    assert oauth_error(poll(client, code["device_code"])) == "invalid_grant"


def test_invalid_grant_for_unknown_code(client: TestClient) -> None:
    assert oauth_error(poll(client, "no-such-code")) == "invalid_grant"


@pytest.mark.parametrize(
    "grant_type",
    ["authorization_code", "password", "urn:ietf:params:oauth:grant-type:jwt-bearer", ""],
)
def test_unsupported_grant_type(client: TestClient, grant_type: str) -> None:
    code = request_code(client)
    response = client.post(
        "/api/v1/devices/token",
        json={"grant_type": grant_type, "device_code": code["device_code"]},
    )
    assert oauth_error(response) == "unsupported_grant_type"


def test_user_code_ignores_case_and_dash(client: TestClient) -> None:
    alice = register_and_login(client)
    typings: list[Callable[[str], str]] = [
        lambda code: code,
        lambda code: code.lower(),
        lambda code: code.replace("-", ""),
        lambda code: code.replace("-", "").lower(),
        lambda code: f" {code[:2]} {code[2:].lower()} ",
    ]
    for typed in typings:
        code = request_code(client)
        response = activate(client, alice, typed(code["user_code"]))
        assert response.status_code == 201, (typed(code["user_code"]), response.text)
        assert poll(client, code["device_code"]).status_code == 200


def test_activate_unknown_or_used_code(client: TestClient) -> None:
    alice, bob = register_and_login(client), register_and_login(client)
    response = activate(client, alice, "BBBB-BBBB")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    code = request_code(client)
    assert activate(client, alice, code["user_code"]).status_code == 201
    # Neither the same nor another user can take the gateway over with the same code.
    for login in (alice, bob):
        response = activate(client, login, code["user_code"])
        assert response.status_code == 400
        assert response.json()["code"] == "user_code_used"
    response = client.post(
        "/api/v1/devices/deny", json={"user_code": code["user_code"]}, headers=bob.headers
    )
    assert response.status_code == 400
    assert client.get("/api/v1/devices", headers=bob.headers).json() == []


def test_cookie_activation_needs_csrf(client: TestClient) -> None:
    alice = register_and_login(client, keep_cookie=True)
    code = request_code(client)
    body = {"user_code": code["user_code"], "name": "Keller"}
    try:
        response = client.post("/api/v1/devices/activate", json=body)
        assert response.status_code == 403
        response = client.post(
            "/api/v1/devices/activate", json=body, headers={"X-CSRF-Token": alice.csrf_token}
        )
        assert response.status_code == 201, response.text
    finally:
        client.cookies.delete(SESSION_COOKIE)


# --- The device list and revoking --------------------------------------------------------


def test_list_shows_only_own_devices(client: TestClient) -> None:
    alice, bob = register_and_login(client), register_and_login(client)
    first, _ = pair(client, alice, "pi-a1")
    second, _ = pair(client, alice, "pi-a2")
    bobs, _ = pair(client, bob, "pi-b1")
    listed = client.get("/api/v1/devices", headers=alice.headers)
    assert listed.status_code == 200
    assert [(d["id"], d["hardware_id"]) for d in listed.json()] == [
        (first, "pi-a1"),
        (second, "pi-a2"),
    ]
    assert set(listed.json()[0]) == {
        "id",
        "name",
        "hardware_id",
        "created_at",
        "last_seen_at",
        "revoked",
        "online",
    }
    assert [d["id"] for d in client.get("/api/v1/devices", headers=bob.headers).json()] == [bobs]


def test_listed_device_is_online_while_it_delivers_data(client: TestClient) -> None:
    alice = register_and_login(client)
    device_id, token = pair(client, alice)

    def listed() -> dict[str, Any]:
        devices: list[dict[str, Any]] = client.get("/api/v1/devices", headers=alice.headers).json()
        return devices[0]

    assert (listed()["online"], listed()["last_seen_at"]) == (False, None)
    reading = {"measured_at": datetime.now(UTC).isoformat(), "energy_import_wh": 1000}
    uploaded = client.post(
        "/api/v1/gateway/readings",
        json={"readings": [reading]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert listed()["online"] is True
    assert listed()["last_seen_at"] is not None

    def seen(seconds_ago: float) -> None:
        with db(client) as session:
            session.execute(
                update(Device)
                .where(Device.id == device_id)
                .values(last_seen_at=datetime.now(UTC) - timedelta(seconds=seconds_ago))
            )
            session.commit()

    seen(ONLINE_WITHIN_S + 5)
    assert listed()["online"] is False
    seen(0)
    assert listed()["online"] is True
    assert client.delete(f"/api/v1/devices/{device_id}", headers=alice.headers).status_code == 204
    assert (listed()["online"], listed()["revoked"]) == (False, True)


def test_revoke_stops_the_token_at_once(client: TestClient) -> None:
    alice = register_and_login(client)
    device_id, token = pair(client, alice)
    response = client.delete(f"/api/v1/devices/{device_id}", headers=alice.headers)
    assert response.status_code == 204
    with db(client) as session:
        assert find_device(session, token) is None
    assert client.get("/api/v1/devices", headers=alice.headers).json()[0]["revoked"] is True
    # Revoking again changes nothing.
    assert client.delete(f"/api/v1/devices/{device_id}", headers=alice.headers).status_code == 204


def test_revoke_closes_the_gateway_uplink(client: TestClient) -> None:
    alice = register_and_login(client)
    device_id, token = pair(client, alice)
    bearer = {"Authorization": f"Bearer {token}"}
    # The device token works on the gateway's endpoints (422: authenticated, empty batch).
    response = client.post("/api/v1/gateway/readings", json={"readings": []}, headers=bearer)
    assert response.status_code == 422, response.text
    with client.websocket_connect("/api/v1/gateway/ws", headers=bearer) as uplink:
        assert (
            client.delete(f"/api/v1/devices/{device_id}", headers=alice.headers).status_code == 204
        )
        assert close_code(uplink) == CLOSE_UNAUTHORIZED
    response = client.post("/api/v1/gateway/readings", json={"readings": []}, headers=bearer)
    assert response.status_code == 401


def test_cannot_revoke_another_users_device(client: TestClient) -> None:
    alice, bob = register_and_login(client), register_and_login(client)
    device_id, token = pair(client, alice)
    response = client.delete(f"/api/v1/devices/{device_id}", headers=bob.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    with db(client) as session:
        assert find_device(session, token) is not None
    assert client.delete("/api/v1/devices/999999", headers=bob.headers).status_code == 404


def test_device_token_is_no_user_token(client: TestClient) -> None:
    alice = register_and_login(client)
    _, token = pair(client, alice)
    response = client.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


# --- Authentication and bad input ---------------------------------------------------------


USER_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/devices", None),
    ("DELETE", "/api/v1/devices/1", None),
    ("POST", "/api/v1/devices/activate", {"user_code": "BBBB-BBBB", "name": "x"}),
    ("POST", "/api/v1/devices/deny", {"user_code": "BBBB-BBBB"}),
]


def test_user_endpoints_need_a_login(client: TestClient) -> None:
    for method, path, body in USER_ENDPOINTS:
        for headers in (
            {},
            {"Authorization": "Bearer forged-token"},
            {"Authorization": "Basic dXNlcjpwdw=="},
            {"Cookie": f"{SESSION_COOKIE}=forged-token"},
        ):
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["code"] == "not_authenticated"


def test_expired_login_is_rejected(client: TestClient) -> None:
    from ecommunity.cloud.db.models import UserSession

    alice = register_and_login(client)
    with db(client) as session:
        session.execute(
            update(UserSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()
    for method, path, body in USER_ENDPOINTS:
        response = client.request(method, path, json=body, headers=alice.headers)
        assert response.status_code == 401, (method, path, response.text)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"hardware_id": ""},
        {"hardware_id": "x" * 129},
        {"hardware_id": 12},
        {"hardware_id": None},
        {"hardware_id": "pi\n1"},
        {"hardware_id": "pi", "extra": 1},
        ["pi"],
        "pi",
    ],
)
def test_device_code_refuses_bad_json(client: TestClient, body: Any) -> None:
    response = client.post("/api/v1/devices/code", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{not json", {"content-type": "application/json"}, 422),
        (b"", {"content-type": "application/json"}, 422),
        (b"\xff\xfe", {"content-type": "application/json"}, 422),
        (b"hardware_id=a&hardware_id=b", FORM, 400),
        (b"hardware_id=%ff", FORM, 400),
        (b"\xff", FORM, 400),
        (b"client_id=x", FORM, 422),
        (b"hardware_id=pi", {"content-type": "text/plain"}, 415),
    ],
)
def test_device_code_refuses_bad_bodies(
    client: TestClient, content: bytes, headers: dict[str, str], status: int
) -> None:
    response = client.post("/api/v1/devices/code", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", {"content-type": "application/json"}),
        (b'{"grant_type": "x"}', {"content-type": "application/json"}),
        (b'{"device_code": "x"}', {"content-type": "application/json"}),
        (f'{{"grant_type": "{GRANT_TYPE}", "device_code": 5}}'.encode(), {}),
        (f'{{"grant_type": "{GRANT_TYPE}", "device_code": "x", "y": 1}}'.encode(), {}),
        (f'{{"grant_type": "{GRANT_TYPE}", "device_code": ""}}'.encode(), {}),
        (b"[]", {}),
        (f"grant_type={GRANT_TYPE}".encode(), FORM),
        (f"grant_type={GRANT_TYPE}&device_code=a&device_code=b".encode(), FORM),
        (b"grant_type=x", {"content-type": "text/plain"}),
    ],
)
def test_token_refuses_bad_bodies_as_invalid_request(
    client: TestClient, content: bytes, headers: dict[str, str]
) -> None:
    response = client.post("/api/v1/devices/token", content=content, headers=headers)
    assert oauth_error(response) == "invalid_request"


def test_activate_and_deny_refuse_bad_input(client: TestClient) -> None:
    alice = register_and_login(client)
    for body in [
        {"user_code": "BBBB-BBBB"},
        {"name": "x"},
        {"user_code": "BBBB-BBBB", "name": ""},
        {"user_code": "BBBB-BBBB", "name": "   "},
        {"user_code": "BBBB-BBBB", "name": "x" * 101},
        {"user_code": "AAAA-AAAA", "name": "x"},
        {"user_code": "BBBB-BBB", "name": "x"},
        {"user_code": "BBBB-BBBBB", "name": "x"},
        {"user_code": 12345678, "name": "x"},
        {"user_code": "BBBB-BBBB", "name": "x", "hardware_id": "y"},
        ["BBBB-BBBB", "x"],
    ]:
        response = client.post("/api/v1/devices/activate", json=body, headers=alice.headers)
        assert response.status_code == 422, (body, response.text)
    for body in [{}, {"user_code": "AAAA-AAAA"}, {"user_code": "BBBB-BBBB", "name": "x"}]:
        response = client.post("/api/v1/devices/deny", json=body, headers=alice.headers)
        assert response.status_code == 422, (body, response.text)
    response = client.post(
        "/api/v1/devices/activate",
        content=b"{not json",
        headers={**alice.headers, "content-type": "application/json"},
    )
    assert response.status_code == 422


def test_delete_refuses_bad_ids(client: TestClient) -> None:
    alice = register_and_login(client)
    for device_id in ["abc", "0", "-1", str(2**31), str(2**70), "1.5"]:
        response = client.delete(f"/api/v1/devices/{device_id}", headers=alice.headers)
        assert response.status_code == 422, (device_id, response.text)


def test_openapi_documents_both_body_encodings(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/devices/code", "/api/v1/devices/token"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    errors = paths["/api/v1/devices/token"]["post"]["responses"]["400"]
    assert "OAuthErrorOut" in str(errors)
