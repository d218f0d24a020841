"""Importing a delivery of official values: all of it in one transaction, or nothing.

Each value must belong to a metering point that takes part in the community in that interval,
in the role that carries the quantity (consumers G.01, G.01T, G.02, G.03, G.03R; producers
G.01, G.01T, P.01, P.01T). A value delivered again replaces the stored one; when it differs,
the earlier value is kept as a correction (grid operators correct data for up to about two
months, rules doc 1.8). Gaps (quarter hours of a taking-part point without a value the delivery
gives for its role) are reported, not refused: deliveries arrive late and incomplete.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from ecommunity.cloud.community_energy.official_csv import (
    ROLE_QUANTITIES,
    OfficialDataError,
    OfficialRow,
    Problems,
    Quantity,
)
from ecommunity.cloud.community_energy.participants import (
    QUARTER_HOUR,
    Participation,
    from_epoch_s,
    lay_out,
    load_participation,
)
from ecommunity.cloud.db.communities import find_community
from ecommunity.cloud.db.community_models import CommunityMembership
from ecommunity.cloud.db.energy_models import OfficialEnergyImport
from ecommunity.cloud.db.official_energy import (
    StoredValue,
    add_import,
    as_utc,
    insert_corrections,
    insert_values,
    official_values,
    taking_part,
    update_values,
)
from ecommunity.cloud.errors import NotFoundError
from ecommunity.community import Role

logger = logging.getLogger(__name__)

#: Gap runs listed in a report; the rest are counted.
MAX_GAPS_LISTED = 200


@dataclass(frozen=True)
class Gap:
    """Quarter hours ``[first_start, end)`` in which a point lacks a quantity."""

    metering_point: str
    quantity: Quantity
    first_start: datetime
    end: datetime
    intervals: int


@dataclass(frozen=True)
class ImportReport:
    import_id: int
    community_id: int
    rows: int
    metering_points: int
    new_values: int
    corrections: int
    unchanged: int
    #: The delivered range.
    first_start: datetime
    last_end: datetime
    #: Missing values (point × quantity × quarter hour) in the delivered range, after import.
    missing_values: int
    #: The first runs of them.
    gaps: list[Gap]


def import_official_energy(
    db: Session,
    community_id: int,
    rows: Sequence[OfficialRow],
    *,
    source: str,
    imported_by: int | None,
    now: datetime,
) -> ImportReport:
    """Store a delivery (rows checked by ``read_official_csv``) and commit.

    Raises:
        NotFoundError: no such community.
        OfficialDataError: a point that does not take part in the community in an interval, or
            a quantity its role does not carry (every such row, with its line); nothing stored.
    """
    community = find_community(db, community_id, for_update=True)
    if community is None:
        raise NotFoundError(f"there is no community {community_id}")
    first = min(row.interval_start for row in rows)
    end = max(row.interval_start for row in rows) + QUARTER_HOUR
    _check_memberships(db, community_id, rows)

    stored = {
        (v.metering_point, v.quantity, v.interval_start): v
        for v in official_values(db, community_id, first, end)
    }
    import_id = add_import(
        db,
        OfficialEnergyImport(
            community_id=community_id,
            imported_by=imported_by,
            imported_at=now,
            source=source[:200],
            rows=len(rows),
            new_values=0,
            corrections=0,
            unchanged=0,
            gaps=0,
            first_start=first,
            last_end=end,
        ),
    )
    new: list[dict[str, Any]] = []
    replaced: list[dict[str, Any]] = []
    corrections: list[dict[str, Any]] = []
    unchanged = 0
    for row in rows:
        key = (row.metering_point, row.quantity.value, row.interval_start)
        value = {
            "community_id": community_id,
            "metering_point": row.metering_point,
            "quantity": row.quantity.value,
            "interval_start": row.interval_start,
            "energy_wh": row.energy_wh,
            "quality": row.quality,
            "import_id": import_id,
        }
        before = stored.get(key)
        if before is None:
            new.append(value)
        elif before.energy_wh == row.energy_wh:
            unchanged += 1
        else:
            replaced.append(value)
            corrections.append(_correction(community_id, before, row, import_id))
    insert_values(db, new)
    update_values(db, replaced)
    insert_corrections(db, corrections)

    merged = [*stored.values(), *(_stored(v) for v in new), *(_stored(v) for v in replaced)]
    participation = load_participation(db, community_id, first, end)
    missing, gaps = find_gaps(participation, merged, delivered=rows)
    record = db.get(OfficialEnergyImport, import_id)
    assert record is not None
    record.new_values, record.corrections, record.unchanged = len(new), len(replaced), unchanged
    record.gaps = missing
    db.commit()
    logger.info(
        "community %d: imported %d official values from %s (%d new, %d corrections, %d gaps)",
        community_id,
        len(rows),
        source,
        len(new),
        len(replaced),
        missing,
    )
    return ImportReport(
        import_id=import_id,
        community_id=community_id,
        rows=len(rows),
        metering_points=len({row.metering_point for row in rows}),
        new_values=len(new),
        corrections=len(replaced),
        unchanged=unchanged,
        first_start=first,
        last_end=end,
        missing_values=missing,
        gaps=gaps,
    )


def _check_memberships(db: Session, community_id: int, rows: Sequence[OfficialRow]) -> None:
    """Every row's point takes part in that interval, in a role carrying its quantity."""
    first = min(row.interval_start for row in rows)
    end = max(row.interval_start for row in rows) + QUARTER_HOUR
    periods: dict[str, list[CommunityMembership]] = {}
    for membership in taking_part(db, community_id, first, end):
        periods.setdefault(membership.metering_point, []).append(membership)
    problems = Problems()
    for row in rows:
        own = periods.get(row.metering_point)
        if not own:
            problems.add(
                row.line,
                f"{row.metering_point} does not take part in community {community_id} "
                "in the delivered range",
            )
            continue
        during = [m for m in own if _covers(m, row.interval_start)]
        if not during:
            problems.add(
                row.line,
                f"{row.metering_point} does not take part in community {community_id} in the "
                f"quarter hour from {row.interval_start.isoformat()} ({_periods(own)})",
            )
            continue
        roles = {Role(m.role) for m in during}
        if not any(row.quantity in ROLE_QUANTITIES[role] for role in roles):
            role = next(iter(roles))
            problems.add(
                row.line,
                f"{row.quantity} is not a {role.value}'s quantity, and {row.metering_point} "
                f"is a {role.value}",
            )
    if problems:
        raise OfficialDataError(problems)


