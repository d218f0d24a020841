"""/api/v1 routes: the caller's meters and their reading history.

Instants in and out are UTC (ISO 8601 with offset). Day intervals run from midnight to midnight
in Europe/Vienna, so they last 23 or 25 hours on the days the clocks change; quarter-hour and
hour intervals are aligned to UTC, which is the same as to Vienna's clock (whole-hour offsets).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel

from ecommunity.cloud.actions.ingest import flag_names
from ecommunity.cloud.db import readings as queries
from ecommunity.cloud.db.models import MinuteReading, RawReading
from ecommunity.cloud.deps import CurrentCaller, DbSession
from ecommunity.cloud.errors import CloudError, NotFoundError
from ecommunity.cloud.schemas import ReadingOut

logger = logging.getLogger(__name__)

router = APIRouter(tags=["meters"])

#: Where day intervals start: the communities this serves are Austrian.
COMMUNITY_ZONE = ZoneInfo("Europe/Vienna")
#: Intervals (or stored readings) per history request.
MAX_INTERVALS = 10_000
#: How long before an interval boundary its counter reading may lie for the interval to count
#: as complete: one lost minute reading plus clock jitter.
BOUNDARY_TOLERANCE = timedelta(minutes=2)
#: Accepted range of ``from``/``to``: keeps date arithmetic far from datetime's limits.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MeterId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The meter's id")]


class Resolution(StrEnum):
    RAW = "raw"
    MINUTE = "1min"
    QUARTER_HOUR = "15min"
    HOUR = "1h"
    DAY = "1d"


_STEPS = {Resolution.QUARTER_HOUR: timedelta(minutes=15), Resolution.HOUR: timedelta(hours=1)}


class RangeError(CloudError):
    code = "bad_range"


class MeterPublic(BaseModel):
    id: int
    #: The meter's own id as its frames carry it ("" when they carry none).
    serial: str
    #: The meter profile its gateway decodes with (e.g. ``amis``).
    profile: str
    #: The gateway that reads it.
    device_id: int


class IntervalOut(BaseModel):
    """Energy in ``[start, end)`` from counter differences; flagged readings are skipped."""

    start: datetime
    end: datetime
    #: [Wh]; null when no counter reading is known at or before a boundary.
    energy_import_wh: int | None
    energy_export_wh: int | None
    #: Counter readings were found close before both boundaries, and the interval is over.
    complete: bool


@router.get("/meters", response_model=list[MeterPublic], summary="The caller's meters")
def list_meters(caller: CurrentCaller, db: DbSession) -> list[MeterPublic]:
    """Meters read by the caller's gateways (also revoked ones: their history stays)."""
    return [
        MeterPublic(id=m.id, serial=m.serial, profile=m.profile, device_id=m.device_id)
        for m in queries.meters_of_user(db, caller.user.id)
    ]


def _in_range(name: str, value: datetime) -> datetime:
    # The year first: converting year 9999 with a negative offset to UTC would overflow.
    if not _EARLIEST.year <= value.year < _LATEST.year or not (
        _EARLIEST <= value.astimezone(UTC) < _LATEST
    ):
        raise RangeError(f"'{name}' must lie in {_EARLIEST.year}…{_LATEST.year - 1} (UTC)")
    return value.astimezone(UTC)


def _utc_grid(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Boundaries every ``step`` from the one at or before ``start`` to the one at or after
    ``end``, aligned to the Unix epoch (so to UTC)."""
    first = start - (start - _EPOCH) % step
    count = -((first - end) // step)  # ceiling division: intervals needed to reach ``end``
    _check_count(count)
    return [first + k * step for k in range(count + 1)]


def _local_days(start: datetime, end: datetime) -> list[datetime]:
    """Boundaries at local midnights from the one at or before ``start`` to the one at or
    after ``end``, in UTC."""
    first_day = start.astimezone(COMMUNITY_ZONE).date()
    local_end = end.astimezone(COMMUNITY_ZONE)
    last_day = local_end.date()
    if local_end.time() != time():
        last_day += timedelta(days=1)
    _check_count((last_day - first_day).days)
    return [_midnight(day) for day in _days(first_day, last_day)]


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _midnight(day: date) -> datetime:
    # Vienna's clocks change at 02:00/03:00, so local midnight exists and is unambiguous.
    return datetime.combine(day, time(), tzinfo=COMMUNITY_ZONE).astimezone(UTC)


def _check_count(count: int) -> None:
    if count > MAX_INTERVALS:
        raise RangeError(
            f"the range holds {count} intervals, more than {MAX_INTERVALS}: "
            "narrow it or choose a coarser resolution"
        )


@router.get(
    "/meters/{meter_id}/readings",
    response_model=list[IntervalOut] | list[ReadingOut],
    summary="A meter's history: stored readings or energy per interval",
    responses={
        400: {"description": "'from' not before 'to', or the range is too long"},
        401: {"description": "Not signed in"},
        404: {"description": "No such meter among the caller's"},
    },
)
def meter_readings(
    meter_id: _MeterId,
    caller: CurrentCaller,
    db: DbSession,
    start: Annotated[
        AwareDatetime, Query(alias="from", description="Start (ISO 8601 with offset)")
    ],
    end: Annotated[AwareDatetime, Query(alias="to", description="End, excluded")],
    resolution: Resolution = Resolution.QUARTER_HOUR,
) -> list[IntervalOut] | list[ReadingOut]:
    """``raw`` and ``1min``: the stored readings in ``[from, to)`` (flagged ones marked).
    ``15min``, ``1h``, ``1d``: intervals covering ``[from, to)``, widened to whole intervals,
    each with the counter differences between its boundaries. At most 10,000 of either."""
    start_utc, end_utc = _in_range("from", start), _in_range("to", end)
    if start_utc >= end_utc:
        raise RangeError("'from' must be before 'to'")
    if queries.meter_of_user(db, caller.user.id, meter_id) is None:
        raise NotFoundError(f"no meter {meter_id} among yours")
    if resolution in (Resolution.RAW, Resolution.MINUTE):
        return _stored_readings(db, meter_id, start_utc, end_utc, resolution)
    if resolution is Resolution.DAY:
        boundaries = _local_days(start_utc, end_utc)
    else:
        boundaries = _utc_grid(start_utc, end_utc, _STEPS[resolution])
    intervals = queries.energy_intervals(
        db, meter_id, boundaries, tolerance=BOUNDARY_TOLERANCE, now=datetime.now(UTC)
    )
    return [
        IntervalOut(
            start=i.start,
            end=i.end,
            energy_import_wh=i.energy_import_wh,
            energy_export_wh=i.energy_export_wh,
            complete=i.complete,
        )
        for i in intervals
    ]


def _stored_readings(
    db: DbSession, meter_id: int, start: datetime, end: datetime, resolution: Resolution
) -> list[ReadingOut]:
    if resolution is Resolution.MINUTE:
        _check_count(-((start - end) // timedelta(minutes=1)))
    model = RawReading if resolution is Resolution.RAW else MinuteReading
    rows = queries.readings_between(
        db, model, meter_id, start, end, include_end=False, limit=MAX_INTERVALS + 1
    )
    if len(rows) > MAX_INTERVALS:
        raise RangeError(
            f"the range holds more than {MAX_INTERVALS} readings: narrow it "
            "or choose a coarser resolution"
        )
    return [
        ReadingOut(
            measured_at=row.measured_at,
            energy_import_wh=row.energy_import_wh,
            energy_export_wh=row.energy_export_wh,
            power_import_w=row.power_import_w,
            power_export_w=row.power_export_w,
            flags=flag_names(row.flags),
        )
        for row in rows
    ]
