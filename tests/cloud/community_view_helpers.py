"""Test helpers for the community views: a small community whose members have paired gateways,
and their meters' minute readings uploaded through the real ingest API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.cloud.community_helpers import (
    API,
    Clock,
    create_community,
    join,
    metering_point,
    operator_post,
)
from tests.cloud.helpers import Login, register_and_login
from tests.cloud.test_ingest import Account, Gateway, add_gateway, reading, upload

#: The members take part from this Vienna day on (a Sunday in summer time, UTC+2).
DAY = date(2025, 6, 15)
#: Its Vienna midnight.
DAY_START = datetime(2025, 6, 14, 22, 0, tzinfo=UTC)
#: When they joined: the day before, within the grid operators' hours.
JOINED_AT = datetime(2025, 6, 14, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
QUARTER = timedelta(minutes=15)


@dataclass
class Member:
    login: Login
    point: str
    role: str
    tf: int
    membership_id: int
    gateway: Gateway | None = None
    #: The counters of the meter so far: [import, export] [Wh], and their instant.
    counters: list[int] = field(default_factory=lambda: [1_000_000, 200_000])
    last_at: datetime | None = None

    def account(self) -> Account:
        return Account(user_id=self.login.user_id, headers=self.login.headers)


@dataclass
class ViewCommunity:
    id: int
    operator: Login
    members: list[Member]
    clock: Clock

    def member(self, index: int) -> Member:
        return self.members[index]


def view_community(
    client: TestClient,
    *,
    model: str = "dynamic",
    roles: Iterable[tuple[str, int]] = (("consumer", 100), ("consumer", 50), ("producer", 100)),
    gateways: bool = True,
    number_base: int = 0,
    **community: Any,
) -> ViewCommunity:
    """An operator and members (role, factor) taking part from :data:`DAY`, each with a
    gateway (unless not ``gateways``). The app's clock is set to :data:`JOINED_AT`."""
    clock = Clock(JOINED_AT)
    clock.install(cast(FastAPI, client.app))
    operator = register_and_login(client, display_name="Olga Operator")
    created = create_community(client, operator, allocation_model=model, **community)
    members = []
    for number, (role, tf) in enumerate(roles, start=number_base + 1):
        login = register_and_login(client, display_name=f"Member {number}")
        point = metering_point(7_000_000 + number)
        membership = join(client, login, operator, created["id"], point, tf, role=role)
        member = Member(login, point, role, tf, membership["id"])
        if gateways:
            member.gateway = add_gateway(client, member.account(), hardware_id=f"pi-{number}")
        members.append(member)
    return ViewCommunity(created["id"], operator, members, clock)


def set_key(client: TestClient, community: ViewCommunity, member: Member, key: str) -> None:
    response = client.patch(
        f"{API}/communities/{community.id}/memberships/{member.membership_id}",
        json={"static_key": key},
        headers=community.operator.headers,
    )
    assert response.status_code == 200, response.text


def meter_minutes(
    client: TestClient,
    member: Member,
    start: datetime,
    minutes: int,
    *,
    import_wh_per_minute: int = 0,
    export_wh_per_minute: int = 0,
    every: timedelta = MINUTE,
) -> None:
    """Upload the member's readings at ``start`` and every ``every`` after, ``minutes`` long,
    with constant energy per minute in each direction (also from the member's last reading to
    ``start``, when there is one)."""
    assert member.gateway is not None
    per_step = every // MINUTE
    readings = []
    for k in range(0, minutes + 1, per_step):
        at = start + k * MINUTE
        if member.last_at is not None:
            elapsed = (at - member.last_at) // MINUTE
            member.counters[0] += import_wh_per_minute * elapsed
            member.counters[1] += export_wh_per_minute * elapsed
        member.last_at = at
        readings.append(reading(at, member.counters[0], member.counters[1], serial=member.point))
    for first in range(0, len(readings), 2000):
        result = upload(client, member.gateway, readings[first : first + 2000])
        assert result["flagged"] == 0, result


def operator_post_ok(
    client: TestClient, community: ViewCommunity, membership_id: int, action: str
) -> None:
    response = operator_post(client, community.operator, community.id, membership_id, action)
    assert response.status_code == 200, response.text
