"""Energy per interval from the meter's counters, for the local API.

The energy of an interval is the difference between the last counter readings at or before its
end and its start: never summed power, and the intervals of a range always add up to the range's
counter difference, whatever the gaps. An interval is *complete* when both of its boundary
readings lie within :data:`BOUNDARY_TOLERANCE_MS` before the boundary and it has ended.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from ecommunity.gateway.store import ReadingStore, StoredReading, from_epoch_ms

#: How far before an interval boundary a counter reading may lie and still count as taken at
#: the boundary. Meters push every 1 to 10 s; two minutes tolerate short outages. [ms]
BOUNDARY_TOLERANCE_MS: Final = 120_000
#: The most readings or intervals one request may ask for.
MAX_POINTS: Final = 10_000


class Resolution(StrEnum):
    RAW = "raw"
    MINUTE = "1min"
    QUARTER_HOUR = "15min"
    HOUR = "1h"

    @property
    def step_ms(self) -> int:
        return _STEPS_MS[self]


_STEPS_MS: Final = {
    Resolution.RAW: 0,
    Resolution.MINUTE: 60_000,
    Resolution.QUARTER_HOUR: 900_000,
    Resolution.HOUR: 3_600_000,
}


class RangeTooLargeError(ValueError):
    """The range holds more than :data:`MAX_POINTS` intervals."""


@dataclass(frozen=True)
class EnergyInterval:
    """Energy through the meter in ``[start, end)``."""

    start: datetime
    end: datetime
    #: [Wh]; None when a boundary has no reading at or before it.
    energy_import_wh: int | None
    energy_export_wh: int | None
    complete: bool


def interval_boundaries_ms(from_ms: int, to_ms: int, step_ms: int) -> list[int]:
    """Boundaries of the whole intervals of ``step_ms`` covering ``[from_ms, to_ms)``.

    Interval starts are multiples of the step in UTC, which for 1 min, 15 min and 1 h are also
    the boundaries of Austrian local time (its offsets are whole hours).

    Raises:
        RangeTooLargeError: more than :data:`MAX_POINTS` intervals.
    """
    first = from_ms - from_ms % step_ms
    last = -(-to_ms // step_ms) * step_ms
    count = (last - first) // step_ms
    if count > MAX_POINTS:
        raise RangeTooLargeError(
            f"the range holds {count} intervals, more than {MAX_POINTS}: narrow it or choose "
            "a coarser resolution"
        )
    return list(range(first, max(last, first + step_ms) + 1, step_ms))


def energy_intervals(
    store: ReadingStore, meter_id: str, boundaries_ms: list[int], *, now_ms: int
) -> list[EnergyInterval]:
    """The intervals between consecutive boundaries with their energies."""
    # One index seek per boundary: the cost grows with the intervals, not with the readings.
    counters = [store.counter_at(meter_id, at_ms) for at_ms in boundaries_ms]
    intervals = []
    for (start_ms, first), (end_ms, last) in itertools.pairwise(
        zip(boundaries_ms, counters, strict=True)
    ):
        fresh = _fresh(first, start_ms) and _fresh(last, end_ms)
        energy_import = _difference(first, last, "energy_import_wh")
        energy_export = _difference(first, last, "energy_export_wh")
        known = energy_import is not None or energy_export is not None
        intervals.append(
            EnergyInterval(
                start=from_epoch_ms(start_ms),
                end=from_epoch_ms(end_ms),
                energy_import_wh=energy_import,
                energy_export_wh=energy_export,
                complete=known and fresh and end_ms <= now_ms,
            )
        )
    return intervals


def energy_since(
    store: ReadingStore, meter_id: str, since_ms: int
) -> tuple[int | None, int | None]:
    """Energy imported and exported from ``since_ms`` to the latest reading. [Wh]"""
    start = store.counter_at(meter_id, since_ms)
    end = store.latest_timed(meter_id)
    if start is None:
        # The meter's first reading came later (a new gateway): count from that one.
        readings = store.readings_between(meter_id, from_ms=since_ms, before_ms=2**62, limit=1)
        start = readings[0] if readings else None
    return (
        _difference(start, end, "energy_import_wh"),
        _difference(start, end, "energy_export_wh"),
    )


def _fresh(reading: StoredReading | None, boundary_ms: int) -> bool:
    if reading is None or reading.meter_timestamp is None:
        return False
    taken_ms = int(reading.meter_timestamp.timestamp() * 1000)
    return boundary_ms - taken_ms <= BOUNDARY_TOLERANCE_MS


def _difference(
    first: StoredReading | None, last: StoredReading | None, counter: str
) -> int | None:
    if first is None or last is None:
        return None
    start: int | None = getattr(first, counter)
    end: int | None = getattr(last, counter)
    if start is None or end is None:
        return None
    # A counter that runs backwards (a replaced meter) is no energy, not negative energy.
    return max(end - start, 0)
