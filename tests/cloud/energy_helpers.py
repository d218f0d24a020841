"""Test helpers for official energy data: a small community with members taking part from a
known day, and the grid operator's CSV for it built with the domain engine."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any, cast

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ecommunity.community import AllocationModel, StaticKeys, allocate
from tests.cloud.community_helpers import (
    API,
    Clock,
    create_community,
    join,
    metering_point,
)
from tests.cloud.helpers import Login, register_and_login

#: The first day the members take part: Monday 2026-06-15 (CEST, UTC+2).
DAY = date(2026, 6, 15)
#: Its Vienna midnight, and the operator's clock the day before (inside the change window).
DAY_START = datetime(2026, 6, 14, 22, 0, tzinfo=UTC)
JOINED_AT = datetime(2026, 6, 14, 8, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)

#: Consumers: (factor, static key); producers: factor.
CONSUMERS = ((100, "0.5"), (60, "0.3"), (100, "0.15"))
PRODUCERS = (100, 80)


@dataclass
class Member:
    login: Login
    point: str
    role: str
    tf: int
    membership_id: int
    key: str | None = None


@dataclass
class EnergyCommunity:
    """A community whose members take part from :data:`DAY`."""

    id: int
    model: AllocationModel
    operator: Login
    consumers: list[Member]
    producers: list[Member]
    clock: Clock
    others: dict[str, Login] = field(default_factory=dict)

    @property
    def members(self) -> list[Member]:
        return [*self.consumers, *self.producers]


def energy_community(
    client: TestClient, model: AllocationModel, *, number_base: int = 0
) -> EnergyCommunity:
    """An operator, three consumers (one at 60 %) and two producers (one at 80 %)."""
    clock = Clock(JOINED_AT)
    clock.install(cast(FastAPI, client.app))
    operator = register_and_login(client, display_name="Olga Operator")
    community = create_community(client, operator, allocation_model=model.value)
    consumers, producers = [], []
    for number, (tf, key) in enumerate(CONSUMERS, start=number_base + 1):
        login = register_and_login(client, display_name=f"Consumer {number}")
        point = metering_point(9_000_000 + number)
        membership = join(client, login, operator, community["id"], point, tf)
        member = Member(login, point, "consumer", tf, membership["id"])
        if model is AllocationModel.STATIC:
            response = client.patch(
                f"{API}/communities/{community['id']}/memberships/{membership['id']}",
                json={"static_key": key},
                headers=operator.headers,
            )
            assert response.status_code == 200, response.text
            member.key = key
        consumers.append(member)
    for number, tf in enumerate(PRODUCERS, start=number_base + 11):
        login = register_and_login(client, display_name=f"Producer {number}")
        point = metering_point(9_000_000 + number)
        membership = join(client, login, operator, community["id"], point, tf, role="producer")
        producers.append(Member(login, point, "producer", tf, membership["id"]))
    return EnergyCommunity(community["id"], model, operator, consumers, producers, clock)


@dataclass
class Delivery:
    """The grid operator's values for some quarter hours, as rows."""

    starts: list[datetime]
    consumption_wh: np.ndarray
    production_wh: np.ndarray
    rows: list[tuple[datetime, str, str, int]]

    def csv(self, rows: Iterable[tuple[datetime, str, str, int]] | None = None) -> str:
        lines = ["interval_start,metering_point,quantity,energy_wh"]
        for at, point, quantity, energy in self.rows if rows is None else rows:
            lines.append(f"{at.isoformat()},{point},{quantity},{energy}")
        return "\n".join(lines) + "\n"


def operator_delivery(
    community: EnergyCommunity, starts: list[datetime], *, seed: int = 1
) -> Delivery:
    """Random measurements, allocated with the domain engine as the grid operator would."""
    rng = random.Random(seed)
    consumers = sorted(community.consumers, key=lambda m: m.point)
    producers = sorted(community.producers, key=lambda m: m.point)
    consumption = np.array(
        [[rng.randint(0, 400) for _ in starts] for _ in consumers], dtype=np.int64
    )
    production = np.array(
        [[rng.randint(0, 700) for _ in starts] for _ in producers], dtype=np.int64
    )
    keys = None
    if community.model is AllocationModel.STATIC:
        keys = StaticKeys.from_values(Fraction(m.key or "0") for m in consumers)
    allocation = allocate(
        consumption,
        production,
        model=community.model,
        consumer_tf_percent=np.array([[m.tf] for m in consumers]),
        producer_tf_percent=np.array([[m.tf] for m in producers]),
        keys=keys,
    )
    rows: list[tuple[datetime, str, str, int]] = []
    for column, at in enumerate(starts):
        for row, member in enumerate(consumers):
            rows += [
                (at, member.point, "G.01", int(consumption[row, column])),
                (at, member.point, "G.01T", int(allocation.consumption_t_wh[row, column])),
                (at, member.point, "G.02", int(allocation.allocated_wh[row, column])),
                (at, member.point, "G.03", int(allocation.covered_wh[row, column])),
            ]
        for row, member in enumerate(producers):
            rows += [
                (at, member.point, "G.01", int(production[row, column])),
                (at, member.point, "G.01T", int(allocation.production_t_wh[row, column])),
                (at, member.point, "P.01T", int(allocation.surplus_wh[row, column])),
            ]
    return Delivery(starts, consumption, production, rows)


def quarter_hours(first: datetime, count: int) -> list[datetime]:
    return [first + k * QUARTER for k in range(count)]


def upload(client: TestClient, community_id: int, login: Login | None, text: str) -> Any:
    headers = {"Content-Type": "text/csv"}
    if login is not None:
        headers |= login.headers
    return client.post(
        f"{API}/communities/{community_id}/official-energy",
        content=text.encode(),
        headers=headers,
    )
