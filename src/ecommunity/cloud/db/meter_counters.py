"""Meters' counters at regular boundaries, and the lookups the community views need around them
(whose meters, who is a member). Each takes a Session; none commits.

Counters at boundaries come from one grouped scan of the minute readings per window (not one
index seek per boundary): readings are put into buckets ``(B − step, B]`` by their instant, and
each bucket's largest counter is its last reading's, since unflagged counters never decrease
(ingestion flags a reading that runs backwards, ``actions.ingest``). A boundary's counter is the
last one at or before it, carried forward over empty buckets, and it counts when that reading
lies within ``tolerance`` before the boundary, as in ``readings.energy_intervals``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import BigInteger, ColumnElement, case, cast, func, select
from sqlalchemy.orm import Session

from ecommunity.cloud.db.community_models import CommunityMembership
from ecommunity.cloud.db.models import Device, Meter, MinuteReading

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Meters per statement: keeps the bind parameters well below SQLite's limit.
_METER_CHUNK = 500


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_active_member(db: Session, community_id: int, user_id: int) -> bool:
    """Whether the user holds an active membership in the community."""
    found = db.scalar(
        select(CommunityMembership.id)
        .where(
            CommunityMembership.community_id == community_id,
            CommunityMembership.user_id == user_id,
            CommunityMembership.status == "active",
        )
        .limit(1)
    )
    return found is not None


def meter_ids_of_users(db: Session, user_ids: Collection[int]) -> dict[int, list[int]]:
    """Each user's meters (of every device they paired, revoked ones too: their history
    stays), by id."""
    meters: dict[int, list[int]] = defaultdict(list)
    if not user_ids:
        return meters
    rows = db.execute(
        select(Device.user_id, Meter.id)
        .join(Device, Device.id == Meter.device_id)
        .where(Device.user_id.in_(list(user_ids)))
        .order_by(Meter.id)
    )
    for user_id, meter_id in rows:
        meters[user_id].append(meter_id)
    return meters


@dataclass(frozen=True, eq=False)
class BoundaryCounters:
    """A meter's counters at boundaries ``B_0 … B_n``: each ``(n + 1,)``. [Wh]

    A value counts only where its ``*_fresh`` flag is set: a reading at most the tolerance
    before the boundary. Elsewhere the value is 0.
    """

    import_wh: NDArray[np.int64]
    import_fresh: NDArray[np.bool_]
    export_wh: NDArray[np.int64]
    export_fresh: NDArray[np.bool_]

    @classmethod
    def unknown(cls, boundaries: int) -> BoundaryCounters:
        zeros = np.zeros(boundaries, dtype=np.int64)
        nothing = np.zeros(boundaries, dtype=np.bool_)
        return cls(zeros, nothing, zeros, nothing)


def _epoch_ms(db: Session) -> ColumnElement[int]:
    """The reading's instant in whole milliseconds since 1970 (UTC), in SQL."""
    at = MinuteReading.measured_at
    if db.get_bind().dialect.name == "postgresql":
        return cast(func.round(func.extract("epoch", at) * 1000), BigInteger)
    # SQLite keeps the instant as text; julianday() reads it with millisecond precision.
    return cast(func.round((func.julianday(at) - 2440587.5) * 86_400_000.0), BigInteger)


