"""Ingestion: store what a gateway uploads, once, and flag what a meter cannot have measured.

A reading is compared with its unflagged neighbours in time, per energy counter:

- lower than the previous reading (or higher than the next stored one): the counter ran
  backwards, :data:`FLAG_COUNTER_BACKWARDS`;
- more than :data:`MAX_POWER_W` on average since the previous reading (plus
  :data:`JUMP_SLACK_WH` for counter resolution): :data:`FLAG_IMPLAUSIBLE_JUMP`.

Flagged readings are stored, so that nothing a meter sent is lost, but they never enter energy
sums, and they are not neighbours for later checks: one glitch must not flag all that follows.
Stored rows are never rewritten: when a late reading disagrees with them, the late one is
flagged.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from ecommunity.cloud.db import readings as queries
from ecommunity.cloud.db.models import (
    FLAG_COUNTER_BACKWARDS,
    FLAG_IMPLAUSIBLE_JUMP,
    Device,
    MinuteReading,
    RawReading,
)
from ecommunity.cloud.db.readings import KnownReadings, StoredReading
from ecommunity.cloud.errors import CloudError, ConflictError
from ecommunity.cloud.schemas import ReadingFields

logger = logging.getLogger(__name__)

#: The highest average power a household connection can draw or feed in. [W]
MAX_POWER_W = 100_000
#: Allowed on top of MAX_POWER_W between two readings: counters resolve to 1 Wh or coarser. [Wh]
JUMP_SLACK_WH = 1_000
#: A gateway reads one meter; a few more are allowed, an unbounded number is not.
MAX_METERS_PER_DEVICE = 16
#: No smart meter reading is older; an earlier time stamp is a meter clock that lost power.
EARLIEST_AT = datetime(2000, 1, 1, tzinfo=UTC)
#: How far a meter's clock may run ahead of ours before its time stamps are refused.
MAX_CLOCK_AHEAD = timedelta(days=1)


class TooManyMetersError(ConflictError):
    code = "too_many_meters"


class ReadingTimeError(CloudError):
    status = 422
    code = "implausible_time"


class ReadingTextError(CloudError):
    status = 422
    code = "bad_text"


def _storable(text: str) -> bool:
    # PostgreSQL text cannot hold NUL, and a lone surrogate (legal in JSON escapes) has no
    # UTF-8 form: either would fail in the driver as a server error.
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _by_serial(
    readings: Sequence[ReadingFields], now: datetime
) -> dict[str, list[tuple[datetime, ReadingFields]]]:
    """The readings per meter serial, each with its instant in UTC, once checked that they
    can be stored."""
    latest = now + MAX_CLOCK_AHEAD
    earliest, first_year, last_year = EARLIEST_AT, EARLIEST_AT.year, latest.year
    texts_seen: set[str] = set()
    groups: dict[str, list[tuple[datetime, ReadingFields]]] = {}
    for reading in readings:
        serial, profile = reading.meter_serial, reading.profile
        if serial not in texts_seen or profile not in texts_seen:
            for text in (serial, profile):
                if not _storable(text):
                    raise ReadingTextError(
                        "meter_serial and profile must be text without NUL characters"
                    )
                texts_seen.add(text)
        at = reading.measured_at
        # The year first: converting year 9999 with a negative offset to UTC would overflow.
        if first_year <= at.year <= last_year:
            at = at.astimezone(UTC)
            if earliest <= at <= latest:
                group = groups.get(serial)
                if group is None:
                    group = groups[serial] = []
                group.append((at, reading))
                continue
        raise ReadingTimeError(
            f"measured_at {reading.measured_at.isoformat()} is outside "
            f"{EARLIEST_AT.isoformat()} … {latest.isoformat()}: is the meter's clock set?"
        )
    return groups


@dataclass(frozen=True)
class IngestResult:
    """What one upload did."""

    #: New rows stored (flagged ones included).
    accepted: int
    #: Readings already stored (or repeated in the upload), not stored again.
    duplicates: int
    #: New rows stored with a ``FLAG_*`` bit.
    flagged: int
    #: The new rows, oldest first per meter, for publishing after the commit.
    new: list[StoredReading] = field(default_factory=list)
    #: Meters this upload bound to the device (first sight of their serial).
    new_meters: set[int] = field(default_factory=set)


def flag_names(flags: int) -> list[str]:
    """The API names of a reading's ``FLAG_*`` bits."""
    names = []
    if flags & FLAG_COUNTER_BACKWARDS:
        names.append("counter_backwards")
    if flags & FLAG_IMPLAUSIBLE_JUMP:
        names.append("implausible_jump")
    return names


