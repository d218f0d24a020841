"""Test helpers for communities: a community in one call, metering points, a settable clock."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from ecommunity.cloud.api.clock import current_time
from tests.cloud.helpers import Login

API = "/api/v1"
_points = itertools.count(1)

#: Linz main square and places around it. [°]
LINZ = (48.3059, 14.2862)
WELS = (48.1575, 14.0289)  # ~25 km south-west of Linz
VIENNA = (48.2085, 16.3721)  # ~155 km east of Linz


def metering_point(number: int | None = None) -> str:
    """A well-formed metering point number: AT, 31 digits; a fresh one unless given."""
    n = next(_points) if number is None else number
    return f"AT003000{n:025d}"


def community_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Sonnenstrom Linz",
        "description": "PV on the school roof, shared with the neighbourhood.",
        "kind": "eeg_local",
        "allocation_model": "dynamic",
        "grid_operator": "Netz Oberösterreich",
        "municipality": "Linz",
        "area_id": "T-4020-117",
        "postal_codes": ["4020"],
        "consumer_price_ct_per_kwh": "12.5",
        "producer_price_ct_per_kwh": "9.25",
        "member_fee_eur_per_year": "12",
        "plants": [{"source": "pv", "peak_power_kwp": "55.5", "name": "School roof"}],
        "open_for_members": True,
        "statutes": "§ 1 The association shares renewable energy among its members.",
        "location": {"latitude": LINZ[0], "longitude": LINZ[1]},
    }
    body.update(overrides)
    return body


def create_community(client: TestClient, operator: Login, **overrides: Any) -> dict[str, Any]:
    response = client.post(
        f"{API}/communities", json=community_body(**overrides), headers=operator.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def apply(
    client: TestClient,
    login: Login,
    community_id: int,
    point: str,
    tf: int = 100,
    **extra: Any,
) -> Any:
    """POST an application; the response (not checked)."""
    return client.post(
        f"{API}/communities/{community_id}/applications",
        json={"metering_point": point, "participation_factor": tf, "accept_statutes": True} | extra,
        headers=login.headers,
    )


def operator_post(
    client: TestClient,
    operator: Login,
    community_id: int,
    membership_id: int,
    action: str,
    body: dict[str, Any] | None = None,
) -> Any:
    return client.post(
        f"{API}/communities/{community_id}/memberships/{membership_id}/{action}",
        json=body or {},
        headers=operator.headers,
    )


def join(
    client: TestClient,
    member: Login,
    operator: Login,
    community_id: int,
    point: str,
    tf: int = 100,
    role: str = "consumer",
) -> dict[str, Any]:
    """Apply, approve and activate: an active membership."""
    applied = apply(client, member, community_id, point, tf, role=role)
    assert applied.status_code == 201, applied.text
    membership_id = applied.json()["id"]
    approved = operator_post(client, operator, community_id, membership_id, "approve")
    assert approved.status_code == 200, approved.text
    active = operator_post(client, operator, community_id, membership_id, "activate")
    assert active.status_code == 200, active.text
    body: dict[str, Any] = active.json()
    return body


def error_code(response: Any, status: int) -> str:
    """The ``code`` of an error answer with ``status``; its reason must not be empty."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["detail"], body
    code: str = body["code"]
    return code


@dataclass
class Clock:
    """The app's clock, settable (see ``cloud.api.clock``)."""

    now: datetime

    def install(self, app: FastAPI) -> None:
        app.dependency_overrides[current_time] = lambda: self.now