def _covers(membership: CommunityMembership, at: datetime) -> bool:
    assert membership.active_from is not None
    if at < as_utc(membership.active_from):
        return False
    return membership.active_until is None or at < as_utc(membership.active_until)


def _periods(memberships: Sequence[CommunityMembership]) -> str:
    parts = []
    for m in memberships:
        assert m.active_from is not None
        until = "" if m.active_until is None else as_utc(m.active_until).isoformat()
        parts.append(f"takes part from {as_utc(m.active_from).isoformat()} to {until or 'now'}")
    return "; ".join(parts)


def _correction(
    community_id: int, before: StoredValue, row: OfficialRow, import_id: int
) -> dict[str, Any]:
    return {
        "community_id": community_id,
        "metering_point": row.metering_point,
        "quantity": row.quantity.value,
        "interval_start": row.interval_start,
        "previous_energy_wh": before.energy_wh,
        "energy_wh": row.energy_wh,
        "previous_import_id": before.import_id,
        "import_id": import_id,
    }


def _stored(value: dict[str, Any]) -> StoredValue:
    return StoredValue(
        value["metering_point"],
        value["quantity"],
        value["interval_start"],
        value["energy_wh"],
        value["quality"],
        value["import_id"],
    )


def find_gaps(
    participation: Participation,
    values: Sequence[StoredValue],
    *,
    delivered: Sequence[OfficialRow],
) -> tuple[int, list[Gap]]:
    """Missing values in the participation's range: each quarter hour a point takes part in
    lacks a quantity the delivery gives for that role. Returns the count and the first runs."""
    expected = {
        role: sorted(
            {row.quantity for row in delivered} & ROLE_QUANTITIES[role], key=lambda q: q.value
        )
        for role in Role
    }
    official = lay_out(values, participation)
    missing = 0
    gaps: list[Gap] = []
    for role in Role:
        side = participation.side(role)
        taking = side.tf_percent > 0
        for quantity in expected[role]:
            absent = taking & ~official[(role, quantity)].present
            missing += int(absent.sum())
            for row in np.flatnonzero(absent.any(axis=1)):
                for first, stop in _runs(absent[row]):
                    if len(gaps) < MAX_GAPS_LISTED:
                        gaps.append(
                            Gap(
                                metering_point=side.participants[row].metering_point,
                                quantity=quantity,
                                first_start=from_epoch_s(int(participation.starts_s[first])),
                                end=from_epoch_s(int(participation.starts_s[stop - 1]) + 900),
                                intervals=stop - first,
                            )
                        )
    gaps.sort(key=lambda g: (g.metering_point, g.quantity.value, g.first_start))
    return missing, gaps


def _runs(flags: np.ndarray[Any, np.dtype[np.bool_]]) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True."""
    padded = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