def max_increase_wh(elapsed: timedelta) -> float:
    """The largest counter increase believable over ``elapsed``. [Wh]"""
    return MAX_POWER_W * elapsed.total_seconds() / 3600 + JUMP_SLACK_WH


def _check(
    times: list[datetime], values: list[int], at: datetime, value_wh: int
) -> tuple[int, int]:
    """The flags ``value_wh`` at ``at`` earns against one counter's unflagged neighbours
    (``times`` sorted, ``values`` alongside), and where it would go among them."""
    count = len(times)
    if not count or at > times[-1]:
        index = count
        following_wh = None
    else:
        index = bisect.bisect_left(times, at)
        following_wh = values[index]
    flags = 0
    if index:
        previous_wh = values[index - 1]
        if value_wh < previous_wh:
            flags = FLAG_COUNTER_BACKWARDS
        elif value_wh - previous_wh > max_increase_wh(at - times[index - 1]):
            flags = FLAG_IMPLAUSIBLE_JUMP
    if following_wh is not None and value_wh > following_wh:
        flags |= FLAG_COUNTER_BACKWARDS
    return flags, index


def _classify_among(
    meter_id: int,
    instants: list[datetime],
    by_time: Mapping[datetime, ReadingFields],
    known: KnownReadings,
) -> list[StoredReading]:
    """The rows for new ``instants`` (sorted) that may lie anywhere among the known ones."""
    import_times = [at for at, _ in known.imports]
    import_values = [value for _, value in known.imports]
    export_times = [at for at, _ in known.exports]
    export_values = [value for _, value in known.exports]
    rows: list[StoredReading] = []
    for at in instants:
        reading = by_time[at]
        energy_import, energy_export = reading.energy_import_wh, reading.energy_export_wh
        flags = import_index = export_index = 0
        if energy_import is not None:
            flags, import_index = _check(import_times, import_values, at, energy_import)
        if energy_export is not None:
            export_flags, export_index = _check(export_times, export_values, at, energy_export)
            flags |= export_flags
        if flags == 0:
            if energy_import is not None:
                import_times.insert(import_index, at)
                import_values.insert(import_index, energy_import)
            if energy_export is not None:
                export_times.insert(export_index, at)
                export_values.insert(export_index, energy_export)
        rows.append(
            StoredReading(
                meter_id,
                at,
                energy_import,
                energy_export,
                reading.power_import_w,
                reading.power_export_w,
                flags,
            )
        )
    return rows


def _classify_after(
    meter_id: int,
    instants: list[datetime],
    by_time: Mapping[datetime, ReadingFields],
    known: KnownReadings,
) -> list[StoredReading]:
    """The rows for new ``instants`` (sorted) that all lie after every known counter value:
    what :func:`_classify_among` does, without searching. Uploads come in time order, so
    this is the path of nearly every reading: it is written out for speed."""
    import_at, import_wh = known.imports[-1] if known.imports else (None, 0)
    export_at, export_wh = known.exports[-1] if known.exports else (None, 0)
    backwards, jump = FLAG_COUNTER_BACKWARDS, FLAG_IMPLAUSIBLE_JUMP
    # max_increase_wh(), written out (the same float operations in the same order), and only
    # for an increase above the slack: below it no elapsed time makes a jump.
    max_power_w, slack_wh = MAX_POWER_W, JUMP_SLACK_WH
    new_row = tuple.__new__
    rows: list[StoredReading] = []
    append = rows.append
    for at in instants:
        reading = by_time[at]
        energy_import, energy_export = reading.energy_import_wh, reading.energy_export_wh
        flags = 0
        if energy_import is not None and import_at is not None:
            if energy_import < import_wh:
                flags = backwards
            elif (
                energy_import - import_wh > slack_wh
                and energy_import - import_wh
                > max_power_w * (at - import_at).total_seconds() / 3600 + slack_wh
            ):
                flags = jump
        if energy_export is not None and export_at is not None:
            if energy_export < export_wh:
                flags |= backwards
            elif (
                energy_export - export_wh > slack_wh
                and energy_export - export_wh
                > max_power_w * (at - export_at).total_seconds() / 3600 + slack_wh
            ):
                flags |= jump
        if not flags:
            if energy_import is not None:
                import_at, import_wh = at, energy_import
            if energy_export is not None:
                export_at, export_wh = at, energy_export
        append(
            new_row(
                StoredReading,
                (
                    meter_id,
                    at,
                    energy_import,
                    energy_export,
                    reading.power_import_w,
                    reading.power_export_w,
                    flags,
                ),
            )
        )
    return rows


