"""A schemathesis run against the app's own OpenAPI schema, on SQLite and PostgreSQL: no
generated request, well-formed or not, gets a server error, and every documented response
matches its schema.

Every HTTP operation in ``/openapi.json`` is called three ways: as no one, with a real user's
bearer token, and with the device token of that user's gateway (paired through the device grant,
with readings of one meter uploaded; the user also operates a community and applied to it).
Random ids and codes would only ever meet 404, so the hooks below put the account's own ids,
codes, credentials and a time window with readings into most generated values (only where the
generated value has the right type: malformed input stays malformed). The WebSocket routes
are not in the schema; test_live.py and test_ingest.py cover them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import response_schema_conformance

from ecommunity.cloud.actions.devices import GRANT_TYPE
from ecommunity.cloud.app import create_app
from ecommunity.cloud.settings import CloudSettings
from tests.cloud.community_helpers import apply, create_community
from tests.cloud.helpers import Login, register_and_login

#: Cases per operation and auth state from Hypothesis' fuzzing phase; schemathesis' coverage
#: phase (boundary values, missing fields, wrong types, other methods) adds its own.
MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance]
LOGOUT = "/api/v1/auth/logout"


@dataclass
class Account:
    """A signed-in user, the gateway they paired, its meter, and a gateway waiting to be
    paired."""

    login: Login
    device_id: int
    device_token: str
    meter_id: int
    #: ``[from, to)`` of the uploaded readings, ISO 8601.
    window: tuple[str, str]
    pending_user_code: str
    pending_device_code: str
    #: A community the user operates, the user's own application to it, and a notification.
    community_id: int
    #: Another community, so that the two can be compared.
    other_community_id: int
    membership_id: int
    notification_id: int

    @property
    def device_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.device_token}"}

    def own_values(self, path: str) -> dict[str, Any]:
        """Values that reach past the 404s and 401s of ``path``, by parameter or field name."""
        own: dict[str, dict[str, Any]] = {
            "/api/v1/auth/register": {"email": "fuzz@example.org"},  # 201 once, then 409
            "/api/v1/auth/login": {"email": self.login.email, "password": self.login.password},
            "/api/v1/devices/token": {"device_code": self.pending_device_code},
            "/api/v1/devices/activate": {"user_code": self.pending_user_code},
            "/api/v1/devices/deny": {"user_code": self.pending_user_code},
            "/api/v1/devices/{device_id}": {"device_id": self.device_id},
            "/api/v1/meters/{meter_id}/readings": {
                "meter_id": self.meter_id,
                "from": self.window[0],
                "to": self.window[1],
            },
            "/api/v1/communities": {"near": "4020"},
            "/api/v1/communities/{community_id}": {"community_id": self.community_id},
            "/api/v1/communities/{community_id}/live": {"community_id": self.community_id},
            "/api/v1/communities/compare": {
                "ids": f"{self.community_id},{self.other_community_id}"
            },
            "/api/v1/communities/{community_id}/applications": {
                "community_id": self.community_id,
                "metering_point": "AT0030000000000000000000000099999",
            },
            "/api/v1/communities/{community_id}/memberships": {"community_id": self.community_id},
            "/api/v1/memberships/{membership_id}/leave": {"membership_id": self.membership_id},
            "/api/v1/notifications/{notification_id}/read": {
                "notification_id": self.notification_id
            },
        }
        membership = {"community_id": self.community_id, "membership_id": self.membership_id}
        if path.startswith("/api/v1/communities/{community_id}/memberships/{membership_id}"):
            return membership
        return own.get(path, {})


@dataclass
class SignedIn:
    """The user's current bearer token; a generated logout ends it, so it is renewed then."""

    client: TestClient
    login: Login

    def sign_in_again(self) -> None:
        response = self.client.post(
            "/api/v1/auth/login", json={"email": self.login.email, "password": self.login.password}
        )
        assert response.status_code == 200, response.text
        self.login = Login(
            token=response.json()["access_token"],
            csrf_token=response.json()["csrf_token"],
            user_id=self.login.user_id,
            email=self.login.email,
            password=self.login.password,
        )


def _pair(client: TestClient, login: Login, hardware_id: str) -> tuple[int, str]:
    """A gateway paired through the device grant: its id and token."""
    code = client.post("/api/v1/devices/code", json={"hardware_id": hardware_id}).json()
    activated = client.post(
        "/api/v1/devices/activate",
        json={"user_code": code["user_code"], "name": "Keller"},
        headers=login.headers,
    )
    assert activated.status_code == 201, activated.text
    token = client.post(
        "/api/v1/devices/token",
        json={"grant_type": GRANT_TYPE, "device_code": code["device_code"]},
    )
    assert token.status_code == 200, token.text
    return token.json()["device_id"], token.json()["access_token"]


