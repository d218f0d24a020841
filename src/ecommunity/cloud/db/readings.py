"""Queries and writes for meters and their readings. SQL only here (and in ``postgres.py``).

SQLite hands instants back without a zone, PostgreSQL in the session's zone: every function
here returns timezone-aware UTC, and callers pass timezone-aware instants.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    DateTime,
    ScalarSelect,
    Select,
    bindparam,
    column,
    delete,
    select,
    update,
    values,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from ecommunity.cloud.db import postgres
from ecommunity.cloud.db.models import Device, Meter, MinuteReading, RawReading

logger = logging.getLogger(__name__)

#: Either reading table: they share their columns.
ReadingModel = type[MinuteReading] | type[RawReading]

#: Boundaries looked up per statement: keeps the bind parameters well below SQLite's limit.
_BOUNDARY_CHUNK = 1000


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a zone-less value from SQLite *is* UTC (that is how it was stored)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class StoredReading(NamedTuple):
    """A reading row of either table: a tuple, cheap to make by the thousand (an upload
    brings that many), its fields in the column order of the tables."""

    meter_id: int
    #: The meter's time stamp, UTC.
    measured_at: datetime
    #: Energy counters. [Wh]
    energy_import_wh: int | None
    energy_export_wh: int | None
    #: Instantaneous power. [W]
    power_import_w: int | None
    power_export_w: int | None
    #: ``FLAG_*`` bits of :mod:`ecommunity.cloud.db.models`.
    flags: int


class MeterRef(NamedTuple):
    """One of a device's meters, as ingestion needs it."""

    id: int
    profile: str


#: A counter value of an unflagged reading: (UTC instant, value [Wh]).
CounterValue = tuple[datetime, int]


class KnownReadings(NamedTuple):
    """What a meter's table holds around an upload's time span (:func:`known_readings`)."""

    #: The instants stored inside the span, flagged or not.
    stored_at: set[datetime]
    #: Per counter, its unflagged values inside the span and the nearest ones outside it.
    imports: list[CounterValue]
    exports: list[CounterValue]


@dataclass(frozen=True)
class CounterPoint:
    """A counter value at an instant (of an unflagged reading)."""

    measured_at: datetime
    #: [Wh]
    value_wh: int


@dataclass(frozen=True)
class BoundaryCounters:
    """The last unflagged counter values at or before ``at``, per counter."""

    at: datetime
    energy_import: CounterPoint | None
    energy_export: CounterPoint | None


# --- meters -------------------------------------------------------------------------------------


def _dialect_insert(
    db: Session, table: type[Meter] | ReadingModel
) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that knows ``ON CONFLICT DO NOTHING`` on both engines."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _on_postgres(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def find_meter(db: Session, device_id: int, serial: str) -> Meter | None:
    return db.scalar(select(Meter).where(Meter.device_id == device_id, Meter.serial == serial))


def bind_meter(db: Session, device_id: int, serial: str, profile: str, now: datetime) -> Meter:
    """The device's meter ``serial``, created on first sight (safe against a concurrent twin).

    A profile learnt later fills in an empty one; a known profile is not overwritten.
    """
    meter = find_meter(db, device_id, serial)
    if meter is None:
        statement = _dialect_insert(db, Meter).values(
            device_id=device_id, serial=serial, profile=profile, created_at=now
        )
        db.execute(statement.on_conflict_do_nothing(index_elements=["device_id", "serial"]))
        meter = find_meter(db, device_id, serial)
        assert meter is not None, "inserted or found by the conflict"
        logger.info("device %d bound meter %r (id %d)", device_id, serial, meter.id)
    elif profile and not meter.profile:
        meter.profile = profile
    return meter


def meters_of_device(db: Session, device_id: int) -> dict[str, MeterRef]:
    """The device's meters by serial. One statement per upload: on PostgreSQL a prepared one."""
    if _on_postgres(db):
        return {
            serial: MeterRef(id, profile)
            for serial, id, profile in postgres.meters_of(db, device_id)
        }
    statement = select(Meter.serial, Meter.id, Meter.profile).where(Meter.device_id == device_id)
    return {serial: MeterRef(id, profile) for serial, id, profile in db.execute(statement)}


