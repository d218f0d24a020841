"""The live community view (``GET`` and ``WS /api/v1/communities/{id}/live``) against
hand-computed figures, its pushes, and who may see it; on SQLite and PostgreSQL.

The case: consumers C1 (factor 100 %) and C2 (50 %) and producer P (100 %) take part from
Sunday 2025-06-15. Their meters report every minute from 09:43 to 10:07 Vienna time
(07:43–08:07 UTC): C1 draws 10 Wh a minute, C2 20 Wh, P feeds in 12 Wh. The clock stands at
10:07:30, so ``as_of`` is 10:07 and today has one complete quarter hour with data (09:45–10:00)
and the current one so far (10:00–10:07). The quarter hours before have no readings: nobody
takes part in them.

Dynamic allocation, by hand (G.01T = G.01 × factor; G.02 = P × c / C; G.03 = min(G.02, c)):

- 09:45–10:00: G.01 C1 150, C2 300; G.01T 150, 150 → C = 300; P = 180; G.02 = 90 + 90;
  G.03 = 90 + 90 = 180; surplus 0.
- 10:00–10:07: G.01 C1 70, C2 140; G.01T 70, 70 → C = 140; P = 84; G.02 = 42 + 42; G.03 = 84.
- Today: consumption 660, production 264, covered 264: self-sufficiency 0.4.
- The last minute (10:06–10:07): production 12 Wh → 720 W; consumption 30 Wh → 1,800 W.

Prices on 2025-06-15 for a local EEG at grid level 7 (reference tariff: supplier 14.6667,
grid fee 6.64, Förderbeitrag 1.30 ct/kWh): community 12.5 + 6.64 × (1 − 57 %) = 15.3552 ct/kWh
(levies exempt); grid 14.6667 + 6.64 + 1.5 (Elektrizitätsabgabe 2025) + 1.30 = 24.1067 ct/kWh.
264 Wh covered: community cost 4.0537728 ct, grid cost 6.3641688 ct, savings 2.310396 ct.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from ecommunity.cloud.api import community_live
from tests.cloud.community_helpers import API, create_community, error_code, join, metering_point
from tests.cloud.community_view_helpers import (
    DAY_START,
    MINUTE,
    ViewCommunity,
    meter_minutes,
    set_key,
    view_community,
)
from tests.cloud.helpers import SESSION_COOKIE, register_and_login

FIRST = DAY_START + timedelta(hours=9, minutes=43)  # 09:43 Vienna
NOW = DAY_START + timedelta(hours=10, minutes=7, seconds=30)


def live(client: TestClient, community_id: int, headers: dict[str, str]) -> Any:
    return client.get(f"{API}/communities/{community_id}/live", headers=headers)


def receive(ws: WebSocketTestSession, timeout_s: float = 5.0) -> dict[str, Any]:
    """The next JSON message; a close raises WebSocketDisconnect; nothing within the timeout
    fails the test instead of hanging it."""

    async def next_message() -> Any:
        with anyio.fail_after(timeout_s):
            return await ws._send_rx.receive()

    message = ws.portal.call(next_message)
    ws._raise_on_close(message)
    data: dict[str, Any] = json.loads(message["text"])
    return data


def closed_with(ws: WebSocketTestSession) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as closed:
        receive(ws)
    return closed.value


def the_case(client: TestClient, model: str = "dynamic") -> ViewCommunity:
    community = view_community(client, model=model)
    c1, c2, producer = community.members
    meter_minutes(client, c1, FIRST, 24, import_wh_per_minute=10)
    meter_minutes(client, c2, FIRST, 24, import_wh_per_minute=20)
    meter_minutes(client, producer, FIRST, 24, export_wh_per_minute=12)
    community.clock.now = NOW
    return community


def test_the_snapshot_is_the_hand_computed_one(client: TestClient) -> None:
    community = the_case(client)
    response = live(client, community.id, community.member(0).login.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "community_live"
    assert body["estimate"] is True
    assert body["basis"] == "members_meters"
    assert body["as_of"] == "2025-06-15T08:07:00Z"
    assert (body["members"], body["members_reporting"]) == (3, 3)
    assert body["current"] == {
        "start": "2025-06-15T08:06:00Z",
        "end": "2025-06-15T08:07:00Z",
        "production_w": 720,
        "consumption_w": 1800,
        "producers_reporting": 1,
        "consumers_reporting": 2,
    }
    assert body["quarter_hour"] == {
        "start": "2025-06-15T08:00:00Z",
        "end": "2025-06-15T08:07:00Z",
        "production_wh": 84,
        "consumption_wh": 210,
        "allocated_wh": 84,
        "covered_wh": 84,
        "surplus_wh": 0,
        "residual_wh": 126,
        "self_sufficiency": 0.4,
    }
    today = body["today"]
    assert today["day"] == "2025-06-15"
    assert (today["start"], today["end"]) == ("2025-06-14T22:00:00Z", "2025-06-15T08:07:00Z")
    assert (today["production_wh"], today["consumption_wh"]) == (264, 660)
    assert (today["covered_wh"], today["surplus_wh"]) == (264, 0)
    assert today["self_sufficiency"] == 0.4
    assert Decimal(today["community_cost_eur"]) == Decimal("0.0405")  # 4.0537728 ct
    assert Decimal(today["grid_cost_eur"]) == Decimal("0.0636")  # 6.3641688 ct
    assert Decimal(today["savings_eur"]) == Decimal("0.0231")  # 2.310396 ct
    assert today["savings_unavailable"] is None
    prices = body["prices"]
    assert Decimal(prices["internal_ct_per_kwh"]) == Decimal("12.5")
    assert Decimal(prices["community_ct_per_kwh"]) == Decimal("15.3552")
    assert Decimal(prices["grid_ct_per_kwh"]) == Decimal("24.1067")
    assert prices["tariff"]["grid_level"] == 7


def test_the_static_model_leaves_an_unused_key_as_surplus(client: TestClient) -> None:
    """Keys C1 0.5, C2 0.25: 09:45–10:00 G.02 = 90 and 45, G.03 = 90 and 45 (both below
    their 150 Wh), covered 135, surplus 45; 10:00–10:07 (P = 84): G.02 = 42 and 21, covered
    63, surplus 21."""
    community = view_community(client, model="static")
    c1, c2, producer = community.members
    set_key(client, community, c1, "0.5")
    set_key(client, community, c2, "0.25")
    meter_minutes(client, c1, FIRST, 24, import_wh_per_minute=10)
    meter_minutes(client, c2, FIRST, 24, import_wh_per_minute=20)
    meter_minutes(client, producer, FIRST, 24, export_wh_per_minute=12)
    community.clock.now = NOW
    body = live(client, community.id, community.operator.headers).json()
    quarter = body["quarter_hour"]
    assert (quarter["allocated_wh"], quarter["covered_wh"], quarter["surplus_wh"]) == (63, 63, 21)
    today = body["today"]
    assert (today["covered_wh"], today["surplus_wh"], today["production_wh"]) == (198, 66, 264)
    assert today["self_sufficiency"] == round(198 / 660, 4)


def test_a_member_without_the_last_minute_is_left_out(client: TestClient) -> None:
    """C2's meter stops after 10:03: C2 takes part in 09:45–10:00 only. 10:00–10:07 is C1
    alone: C = 70, P = 84, so C1 is covered fully (70), 14 Wh are surplus."""
    community = view_community(client)
    c1, c2, producer = community.members
    meter_minutes(client, c1, FIRST, 24, import_wh_per_minute=10)
    meter_minutes(client, c2, FIRST, 20, import_wh_per_minute=20)
    meter_minutes(client, producer, FIRST, 24, export_wh_per_minute=12)
    community.clock.now = NOW
    body = live(client, community.id, c2.login.headers).json()
    assert (body["members"], body["members_reporting"]) == (3, 2)
    assert body["current"]["consumers_reporting"] == 1
    assert body["current"]["consumption_w"] == 600
    quarter = body["quarter_hour"]
    assert (quarter["consumption_wh"], quarter["covered_wh"], quarter["surplus_wh"]) == (70, 70, 14)


def test_at_a_quarter_hours_first_minute(client: TestClient) -> None:
    """At 10:00:20 the current quarter hour has no complete minute yet: no quarter_hour, today
    is 09:45–10:00, the last minute is 09:59–10:00."""
    community = the_case(client)
    community.clock.now = DAY_START + timedelta(hours=10, seconds=20)
    body = live(client, community.id, community.operator.headers).json()
    assert body["quarter_hour"] is None
    assert body["as_of"] == "2025-06-15T08:00:00Z"
    assert body["current"]["start"] == "2025-06-15T07:59:00Z"
    assert body["current"]["production_w"] == 720
    assert (body["today"]["consumption_wh"], body["today"]["covered_wh"]) == (450, 180)


def test_a_gea_has_no_prices_and_says_why(client: TestClient) -> None:
    community = view_community(client, kind="gea", roles=(("consumer", 100),))
    community.clock.now = NOW
    body = live(client, community.id, community.operator.headers).json()
    assert body["today"]["savings_eur"] is None
    assert "gea" in body["today"]["savings_unavailable"]
    assert body["prices"]["grid_ct_per_kwh"] is None
    assert body["prices"]["unavailable"] == body["today"]["savings_unavailable"]
    assert (body["members"], body["members_reporting"]) == (1, 0)
    assert body["today"]["consumption_wh"] == 0


def test_who_may_see_the_live_view(client: TestClient) -> None:
    community = the_case(client)
    stranger = register_and_login(client)
    elsewhere = register_and_login(client)
    other_operator = register_and_login(client)
    other = create_community(client, other_operator, name="Anderswo")
    join(client, elsewhere, other_operator, other["id"], metering_point(7_100_001))
    for login in (community.operator, community.member(1).login):
        assert live(client, community.id, login.headers).status_code == 200
    for login in (stranger, elsewhere, other_operator):
        assert error_code(live(client, community.id, login.headers), 403) == "forbidden"
    assert error_code(live(client, community.id, {}), 401) == "not_authenticated"
    assert error_code(live(client, 987_654, stranger.headers), 404) == "not_found"
    # Leaving ends it (at the next midnight; the status changes at once).
    member = community.member(0)
    left = client.post(
        f"{API}/memberships/{member.membership_id}/leave", headers=member.login.headers
    )
    assert left.status_code == 200, left.text
    assert error_code(live(client, community.id, member.login.headers), 403) == "forbidden"


def test_the_socket_sends_the_snapshot_and_pushes_new_minutes(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(community_live, "POLL_INTERVAL_S", 0.05)
    community = view_community(client)
    c1, c2, producer = community.members
    meter_minutes(client, c1, FIRST, 22, import_wh_per_minute=10)  # up to 10:05 only
    meter_minutes(client, c2, FIRST, 24, import_wh_per_minute=20)
    meter_minutes(client, producer, FIRST, 24, export_wh_per_minute=12)
    community.clock.now = NOW
    url = f"{API}/communities/{community.id}/live"
    with client.websocket_connect(url, headers=c2.login.headers) as ws:
        first = receive(ws)
        assert first["type"] == "community_live"
        assert first["current"]["consumers_reporting"] == 1
        # C1's 10:06 and 10:07 readings arrive: a new snapshot follows within a poll.
        meter_minutes(client, c1, FIRST + 23 * MINUTE, 1, import_wh_per_minute=10)
        pushed = receive(ws)
        assert pushed["current"]["consumers_reporting"] == 2
        assert pushed["quarter_hour"]["consumption_wh"] == 210


def test_the_socket_pushes_at_least_every_interval(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(community_live, "POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(community_live, "PUSH_INTERVAL_S", 0.2)
    community = the_case(client)
    url = f"{API}/communities/{community.id}/live"
    with client.websocket_connect(url, headers=community.operator.headers) as ws:
        first, second = receive(ws), receive(ws)
        assert first == second  # nothing new: the same snapshot, sent again
    # The socket's snapshot is the HTTP one.
    assert first == live(client, community.id, community.operator.headers).json()


def _close_code(client: TestClient, url: str, headers: dict[str, str]) -> tuple[int, str]:
    with client.websocket_connect(url, headers=headers) as ws:
        closed = closed_with(ws)
    return closed.code, closed.reason


def test_socket_refusals(client: TestClient) -> None:
    community = the_case(client)
    stranger = register_and_login(client)
    url = f"{API}/communities/{community.id}/live"
    assert _close_code(client, url, {})[0] == 4401
    assert _close_code(client, url, {"Authorization": "Bearer forged"})[0] == 4401
    assert _close_code(client, url, {"Authorization": "Token abc"})[0] == 4401
    code, reason = _close_code(client, url, stranger.headers)
    assert code == 4403
    assert "members" in reason
    assert _close_code(client, f"{API}/communities/987654/live", stranger.headers)[0] == 4404
    assert _close_code(client, f"{API}/communities/abc/live", stranger.headers)[0] == 4400
    # A cookie sent from another site's page is refused; from ours it is fine.
    cookie = {"Cookie": f"{SESSION_COOKIE}={community.operator.token}"}
    assert _close_code(client, url, cookie | {"Origin": "https://evil.example"})[0] == 4403
    with client.websocket_connect(url, headers=cookie | {"Origin": "http://testserver"}) as ws:
        assert receive(ws)["community_id"] == community.id


def test_the_socket_closes_when_the_membership_ends(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(community_live, "RECHECK_INTERVAL_S", 0.1)
    monkeypatch.setattr(community_live, "POLL_INTERVAL_S", 0.05)
    community = the_case(client)
    member = community.member(1)
    url = f"{API}/communities/{community.id}/live"
    with client.websocket_connect(url, headers=member.login.headers) as ws:
        assert receive(ws)["type"] == "community_live"
        left = client.post(
            f"{API}/memberships/{member.membership_id}/leave", headers=member.login.headers
        )
        assert left.status_code == 200, left.text
        assert _until_closed(ws).code == 4403


def test_members_of_another_community_see_nothing_of_it(client: TestClient) -> None:
    """Two communities with the same shape: each view holds only its own members' energy."""
    first = the_case(client)
    second = view_community(client, number_base=10)
    meter_minutes(client, second.member(0), FIRST, 24, import_wh_per_minute=100)
    second.clock.now = NOW
    body = live(client, second.id, second.operator.headers).json()
    assert body["quarter_hour"]["consumption_wh"] == 700
    assert body["quarter_hour"]["production_wh"] == 0
    assert live(client, first.id, second.member(0).login.headers).status_code == 403


def _until_closed(ws: WebSocketTestSession) -> WebSocketDisconnect:
    """Read snapshots until the socket closes; its close."""
    for _ in range(100):
        try:
            receive(ws)
        except WebSocketDisconnect as closed:
            return closed
    raise AssertionError("the socket did not close")
