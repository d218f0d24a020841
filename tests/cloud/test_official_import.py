"""Importing the grid operator's official 15-minute values (``POST .../official-energy``), on
SQLite and PostgreSQL: our static and dynamic allocation reproduce the delivered G.02/G.03 to
the Wh; bad deliveries are refused whole with their lines; gaps are reported; re-deliveries
are corrections with their history; only the operator uploads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ecommunity.cloud.db.energy_models import OfficialEnergyCorrection, OfficialEnergyValue
from ecommunity.community import AllocationModel
from tests.cloud.community_helpers import API, create_community, metering_point
from tests.cloud.energy_helpers import (
    DAY_START,
    QUARTER,
    EnergyCommunity,
    energy_community,
    operator_delivery,
    quarter_hours,
    upload,
)
from tests.cloud.helpers import register_and_login
from tests.cloud.test_ingest import db_session


def stored_count(client: TestClient, model: type[Any] = OfficialEnergyValue) -> int:
    with db_session(client) as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def refused(response: Any) -> list[tuple[int, str]]:
    """The problems of a 400 refusal, as (line, reason)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_official_data"
    assert body["detail"].startswith("nothing imported")
    assert body["problem_count"] == len(body["problems"])
    return [(p["line"], p["reason"]) for p in body["problems"]]


@pytest.fixture(params=[AllocationModel.DYNAMIC, AllocationModel.STATIC])
def community(request: pytest.FixtureRequest, client: TestClient) -> EnergyCommunity:
    model: AllocationModel = request.param
    return energy_community(client, model)


def test_our_allocation_reproduces_the_operators_to_the_wh(
    client: TestClient, community: EnergyCommunity
) -> None:
    delivery = operator_delivery(community, quarter_hours(DAY_START, 96))
    response = upload(client, community.id, community.operator, delivery.csv())
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["rows"] == len(delivery.rows) == 96 * (3 * 4 + 2 * 3)
    assert report["new_values"] == report["rows"]
    assert (report["corrections"], report["unchanged"], report["missing_values"]) == (0, 0, 0)
    assert report["first_start"] == "2026-06-14T22:00:00Z"
    assert report["last_end"] == "2026-06-15T22:00:00Z"
    check = report["allocation_check"]
    assert check["model"] == community.model.value
    assert check["reproduced"] is True
    assert (check["checked_intervals"], check["unchecked_intervals"]) == (96, 0)
    assert {(q["role"], q["quantity"]): q["compared"] for q in check["quantities"]} == {
        ("consumer", "G.01T"): 288,
        ("consumer", "G.02"): 288,
        ("consumer", "G.03"): 288,
        ("producer", "G.01T"): 192,
        ("producer", "P.01T"): 192,
    }
    assert all(q["max_abs_difference_wh"] == 0 for q in check["quantities"])
    assert check["differences"] == []
    # The consumer at 60 % really is throttled, and the data is not trivial.
    assert delivery.production_wh.sum() > 0
    assert stored_count(client) == len(delivery.rows)


