"""Ranges of the community-energy routes: quarter hours (UTC instants) and Vienna days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ecommunity.cloud.community_energy.participants import vienna_midnight
from ecommunity.cloud.errors import CloudError

_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class EnergyRangeError(CloudError):
    code = "bad_range"


def quarter_hour_range(
    start: datetime, end: datetime, *, max_days: int
) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC, both on quarter hours, start before end, at most ``max_days``.

    Raises:
        EnergyRangeError: anything else.
    """
    for name, value in (("from", start), ("to", end)):
        if not _EARLIEST.year <= value.year < _LATEST.year or not (
            _EARLIEST <= value.astimezone(UTC) < _LATEST
        ):
            raise EnergyRangeError(f"'{name}' must lie in 2000…2199 (UTC)")
        if value.minute % 15 or value.second or value.microsecond:
            raise EnergyRangeError(f"'{name}' must be on a quarter hour, got {value.isoformat()}")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        raise EnergyRangeError("'from' must be before 'to'")
    if end - start > timedelta(days=max_days):
        raise EnergyRangeError(f"the range is longer than {max_days} days: narrow it")
    return start, end


def day_range(first: date, last: date, *, max_days: int) -> tuple[datetime, datetime]:
    """The Vienna days ``[first, last)`` as UTC instants (Vienna midnights).

    Raises:
        EnergyRangeError: ``first`` not before ``last``, or more than ``max_days`` days.
    """
    if not date(2000, 1, 1) <= first < last <= date(2199, 12, 31):
        raise EnergyRangeError("'from' must be a day before 'to' (days 2000…2199)")
    if (last - first).days > max_days:
        raise EnergyRangeError(f"the range is longer than {max_days} days: narrow it")
    return vienna_midnight(first), vienna_midnight(last)