def meters_of_user(db: Session, user_id: int) -> list[Meter]:
    """The meters of every device the user paired (revoked ones too: the history stays theirs)."""
    statement = (
        select(Meter)
        .join(Device, Device.id == Meter.device_id)
        .where(Device.user_id == user_id)
        .order_by(Meter.id)
    )
    return list(db.scalars(statement))


def meter_of_user(db: Session, user_id: int, meter_id: int) -> Meter | None:
    """The meter, if one of the user's devices reads it."""
    statement = (
        select(Meter)
        .join(Device, Device.id == Meter.device_id)
        .where(Meter.id == meter_id, Device.user_id == user_id)
    )
    return db.scalar(statement)


def touch_device(db: Session, device_id: int, now: datetime) -> None:
    """Remember when the device last delivered data."""
    if _on_postgres(db):
        postgres.touch_device(db, device_id, now)
    else:
        db.execute(update(Device).where(Device.id == device_id).values(last_seen_at=now))


# --- readings -----------------------------------------------------------------------------------


def readings_between(
    db: Session,
    model: ReadingModel,
    meter_id: int,
    start: datetime,
    end: datetime,
    *,
    include_end: bool = True,
    limit: int | None = None,
) -> list[StoredReading]:
    """The meter's readings from ``start`` to ``end`` (included unless not ``include_end``),
    oldest first, at most ``limit``."""
    before_end = model.measured_at <= end if include_end else model.measured_at < end
    statement = (
        select(
            model.measured_at,
            model.energy_import_wh,
            model.energy_export_wh,
            model.power_import_w,
            model.power_export_w,
            model.flags,
        )
        .where(model.meter_id == meter_id, model.measured_at >= start, before_end)
        .order_by(model.measured_at)
        .limit(limit)
    )
    return [
        StoredReading(
            meter_id,
            as_utc(at),
            energy_import_wh,
            energy_export_wh,
            power_import,
            power_export,
            flags,
        )
        for at, energy_import_wh, energy_export_wh, power_import, power_export, flags in (
            db.execute(statement)
        )
    ]


def _edge(
    model: ReadingModel,
    counter: InstrumentedAttribute[int | None],
    condition: ColumnElement[bool],
    wanted: InstrumentedAttribute[int | None] | InstrumentedAttribute[datetime],
    *,
    latest: bool,
) -> ScalarSelect[object]:
    """``wanted`` of the latest (or earliest) unflagged reading with ``counter`` that meets
    ``condition``, of the meter bound as ``meter_id``."""
    order = model.measured_at.desc() if latest else model.measured_at.asc()
    return (
        select(wanted)
        .where(
            model.meter_id == bindparam("meter_id"),
            model.flags == 0,
            counter.is_not(None),
            condition,
        )
        .order_by(order)
        .limit(1)
        .scalar_subquery()
    )


@functools.cache
def _neighbours_statement(model: ReadingModel) -> Select[*tuple[Any, ...]]:
    """The last unflagged counters before ``start`` and the first after ``end``, each point's
    instant and value from two subqueries with the same condition and order (``measured_at``
    is unique per meter, so both find the same row). Built once per table: building its eight
    subqueries cost more than running them (``bench/cloud.py``)."""
    before = model.measured_at < bindparam("start")
    after = model.measured_at > bindparam("end")
    imp, exp = model.energy_import_wh, model.energy_export_wh
    edges = ((imp, before, True), (exp, before, True), (imp, after, False), (exp, after, False))
    return select(
        *(
            _edge(model, counter, condition, wanted, latest=latest)
            for counter, condition, latest in edges
            for wanted in (model.measured_at, counter)
        )
    )