def test_the_check_finds_a_value_the_operator_allocated_differently(
    client: TestClient, community: EnergyCommunity
) -> None:
    delivery = operator_delivery(community, quarter_hours(DAY_START, 8), seed=3)
    rows = list(delivery.rows)
    index = next(i for i, r in enumerate(rows) if r[2] == "G.03" and r[3] > 2)
    at, point, quantity, energy = rows[index]
    rows[index] = (at, point, quantity, energy - 2)
    response = upload(client, community.id, community.operator, delivery.csv(rows))
    assert response.status_code == 201, response.text
    check = response.json()["allocation_check"]
    assert check["reproduced"] is False
    assert check["differences"] == [
        {
            "metering_point": point,
            "quantity": "G.03",
            "interval_start": at.isoformat().replace("+00:00", "Z"),
            "official_wh": energy - 2,
            "ours_wh": energy,
        }
    ]
    # With a tolerance of 2 Wh it passes.
    params = {"from": DAY_START.isoformat(), "to": (DAY_START + 8 * QUARTER).isoformat()}
    answer = client.get(
        f"{API}/communities/{community.id}/official-energy/check",
        params=params | {"tolerance_wh": 2},
        headers=community.operator.headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["reproduced"] is True


@pytest.mark.parametrize("model", [AllocationModel.DYNAMIC])
def test_redelivery_replaces_values_and_keeps_the_corrections(
    client: TestClient, model: AllocationModel
) -> None:
    community = energy_community(client, model)
    delivery = operator_delivery(community, quarter_hours(DAY_START, 4))
    assert upload(client, community.id, community.operator, delivery.csv()).status_code == 201
    again = upload(client, community.id, community.operator, delivery.csv())
    assert again.status_code == 201
    assert (again.json()["new_values"], again.json()["unchanged"]) == (0, len(delivery.rows))
    corrected = [
        (at, point, quantity, energy + 7 if quantity == "G.01" and k < 3 else energy)
        for k, (at, point, quantity, energy) in enumerate(delivery.rows)
    ]
    third = upload(client, community.id, community.operator, delivery.csv(corrected[:20]))
    assert third.status_code == 201, third.text
    report = third.json()
    assert (report["corrections"], report["unchanged"], report["new_values"]) == (1, 19, 0)
    assert stored_count(client) == len(delivery.rows)
    assert stored_count(client, OfficialEnergyCorrection) == 1
    history = client.get(
        f"{API}/communities/{community.id}/official-energy/corrections",
        params={"from": DAY_START.isoformat(), "to": (DAY_START + timedelta(days=1)).isoformat()},
        headers=community.operator.headers,
    )
    assert history.status_code == 200, history.text
    ((at, point, _, energy),) = [r for r in delivery.rows[:3] if r[2] == "G.01"]
    assert history.json() == [
        {
            "metering_point": point,
            "quantity": "G.01",
            "interval_start": at.isoformat().replace("+00:00", "Z"),
            "previous_energy_wh": energy,
            "energy_wh": energy + 7,
            "previous_import_id": 1,
            "import_id": 3,
        }
    ]
    imports = client.get(
        f"{API}/communities/{community.id}/official-energy/imports",
        headers=community.operator.headers,
    ).json()
    assert [(i["id"], i["corrections"], i["source"]) for i in imports] == [
        (3, 1, "upload"),
        (2, 0, "upload"),
        (1, 0, "upload"),
    ]


def test_gaps_are_reported_not_refused(client: TestClient) -> None:
    community = energy_community(client, AllocationModel.DYNAMIC)
    delivery = operator_delivery(community, quarter_hours(DAY_START, 8))
    first_consumer = sorted(m.point for m in community.consumers)[0]
    missing_at = set(quarter_hours(DAY_START + 2 * QUARTER, 3))
    rows = [r for r in delivery.rows if not (r[1] == first_consumer and r[0] in missing_at)]
    response = upload(client, community.id, community.operator, delivery.csv(rows))
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["missing_values"] == 3 * 4
    assert [(g["metering_point"], g["quantity"], g["intervals"]) for g in report["gaps"]] == [
        (first_consumer, quantity, 3) for quantity in ("G.01", "G.01T", "G.02", "G.03")
    ]
    assert report["gaps"][0]["start"] == "2026-06-14T22:30:00Z"
    assert report["gaps"][0]["end"] == "2026-06-14T23:15:00Z"
    # Quarter hours without every G.01 cannot be checked; the others still are.
    check = report["allocation_check"]
    assert (check["checked_intervals"], check["unchecked_intervals"]) == (5, 3)
    assert check["reproduced"] is True
    # Delivering the missing values later closes the gaps.
    later = [r for r in delivery.rows if r[1] == first_consumer and r[0] in missing_at]
    filled = upload(client, community.id, community.operator, delivery.csv(later))
    assert filled.json()["missing_values"] == 0


def test_bad_deliveries_are_refused_whole_with_their_lines(client: TestClient) -> None:
    community = energy_community(client, AllocationModel.DYNAMIC)
    delivery = operator_delivery(community, quarter_hours(DAY_START, 2))
    good = delivery.csv().splitlines()
    header, first, second = good[0], good[1], good[2]
    stranger = metering_point(8_888_888)
    producer = community.producers[0].point
    consumer = community.consumers[0].point
    before_joining = (DAY_START - QUARTER).isoformat()
    cases: list[tuple[str, list[tuple[int, str]]]] = [
        ("interval_start,point,quantity,energy_wh\n" + first, [(1, "the header must be")]),
        ("", [(1, "the file is empty")]),
        (header + "\n", [(1, "no values")]),
        (f"{header}\n{first}\n{first}\n", [(3, "again (first on line 2)")]),
        (f"{header}\n{first}\n2026-06-14T22:07:00Z,{consumer},G.01,5\n", [(3, "15-minute")]),
        (f"{header}\n2026-06-14T22:00:00,{consumer},G.01,5\n", [(2, "no UTC offset")]),
        (f"{header}\nyesterday,{consumer},G.01,5\n", [(2, "ISO 8601")]),
        (f"{header}\n2026-06-14T22:00:00Z,{consumer},G.01,-5\n", [(2, "energy_wh")]),
        (f"{header}\n2026-06-14T22:00:00Z,{consumer},G.01,1.5\n", [(2, "energy_wh")]),
        (f"{header}\n2026-06-14T22:00:00Z,{consumer},G.04,5\n", [(2, "quantity is one of")]),
        (f"{header}\n2026-06-14T22:00:00Z,AT12,G.01,5\n", [(2, "AT")]),
        (f"{header}\n2026-06-14T22:00:00Z,{consumer},G.01\n", [(2, "3 fields")]),
        (f"{header}\n2026-06-14T22:00:00Z,{stranger},G.01,5\n", [(2, "does not take part")]),
        (f"{header}\n{before_joining},{consumer},G.01,5\n", [(2, "does not take part")]),
        (f"{header}\n2026-06-14T22:00:00Z,{producer},G.02,5\n", [(2, "is a producer")]),
        (f"{header}\n2026-06-14T22:00:00Z,{consumer},P.01T,5\n", [(2, "is a consumer")]),
        # Every problem of a kind at once: the format first, then the memberships.
        (
            f"{header}\n{first}\n{second}\n2026-06-14T22:00:00Z,{consumer},G.01,x\n"
            f"2026-06-14T22:00:00Z,{stranger},G.01,5\nnow,{consumer},G.01,5\n",
            [(4, "energy_wh"), (6, "ISO 8601")],
        ),
        (
            f"{header}\n{first}\n2026-06-14T22:00:00Z,{producer},G.03,5\n"
            f"2026-06-14T22:00:00Z,{stranger},G.01,5\n",
            [(3, "is a producer"), (4, "does not take part")],
        ),
    ]
    for text, expected in cases:
        problems = refused(upload(client, community.id, community.operator, text))
        assert len(problems) == len(expected), (text, problems)
        for (line, reason), (want_line, want_reason) in zip(problems, expected, strict=True):
            assert line == want_line, (text, problems)
            assert want_reason in reason, (text, problems)
    assert stored_count(client) == 0


def test_other_formats_of_the_same_values_are_accepted(client: TestClient) -> None:
    community = energy_community(client, AllocationModel.DYNAMIC)
    consumer = community.consumers[0].point
    spaced = f"{consumer[:10]} {consumer[10:].lower()}"
    text = (
        "\ufeffinterval_start,metering_point,quantity,energy_kwh,quality\n"
        f"2026-06-15T00:00:00+02:00,{spaced},1-1:1.9.0 G.01,0.412,L1\n"
        f"2026-06-15T00:15:00+02:00,{consumer},g.01,0.5,\n"
    )
    response = upload(client, community.id, community.operator, text)
    assert response.status_code == 201, response.text
    with db_session(client) as db:
        values = db.execute(
            select(OfficialEnergyValue.energy_wh, OfficialEnergyValue.quality).order_by(
                OfficialEnergyValue.interval_start
            )
        ).all()
    assert [tuple(v) for v in values] == [(412, "L1"), (500, None)]
    too_fine = text.replace("0.412", "0.4125")
    assert refused(upload(client, community.id, community.operator, too_fine))[0][0] == 2


def test_only_the_operator_uploads(client: TestClient) -> None:
    community = energy_community(client, AllocationModel.DYNAMIC)
    text = operator_delivery(community, quarter_hours(DAY_START, 1)).csv()
    member = community.consumers[0].login
    other_operator = register_and_login(client)
    elsewhere = create_community(client, other_operator)
    stranger = register_and_login(client)
    assert upload(client, community.id, None, text).status_code == 401
    assert upload(client, community.id, member, text).status_code == 403
    assert upload(client, community.id, stranger, text).status_code == 403
    assert upload(client, community.id, other_operator, text).status_code == 403
    # The other operator's own community does not have these members.
    problems = refused(upload(client, elsewhere["id"], other_operator, text))
    assert all("does not take part" in reason for _, reason in problems)
    assert upload(client, 999_999, community.operator, text).status_code == 404
    for path in ("imports", "check?from=2026-06-14T22:00:00Z&to=2026-06-15T22:00:00Z"):
        url = f"{API}/communities/{community.id}/official-energy/{path}"
        assert client.get(url, headers=member.headers).status_code == 403
        assert client.get(url).status_code == 401
    wrong_type = client.post(
        f"{API}/communities/{community.id}/official-energy",
        json={"csv": text},
        headers=community.operator.headers,
    )
    assert wrong_type.status_code == 415
    assert stored_count(client) == 0