def _set_up_account(client: TestClient) -> Account:
    login = register_and_login(client)
    device_id, device_token = _pair(client, login, "pi-fuzz")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    readings = [
        {
            "meter_serial": "1KFM0200000001",
            "profile": "amis",
            "measured_at": (start + timedelta(minutes=k)).isoformat(),
            "energy_import_wh": 1_000_000 + 5 * k,
            "energy_export_wh": 20_000 + k,
            "power_import_w": 300,
            "power_export_w": 0,
        }
        for k in range(0, 180, 7)
    ]
    uploaded = client.post(
        "/api/v1/gateway/readings",
        json={"readings": readings},
        headers={"Authorization": f"Bearer {device_token}"},
    )
    assert uploaded.status_code == 200, uploaded.text
    (meter,) = client.get("/api/v1/meters", headers=login.headers).json()
    pending = client.post("/api/v1/devices/code", json={"hardware_id": "pi-pending"}).json()
    community = create_community(client, login)
    other = create_community(client, login, name="Bürgerstrom", kind="beg")
    membership = apply(client, login, community["id"], "AT0030000000000000000000000012345")
    assert membership.status_code == 201, membership.text
    (notification,) = client.get("/api/v1/notifications", headers=login.headers).json()
    return Account(
        login=login,
        device_id=device_id,
        device_token=device_token,
        meter_id=meter["id"],
        window=(start.isoformat(), (start + timedelta(hours=3)).isoformat()),
        pending_user_code=pending["user_code"],
        pending_device_code=pending["device_code"],
        community_id=community["id"],
        other_community_id=other["id"],
        membership_id=membership.json()["id"],
        notification_id=notification["id"],
    )


@pytest.fixture
def app_and_account(settings: CloudSettings) -> Iterator[tuple[FastAPI, Account]]:
    # Generated logins fail by the dozen; the throttle (tested in test_auth.py) would soon answer
    # every login with 429 and hide the rest of the login code.
    app = create_app(settings.model_copy(update={"login_attempts": 1_000_000}))
    # The TestClient's lifespan ends before schemathesis starts the app in an event loop of its
    # own: the live hub never runs in two loops at once.
    with TestClient(app) as client:
        account = _set_up_account(client)
    try:
        yield app, account
    finally:
        shutdown_lifespans()
        app.state.engine.dispose()


@pytest.fixture
def account(app_and_account: tuple[FastAPI, Account]) -> Account:
    return app_and_account[1]


@pytest.fixture
def signed_in(app_and_account: tuple[FastAPI, Account]) -> Iterator[SignedIn]:
    app, account = app_and_account
    # Requests only: no lifespan of its own.
    client = TestClient(app)
    yield SignedIn(client, account.login)
    client.close()


def _aim(context: Any, values: Any, account: Account) -> Any:
    """Mostly, ``values`` with the account's own values put in (see the docstring)."""
    own = account.own_values(context.operation.path)
    if not isinstance(values, dict):
        return st.just(values)
    aimed = {
        name: own[name] if name in own and type(value) is type(own[name]) else value
        for name, value in values.items()
    }
    # Two in three, so that both hooks of a case (path and query) often aim at once; first, so
    # that Hypothesis tries it first and shrinks towards it.
    return st.sampled_from([aimed, aimed, values]) if aimed != values else st.just(values)


@pytest.fixture
def api_schema(app_and_account: tuple[FastAPI, Account]) -> Any:
    app, account = app_and_account
    api = schemathesis.openapi.from_asgi("/openapi.json", app)

    @api.hook
    def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
        return _aim(context, path_parameters, account)

    @api.hook
    def flatmap_query(context: Any, query: Any) -> Any:
        return _aim(context, query, account)

    @api.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        return _aim(context, body, account)

    return api


schema = schemathesis.pytest.from_fixture("api_schema")

_bounded = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@schema.parametrize()
@_bounded
def test_as_no_one(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@_bounded
def test_as_user(case: Any, signed_in: SignedIn) -> None:
    response = case.call_and_validate(headers=signed_in.login.headers, checks=CHECKS)
    if case.path == LOGOUT and response.status_code == 204:
        signed_in.sign_in_again()


@schema.parametrize()
@_bounded
def test_as_gateway(case: Any, account: Account) -> None:
    case.call_and_validate(headers=account.device_headers, checks=CHECKS)
