"""Queries on official energy values, their imports and corrections, and members' energy
settings. Each takes a Session; none commits."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ecommunity.cloud.db.community_models import CommunityMembership
from ecommunity.cloud.db.energy_models import (
    MemberEnergySettings,
    OfficialEnergyCorrection,
    OfficialEnergyImport,
    OfficialEnergyValue,
)
from ecommunity.cloud.db.models import Device, Meter

#: Rows per INSERT/UPDATE statement batch.
_BATCH = 5_000


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class StoredValue:
    """An official value as stored. [Wh]"""

    metering_point: str
    quantity: str
    interval_start: datetime
    energy_wh: int
    quality: str | None
    import_id: int


def taking_part(
    db: Session, community_id: int, start: datetime, end: datetime
) -> list[CommunityMembership]:
    """Memberships of the community that take part in some instant of ``[start, end)``:
    activated ones (active, or left but active until later than ``start``), by point and id."""
    return list(
        db.scalars(
            select(CommunityMembership)
            .where(
                CommunityMembership.community_id == community_id,
                CommunityMembership.status.in_(("active", "left")),
                CommunityMembership.active_from.is_not(None),
                CommunityMembership.active_from < end,
                (CommunityMembership.active_until.is_(None))
                | (CommunityMembership.active_until > start),
            )
            .order_by(CommunityMembership.metering_point, CommunityMembership.id)
        )
    )


def official_values(
    db: Session,
    community_id: int,
    start: datetime,
    end: datetime,
    *,
    points: Collection[str] | None = None,
    quantities: Collection[str] | None = None,
) -> list[StoredValue]:
    """The community's official values with interval starts in ``[start, end)``."""
    model = OfficialEnergyValue
    query = select(
        model.metering_point,
        model.quantity,
        model.interval_start,
        model.energy_wh,
        model.quality,
        model.import_id,
    ).where(
        model.community_id == community_id,
        model.interval_start >= start,
        model.interval_start < end,
    )
    if points is not None:
        query = query.where(model.metering_point.in_(list(points)))
    if quantities is not None:
        query = query.where(model.quantity.in_(list(quantities)))
    return [
        StoredValue(point, quantity, as_utc(at), energy, quality, import_id)
        for point, quantity, at, energy, quality, import_id in db.execute(query)
    ]


def add_import(db: Session, record: OfficialEnergyImport) -> int:
    db.add(record)
    db.flush()
    return record.id


def insert_values(db: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    for first in range(0, len(rows), _BATCH):
        db.execute(insert(OfficialEnergyValue), list(rows[first : first + _BATCH]))


def update_values(db: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace values by primary key (community, point, quantity, interval start)."""
    for first in range(0, len(rows), _BATCH):
        db.execute(update(OfficialEnergyValue), list(rows[first : first + _BATCH]))


def insert_corrections(db: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    for first in range(0, len(rows), _BATCH):
        db.execute(insert(OfficialEnergyCorrection), list(rows[first : first + _BATCH]))


def imports_of(db: Session, community_id: int, *, limit: int = 50) -> list[OfficialEnergyImport]:
    """The community's imports, newest first."""
    return list(
        db.scalars(
            select(OfficialEnergyImport)
            .where(OfficialEnergyImport.community_id == community_id)
            .order_by(OfficialEnergyImport.id.desc())
            .limit(limit)
        )
    )


def corrections_between(
    db: Session, community_id: int, start: datetime, end: datetime, *, limit: int = 1000
) -> list[OfficialEnergyCorrection]:
    """Corrections of values with interval starts in ``[start, end)``, oldest first."""
    model = OfficialEnergyCorrection
    return list(
        db.scalars(
            select(model)
            .where(
                model.community_id == community_id,
                model.interval_start >= start,
                model.interval_start < end,
            )
            .order_by(model.id)
            .limit(limit)
        )
    )


def count_corrections(db: Session, community_id: int, start: datetime, end: datetime) -> int:
    model = OfficialEnergyCorrection
    return int(
        db.scalar(
            select(func.count()).where(
                model.community_id == community_id,
                model.interval_start >= start,
                model.interval_start < end,
            )
        )
        or 0
    )


def settings_of(db: Session, membership_ids: Iterable[int]) -> dict[int, MemberEnergySettings]:
    rows = db.scalars(
        select(MemberEnergySettings).where(
            MemberEnergySettings.membership_id.in_(list(membership_ids))
        )
    )
    return {row.membership_id: row for row in rows}


def meters_by_user(db: Session, user_ids: Iterable[int]) -> dict[int, list[int]]:
    """Each user's meters (of every device they paired, revoked ones too), by id."""
    found: dict[int, list[int]] = {}
    rows = db.execute(
        select(Device.user_id, Meter.id)
        .join(Device, Device.id == Meter.device_id)
        .where(Device.user_id.in_(list(user_ids)))
        .order_by(Meter.id)
    )
    for user_id, meter_id in rows:
        found.setdefault(user_id, []).append(meter_id)
    return found


def has_taken_part(db: Session, community_id: int, user_id: int) -> bool:
    """Whether the user has had an activated membership in the community (active or left)."""
    found = db.scalar(
        select(CommunityMembership.id)
        .where(
            CommunityMembership.community_id == community_id,
            CommunityMembership.user_id == user_id,
            CommunityMembership.status.in_(("active", "left")),
            CommunityMembership.active_from.is_not(None),
        )
        .limit(1)
    )
    return found is not None
