"""Test helpers shared by the cloud tests: an account and a signed-in session in one call."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fastapi.testclient import TestClient

SESSION_COOKIE = "ecommunity_session"
DEFAULT_PASSWORD = "correct horse battery staple"

_numbers = itertools.count(1)


@dataclass(frozen=True)
class Login:
    """A signed-in test user: pass ``headers`` to authenticate with the bearer token."""

    token: str
    csrf_token: str
    user_id: int
    email: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register_and_login(
    client: TestClient,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    display_name: str = "Test User",
    *,
    keep_cookie: bool = False,
) -> Login:
    """Register an account (a fresh address unless ``email`` is given) and sign it in.

    The login response sets the session cookie in the client's cookie jar. It is removed again
    unless ``keep_cookie``: otherwise a later request meant to come from no one would silently
    be authenticated by the cookie.
    """
    email = email or f"user{next(_numbers)}@example.org"
    registered = client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": password, "display_name": display_name},
    )
    assert registered.status_code == 201, registered.text
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    if not keep_cookie:
        client.cookies.delete(SESSION_COOKIE)
    return Login(
        token=body["access_token"],
        csrf_token=body["csrf_token"],
        user_id=body["user"]["id"],
        email=body["user"]["email"],
        password=password,
    )
