"""Accounts and sessions: register, login (bearer and cookie), CSRF, logout, rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import extract_parameters
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from ecommunity.cloud import security
from ecommunity.cloud.app import create_app
from ecommunity.cloud.db.models import LoginAttempt, User, UserSession
from ecommunity.cloud.security import token_hash, verify_password
from ecommunity.cloud.settings import CloudSettings
from tests.cloud.helpers import DEFAULT_PASSWORD, SESSION_COOKIE, register_and_login

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"
#: What the app hashes with outside these tests (the fixture below swaps it for a cheap one).
PRODUCTION_HASHER = security._hasher
PRODUCTION_DUMMY_HASH = security._DUMMY_HASH
ATTEMPTS = 3
WINDOW_S = 300


@pytest.fixture
def settings(settings: CloudSettings) -> CloudSettings:
    # Fewer allowed failures than the default keeps the rate-limit tests quick (Argon2 is slow).
    return settings.model_copy(update={"login_attempts": ATTEMPTS, "login_window_s": WINDOW_S})


def engine_of(client: TestClient) -> Engine:
    app: Any = client.app
    engine: Engine = app.state.engine
    return engine


@pytest.fixture
def other_address(client: TestClient) -> Iterator[TestClient]:
    """A second client on the same app, calling from another IP address."""
    # Not entered as a context manager: the app's lifespan is already running for `client`.
    other = TestClient(client.app, client=("192.0.2.7", 40000))
    yield other
    other.close()


def login(client: TestClient, email: str, password: str = DEFAULT_PASSWORD) -> Any:
    return client.post(LOGIN, json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Registration


def test_register_returns_the_public_user(client: TestClient) -> None:
    response = client.post(
        REGISTER,
        json={"email": "  Anna.Huber@Example.AT ", "password": "x" * 10, "display_name": " Anna "},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "email", "display_name", "created_at"}
    assert body["email"] == "anna.huber@example.at"
    assert body["display_name"] == "Anna"
    created_at = datetime.fromisoformat(body["created_at"])
    assert created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)


def test_password_is_stored_as_an_argon2_hash(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "_hasher", PRODUCTION_HASHER)
    monkeypatch.setattr(security, "_DUMMY_HASH", PRODUCTION_DUMMY_HASH)
    who = register_and_login(client, email="hash@example.org", password="a secret phrase")
    with Session(engine_of(client)) as db:
        user = db.scalars(select(User).where(User.id == who.user_id)).one()
        sessions = db.scalars(select(UserSession).where(UserSession.user_id == who.user_id)).all()
    assert user.password_hash.startswith("$argon2id$")
    cost = extract_parameters(user.password_hash)
    assert cost.time_cost >= 3
    assert cost.memory_cost >= 64 * 1024
    assert "a secret phrase" not in user.password_hash
    assert verify_password(user.password_hash, "a secret phrase")
    # The database keeps only the token's hash, never the token.
    assert [s.token_hash for s in sessions] == [token_hash(who.token)]


def test_duplicate_email_is_a_conflict_whatever_its_case(client: TestClient) -> None:
    register_and_login(client, email="dup@example.org")
    response = client.post(
        REGISTER, json={"email": "DUP@example.org", "password": "x" * 10, "display_name": "Dup"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


VALID = {"email": "ok@example.org", "password": "x" * 10, "display_name": "Ok"}


BAD_REGISTRATIONS: list[tuple[dict[str, Any], str]] = [
    ({"email": "no-at-sign.example.org"}, "email"),
    ({"email": "two@@example.org"}, "email"),
    ({"email": "space in@example.org"}, "email"),
    ({"email": "nodot@localhost"}, "email"),
    ({"email": "a@" + "b" * 300 + ".at"}, "email"),
    ({"email": 123}, "email"),
    ({"password": "x" * 9}, "password"),
    ({"password": "x" * 1025}, "password"),
    ({"password": ["x" * 10]}, "password"),
    ({"display_name": ""}, "display_name"),
    ({"display_name": "   "}, "display_name"),
    ({"display_name": "x" * 101}, "display_name"),
    ({"display_name": None}, "display_name"),
    ({"display_name": "Anna\x00"}, "display_name"),
    ({"display_name": "two\nlines"}, "display_name"),
    ({"email": "nul\x00@example.org"}, "email"),
    ({"is_admin": True}, "is_admin"),
]


def test_register_rejects_bad_fields(client: TestClient) -> None:
    # One test over a table rather than one per case: the database fixture dominates the time.
    for change, field in BAD_REGISTRATIONS:
        response = client.post(REGISTER, json=VALID | change)
        assert response.status_code == 422, (change, response.text)
        problems = response.json()["detail"]
        assert any(p["loc"][-1] == field and p["msg"] for p in problems), (change, problems)
    with Session(engine_of(client)) as db:
        assert db.scalars(select(User)).all() == []


def test_register_accepts_the_longest_password(client: TestClient) -> None:
    response = client.post(REGISTER, json=VALID | {"password": "x" * 1024})
    assert response.status_code == 201, response.text


def test_malformed_bodies_are_422_with_a_reason(client: TestClient) -> None:
    for path in (REGISTER, LOGIN):
        for content in (b'{"email": "a@b.at", "password":', b"not json", b"[]", b'"text"', b""):
            response = client.post(
                path, content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, (path, content, response.text)
            assert response.json()["detail"][0]["msg"]


LONE_SURROGATES = [
    # JSON may escape a lone surrogate, which is no valid text: it must not reach the
    # database or the password hasher, nor break the error response that names it.
    (REGISTER, rb'{"email": "a@b.at", "password": "\ud800xxxxxxxxxx", "display_name": "x"}'),
    (REGISTER, rb'{"email": "a\ud800@b.at", "password": "xxxxxxxxxx", "display_name": "x"}'),
    (REGISTER, rb'{"email": "a@b.at", "password": "xxxxxxxxxx", "display_name": "\udfff"}'),
    (
        REGISTER,
        rb'{"email": "a@b.at", "password": "xxxxxxxxxx", "display_name": "x", "\ud800": 1}',
    ),
    (LOGIN, rb'{"email": "a\ud800@b.at", "password": "xxxxxxxxxx"}'),
    (LOGIN, rb'{"email": "a@b.at", "password": "\ud800"}'),
]


def test_lone_surrogates_are_422(client: TestClient) -> None:
    for path, content in LONE_SURROGATES:
        response = client.post(path, content=content, headers={"content-type": "application/json"})
        assert response.status_code == 422, (content, response.text)
        assert response.json()["detail"][0]["msg"]


def test_validation_errors_do_not_echo_the_password(client: TestClient) -> None:
    response = client.post(REGISTER, json=VALID | {"password": "short-pw"})
    assert response.status_code == 422
    assert "short-pw" not in response.text


BAD_LOGINS: list[dict[str, Any]] = [
    {"email": "a@b.at"},
    {"email": "a@b.at", "password": 1234567890},
    {"email": "a@b.at", "password": "x" * 10, "remember_me": True},
    {"email": "a@b.at", "password": "x" * 1025},
    {"email": "", "password": "x" * 10},
    {"email": "nul\x00@example.org", "password": "x" * 10},
    {"email": "a@" + "b" * 250 + ".at", "password": "x" * 10},
]


def test_login_rejects_bad_fields(client: TestClient) -> None:
    for body in BAD_LOGINS:
        response = client.post(LOGIN, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["msg"]
    with Session(engine_of(client)) as db:
        assert db.scalars(select(LoginAttempt)).all() == []  # refused before counting


# Sessions: bearer and cookie


def test_bearer_round_trip(client: TestClient) -> None:
    who = register_and_login(client, email="Bearer@Example.org", display_name="Bea")
    assert SESSION_COOKIE not in client.cookies  # the helper leaves no cookie behind

    me = client.get(ME, headers=bearer(who.token))
    assert me.status_code == 200
    assert me.json() | {"created_at": None} == {
        "id": who.user_id,
        "email": "bearer@example.org",
        "display_name": "Bea",
        "created_at": None,
        "csrf_token": who.csrf_token,
    }

    # Bearer writes need no CSRF token: a browser never sends the header by itself.
    assert client.post(LOGOUT, headers=bearer(who.token)).status_code == 204
    gone = client.get(ME, headers=bearer(who.token))
    assert gone.status_code == 401
    assert gone.json()["code"] == "not_authenticated"
    assert gone.headers["www-authenticate"] == "Bearer"


def test_login_response_and_cookie(client: TestClient, settings: CloudSettings) -> None:
    register_and_login(client, email="cookie@example.org")
    before = datetime.now(UTC)
    response = login(client, "COOKIE@example.org ")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["email"] == "cookie@example.org"
    assert set(body["user"]) == {"id", "email", "display_name", "created_at"}
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at - before - timedelta(seconds=settings.session_ttl_s) < timedelta(minutes=1)

    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(f"{SESSION_COOKIE}={body['access_token']};")
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "secure" not in attributes
    assert "path=/;" in cookie.lower() + ";"
    assert "samesite=lax" in cookie.lower()


def test_cookie_is_secure_when_configured(settings: CloudSettings) -> None:
    app = create_app(settings.model_copy(update={"secure_cookies": True}))
    try:
        with TestClient(app, base_url="https://testserver") as client:
            register_and_login(client, email="tls@example.org")
            cookie = login(client, "tls@example.org").headers["set-cookie"]
    finally:
        app.state.engine.dispose()
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_cookie_round_trip_with_csrf(client: TestClient) -> None:
    who = register_and_login(client, email="web@example.org", keep_cookie=True)
    assert client.cookies[SESSION_COOKIE] == who.token

    me = client.get(ME)  # reads need no CSRF token
    assert me.status_code == 200
    assert me.json()["csrf_token"] == who.csrf_token

    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
        refused = client.post(LOGOUT, headers=headers)
        assert refused.status_code == 403, headers
        assert "X-CSRF-Token" in refused.json()["detail"]
    assert client.get(ME).status_code == 200  # the refused writes did nothing

    response = client.post(LOGOUT, headers={"X-CSRF-Token": who.csrf_token})
    assert response.status_code == 204
    assert SESSION_COOKIE not in client.cookies  # cleared
    # The session is revoked, not just forgotten by this browser.
    stolen = client.get(ME, headers={"Cookie": f"{SESSION_COOKIE}={who.token}"})
    assert stolen.status_code == 401
    assert client.get(ME, headers=bearer(who.token)).status_code == 401


def test_logout_revokes_only_the_session_used(client: TestClient) -> None:
    phone = register_and_login(client, email="two@example.org")
    laptop = login(client, "two@example.org").json()
    client.cookies.delete(SESSION_COOKIE)
    other = register_and_login(client, email="other@example.org")

    assert client.post(LOGOUT, headers=bearer(phone.token)).status_code == 204
    assert client.get(ME, headers=bearer(phone.token)).status_code == 401
    assert client.get(ME, headers=bearer(laptop["access_token"])).status_code == 200
    # Another user's session is not touched, and sees only its own account.
    me = client.get(ME, headers=bearer(other.token)).json()
    assert (me["id"], me["email"]) == (other.user_id, "other@example.org")
    assert other.user_id != phone.user_id
    # Logging out twice: the token is already dead.
    assert client.post(LOGOUT, headers=bearer(phone.token)).status_code == 401


def test_expired_session_is_refused(client: TestClient) -> None:
    who = register_and_login(client, email="old@example.org")
    with Session(engine_of(client)) as db:
        db.execute(
            update(UserSession)
            .where(UserSession.user_id == who.user_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.commit()
    response = client.get(ME, headers=bearer(who.token))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert client.post(LOGOUT, headers=bearer(who.token)).status_code == 401


NO_OR_FORGED_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer forged-token-that-was-never-issued"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "forged"},
    {"Cookie": f"{SESSION_COOKIE}=forged-token"},
]


def test_no_or_forged_credentials_are_401(client: TestClient) -> None:
    register_and_login(client, email="someone@example.org")
    for headers in NO_OR_FORGED_CREDENTIALS:
        for response in (client.get(ME, headers=headers), client.post(LOGOUT, headers=headers)):
            assert response.status_code == 401, (headers, response.text)
            assert response.json()["code"] == "not_authenticated"
            assert response.json()["detail"]


def test_forged_token_with_a_real_csrf_token_is_401(client: TestClient) -> None:
    who = register_and_login(client, email="csrf@example.org")
    forged = who.token[:-2] + ("AA" if not who.token.endswith("AA") else "BB")
    response = client.post(
        LOGOUT,
        headers={"Cookie": f"{SESSION_COOKIE}={forged}", "X-CSRF-Token": who.csrf_token},
    )
    assert response.status_code == 401
    assert client.get(ME, headers=bearer(who.token)).status_code == 200


# Wrong credentials and rate limits


def test_wrong_password_and_unknown_account_look_the_same(client: TestClient) -> None:
    register_and_login(client, email="known@example.org")
    wrong = login(client, "known@example.org", "not the password")
    unknown = login(client, "unknown@example.org", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


def assert_throttled(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "too_many_requests"
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW_S


def test_failed_logins_are_limited_per_account(
    client: TestClient, other_address: TestClient
) -> None:
    register_and_login(client, email="victim@example.org")
    register_and_login(client, email="bystander@example.org")
    # The guesses come from two addresses: the account's limit counts them all.
    for attempt in range(ATTEMPTS):
        guesser = client if attempt % 2 else other_address
        assert login(guesser, "victim@example.org", f"guess {attempt}").status_code == 401

    # Now even the right password is refused, from anywhere, without revealing it was right.
    assert_throttled(login(client, "VICTIM@example.org"))
    assert_throttled(login(other_address, "victim@example.org", "another guess"))
    # Other accounts are unaffected (the per-address limit is not reached by refused tries).
    assert login(client, "bystander@example.org").status_code == 200


def test_failed_logins_are_limited_per_address(
    client: TestClient, other_address: TestClient
) -> None:
    register_and_login(client, email="target@example.org")
    # One guess each on many accounts, existing or not, from the same address.
    for number in range(ATTEMPTS):
        assert login(client, f"sprayed{number}@example.org", "Winter2024!").status_code == 401

    assert_throttled(login(client, "target@example.org"))
    # The account itself is fine from another address.
    assert login(other_address, "target@example.org").status_code == 200


def test_successful_logins_do_not_count(client: TestClient) -> None:
    register_and_login(client, email="typo@example.org")
    for _ in range(ATTEMPTS - 1):
        assert login(client, "typo@example.org", "wrong password").status_code == 401
    for _ in range(3):
        assert login(client, "typo@example.org").status_code == 200
    assert login(client, "typo@example.org", "wrong password").status_code == 401
    assert_throttled(login(client, "typo@example.org"))


def test_failures_leave_the_window(client: TestClient) -> None:
    register_and_login(client, email="patient@example.org")
    for _ in range(ATTEMPTS):
        login(client, "patient@example.org", "wrong password")
    assert_throttled(login(client, "patient@example.org"))

    with Session(engine_of(client)) as db:
        db.execute(
            update(LoginAttempt).values(
                attempted_at=datetime.now(UTC) - timedelta(seconds=WINDOW_S + 1)
            )
        )
        db.commit()
    assert login(client, "patient@example.org").status_code == 200
    # Failures long out of the window are deleted, not kept for ever.
    login(client, "patient@example.org", "wrong password")
    with Session(engine_of(client)) as db:
        assert len(db.scalars(select(LoginAttempt)).all()) == 1


def test_the_limit_holds_across_instances(client: TestClient, settings: CloudSettings) -> None:
    register_and_login(client, email="cluster@example.org")
    second: FastAPI = create_app(settings)
    try:
        with TestClient(second) as instance_b:
            for attempt in range(ATTEMPTS):
                instance = client if attempt % 2 else instance_b
                assert login(instance, "cluster@example.org", "wrong password").status_code == 401
            assert_throttled(login(instance_b, "cluster@example.org"))
            assert_throttled(login(client, "cluster@example.org"))
    finally:
        second.state.engine.dispose()


def test_openapi_documents_the_auth_endpoints(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert paths["/api/v1/auth/register"]["post"]["responses"]["201"]
    assert "409" in paths["/api/v1/auth/register"]["post"]["responses"]
    assert {"200", "401", "422", "429"} <= set(paths["/api/v1/auth/login"]["post"]["responses"])
    assert "204" in paths["/api/v1/auth/logout"]["post"]["responses"]
    assert "200" in paths["/api/v1/me"]["get"]["responses"]
    login_out = schema["components"]["schemas"]["LoginOut"]
    assert {"access_token", "token_type", "expires_at", "csrf_token", "user"} <= set(
        login_out["properties"]
    )
    assert schema["components"]["schemas"]["UserCreate"]["additionalProperties"] is False