def known_readings(
    db: Session, model: ReadingModel, meter_id: int, start: datetime, end: datetime
) -> KnownReadings:
    """The instants the meter has stored from ``start`` to ``end`` (both included), and its
    unflagged counter values there, the last before ``start`` and the first after ``end``.

    Every upload asks this once per meter: on PostgreSQL it is one prepared statement.
    """
    if _on_postgres(db):
        with _index_walks(db):
            rows = postgres.known_readings(db, model.__tablename__, meter_id, start, end)
    else:
        window = readings_between(db, model, meter_id, start, end)
        statement = _neighbours_statement(model)
        edges = db.execute(statement, {"meter_id": meter_id, "start": start, "end": end}).one()
        import_before, export_before, import_after, export_after = (
            _point(edges[index], edges[index + 1]) for index in range(0, len(edges), 2)
        )
        rows = [(r.measured_at, r.energy_import_wh, r.energy_export_wh, r.flags) for r in window]
        rows += [
            (point.measured_at, point.value_wh, None, postgres.OUTSIDE)
            for point in (import_before, import_after)
            if point is not None
        ]
        rows += [
            (point.measured_at, None, point.value_wh, postgres.OUTSIDE)
            for point in (export_before, export_after)
            if point is not None
        ]
    stored_at: set[datetime] = set()
    imports: list[CounterValue] = []
    exports: list[CounterValue] = []
    for at, energy_import, energy_export, flags in rows:
        at = as_utc(at)
        if flags != postgres.OUTSIDE:
            stored_at.add(at)
            if flags:
                continue
        if energy_import is not None:
            imports.append((at, energy_import))
        if energy_export is not None:
            exports.append((at, energy_export))
    imports.sort()
    exports.sort()
    return KnownReadings(stored_at, imports, exports)


@contextmanager
def _index_walks(db: Session) -> Iterator[None]:
    """See :func:`postgres.index_walks`; SQLite plans these lookups well by itself."""
    if _on_postgres(db):
        with postgres.index_walks(db):
            yield
    else:
        yield


def insert_readings(
    db: Session, model: ReadingModel, rows: Sequence[StoredReading], received_at: datetime
) -> set[tuple[int, datetime]]:
    """Insert ``rows``, skipping any (meter, instant) already stored.

    Returns the (meter id, UTC instant) of the rows actually inserted: a concurrent upload of
    the same reading is counted by exactly one of the two callers.
    """
    if not rows:
        return set()
    if _on_postgres(db):
        # Binary COPY through psycopg even for one row: a third less CPU than SQLAlchemy's
        # INSERT … RETURNING (the uplink stores every live reading on its own), for two more
        # round trips on the same connection.
        return postgres.copy_insert_readings(db, model.__tablename__, rows, received_at)
    parameters = [
        {
            "meter_id": row.meter_id,
            "measured_at": row.measured_at,
            "energy_import_wh": row.energy_import_wh,
            "energy_export_wh": row.energy_export_wh,
            "power_import_w": row.power_import_w,
            "power_export_w": row.power_export_w,
            "flags": row.flags,
            "received_at": received_at,
        }
        for row in rows
    ]
    statement = (
        _dialect_insert(db, model)
        .on_conflict_do_nothing(index_elements=["meter_id", "measured_at"])
        .returning(model.meter_id, model.measured_at)
    )
    result = db.execute(statement, parameters)
    return {(meter_id, as_utc(at)) for meter_id, at in result.all()}


