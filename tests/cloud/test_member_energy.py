"""Members' energy figures, reconciliation with their meters, and who sees what, on SQLite and
PostgreSQL.

A dynamic community takes part from Monday 2026-06-15. The grid operator's values for Monday
are imported; for Tuesday only the members' gateways delivered minute readings (counters built
so that each quarter hour's counter difference is a known energy), so Tuesday is our estimate;
Wednesday has no data at all. Money is checked against hand-computed rates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecommunity.community import AllocationModel
from tests.cloud.community_helpers import API, create_community, join, metering_point
from tests.cloud.energy_helpers import (
    DAY_START,
    Delivery,
    EnergyCommunity,
    Member,
    energy_community,
    operator_delivery,
    quarter_hours,
    upload,
)
from tests.cloud.helpers import Login, register_and_login
from tests.cloud.test_ingest import Account, add_gateway
from tests.cloud.test_ingest import upload as upload_readings

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def minute_readings(
    quarter_wh: dict[datetime, int], *, consumer: bool, base_wh: int = 1_000_000
) -> list[dict[str, Any]]:
    """Minute readings whose counter grows by each quarter hour's energy within it: the
    counter difference between two quarter-hour boundaries is exactly that energy."""
    readings = []
    counter = base_wh
    first = min(quarter_wh)
    readings.append(_reading(first, counter, consumer))
    for start in sorted(quarter_wh):
        energy = quarter_wh[start]
        parts = [energy // 15] * 15
        parts[-1] += energy - sum(parts)
        for minute, part in enumerate(parts, start=1):
            counter += part
            readings.append(_reading(start + minute * MINUTE, counter, consumer))
    return readings


def _reading(at: datetime, counter: int, consumer: bool) -> dict[str, Any]:
    return {
        "meter_serial": "1KFM0200012345",
        "profile": "amis",
        "measured_at": at.isoformat(),
        "energy_import_wh": counter if consumer else 50_000,
        "energy_export_wh": 20_000 if consumer else counter,
    }


def pair_and_upload(client: TestClient, member: Member, quarter_wh: dict[datetime, int]) -> None:
    gateway = add_gateway(
        client, Account(member.login.user_id, member.login.headers), f"pi-{member.point}"
    )
    readings = minute_readings(quarter_wh, consumer=member.role == "consumer")
    for first in range(0, len(readings), 4000):
        upload_readings(client, gateway, readings[first : first + 4000])


def energies(delivery: Delivery, point: str, quantity: str) -> dict[datetime, int]:
    return {at: wh for at, p, q, wh in delivery.rows if p == point and q == quantity}


def get(client: TestClient, login: Login | None, path: str, **params: Any) -> Any:
    return client.get(
        f"{API}{path}", params=params, headers=None if login is None else login.headers
    )


def set_tariff(client: TestClient, member: Member, **body: Any) -> Any:
    return client.put(
        f"{API}/memberships/{member.membership_id}/energy-settings",
        json=body,
        headers=member.login.headers,
    )


@pytest.fixture
def scene(client: TestClient) -> tuple[EnergyCommunity, Delivery, Delivery]:
    """Official values for Monday, gateway readings for Monday and Tuesday (Tuesday's from a
    second set of measurements the grid operator has not delivered yet)."""
    community = energy_community(client, AllocationModel.DYNAMIC)
    monday = operator_delivery(community, quarter_hours(DAY_START, 96), seed=11)
    tuesday = operator_delivery(community, quarter_hours(DAY_START + DAY, 96), seed=12)
    assert upload(client, community.id, community.operator, monday.csv()).status_code == 201
    for member in community.members:
        measured = energies(monday, member.point, "G.01") | energies(tuesday, member.point, "G.01")
        pair_and_upload(client, member, measured)
    community.clock.now = DAY_START + 3 * DAY + timedelta(hours=12)
    return community, monday, tuesday


def test_a_member_sees_official_figures_with_hand_computed_savings(
    client: TestClient, scene: tuple[EnergyCommunity, Delivery, Delivery]
) -> None:
    community, monday, _ = scene
    consumer = community.consumers[0]
    settings = set_tariff(
        client,
        consumer,
        supplier_energy_ct_per_kwh="20",
        grid_usage_ct_per_kwh="8",
        renewable_levy_ct_per_kwh="0.5",
    )
    assert settings.status_code == 200, settings.text
    assert settings.json()["grid_usage_ct_per_kwh"] == "8.0000"
    answer = get(
        client,
        consumer.login,
        f"/communities/{community.id}/members/me/energy",
        **{"from": "2026-06-15", "to": "2026-06-16", "emission_factor_g_per_kwh": 250},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    (point,) = body["points"]
    assert (point["metering_point"], point["role"]) == (consumer.point, "consumer")
    (day,) = point["periods"]
    covered = sum(energies(monday, consumer.point, "G.03").values())
    consumed = sum(energies(monday, consumer.point, "G.01").values())
    assert covered > 0
    assert day["period"] == "2026-06-15"
    assert (day["source"], day["official_days"], day["missing_intervals"]) == ("official", 1, 0)
    assert day["start"] == "2026-06-14T22:00:00Z"
    assert (day["measured_wh"], day["covered_wh"]) == (consumed, covered)
    assert day["allocated_wh"] == sum(energies(monday, consumer.point, "G.02").values())
    assert day["residual_wh"] == consumed - covered
    # EEG local, grid level 7, PV, 2026: community 12.5 + 8 × 43 % (grid fee −57 %), levies
    # exempt; supplier 20 + 8 + 0.1 (Elektrizitätsabgabe, households 2026) + 0.5.
    assert Decimal(day["community_price_eur"]) == _eur(covered * Decimal("12.5"))
    assert Decimal(day["community_cost_eur"]) == _eur(covered * Decimal("15.94"))
    assert Decimal(day["supplier_cost_eur"]) == _eur(covered * Decimal("28.6"))
    assert Decimal(day["savings_eur"]) == _eur(covered * Decimal("12.66"))
    assert Decimal(day["co2_avoided_g"]) == Decimal(covered * 250) / 1000
    # The consumer at 60 % has no tariff: the community price only, and why.
    other = community.consumers[1]
    theirs = get(
        client,
        other.login,
        f"/communities/{community.id}/members/me/energy",
        **{"from": "2026-06-15", "to": "2026-06-16"},
    ).json()
    (their_point,) = theirs["points"]
    assert their_point["metering_point"] == other.point
    assert their_point["pricing_note"] == "no supplier tariff set for this membership"
    assert their_point["periods"][0]["savings_eur"] is None
    assert their_point["periods"][0]["co2_avoided_g"] is None


def _eur(wh_times_ct_per_kwh: Decimal) -> Decimal:
    """Wh × ct/kWh in €, rounded to 0.01 ct as the API does."""
    return (wh_times_ct_per_kwh / 100_000).quantize(Decimal("0.0001"))


def test_estimate_where_official_values_are_missing_and_none_without_data(
    client: TestClient, scene: tuple[EnergyCommunity, Delivery, Delivery]
) -> None:
    community, monday, tuesday = scene
    consumer, producer = community.consumers[1], community.producers[0]
    assert set_tariff(client, producer, feed_in_ct_per_kwh="7").status_code == 200
    params = {"from": "2026-06-15", "to": "2026-06-18"}
    mine = get(client, consumer.login, f"/communities/{community.id}/members/me/energy", **params)
    assert mine.status_code == 200, mine.text
    days = mine.json()["points"][0]["periods"]
    assert [d["source"] for d in days] == ["official", "estimate", "none"]
    # Tuesday's estimate: our engine on the meters' energies, which are Tuesday's measurements,
    # gives exactly the allocation the grid operator will deliver.
    assert days[1]["covered_wh"] == sum(energies(tuesday, consumer.point, "G.03").values())
    assert days[1]["measured_wh"] == sum(energies(tuesday, consumer.point, "G.01").values())
    assert days[1]["participating_wh"] == sum(energies(tuesday, consumer.point, "G.01T").values())
    assert (days[1]["estimated_days"], days[1]["missing_intervals"]) == (1, 0)
    assert (days[2]["measured_wh"], days[2]["missing_intervals"]) == (0, 96)

    monthly = get(
        client,
        consumer.login,
        f"/communities/{community.id}/members/me/energy",
        **params,
        resolution="month",
    ).json()["points"][0]["periods"]
    assert [
        (m["period"], m["source"], m["official_days"], m["estimated_days"]) for m in monthly
    ] == [("2026-06", "estimate", 1, 1)]
    assert monthly[0]["covered_wh"] == sum(d["covered_wh"] for d in days)

    # A producer: what consumers took, at the community's price and at the feed-in tariff.
    theirs = get(client, producer.login, f"/communities/{community.id}/members/me/energy", **params)
    (point,) = theirs.json()["points"]
    assert (point["metering_point"], point["role"]) == (producer.point, "producer")
    day = point["periods"][0]
    credited = sum(energies(monday, producer.point, "G.01T").values()) - sum(
        energies(monday, producer.point, "P.01T").values()
    )
    assert day["credited_wh"] == credited > 0
    assert day["covered_wh"] is None
    assert Decimal(day["community_price_eur"]) == _eur(credited * Decimal("9.25"))
    assert Decimal(day["feed_in_revenue_eur"]) == _eur(credited * Decimal("7"))
    assert Decimal(day["gain_eur"]) == _eur(credited * Decimal("2.25"))


def test_operator_sees_totals_and_every_member(
    client: TestClient, scene: tuple[EnergyCommunity, Delivery, Delivery]
) -> None:
    community, monday, _ = scene
    answer = get(
        client,
        community.operator,
        f"/communities/{community.id}/energy",
        **{"from": "2026-06-15", "to": "2026-06-17"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert sorted(m["metering_point"] for m in body["members"]) == sorted(
        m.point for m in community.members
    )
    monday_total = body["totals"][0]
    assert monday_total["source"] == "official"
    assert monday_total["consumption_wh"] == int(monday.consumption_wh.sum())
    assert monday_total["production_wh"] == int(monday.production_wh.sum())
    covered = sum(wh for _, _, q, wh in monday.rows if q == "G.03")
    assert monday_total["covered_wh"] == covered
    # What consumers took is what producers are credited, to the Wh.
    assert monday_total["credited_wh"] == covered
    assert body["totals"][1]["source"] == "estimate"


def test_reconciliation_flags_a_meter_that_disagrees(
    client: TestClient, scene: tuple[EnergyCommunity, Delivery, Delivery]
) -> None:
    community, monday, _ = scene
    params = {"from": "2026-06-14T22:00:00Z", "to": "2026-06-15T22:00:00Z"}
    clean = get(client, community.operator, f"/communities/{community.id}/reconciliation", **params)
    assert clean.status_code == 200, clean.text
    points = clean.json()["points"]
    assert len(points) == 5
    for point in points:
        assert (point["compared"], point["flagged"]) == (24, 0), point
        assert point["meter_link"] == "only_meter"
        assert all(i["difference_wh"] == 0 for i in point["intervals"])

    # A second meter for one consumer, chosen for the membership, counts 300 Wh more from
    # 10:00 to 11:00 Vienna time.
    consumer = community.consumers[0]
    measured = energies(monday, consumer.point, "G.01")
    odd_hour = DAY_START + timedelta(hours=10)
    for k in range(4):
        measured[odd_hour + k * timedelta(minutes=15)] += 75
    gateway = add_gateway(client, Account(consumer.login.user_id, consumer.login.headers), "pi-2")
    readings = minute_readings(measured, consumer=True)
    for reading in readings:
        reading["meter_serial"] = "second"
    upload_readings(client, gateway, readings)
    meters = get(client, consumer.login, "/meters").json()
    second = next(m["id"] for m in meters if m["serial"] == "second")
    assert set_tariff(client, consumer, meter_id=second).status_code == 200

    mine = get(client, consumer.login, f"/communities/{community.id}/reconciliation", **params)
    assert mine.status_code == 200, mine.text
    (point,) = mine.json()["points"]
    assert (point["metering_point"], point["meter_id"], point["meter_link"]) == (
        consumer.point,
        second,
        "chosen",
    )
    assert (point["compared"], point["flagged"]) == (24, 1)
    (flag,) = [i for i in point["intervals"] if i["flagged"]]
    assert (flag["start"], flag["difference_wh"]) == ("2026-06-15T08:00:00Z", 300)
    assert flag["gateway_wh"] - flag["official_wh"] == 300

    # Per quarter hour, 75 Wh is above 50 Wh; with a threshold of 100 Wh nothing is flagged.
    quarters = get(
        client,
        consumer.login,
        f"/communities/{community.id}/reconciliation",
        **params,
        resolution="15min",
        flagged_only="true",
    ).json()["points"][0]
    assert (quarters["compared"], quarters["flagged"]) == (96, 4)
    assert [(i["start"], i["difference_wh"]) for i in quarters["intervals"]] == [
        (f"2026-06-15T08:{m:02d}:00Z", 75) for m in (0, 15, 30, 45)
    ]
    relaxed = get(
        client,
        consumer.login,
        f"/communities/{community.id}/reconciliation",
        **params,
        threshold_wh=400,
    ).json()["points"][0]
    assert relaxed["flagged"] == 0
    daily = get(
        client,
        community.operator,
        f"/communities/{community.id}/reconciliation",
        **params,
        resolution="1d",
    ).json()
    assert {p["metering_point"]: p["compared"] for p in daily["points"]}[consumer.point] == 1


def test_no_member_sees_another_members_data(
    client: TestClient, scene: tuple[EnergyCommunity, Delivery, Delivery]
) -> None:
    community, _, _ = scene
    member = community.consumers[2]
    elsewhere_operator = register_and_login(client)
    elsewhere = create_community(client, elsewhere_operator, name="Anderswo")
    outsider = register_and_login(client)
    join(client, outsider, elsewhere_operator, elsewhere["id"], metering_point(7_777_777))
    stranger = register_and_login(client)
    days = {"from": "2026-06-15", "to": "2026-06-16"}
    hours = {"from": "2026-06-14T22:00:00Z", "to": "2026-06-15T22:00:00Z"}
    own = f"/communities/{community.id}/members/me/energy"
    everyone = f"/communities/{community.id}/energy"
    reconciliation = f"/communities/{community.id}/reconciliation"

    mine = get(client, member.login, own, **days).json()
    assert [p["metering_point"] for p in mine["points"]] == [member.point]
    assert [
        p["metering_point"]
        for p in get(client, member.login, reconciliation, **hours).json()["points"]
    ] == [member.point]
    assert get(client, member.login, everyone, **days).status_code == 403
    for login in (outsider, stranger, elsewhere_operator):
        assert get(client, login, own, **days).status_code == 403
        assert get(client, login, everyone, **days).status_code == 403
        assert get(client, login, reconciliation, **hours).status_code == 403
    for path, params in ((own, days), (everyone, days), (reconciliation, hours)):
        assert get(client, None, path, **params).status_code == 401
    assert (
        get(client, member.login, "/communities/999999/members/me/energy", **days).status_code
        == 404
    )
    # Settings of another member's membership: not found, not shown, not changed.
    other = community.consumers[0]
    peek = get(client, member.login, f"/memberships/{other.membership_id}/energy-settings")
    assert peek.status_code == 404
    change = client.put(
        f"{API}/memberships/{other.membership_id}/energy-settings",
        json={"supplier_energy_ct_per_kwh": "1", "grid_usage_ct_per_kwh": "1"},
        headers=member.login.headers,
    )
    assert change.status_code == 404
    # Nor another member's meter.
    their_meter = get(client, other.login, "/meters").json()[0]["id"]
    assert set_tariff(client, member, meter_id=their_meter).status_code == 404


def test_bad_requests_are_refused_with_reasons(
    client: TestClient, scene: tuple[EnergyCommunity, Delivery, Delivery]
) -> None:
    community, _, _ = scene
    member, producer = community.consumers[0], community.producers[0]
    own = f"/communities/{community.id}/members/me/energy"
    reconciliation = f"/communities/{community.id}/reconciliation"
    for params in (
        {"from": "2026-06-16", "to": "2026-06-15"},
        {"from": "2026-06-15", "to": "2028-06-15"},
    ):
        response = get(client, member.login, own, **params)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "bad_range"
    assert (
        get(client, member.login, own, **{"from": "yesterday", "to": "2026-06-15"}).status_code
        == 422
    )
    for params in (
        {"from": "2026-06-14T22:07:00Z", "to": "2026-06-15T22:00:00Z"},
        {"from": "2026-06-14T22:15:00Z", "to": "2026-06-15T22:00:00Z", "resolution": "1h"},
        {"from": "2026-06-14T23:00:00Z", "to": "2026-06-15T22:00:00Z", "resolution": "1d"},
        {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "resolution": "15min"},
    ):
        response = get(client, member.login, reconciliation, **params)
        assert response.status_code == 400, (params, response.text)
    assert (
        get(
            client,
            member.login,
            reconciliation,
            **{"from": "2026-06-14T22:00:00", "to": "2026-06-15T22:00:00Z"},
        ).status_code
        == 422
    )
    wrong_role = set_tariff(
        client, producer, supplier_energy_ct_per_kwh="20", grid_usage_ct_per_kwh="8"
    )
    assert (wrong_role.status_code, wrong_role.json()["code"]) == (400, "wrong_role")
    assert set_tariff(client, member, feed_in_ct_per_kwh="7").status_code == 400
    assert set_tariff(client, member, supplier_energy_ct_per_kwh="20").status_code == 422
    assert (
        set_tariff(
            client, member, supplier_energy_ct_per_kwh="20.00001", grid_usage_ct_per_kwh="8"
        ).status_code
        == 422
    )
    assert set_tariff(client, member, meter_id=999_999).status_code == 404


def test_a_metering_point_that_changed_hands_shows_each_holder_only_their_days(
    client: TestClient,
) -> None:
    community = energy_community(client, AllocationModel.DYNAMIC)
    seller = community.consumers[0]
    community.clock.now = DAY_START + timedelta(hours=12)  # Monday noon: leaves at midnight
    left = client.post(
        f"{API}/memberships/{seller.membership_id}/leave", headers=seller.login.headers
    )
    assert left.status_code == 200, left.text
    community.clock.now = DAY_START + DAY + timedelta(hours=8)  # Tuesday 10:00 Vienna
    buyer = register_and_login(client, display_name="Buyer")
    applied = client.post(
        f"{API}/communities/{community.id}/applications",
        json={"metering_point": seller.point, "participation_factor": 100, "accept_statutes": True},
        headers=buyer.headers,
    )
    assert applied.status_code == 201, applied.text
    membership = applied.json()["id"]
    for action, body in (("approve", {}), ("activate", {"active_on": "2026-06-16"})):
        done = client.post(
            f"{API}/communities/{community.id}/memberships/{membership}/{action}",
            json=body,
            headers=community.operator.headers,
        )
        assert done.status_code == 200, done.text
    rows = [
        (at, seller.point, "G.01", 100 + day)
        for day in (0, 1)
        for at in quarter_hours(DAY_START + day * DAY, 96)
    ]
    csv = "interval_start,metering_point,quantity,energy_wh\n" + "".join(
        f"{at.isoformat()},{point},{quantity},{wh}\n" for at, point, quantity, wh in rows
    )
    assert upload(client, community.id, community.operator, csv).status_code == 201
    community.clock.now = DAY_START + 3 * DAY
    params = {"from": "2026-06-15", "to": "2026-06-17"}
    path = f"/communities/{community.id}/members/me/energy"
    (theirs,) = get(client, seller.login, path, **params).json()["points"]
    (mine,) = get(client, buyer, path, **params).json()["points"]
    assert [(d["taking_intervals"], d["measured_wh"]) for d in theirs["periods"]] == [
        (96, 96 * 100),
        (0, 0),
    ]
    assert [(d["taking_intervals"], d["measured_wh"]) for d in mine["periods"]] == [
        (0, 0),
        (96, 96 * 101),
    ]
    hours = {"from": "2026-06-14T22:00:00Z", "to": "2026-06-16T22:00:00Z", "resolution": "1d"}
    (reconciled,) = get(
        client, buyer, f"/communities/{community.id}/reconciliation", **hours
    ).json()["points"]
    assert [i["start"] for i in reconciled["intervals"]] == ["2026-06-15T22:00:00Z"]
    assert reconciled["intervals"][0]["official_wh"] == 96 * 101


def test_the_day_the_clocks_go_back_has_100_quarter_hours(client: TestClient) -> None:
    community = energy_community(client, AllocationModel.STATIC)
    sunday = datetime(2026, 10, 24, 22, 0, tzinfo=DAY_START.tzinfo)  # 2026-10-25 00:00 CEST
    delivery = operator_delivery(community, quarter_hours(sunday, 100), seed=5)
    response = upload(client, community.id, community.operator, delivery.csv())
    assert response.status_code == 201, response.text
    assert response.json()["last_end"] == "2026-10-25T23:00:00Z"
    assert response.json()["allocation_check"]["reproduced"] is True
    community.clock.now = sunday + 2 * DAY
    answer = get(
        client,
        community.operator,
        f"/communities/{community.id}/energy",
        **{"from": "2026-10-25", "to": "2026-10-26"},
    ).json()
    (total,) = answer["totals"]
    assert (total["start"], total["end"], total["source"]) == (
        "2026-10-24T22:00:00Z",
        "2026-10-25T23:00:00Z",
        "official",
    )
    assert total["consumption_wh"] == int(delivery.consumption_wh.sum())
    assert {p["periods"][0]["taking_intervals"] for p in answer["members"]} == {100}
