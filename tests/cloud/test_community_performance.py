"""The finder's ``performance``: the last 30 Vienna days from the members' meters, allocated per
quarter hour (``cloud.community_view.performance``), on SQLite and PostgreSQL.

The case of ``test_community_live``: on 2025-06-15 one quarter hour (09:45–10:00) has complete
readings of all three members: G.01 C1 150 Wh, C2 300 Wh (factor 50 %: G.01T 150), P 180 Wh;
dynamic: G.03 90 + 90 = 180. Over the 30 days before 2025-06-16: consumption 450 Wh, production
180 Wh, covered 180 Wh: self-sufficiency 0.4, production used 1.0.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from ecommunity.cloud.community_view.performance import PERIOD_DAYS
from tests.cloud.community_helpers import API
from tests.cloud.community_view_helpers import DAY_START, meter_minutes, view_community
from tests.cloud.helpers import register_and_login

FIRST = DAY_START + timedelta(hours=9, minutes=43)


def finder(client: TestClient, headers: dict[str, str]) -> dict[int, Any]:
    response = client.get(f"{API}/communities", params={"near": "4020"}, headers=headers)
    assert response.status_code == 200, response.text
    return {found["id"]: found for found in response.json()}


def test_performance_of_the_last_30_days(client: TestClient) -> None:
    quiet = view_community(client, name="Ohne Daten", gateways=False, number_base=10)
    community = view_community(client)  # its clock is the app's from now on
    c1, c2, producer = community.members
    meter_minutes(client, c1, FIRST, 24, import_wh_per_minute=10)
    meter_minutes(client, c2, FIRST, 24, import_wh_per_minute=20)
    meter_minutes(client, producer, FIRST, 24, export_wh_per_minute=12)
    anyone = register_and_login(client)
    community.clock.now = DAY_START + timedelta(days=1, hours=14)  # 2025-06-16, 14:00
    found = finder(client, anyone.headers)
    assert found[community.id]["performance"] == {
        "period_days": PERIOD_DAYS,
        "self_sufficiency": 0.4,
        "production_used_share": 1.0,
        "consumption_wh": 450,
        "production_wh": 180,
        "covered_wh": 180,
        "estimate": True,
    }
    # No member's meter reported: nothing to show.
    assert found[quiet.id]["performance"] is None
    # The community's page shows the same.
    page = client.get(f"{API}/communities/{community.id}", headers=anyone.headers).json()
    assert page["performance"] == found[community.id]["performance"]


def test_today_is_not_in_the_period_and_old_days_drop_out(client: TestClient) -> None:
    community = view_community(client)
    c1, _, producer = community.members
    meter_minutes(client, c1, FIRST, 24, import_wh_per_minute=10)
    meter_minutes(client, producer, FIRST, 24, export_wh_per_minute=12)
    anyone = register_and_login(client)
    # On the day itself the period ends at its midnight: no data yet.
    community.clock.now = DAY_START + timedelta(hours=20)
    assert finder(client, anyone.headers)[community.id]["performance"] is None
    # 31 days later the day has left the period (a new day: a new answer).
    community.clock.now = DAY_START + timedelta(days=PERIOD_DAYS + 1, hours=1)
    assert finder(client, anyone.headers)[community.id]["performance"] is None
    community.clock.now = DAY_START + timedelta(days=PERIOD_DAYS, hours=1)
    performance = finder(client, anyone.headers)[community.id]["performance"]
    # C1 alone with P: C = 150, P = 180: C1 fully covered, 30 Wh surplus.
    assert (performance["consumption_wh"], performance["covered_wh"]) == (150, 150)
    assert performance["self_sufficiency"] == 1.0
    assert performance["production_used_share"] == round(150 / 180, 4)