def counters_at_boundaries(
    db: Session,
    meter_ids: Sequence[int],
    first: datetime,
    count: int,
    step: timedelta,
    *,
    tolerance: timedelta,
) -> dict[int, BoundaryCounters]:
    """Each meter's counters at ``first + k · step`` for ``k = 0 … count``.

    ``first`` must lie on a multiple of ``step`` since 1970 (UTC): quarter hours and minutes
    do. One grouped scan of the readings from ``first − step − tolerance`` to the last
    boundary (see the module docstring).
    """
    step_ms = int(step / timedelta(milliseconds=1))
    tolerance_ms = int(tolerance / timedelta(milliseconds=1))
    first_ms = int((first - _EPOCH) / timedelta(milliseconds=1))
    if step_ms <= 0 or first_ms % step_ms or count < 0:
        raise ValueError(f"boundaries from {first.isoformat()} every {step} do not fit")
    boundaries = count + 1
    # Buckets before B_0 that may hold a reading within the tolerance of it.
    pad = -(-(step_ms + tolerance_ms) // step_ms)
    low = first - step - tolerance
    high = first + count * step
    found: dict[int, BoundaryCounters] = {}
    for offset in range(0, len(meter_ids), _METER_CHUNK):
        chunk = list(meter_ids[offset : offset + _METER_CHUNK])
        rows = _bucket_rows(db, chunk, low, high, step_ms)
        by_meter: dict[int, list[tuple[int, Any, Any, Any, Any]]] = defaultdict(list)
        for meter_id, bucket, import_ms, import_wh, export_ms, export_wh in rows:
            by_meter[meter_id].append((bucket, import_ms, import_wh, export_ms, export_wh))
        for meter_id in chunk:
            found[meter_id] = _carry_forward(
                by_meter.get(meter_id, []),
                first_bucket=first_ms // step_ms,
                pad=pad,
                boundaries=boundaries,
                first_ms=first_ms,
                step_ms=step_ms,
                tolerance_ms=tolerance_ms,
            )
    return found


def _bucket_rows(
    db: Session, meter_ids: list[int], low: datetime, high: datetime, step_ms: int
) -> Sequence[Any]:
    """Per meter and bucket ``(B − step, B]``: the latest instant and largest value of each
    counter among the unflagged readings in ``(low, high]``."""
    readings = (
        select(
            MinuteReading.meter_id.label("meter_id"),
            _epoch_ms(db).label("ms"),
            MinuteReading.energy_import_wh.label("import_wh"),
            MinuteReading.energy_export_wh.label("export_wh"),
        )
        .where(
            MinuteReading.meter_id.in_(meter_ids),
            MinuteReading.flags == 0,
            MinuteReading.measured_at > low,
            MinuteReading.measured_at <= high,
        )
        .subquery()
    )
    bucket = ((readings.c.ms + (step_ms - 1)) // step_ms).label("bucket")
    import_ms = func.max(case((readings.c.import_wh.is_not(None), readings.c.ms)))
    export_ms = func.max(case((readings.c.export_wh.is_not(None), readings.c.ms)))
    statement = select(
        readings.c.meter_id,
        bucket,
        import_ms,
        func.max(readings.c.import_wh),
        export_ms,
        func.max(readings.c.export_wh),
    ).group_by(readings.c.meter_id, bucket)
    return db.execute(statement).all()


def _carry_forward(
    rows: list[tuple[int, Any, Any, Any, Any]],
    *,
    first_bucket: int,
    pad: int,
    boundaries: int,
    first_ms: int,
    step_ms: int,
    tolerance_ms: int,
) -> BoundaryCounters:
    if not rows:
        return BoundaryCounters.unknown(boundaries)
    size = pad + boundaries
    missing = np.iinfo(np.int64).min
    values = {
        name: np.full(size, missing, dtype=np.int64)
        for name in ("import_ms", "import_wh", "export_ms", "export_wh")
    }
    for bucket, import_ms, import_wh, export_ms, export_wh in rows:
        index = int(bucket) - first_bucket + pad
        if not 0 <= index < size:
            continue
        for name, value in (
            ("import_ms", import_ms),
            ("import_wh", import_wh),
            ("export_ms", export_ms),
            ("export_wh", export_wh),
        ):
            if value is not None:
                values[name][index] = int(value)
    # The last reading at or before a boundary: the latest, and (counters never decrease) the
    # largest, of all buckets up to it.
    for array in values.values():
        np.maximum.accumulate(array, out=array)
    at_ms = first_ms + step_ms * np.arange(boundaries, dtype=np.int64)

    def counter(kind: str) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        seen_ms = values[f"{kind}_ms"][pad:]
        value = values[f"{kind}_wh"][pad:]
        fresh = (seen_ms != missing) & (value != missing) & (at_ms - seen_ms <= tolerance_ms)
        return np.where(fresh, value, 0), fresh

    import_wh_, import_fresh = counter("import")
    export_wh_, export_fresh = counter("export")
    return BoundaryCounters(import_wh_, import_fresh, export_wh_, export_fresh)


def latest_received_at(
    db: Session,
    meter_ids: Sequence[int],
    *,
    measured_after: datetime,
    received_after: datetime | None,
) -> datetime | None:
    """When the newest minute reading of these meters measured after ``measured_after`` was
    stored, if one was stored after ``received_after`` (None: any).

    Late readings count too (a gateway catching up). Reads only the readings measured after
    ``measured_after`` (the primary key is meter, instant)."""
    if not meter_ids:
        return None
    conditions = [
        MinuteReading.meter_id.in_(list(meter_ids)),
        MinuteReading.measured_at > measured_after,
    ]
    if received_after is not None:
        conditions.append(MinuteReading.received_at > received_after)
    latest = db.scalar(select(func.max(MinuteReading.received_at)).where(*conditions))
    return None if latest is None else _utc(latest)


@dataclass(frozen=True)
class CounterSpan:
    """A meter's first and last unflagged import counter in a window."""

    first_at: datetime
    first_wh: int
    last_at: datetime
    last_wh: int


def import_spans(
    db: Session, meter_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, CounterSpan]:
    """For each meter with an unflagged import counter in ``[start, end)``: its first and last
    there. Two index seeks per meter, whatever the window's length."""
    spans: dict[int, CounterSpan] = {}
    for meter_id in meter_ids:
        ends = []
        for order in (MinuteReading.measured_at.asc(), MinuteReading.measured_at.desc()):
            ends.append(
                db.execute(
                    select(MinuteReading.measured_at, MinuteReading.energy_import_wh)
                    .where(
                        MinuteReading.meter_id == meter_id,
                        MinuteReading.measured_at >= start,
                        MinuteReading.measured_at < end,
                        MinuteReading.flags == 0,
                        MinuteReading.energy_import_wh.is_not(None),
                    )
                    .order_by(order)
                    .limit(1)
                ).first()
            )
        first, last = ends
        if first is None or last is None or first[1] is None or last[1] is None:
            continue
        spans[meter_id] = CounterSpan(_utc(first[0]), first[1], _utc(last[0]), last[1])
    return spans
