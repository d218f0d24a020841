"""Quarter-hour interval starts: UTC, 15-minute boundaries, Vienna days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from ecommunity.community import IntervalError, check_interval_start, epoch_seconds, regular_starts
from ecommunity.community.intervals import DayRuns, vienna_day, vienna_days, vienna_midnight_s


def test_aware_boundaries_become_utc() -> None:
    vienna_summer = timezone(timedelta(hours=2))
    at = check_interval_start(datetime(2024, 6, 1, 12, 15, tzinfo=vienna_summer))
    assert at == datetime(2024, 6, 1, 10, 15, tzinfo=UTC)
    assert at.tzinfo is UTC


@pytest.mark.parametrize(
    "at",
    [
        datetime(2024, 6, 1, 10, 15),
        datetime(2024, 6, 1, 10, 10, tzinfo=UTC),
        datetime(2024, 6, 1, 10, 15, 1, tzinfo=UTC),
        datetime(2024, 6, 1, 10, 15, 0, 1, tzinfo=UTC),
        # 10:15 at UTC+00:20 is 09:55 UTC.
        datetime(2024, 6, 1, 10, 15, tzinfo=timezone(timedelta(minutes=20))),
    ],
)
def test_naive_or_off_boundary_starts_are_refused(at: datetime) -> None:
    with pytest.raises(IntervalError):
        check_interval_start(at)
    with pytest.raises(IntervalError):
        epoch_seconds([at])


def test_datetime64_starts() -> None:
    starts = regular_starts(datetime(2024, 3, 31, 0, 0, tzinfo=UTC), 4)
    assert epoch_seconds(starts).tolist() == [1711843200 + 900 * i for i in range(4)]
    assert epoch_seconds(starts.astype("datetime64[ms]")).tolist() == epoch_seconds(starts).tolist()
    for bad in (
        np.array(["2024-01-01T00:05"], dtype="datetime64[m]"),
        np.array(["2024-01-01T00:00:00.5"], dtype="datetime64[ms]"),
        np.array(["NaT"], dtype="datetime64[s]"),
    ):
        with pytest.raises(IntervalError, match="15-minute boundary"):
            epoch_seconds(bad)
    with pytest.raises(IntervalError, match="datetime64"):
        epoch_seconds(np.array([1, 2]))
    with pytest.raises(IntervalError, match="negative"):
        regular_starts(datetime(2024, 1, 1, tzinfo=UTC), -1)


def test_vienna_days() -> None:
    # Midnight in Vienna is 23:00 UTC in winter and 22:00 UTC in summer.
    assert vienna_midnight_s(date(2025, 1, 1)) == int(
        datetime(2024, 12, 31, 23, tzinfo=UTC).timestamp()
    )
    assert vienna_midnight_s(date(2025, 7, 1)) == int(
        datetime(2025, 6, 30, 22, tzinfo=UTC).timestamp()
    )
    assert vienna_day(datetime(2024, 12, 31, 23, tzinfo=UTC)) == date(2025, 1, 1)
    assert vienna_day(datetime(2024, 12, 31, 22, 45, tzinfo=UTC)) == date(2024, 12, 31)


def test_day_runs_follow_vienna_midnight_and_summer_time() -> None:
    # From 23:00 Vienna time on 29 March 2025 over the change to summer time (a day of 92
    # quarter hours) into 31 March.
    starts = epoch_seconds(regular_starts(datetime(2025, 3, 29, 22, tzinfo=UTC), 200))
    runs = DayRuns.of(starts)
    assert runs.days.astype(str).tolist() == [
        "2025-03-29",
        "2025-03-30",
        "2025-03-31",
        "2025-04-01",
    ]
    assert runs.lengths.tolist() == [4, 92, 96, 8]
    assert runs.first_starts_s.tolist() == starts[runs.first].tolist()
    # Back to winter time: a day of 100 quarter hours.
    autumn = DayRuns.of(epoch_seconds(regular_starts(datetime(2025, 10, 25, 22, tzinfo=UTC), 100)))
    assert autumn.lengths.tolist() == [100]
    assert autumn.days.astype(str).tolist() == ["2025-10-26"]


def test_day_runs_of_starts_out_of_order_and_of_none() -> None:
    starts = epoch_seconds(regular_starts(datetime(2024, 12, 31, 22, 45, tzinfo=UTC), 3))
    runs = DayRuns.of(starts[[1, 0, 2]])  # 23:00 UTC is already 1 January in Vienna
    assert runs.days.astype(str).tolist() == ["2025-01-01", "2024-12-31", "2025-01-01"]
    assert runs.lengths.tolist() == [1, 1, 1]
    empty = DayRuns.of(np.zeros(0, dtype=np.int64))
    assert empty.first.size == empty.days.size == empty.lengths.size == 0
    assert vienna_days(starts).astype(str).tolist() == ["2024-12-31", "2025-01-01", "2025-01-01"]
