"""Quarter-hour intervals: UTC instants, 15-minute boundaries, and the Vienna days they fall on.

Allocation happens per quarter hour (rules doc 1.2). Vienna's offsets from UTC are whole hours,
so a 15-minute boundary in Vienna is one in UTC: intervals are held as UTC instants. Dated
parameters (tariffs) change at midnight in Vienna, and an interval belongs to the Vienna day on
which it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from ecommunity.community.errors import IntervalError

VIENNA: Final = ZoneInfo("Europe/Vienna")
INTERVAL: Final = timedelta(minutes=15)
INTERVAL_S: Final = 900
DAY_S: Final = 86_400
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = _EPOCH.date().toordinal()

#: Interval starts as numpy ``datetime64`` (any unit, UTC) or aware datetimes.
IntervalStarts = NDArray[np.datetime64] | Sequence[datetime]


def check_interval_start(at: datetime) -> datetime:
    """The interval start as a UTC instant.

    Raises:
        IntervalError: ``at`` is naive or not on a 15-minute boundary.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise IntervalError(f"interval start {at.isoformat()} has no UTC offset")
    utc = at.astimezone(UTC)
    if utc.minute % 15 or utc.second or utc.microsecond:
        raise IntervalError(f"interval start {at.isoformat()} is not on a 15-minute boundary")
    return utc


def epoch_seconds(starts: IntervalStarts) -> NDArray[np.int64]:
    """Interval starts as UTC seconds since 1970, checked to lie on 15-minute boundaries.

    Raises:
        IntervalError: a naive datetime, or a start off a 15-minute boundary.
    """
    if isinstance(starts, np.ndarray):
        if starts.dtype.kind != "M":
            raise IntervalError(f"interval starts must be datetime64, not {starts.dtype}")
        whole_seconds = starts.astype("datetime64[s]")
        seconds = whole_seconds.astype(np.int64)
        # NaT compares unequal to itself, so it is caught here too.
        bad = (whole_seconds != starts) | (seconds % INTERVAL_S != 0)
        if bad.any():
            raise IntervalError(
                f"interval start {starts[np.argmax(bad)]} is not on a 15-minute boundary"
            )
        return seconds
    return np.array(
        [(check_interval_start(at) - _EPOCH) // timedelta(seconds=1) for at in starts],
        dtype=np.int64,
    )


def vienna_midnight_s(day: date) -> int:
    """The UTC instant (seconds since 1970) at which ``day`` begins in Vienna."""
    # Vienna's clocks change at 02:00/03:00, so local midnight exists and is unambiguous.
    local = datetime.combine(day, time(0), tzinfo=VIENNA)
    return (local - _EPOCH) // timedelta(seconds=1)


def vienna_day(at: datetime) -> date:
    """The Vienna calendar day an instant falls on."""
    return at.astimezone(VIENNA).date()


def regular_starts(first: datetime, count: int) -> NDArray[np.datetime64]:
    """``count`` consecutive interval starts from ``first`` (UTC ``datetime64[s]``).

    Raises:
        IntervalError: ``first`` is naive or off a boundary, or ``count`` is negative.
    """
    if count < 0:
        raise IntervalError(f"a negative number of intervals: {count}")
    start_s = (check_interval_start(first) - _EPOCH) // timedelta(seconds=1)
    seconds = start_s + INTERVAL_S * np.arange(count, dtype=np.int64)
    return seconds.astype("datetime64[s]")


@dataclass(frozen=True, eq=False)
class DayRuns:
    """Interval starts cut into runs of consecutive intervals on the same Vienna day.

    Dated parameters change at Vienna midnight only, so a price is constant over a run. For
    starts in time order there is one run per day.
    """

    #: The ``T`` interval starts, UTC seconds.
    starts_s: NDArray[np.int64]
    #: ``(S,)`` the index of each run's first interval.
    first: NDArray[np.int64]
    #: ``(S,)`` each run's Vienna day.
    days: NDArray[np.datetime64]

    @classmethod
    def of(cls, starts_s: NDArray[np.int64]) -> DayRuns:
        """Runs of ``starts_s`` (UTC seconds) in the order given."""
        days = vienna_days(starts_s)
        first = np.flatnonzero(np.diff(days.astype(np.int64), prepend=np.int64(-1)))
        if not starts_s.size:
            first = np.zeros(0, dtype=np.int64)
        return cls(starts_s=starts_s, first=first.astype(np.int64), days=days[first])

    @property
    def lengths(self) -> NDArray[np.int64]:
        """``(S,)`` intervals per run."""
        return np.diff(self.first, append=np.int64(self.starts_s.size))

    @property
    def first_starts_s(self) -> NDArray[np.int64]:
        """``(S,)`` the start of each run's first interval, UTC seconds."""
        return self.starts_s[self.first]


def vienna_days(starts_s: NDArray[np.int64]) -> NDArray[np.datetime64]:
    """The Vienna calendar day of each instant (UTC seconds), as ``datetime64[D]``."""
    # Vienna is one or two hours ahead of UTC: an instant's Vienna day is its UTC day or the
    # next one, the next one from that day's Vienna midnight on.
    utc_days, inverse = np.unique(starts_s // DAY_S, return_inverse=True)
    next_midnight = np.array(
        [
            vienna_midnight_s(date.fromordinal(_EPOCH_ORDINAL + int(day) + 1))
            for day in utc_days.tolist()
        ],
        dtype=np.int64,
    )
    later = starts_s >= next_midnight[inverse]
    return (utc_days[inverse] + later).astype("datetime64[D]")
