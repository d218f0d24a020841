"""Who takes part in a community over a range of quarter hours, with which participation factor
in each, and the official values laid out on the same grid: the inputs of the domain engine.

Rows are metering points in one role, sorted by number (the domain CLI's order, which decides
the largest-remainder rule's ties); columns are the quarter hours of the range.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from ecommunity.cloud.community_energy.official_csv import ROLE_QUANTITIES, Quantity
from ecommunity.cloud.db.communities import factors_of
from ecommunity.cloud.db.community_models import CommunityMembership, ParticipationFactor
from ecommunity.cloud.db.official_energy import StoredValue, as_utc, taking_part
from ecommunity.community import VIENNA, Role

Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

QUARTER_HOUR = timedelta(minutes=15)
_INTERVAL_S = 900
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_s(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(seconds=1)


def from_epoch_s(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def vienna_midnight(day: date) -> datetime:
    """The UTC instant at which ``day`` begins in Vienna."""
    # Vienna's clocks change at 02:00/03:00, so local midnight exists and is unambiguous.
    return datetime.combine(day, time(), tzinfo=VIENNA).astimezone(UTC)


def quarter_hours(start: datetime, end: datetime) -> Int64Array:
    """Starts of the quarter hours in ``[start, end)`` (both on quarter hours), UTC seconds."""
    return np.arange(epoch_s(start), epoch_s(end), _INTERVAL_S, dtype=np.int64)


@dataclass(frozen=True)
class Participant:
    """A metering point in one role held by one user, over all their memberships with it in
    the community (a point that changed hands is one participant per holder: nobody sees the
    previous holder's data)."""

    metering_point: str
    role: Role
    user_id: int
    #: Its memberships, oldest first.
    membership_ids: tuple[int, ...]
    #: The latest membership's static key. [ppb]
    static_key_ppb: int | None


@dataclass(frozen=True, eq=False)
class Side:
    """One role's participants and their effective factors ``(N, T)`` (0: not taking part)."""

    participants: tuple[Participant, ...]
    tf_percent: Int64Array

    def rows_of(self) -> dict[str, list[int]]:
        """The rows of each metering point (more than one when it changed hands)."""
        rows: dict[str, list[int]] = {}
        for row, participant in enumerate(self.participants):
            rows.setdefault(participant.metering_point, []).append(row)
        return rows


@dataclass(frozen=True, eq=False)
class Participation:
    """A community's participants over the quarter hours ``starts_s`` (UTC seconds)."""

    starts_s: Int64Array
    consumers: Side
    producers: Side

    def side(self, role: Role) -> Side:
        return self.consumers if role is Role.CONSUMER else self.producers

    def column(self, at: datetime) -> int:
        return (epoch_s(at) - int(self.starts_s[0])) // _INTERVAL_S

    @property
    def start(self) -> datetime:
        return from_epoch_s(int(self.starts_s[0]))

    @property
    def end(self) -> datetime:
        return from_epoch_s(int(self.starts_s[-1]) + _INTERVAL_S)


def load_participation(
    db: Session, community_id: int, start: datetime, end: datetime
) -> Participation:
    """Everyone taking part in ``[start, end)`` (quarter-hour aligned, start before end)."""
    starts = quarter_hours(start, end)
    memberships = taking_part(db, community_id, start, end)
    factors = factors_of(db, [m.id for m in memberships])
    sides = {
        role: _side([m for m in memberships if m.role == role.value], factors, starts)
        for role in Role
    }
    return Participation(starts, sides[Role.CONSUMER], sides[Role.PRODUCER])


def _side(
    memberships: Sequence[CommunityMembership],
    factors: dict[int, list[ParticipationFactor]],
    starts: Int64Array,
) -> Side:
    by_holder: dict[tuple[str, int], list[CommunityMembership]] = {}
    for membership in memberships:
        by_holder.setdefault((membership.metering_point, membership.user_id), []).append(membership)
    # By point (the grid operators' order), then by who held it first.
    holders = sorted(by_holder, key=lambda key: (key[0], by_holder[key][0].id))
    tf = np.zeros((len(holders), starts.size), dtype=np.int64)
    participants = []
    for row, holder in enumerate(holders):
        point, user_id = holder
        own = by_holder[holder]
        for membership in own:
            np.maximum(
                tf[row], _factors(membership, factors.get(membership.id, []), starts), out=tf[row]
            )
        latest = own[-1]
        participants.append(
            Participant(
                metering_point=point,
                role=Role(latest.role),
                user_id=user_id,
                membership_ids=tuple(m.id for m in own),
                static_key_ppb=latest.static_key_ppb,
            )
        )
    return Side(tuple(participants), tf)


def _factors(
    membership: CommunityMembership, factors: Sequence[ParticipationFactor], starts: Int64Array
) -> Int64Array:
    """The membership's factor in each quarter hour it takes part in, 0 in the others."""
    assert membership.active_from is not None
    begin = epoch_s(as_utc(membership.active_from))
    end = np.iinfo(np.int64).max
    if membership.active_until is not None:
        end = epoch_s(as_utc(membership.active_until))
    active = (starts >= begin) & (starts < end)
    if not factors:
        return np.where(active, membership.tf_percent, 0).astype(np.int64)
    valid_from = np.array([epoch_s(as_utc(f.valid_from)) for f in factors], dtype=np.int64)
    values = np.array([f.tf_percent for f in factors], dtype=np.int64)
    # The factor with the latest valid_from at or before each start; before the first applies,
    # the first (as cloud.actions.participation_rules.factor_at).
    index = np.maximum(np.searchsorted(valid_from, starts, side="right") - 1, 0)
    return np.where(active, values[index], 0).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Official:
    """One quantity's official values on a side's grid ``(N, T)`` and where they were given."""

    energy_wh: Int64Array
    present: BoolArray


def lay_out(
    values: Iterable[StoredValue], participation: Participation
) -> dict[tuple[Role, Quantity], Official]:
    """Official values per (role, quantity), on the participation's grid.

    A value belongs to the row of its point in the role that carries its quantity; where a
    point has several rows (G.01 and G.01T are both roles' quantities; a point that changed
    hands), to the one taking part in that quarter hour. Values of points or intervals outside
    the grid are left out.
    """
    shape = {role: participation.side(role).tf_percent.shape for role in Role}
    tables = {
        (role, quantity): Official(
            np.zeros(shape[role], dtype=np.int64), np.zeros(shape[role], dtype=bool)
        )
        for role in Role
        for quantity in ROLE_QUANTITIES[role]
    }
    rows = {role: participation.side(role).rows_of() for role in Role}
    columns = participation.starts_s.size
    for value in values:
        quantity = Quantity(value.quantity)
        column = participation.column(value.interval_start)
        if not 0 <= column < columns:
            continue
        place = _place(value.metering_point, quantity, column, rows, participation)
        if place is None:
            continue
        role, row = place
        table = tables[(role, quantity)]
        table.energy_wh[row, column] = value.energy_wh
        table.present[row, column] = True
    return tables


def _place(
    point: str,
    quantity: Quantity,
    column: int,
    rows: dict[Role, dict[str, list[int]]],
    participation: Participation,
) -> tuple[Role, int] | None:
    candidates = [
        (role, row)
        for role in Role
        if quantity in ROLE_QUANTITIES[role]
        for row in rows[role].get(point, [])
    ]
    if len(candidates) > 1:
        candidates = [
            (role, row)
            for role, row in candidates
            if participation.side(role).tf_percent[row, column] > 0
        ] or candidates[:1]
    return candidates[0] if candidates else None