def _classify(
    meter_id: int, batch: Sequence[tuple[datetime, ReadingFields]], known: KnownReadings
) -> tuple[list[StoredReading], int]:
    """The rows to insert for one meter (flagged as they deserve) and the duplicates."""
    # The first of repeated instants wins: walking backwards, the earliest is written last.
    by_time = dict(reversed(batch))
    stored_at = known.stored_at
    instants = sorted(at for at in by_time if at not in stored_at)
    duplicates = len(batch) - len(instants)
    if not instants:
        return [], duplicates
    first = instants[0]
    if (not known.imports or first > known.imports[-1][0]) and (
        not known.exports or first > known.exports[-1][0]
    ):
        return _classify_after(meter_id, instants, by_time, known), duplicates
    return _classify_among(meter_id, instants, by_time, known), duplicates


def ingest_readings(
    db: Session, device: Device | int, readings: Sequence[ReadingFields], *, raw: bool = False
) -> IngestResult:
    """Store a gateway's readings: minute readings, or raw live pushes when ``raw``.

    ``device`` is the (authenticated) device the readings come from, or its id.

    Binds the device's meter on first sight of its serial. Idempotent: a reading already
    stored (same meter and instant) counts as a duplicate and changes nothing. Commits once.

    Raises (and stores nothing) :class:`TooManyMetersError` when the upload would give the
    device more than :data:`MAX_METERS_PER_DEVICE` meters, :class:`ReadingTimeError` when a
    time stamp lies before :data:`EARLIEST_AT` or more than :data:`MAX_CLOCK_AHEAD` ahead,
    :class:`ReadingTextError` when a serial or profile cannot be stored as text.
    """
    if not readings:
        return IngestResult(accepted=0, duplicates=0, flagged=0)
    device_id = device if isinstance(device, int) else device.id
    model = RawReading if raw else MinuteReading
    now = datetime.now(UTC)
    by_serial = _by_serial(readings, now)
    try:
        meters = queries.meters_of_device(db, device_id)
        unknown = [serial for serial in by_serial if serial not in meters]
        if unknown and len(meters) + len(unknown) > MAX_METERS_PER_DEVICE:
            raise TooManyMetersError(
                f"a gateway may read at most {MAX_METERS_PER_DEVICE} meters; "
                f"this upload adds {len(unknown)} new meter serials"
            )
        pending: list[StoredReading] = []
        new_meters: set[int] = set()
        duplicates = 0
        for serial, batch in by_serial.items():
            meter, profile = meters.get(serial), batch[0][1].profile
            meter_id = None if meter is None else meter.id
            # Binding again is only for a new meter, or a profile learnt for a known one.
            if meter is None or (profile and not meter.profile):
                meter_id = queries.bind_meter(db, device_id, serial, profile, now).id
                if meter is None:
                    new_meters.add(meter_id)
            assert meter_id is not None
            times = [at for at, _ in batch]
            known = queries.known_readings(db, model, meter_id, min(times), max(times))
            rows, repeated = _classify(meter_id, batch, known)
            pending.extend(rows)
            duplicates += repeated
        inserted = queries.insert_readings(db, model, pending, now)
        queries.touch_device(db, device_id, now)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    # A row that a concurrent upload stored first is that upload's, and a duplicate here.
    if len(inserted) == len(pending):
        new = pending
    else:
        new = [row for row in pending if (row.meter_id, row.measured_at) in inserted]
    duplicates += len(pending) - len(new)
    flagged = sum(1 for row in new if row.flags)
    if flagged:
        logger.info("device %d: %d of %d new readings flagged", device_id, flagged, len(new))
    return IngestResult(
        accepted=len(new), duplicates=duplicates, flagged=flagged, new=new, new_meters=new_meters
    )


def purge_old_readings(
    db: Session, *, raw_retention_days: int, minute_retention_days: int, now: datetime
) -> tuple[int, int]:
    """Apply retention: drop raw and minute readings older than their limits. Commits.

    Returns how many raw and minute readings went.
    """
    try:
        raw = queries.delete_readings_before(
            db, RawReading, now - timedelta(days=raw_retention_days)
        )
        minute = queries.delete_readings_before(
            db, MinuteReading, now - timedelta(days=minute_retention_days)
        )
        db.commit()
    except BaseException:
        db.rollback()
        raise
    logger.info("retention: %d raw and %d minute readings deleted", raw, minute)
    return raw, minute
