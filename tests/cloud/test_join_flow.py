"""Joining a community, on SQLite and PostgreSQL: applied → approved/rejected → active → left,
the grid operators' participation rules, notifications, and authorization tried as another
user, a member of another community and no one.

The app's clock is set (``Clock``): factor changes depend on the time of day in Vienna.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ecommunity.cloud.api.notifications import notification_channel
from tests.cloud.community_helpers import (
    API,
    Clock,
    apply,
    create_community,
    error_code,
    join,
    metering_point,
    operator_post,
)
from tests.cloud.helpers import Login, register_and_login

#: Tuesday 2026-03-10, 10:30 in Vienna (CET, UTC+1): inside the 09:00–17:00 change window.
TUESDAY_MORNING = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
#: Vienna midnight starting Wednesday 2026-03-11.
WEDNESDAY = "2026-03-10T23:00:00Z"


@pytest.fixture
def clock(client: TestClient) -> Clock:
    clock = Clock(TUESDAY_MORNING)
    clock.install(cast(FastAPI, client.app))
    return clock


@pytest.fixture
def operator(client: TestClient) -> Login:
    return register_and_login(client, display_name="Olga Operator")


@pytest.fixture
def member(client: TestClient) -> Login:
    return register_and_login(client, display_name="Max Member")


@pytest.fixture
def community(client: TestClient, operator: Login) -> dict[str, Any]:
    return create_community(client, operator)


def notifications(client: TestClient, login: Login, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/notifications", params=params, headers=login.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def kinds(client: TestClient, login: Login) -> list[str]:
    return [n["kind"].removeprefix("membership_") for n in notifications(client, login)]


def patch_membership(
    client: TestClient, login: Login, community_id: int, membership_id: int, **body: Any
) -> Any:
    return client.patch(
        f"{API}/communities/{community_id}/memberships/{membership_id}",
        json=body,
        headers=login.headers,
    )


# --- the flow -------------------------------------------------------------------------------


def test_full_flow_notifies_member_and_operator_and_keeps_history(
    client: TestClient, clock: Clock, operator: Login, member: Login, community: dict[str, Any]
) -> None:
    point = metering_point()
    cid = community["id"]
    applied = apply(client, member, cid, point, tf=60)
    assert applied.status_code == 201, applied.text
    membership = applied.json()
    assert (membership["status"], membership["participation_factor"]) == ("applied", 60)
    assert membership["applied_at"] == "2026-03-10T09:30:00Z"
    mid = membership["id"]
    assert kinds(client, member) == kinds(client, operator) == ["applied"]
    assert point in notifications(client, operator)[0]["message"]

    clock.now += timedelta(minutes=5)
    approved = operator_post(client, operator, cid, mid, "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_at"] == "2026-03-10T09:35:00Z"

    # By default the point takes part from the next day, as the grid operators activate it.
    active = operator_post(client, operator, cid, mid, "activate")
    assert active.status_code == 200, active.text
    assert (active.json()["status"], active.json()["active_from"]) == ("active", WEDNESDAY)
    page = client.get(f"{API}/communities/{cid}", headers=operator.headers).json()
    assert [m["id"] for m in page["members"]] == [mid]
    assert page["member_count"] == 1

    clock.now += timedelta(days=3)
    left = client.post(f"{API}/memberships/{mid}/leave", headers=member.headers)
    assert left.status_code == 200, left.text
    assert left.json()["status"] == "left"
    assert left.json()["left_at"] == "2026-03-13T09:35:00Z"
    # It takes part until the end of the day it left on (Vienna).
    assert left.json()["active_until"] == "2026-03-13T23:00:00Z"
    assert left.json()["active_from"] == WEDNESDAY

    expected = ["left", "activated", "approved", "applied"]
    assert kinds(client, member) == kinds(client, operator) == expected
    (own,) = client.get(f"{API}/memberships", headers=member.headers).json()
    assert (own["status"], own["community_name"]) == ("left", community["name"])
    history = client.get(
        f"{API}/communities/{cid}/memberships", params={"status": "left"}, headers=operator.headers
    ).json()
    assert [(m["id"], m["display_name"]) for m in history] == [(mid, "Max Member")]
    page = client.get(f"{API}/communities/{cid}", headers=operator.headers).json()
    assert page["members"] == []
    assert page["member_count"] == 0


def test_activation_on_a_day_the_operator_sets(
    client: TestClient, clock: Clock, operator: Login, member: Login, community: dict[str, Any]
) -> None:
    mid = apply(client, member, community["id"], metering_point()).json()["id"]
    operator_post(client, operator, community["id"], mid, "approve")
    too_early = operator_post(
        client, operator, community["id"], mid, "activate", {"active_on": "2026-03-09"}
    )
    assert error_code(too_early, 409) == "activation_date"
    too_late = operator_post(
        client, operator, community["id"], mid, "activate", {"active_on": "2027-06-01"}
    )
    assert error_code(too_late, 409) == "activation_date"
    # Summer time in Vienna from 2026-03-29: midnight is 22:00 UTC.
    active = operator_post(
        client, operator, community["id"], mid, "activate", {"active_on": "2026-04-01"}
    )
    assert active.json()["active_from"] == "2026-03-31T22:00:00Z"


def test_rejection_carries_its_reason_and_ends_the_application(
    client: TestClient, clock: Clock, operator: Login, member: Login, community: dict[str, Any]
) -> None:
    cid = community["id"]
    mid = apply(client, member, cid, metering_point()).json()["id"]
    early = operator_post(client, operator, cid, mid, "activate")
    assert error_code(early, 409) == "wrong_state"
    rejected = operator_post(
        client, operator, cid, mid, "reject", {"reason": "Your address is outside our area."}
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["rejection_reason"] == "Your address is outside our area."
    assert "outside our area" in notifications(client, member)[0]["message"]
    assert kinds(client, operator) == ["rejected", "applied"]
    assert error_code(operator_post(client, operator, cid, mid, "approve"), 409) == "wrong_state"
    leave = client.post(f"{API}/memberships/{mid}/leave", headers=member.headers)
    assert error_code(leave, 409) == "wrong_state"


def test_withdrawing_an_application_frees_the_point(
    client: TestClient, operator: Login, member: Login, community: dict[str, Any]
) -> None:
    point = metering_point()
    mid = apply(client, member, community["id"], point).json()["id"]
    left = client.post(f"{API}/memberships/{mid}/leave", headers=member.headers)
    assert (left.json()["status"], left.json()["active_until"]) == ("left", None)
    again = apply(client, member, community["id"], point)
    assert again.status_code == 201, again.text


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        ({"participation_factor": 0}, "participation_factor", "greater than or equal to 1"),
        ({"participation_factor": 101}, "participation_factor", "less than or equal to 100"),
        ({"participation_factor": 50.5}, "participation_factor", "integer"),
        ({"metering_point": "AT00300000000000000000000000123"}, "metering_point", "33"),
        ({"metering_point": "AT003000000000000000000000001234567"}, "metering_point", "33"),
        ({"metering_point": "DE0030000000000000000000000012345"}, "metering_point", "AT"),
        ({"metering_point": "AT003000000000000000000000001234_"}, "metering_point", "AT"),
        ({"accept_statutes": False}, "accept_statutes", "statutes"),
        ({"accept_statutes": None}, "accept_statutes", "boolean"),
        ({"role": "prosumer"}, "role", "consumer"),
        ({"colour": "green"}, "colour", "Extra"),
    ],
)
def test_bad_applications_are_refused_with_a_reason(
    client: TestClient,
    member: Login,
    community: dict[str, Any],
    change: dict[str, Any],
    where: str,
    reason: str,
) -> None:
    body = {
        "metering_point": metering_point(),
        "participation_factor": 50,
        "accept_statutes": True,
    } | change
    response = client.post(
        f"{API}/communities/{community['id']}/applications", json=body, headers=member.headers
    )
    assert error_code(response, 422) == "invalid_request"
    (problem,) = response.json()["detail"]
    assert where in problem["loc"]
    assert reason in problem["msg"]
    assert client.get(f"{API}/memberships", headers=member.headers).json() == []


def test_a_metering_point_is_normalised(
    client: TestClient, member: Login, community: dict[str, Any]
) -> None:
    point = metering_point()
    typed = " ".join(point[i : i + 4] for i in range(0, 33, 4)).lower()
    response = apply(client, member, community["id"], typed)
    assert response.status_code == 201, response.text
    assert response.json()["metering_point"] == point


def test_unknown_or_closed_communities(client: TestClient, operator: Login, member: Login) -> None:
    assert error_code(apply(client, member, 999_999, metering_point()), 404) == "not_found"
    closed = create_community(client, operator, open_for_members=False)
    response = apply(client, member, closed["id"], metering_point())
    assert error_code(response, 409) == "community_closed"


def test_a_point_applies_once_per_community(
    client: TestClient, operator: Login, member: Login, community: dict[str, Any]
) -> None:
    point = metering_point()
    assert apply(client, member, community["id"], point, tf=30).status_code == 201
    again = apply(client, member, community["id"], point, tf=30)
    assert error_code(again, 409) == "duplicate_participation"
    # Someone else typing the same number is refused alike: the rule is per metering point.
    stranger = register_and_login(client)
    assert error_code(apply(client, stranger, community["id"], point, tf=10), 409)


def test_factors_of_a_point_add_up_to_100_percent_at_most(
    client: TestClient, operator: Login, member: Login
) -> None:
    point = metering_point()
    first, second, third = (create_community(client, operator) for _ in range(3))
    join(client, member, operator, first["id"], point, tf=60)
    assert apply(client, member, second["id"], point, tf=40).status_code == 201
    over = apply(client, member, third["id"], point, tf=1)
    assert error_code(over, 409) == "participation_sum"
    assert "101 %" in over.json()["detail"]


def test_a_sixth_community_is_refused(client: TestClient, operator: Login, member: Login) -> None:
    point = metering_point()
    communities = [create_community(client, operator) for _ in range(6)]
    ids = [apply(client, member, c["id"], point, tf=10).json()["id"] for c in communities[:5]]
    sixth = apply(client, member, communities[5]["id"], point, tf=10)
    assert error_code(sixth, 409) == "too_many_communities"
    assert "5" in sixth.json()["detail"]
    client.post(f"{API}/memberships/{ids[0]}/leave", headers=member.headers)
    assert apply(client, member, communities[5]["id"], point, tf=10).status_code == 201


def test_a_point_is_consumer_or_producer_not_both(
    client: TestClient, operator: Login, member: Login
) -> None:
    point = metering_point()
    first, second = create_community(client, operator), create_community(client, operator)
    assert apply(client, member, first["id"], point, tf=50).status_code == 201
    producer = apply(client, member, second["id"], point, tf=50, role="producer")
    assert error_code(producer, 409) == "role_conflict"


# --- participation factors and static keys --------------------------------------------------


def test_an_active_factor_changes_once_a_day_in_the_window_from_the_next_day(
    client: TestClient, clock: Clock, operator: Login, member: Login, community: dict[str, Any]
) -> None:
    cid = community["id"]
    mid = join(client, member, operator, cid, metering_point(), tf=60)["id"]

    changed = patch_membership(client, operator, cid, mid, participation_factor=50)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["participation_factor"] == 60  # still in force today
    assert (body["pending_participation_factor"], body["pending_from"]) == (50, WEDNESDAY)
    assert notifications(client, member)[0]["kind"] == "participation_factor_changed"

    second = patch_membership(client, operator, cid, mid, participation_factor=40)
    assert error_code(second, 409) == "participation_change"
    assert "already changed" in second.json()["detail"]

    clock.now += timedelta(days=1)  # Wednesday 10:30
    (listed,) = client.get(f"{API}/communities/{cid}/memberships", headers=operator.headers).json()
    assert (listed["participation_factor"], listed["pending_participation_factor"]) == (50, None)
    clock.now += timedelta(hours=8)  # 18:30: the grid operators take no changes now
    late = patch_membership(client, operator, cid, mid, participation_factor=40)
    assert error_code(late, 409) == "participation_change"
    assert "09:00–17:00" in late.json()["detail"]
    clock.now += timedelta(hours=16)  # Thursday 10:30
    assert patch_membership(client, operator, cid, mid, participation_factor=40).status_code == 200


def test_before_registration_a_factor_changes_at_once(
    client: TestClient, clock: Clock, operator: Login, member: Login, community: dict[str, Any]
) -> None:
    clock.now += timedelta(hours=10)  # 20:30: outside the window, but nothing is registered yet
    mid = apply(client, member, community["id"], metering_point(), tf=60).json()["id"]
    for tf in (50, 40):
        changed = patch_membership(client, operator, community["id"], mid, participation_factor=tf)
        assert changed.status_code == 200, changed.text
        assert changed.json()["participation_factor"] == tf
        assert changed.json()["pending_participation_factor"] is None


def test_a_factor_change_keeps_the_point_at_100_percent_at_most(
    client: TestClient, clock: Clock, operator: Login, member: Login
) -> None:
    point = metering_point()
    first, second = create_community(client, operator), create_community(client, operator)
    active = apply(client, member, first["id"], point, tf=60).json()["id"]
    operator_post(client, operator, first["id"], active, "approve")
    today = {"active_on": "2026-03-10"}
    assert operator_post(client, operator, first["id"], active, "activate", today).is_success
    applied = apply(client, member, second["id"], point, tf=40).json()["id"]

    raised = patch_membership(client, operator, first["id"], active, participation_factor=70)
    assert error_code(raised, 409) == "participation_sum"
    # A decrease applies from tomorrow only: today's share cannot be handed on at once.
    patch_membership(client, operator, first["id"], active, participation_factor=50)
    moved = patch_membership(client, operator, second["id"], applied, participation_factor=50)
    assert error_code(moved, 409) == "participation_sum"
    lowered = patch_membership(client, operator, second["id"], applied, participation_factor=30)
    assert lowered.status_code == 200, lowered.text


def test_static_keys(client: TestClient, operator: Login) -> None:
    dynamic = create_community(client, operator)
    static = create_community(client, operator, allocation_model="static")
    alice, bob = register_and_login(client), register_and_login(client)
    in_dynamic = join(client, alice, operator, dynamic["id"], metering_point(), tf=10)["id"]
    refused = patch_membership(client, operator, dynamic["id"], in_dynamic, static_key="0.5")
    assert error_code(refused, 409) == "static_keys"

    a = join(client, alice, operator, static["id"], metering_point(), tf=10)["id"]
    b = join(client, bob, operator, static["id"], metering_point(), tf=10)["id"]
    set_a = patch_membership(client, operator, static["id"], a, static_key="0.6")
    assert set_a.status_code == 200, set_a.text
    assert set_a.json()["static_key"] == "0.6"
    too_much = patch_membership(client, operator, static["id"], b, static_key=0.5)
    assert error_code(too_much, 409) == "static_keys"
    assert patch_membership(client, operator, static["id"], b, static_key=0.4).status_code == 200
    assert kinds(client, bob)[0] == "static_key_changed"
    for bad in ("1.5", "-0.1", "0.1234567891"):
        response = patch_membership(client, operator, static["id"], b, static_key=bad)
        assert error_code(response, 422) == "invalid_request"

    producer = join(
        client,
        register_and_login(client),
        operator,
        static["id"],
        metering_point(),
        tf=100,
        role="producer",
    )["id"]
    response = patch_membership(client, operator, static["id"], producer, static_key="0")
    assert error_code(response, 409) == "static_keys"


@pytest.mark.parametrize("tf", [0, 101])
def test_factor_changes_stay_between_1_and_100(
    client: TestClient, operator: Login, member: Login, community: dict[str, Any], tf: int
) -> None:
    mid = apply(client, member, community["id"], metering_point()).json()["id"]
    response = patch_membership(client, operator, community["id"], mid, participation_factor=tf)
    assert error_code(response, 422) == "invalid_request"


# --- authorization --------------------------------------------------------------------------


@pytest.fixture
def other_member(client: TestClient) -> tuple[Login, Login, dict[str, Any], int]:
    """An active member of another community: (member, its operator, community, membership)."""
    other_operator = register_and_login(client)
    other = create_community(client, other_operator, name="Windkraft Wels")
    member = register_and_login(client)
    mid = join(client, member, other_operator, other["id"], metering_point())["id"]
    return member, other_operator, other, mid


def test_only_the_operator_runs_memberships(
    client: TestClient,
    operator: Login,
    member: Login,
    community: dict[str, Any],
    other_member: tuple[Login, Login, dict[str, Any], int],
) -> None:
    cid = community["id"]
    mid = apply(client, member, cid, metering_point()).json()["id"]
    someone = register_and_login(client)
    elsewhere, other_operator, _, other_mid = other_member
    calls = [
        ("GET", f"/communities/{cid}/memberships", None),
        ("POST", f"/communities/{cid}/memberships/{mid}/approve", {}),
        ("POST", f"/communities/{cid}/memberships/{mid}/reject", {"reason": "no"}),
        ("POST", f"/communities/{cid}/memberships/{mid}/activate", {}),
        ("PATCH", f"/communities/{cid}/memberships/{mid}", {"participation_factor": 5}),
    ]
    for method, path, body in calls:
        for login in (someone, elsewhere, other_operator, member):
            response = client.request(method, API + path, json=body, headers=login.headers)
            assert error_code(response, 403) == "not_operator", (method, path)
        assert error_code(client.request(method, API + path, json=body), 401)
    # The operator of this community cannot reach a membership of another one through it.
    foreign = operator_post(client, operator, cid, other_mid, "approve")
    assert error_code(foreign, 404) == "not_found"
    # Nothing changed.
    (own,) = client.get(f"{API}/memberships", headers=member.headers).json()
    assert (own["status"], own["participation_factor"]) == ("applied", 100)
    assert client.get(f"{API}/memberships", headers=elsewhere.headers).json()[0]["status"] == (
        "active"
    )


def test_members_see_and_leave_only_their_own(
    client: TestClient,
    operator: Login,
    member: Login,
    community: dict[str, Any],
    other_member: tuple[Login, Login, dict[str, Any], int],
) -> None:
    mid = join(client, member, operator, community["id"], metering_point())["id"]
    elsewhere, _, _, other_mid = other_member
    someone = register_and_login(client)
    assert client.get(f"{API}/memberships", headers=someone.headers).json() == []
    assert [m["id"] for m in client.get(f"{API}/memberships", headers=member.headers).json()] == [
        mid
    ]
    for login in (someone, elsewhere, operator):
        response = client.post(f"{API}/memberships/{mid}/leave", headers=login.headers)
        assert error_code(response, 404) == "not_found"
    assert error_code(client.post(f"{API}/memberships/{mid}/leave"), 401)
    assert error_code(client.get(f"{API}/memberships"), 401)
    assert client.get(f"{API}/memberships", headers=member.headers).json()[0]["status"] == "active"
    assert notifications(client, someone) == []
    assert all(n["membership_id"] != mid for n in notifications(client, elsewhere))
    assert any(n["membership_id"] == other_mid for n in notifications(client, elsewhere))


# --- notifications --------------------------------------------------------------------------


def test_notifications_are_marked_read_by_their_user_only(
    client: TestClient, operator: Login, member: Login, community: dict[str, Any]
) -> None:
    apply(client, member, community["id"], metering_point())
    (note,) = notifications(client, member)
    someone = register_and_login(client)
    url = f"{API}/notifications/{note['id']}/read"
    assert error_code(client.post(url, headers=someone.headers), 404) == "not_found"
    assert error_code(client.post(url), 401)
    read = client.post(url, headers=member.headers)
    assert read.status_code == 200, read.text
    assert read.json()["read_at"] is not None
    assert notifications(client, member, unread="true") == []
    assert len(notifications(client, operator, unread="true")) == 1
    assert error_code(client.get(f"{API}/notifications"), 401)


def test_notifications_are_published_on_the_live_bus_after_the_commit(
    client: TestClient, operator: Login, member: Login, community: dict[str, Any]
) -> None:
    bus = cast(FastAPI, client.app).state.bus
    portal = client.portal
    assert portal is not None  # the client runs the app's lifespan
    to_member = portal.call(bus.subscribe, notification_channel(member.user_id))
    to_operator = portal.call(bus.subscribe, notification_channel(operator.user_id))
    mid = apply(client, member, community["id"], metering_point()).json()["id"]
    for subscription in (to_member, to_operator):
        message = json.loads(portal.call(subscription.get_nowait))
        assert message["type"] == "notification"
        assert (message["kind"], message["membership_id"]) == ("membership_applied", mid)
        stored = notifications(client, member if subscription is to_member else operator)
        assert stored[0]["id"] == message["id"]
    assert portal.call(to_member.get_nowait) is None
    portal.call(to_member.close)
    portal.call(to_operator.close)