def _last_before(
    model: ReadingModel,
    meter_id: int,
    boundary: ColumnElement[datetime],
    counter: InstrumentedAttribute[int | None],
    wanted: InstrumentedAttribute[int | None] | InstrumentedAttribute[datetime],
) -> ScalarSelect[object]:
    return (
        select(wanted)
        .where(
            model.meter_id == meter_id,
            model.measured_at <= boundary,
            model.flags == 0,
            counter.is_not(None),
        )
        .order_by(model.measured_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def counters_at(
    db: Session, meter_id: int, boundaries: Sequence[datetime]
) -> list[BoundaryCounters]:
    """For each boundary, the last unflagged minute-reading counters at or before it.

    One index seek per boundary and counter (the primary key is (meter, instant)), so the cost
    grows with the number of boundaries, not with the readings between them.
    """
    model = MinuteReading
    found: list[BoundaryCounters] = []
    for first in range(0, len(boundaries), _BOUNDARY_CHUNK):
        chunk = boundaries[first : first + _BOUNDARY_CHUNK]
        bounds = (
            values(column("at", DateTime(timezone=True)), name="bounds")
            .data([(at,) for at in chunk])
            .cte("bounds")
        )
        at = bounds.c.at
        imp, exp = model.energy_import_wh, model.energy_export_wh
        statement = (
            select(
                _last_before(model, meter_id, at, imp, model.measured_at),
                _last_before(model, meter_id, at, imp, imp),
                _last_before(model, meter_id, at, exp, model.measured_at),
                _last_before(model, meter_id, at, exp, exp),
            )
            .select_from(bounds)
            .order_by(at)
        )
        # The boundaries are sorted, so ordering by them gives back their positions.
        with _index_walks(db):
            rows = db.execute(statement).all()
        assert len(rows) == len(chunk)
        for boundary, (import_at, import_wh, export_at, export_wh) in zip(chunk, rows, strict=True):
            found.append(
                BoundaryCounters(
                    at=boundary,
                    energy_import=_point(import_at, import_wh),
                    energy_export=_point(export_at, export_wh),
                )
            )
    return found


def _point(at: object, value: object) -> CounterPoint | None:
    if at is None or value is None:
        return None
    assert isinstance(value, int)
    if isinstance(at, str):
        # SQLite does not type the columns of a VALUES-driven subquery: parse its text form.
        at = datetime.fromisoformat(at)
    assert isinstance(at, datetime)
    return CounterPoint(as_utc(at), value)


@dataclass(frozen=True)
class EnergyInterval:
    """Energy through a meter in ``[start, end)``: counter differences, never summed power."""

    start: datetime
    end: datetime
    #: [Wh]; None when a boundary has no unflagged reading at or before it.
    energy_import_wh: int | None
    energy_export_wh: int | None
    #: Both boundaries have a reading close enough before them (and the interval is over).
    complete: bool


def _energy(
    start: CounterPoint | None,
    end: CounterPoint | None,
    starts_at: datetime,
    ends_at: datetime,
    tolerance: timedelta,
) -> tuple[int | None, bool]:
    """The counter difference and whether both points are close to their boundaries."""
    if start is None or end is None:
        # No counter at all is a meter that does not measure this direction: not a gap.
        return None, start is None and end is None
    fresh = starts_at - start.measured_at <= tolerance and ends_at - end.measured_at <= tolerance
    return end.value_wh - start.value_wh, fresh


def energy_intervals(
    db: Session,
    meter_id: int,
    boundaries: Sequence[datetime],
    *,
    tolerance: timedelta,
    now: datetime,
) -> list[EnergyInterval]:
    """The intervals between consecutive ``boundaries`` (sorted, UTC) with their energies.

    The energy of an interval is the difference of the last unflagged counters at or before
    its end and its start, so the intervals of a range always add up to the range's counter
    difference. An interval is complete when each counter's boundary readings lie within
    ``tolerance`` before the boundary and the interval ended before ``now``.

    The interval in which the meter's history begins has no counter at its start: its energy
    counts from the meter's first reading (so a meter paired today has energy for today), and
    it is never complete.
    """
    counters = counters_at(db, meter_id, boundaries)
    intervals = []
    for first, last in itertools.pairwise(counters):
        start_import, start_export, begins = first.energy_import, first.energy_export, False
        if (start_import is None and last.energy_import is not None) or (
            start_export is None and last.energy_export is not None
        ):
            earliest = _first_reading_between(db, meter_id, first.at, last.at)
            if earliest is not None:
                begins = True
                start_import = start_import or earliest.energy_import
                start_export = start_export or earliest.energy_export
        energy_import, import_ok = _energy(
            start_import, last.energy_import, first.at, last.at, tolerance
        )
        energy_export, export_ok = _energy(
            start_export, last.energy_export, first.at, last.at, tolerance
        )
        known = energy_import is not None or energy_export is not None
        intervals.append(
            EnergyInterval(
                start=first.at,
                end=last.at,
                energy_import_wh=energy_import,
                energy_export_wh=energy_export,
                complete=known and import_ok and export_ok and last.at <= now and not begins,
            )
        )
    return intervals


def _first_reading_between(
    db: Session, meter_id: int, after: datetime, until: datetime
) -> BoundaryCounters | None:
    """The counters of the meter's first unflagged minute reading in ``(after, until)`` (one at
    ``until`` itself says nothing about the interval before it)."""
    model = MinuteReading
    row = db.execute(
        select(model.measured_at, model.energy_import_wh, model.energy_export_wh)
        .where(
            model.meter_id == meter_id,
            model.measured_at > after,
            model.measured_at < until,
            model.flags == 0,
        )
        .order_by(model.measured_at)
        .limit(1)
    ).first()
    if row is None:
        return None
    at, import_wh, export_wh = row
    return BoundaryCounters(
        at=as_utc(at), energy_import=_point(at, import_wh), energy_export=_point(at, export_wh)
    )


def delete_readings_before(db: Session, model: ReadingModel, before: datetime) -> int:
    """Drop readings older than ``before`` (retention); returns how many went."""
    result = db.execute(delete(model).where(model.measured_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
