"""The account's own settings: the display name (PATCH /me) and the password
(POST /me/password, which signs out every other session); the communities one operates
(GET /me/communities). On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecommunity.cloud.db.models import LoginAttempt, User
from ecommunity.cloud.settings import CloudSettings
from tests.cloud.community_helpers import (
    apply,
    create_community,
    join,
    metering_point,
)
from tests.cloud.helpers import DEFAULT_PASSWORD, SESSION_COOKIE, register_and_login

ME = "/api/v1/me"
PASSWORD = "/api/v1/me/password"
LOGIN = "/api/v1/auth/login"
OPERATED = "/api/v1/me/communities"
NEW_PASSWORD = "a new and longer passphrase"
ATTEMPTS = 3


@pytest.fixture
def settings(settings: CloudSettings) -> CloudSettings:
    return settings.model_copy(update={"login_attempts": ATTEMPTS, "login_window_s": 300})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def engine_of(client: TestClient) -> Any:
    app: Any = client.app
    return app.state.engine


def login(client: TestClient, email: str, password: str) -> Any:
    response = client.post(LOGIN, json={"email": email, "password": password})
    client.cookies.delete(SESSION_COOKIE)
    return response


# --- display name ------------------------------------------------------------------------------


def test_change_the_display_name(client: TestClient) -> None:
    who = register_and_login(client, display_name="Anna")
    changed = client.patch(ME, json={"display_name": "  Anna Berger "}, headers=bearer(who.token))
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["id"], body["display_name"], body["csrf_token"]) == (
        who.user_id,
        "Anna Berger",
        who.csrf_token,
    )
    assert client.get(ME, headers=bearer(who.token)).json()["display_name"] == "Anna Berger"
    # Nothing to change is no change.
    same = client.patch(ME, json={}, headers=bearer(who.token))
    assert same.status_code == 200
    assert same.json()["display_name"] == "Anna Berger"


def test_operators_see_the_new_name(client: TestClient) -> None:
    operator = register_and_login(client)
    member = register_and_login(client, display_name="Old Name")
    community = create_community(client, operator)
    join(client, member, operator, community["id"], metering_point())
    client.patch(ME, json={"display_name": "New Name"}, headers=bearer(member.token))
    members = client.get(
        f"/api/v1/communities/{community['id']}/memberships", headers=bearer(operator.token)
    ).json()
    assert [m["display_name"] for m in members] == ["New Name"]


BAD_NAMES: list[Any] = ["", "   ", "x" * 101, "two\nlines", "nul\x00", None, 12]


def test_bad_names_are_422_and_change_nothing(client: TestClient) -> None:
    who = register_and_login(client, display_name="Kept")
    for name in BAD_NAMES:
        body = {"display_name": name}
        response = client.patch(ME, json=body, headers=bearer(who.token))
        if name is None:
            # null means "leave it": no change, no error.
            assert response.status_code == 200, response.text
            continue
        assert response.status_code == 422, (name, response.text)
        assert response.json()["detail"][0]["loc"][-1] == "display_name"
    refused = client.patch(ME, json={"email": "new@example.org"}, headers=bearer(who.token))
    assert refused.status_code == 422
    assert client.get(ME, headers=bearer(who.token)).json()["display_name"] == "Kept"


def test_cookie_writes_need_the_csrf_token(client: TestClient) -> None:
    who = register_and_login(client, keep_cookie=True, display_name="Csrf")
    refused = client.patch(ME, json={"display_name": "Forged"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    refused = client.post(
        PASSWORD, json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert refused.status_code == 403
    ok = client.patch(ME, json={"display_name": "Real"}, headers={"X-CSRF-Token": who.csrf_token})
    assert ok.status_code == 200
    assert ok.json()["display_name"] == "Real"
    client.cookies.delete(SESSION_COOKIE)


def test_signed_out_is_401(client: TestClient) -> None:
    assert client.patch(ME, json={"display_name": "x"}).status_code == 401
    answer = client.post(PASSWORD, json={"current_password": "x", "new_password": "y" * 10})
    assert answer.status_code == 401
    assert client.get(OPERATED).status_code == 401


# --- password ----------------------------------------------------------------------------------


def test_change_the_password_signs_out_every_other_session(client: TestClient) -> None:
    this = register_and_login(client, email="pw@example.org")
    laptop = login(client, "pw@example.org", DEFAULT_PASSWORD).json()["access_token"]
    phone = login(client, "pw@example.org", DEFAULT_PASSWORD).json()["access_token"]
    someone_else = register_and_login(client)

    changed = client.post(
        PASSWORD,
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(this.token),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"revoked_sessions": 2}
    # This session goes on; the others are signed out; other accounts are not touched.
    assert client.get(ME, headers=bearer(this.token)).status_code == 200
    for token in (laptop, phone):
        assert client.get(ME, headers=bearer(token)).status_code == 401
    assert client.get(ME, headers=bearer(someone_else.token)).status_code == 200
    # The old password no longer works, the new one does.
    assert login(client, "pw@example.org", DEFAULT_PASSWORD).status_code == 401
    assert login(client, "pw@example.org", NEW_PASSWORD).status_code == 200


def test_a_wrong_current_password_changes_nothing(client: TestClient) -> None:
    who = register_and_login(client, email="wrong@example.org")
    other = login(client, "wrong@example.org", DEFAULT_PASSWORD).json()["access_token"]
    with Session(engine_of(client)) as db:
        before = db.scalars(select(User.password_hash).where(User.id == who.user_id)).one()
    answer = client.post(
        PASSWORD,
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=bearer(who.token),
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "wrong_password"
    assert answer.json()["detail"]
    # Still signed in here and elsewhere; the hash is the same.
    assert client.get(ME, headers=bearer(who.token)).status_code == 200
    assert client.get(ME, headers=bearer(other)).status_code == 200
    with Session(engine_of(client)) as db:
        after = db.scalars(select(User.password_hash).where(User.id == who.user_id)).one()
        attempts = db.scalars(select(LoginAttempt.email)).all()
    assert after == before
    assert attempts == ["wrong@example.org"]  # counted as a failed login


def test_guessing_the_current_password_is_limited_like_logins(client: TestClient) -> None:
    who = register_and_login(client, email="guess@example.org")
    for _ in range(ATTEMPTS):
        answer = client.post(
            PASSWORD,
            json={"current_password": "a guess!!!", "new_password": NEW_PASSWORD},
            headers=bearer(who.token),
        )
        assert answer.status_code == 400
    # Now even the right one waits, and so does the login form for this account.
    throttled = client.post(
        PASSWORD,
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(who.token),
    )
    assert throttled.status_code == 429, throttled.text
    assert int(throttled.headers["retry-after"]) > 0
    assert login(client, "guess@example.org", DEFAULT_PASSWORD).status_code == 429


BAD_CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"new_password": "x" * 9}, "new_password"),
    ({"new_password": "x" * 1025}, "new_password"),
    ({"new_password": None}, "new_password"),
    ({"current_password": ""}, "current_password"),
    ({"current_password": 1234567890}, "current_password"),
    ({"revoke": False}, "revoke"),
]


def test_bad_password_changes_are_422_without_echoing_them(client: TestClient) -> None:
    who = register_and_login(client)
    valid = {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}
    for change, field in BAD_CHANGES:
        response = client.post(PASSWORD, json=valid | change, headers=bearer(who.token))
        assert response.status_code == 422, (change, response.text)
        assert any(p["loc"][-1] == field for p in response.json()["detail"]), response.text
        assert DEFAULT_PASSWORD not in response.text
    missing = client.post(PASSWORD, json={"new_password": NEW_PASSWORD}, headers=bearer(who.token))
    assert missing.status_code == 422
    # Nothing changed.
    assert login(client, who.email, DEFAULT_PASSWORD).status_code == 200


# --- communities one operates ------------------------------------------------------------------


def test_operated_communities_with_what_waits(client: TestClient) -> None:
    operator = register_and_login(client)
    stranger = register_and_login(client)
    first = create_community(client, operator)
    second = create_community(
        client, operator, name="Bürgerstrom", kind="beg", allocation_model="static"
    )
    create_community(client, stranger, name="Not theirs")
    members = [register_and_login(client) for _ in range(3)]
    join(client, members[0], operator, first["id"], metering_point())
    assert apply(client, members[1], first["id"], metering_point()).status_code == 201
    applied = apply(client, members[2], first["id"], metering_point()).json()
    approved = client.post(
        f"/api/v1/communities/{first['id']}/memberships/{applied['id']}/approve",
        headers=bearer(operator.token),
    )
    assert approved.status_code == 200

    listed = client.get(OPERATED, headers=bearer(operator.token))
    assert listed.status_code == 200, listed.text
    assert listed.json() == [
        {
            "id": first["id"],
            "name": "Sonnenstrom Linz",
            "kind": "eeg_local",
            "allocation_model": "dynamic",
            "open_for_members": True,
            "member_count": 1,
            "applied": 1,
            "approved": 1,
            "active": 1,
        },
        {
            "id": second["id"],
            "name": "Bürgerstrom",
            "kind": "beg",
            "allocation_model": "static",
            "open_for_members": True,
            "member_count": 0,
            "applied": 0,
            "approved": 0,
            "active": 0,
        },
    ]
    # Members and strangers operate nothing of this.
    assert client.get(OPERATED, headers=bearer(members[0].token)).json() == []
    assert [c["name"] for c in client.get(OPERATED, headers=bearer(stranger.token)).json()] == [
        "Not theirs"
    ]
