"""The standard load profile H0 for households, as Austria's market rules apply it.

"Repräsentative VDEW-Lastprofile" (VDEW, 1999; BDEW): 96 quarter-hour values per period
(winter 1 Nov - 20 Mar, summer 15 May - 14 Sep, transition in between) and day type (workday,
Saturday, Sunday; public holidays count as Sundays, 24 and 31 December as Saturdays unless
they are Sundays), for 1,000 kWh a year, multiplied for H0 by the dynamisation polynomial of
the day of the year (VDEW "Anwendung der Repräsentativen VDEW-Lastprofile step-by-step",
2000). APCS/E-Control publish the same profile as "H0" for Austria; the holidays here are
Austria's public holidays. Times are local (Europe/Vienna), as in the profile tables.

Provenance of the table and the cross-check against BDEW's own values: docs/forecast.md.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from ecommunity.forecast._h0_table import H0_W

VIENNA: Final = ZoneInfo("Europe/Vienna")
QUARTER_HOUR: Final = timedelta(minutes=15)


class Period(enum.Enum):
    WINTER = "winter"
    SUMMER = "summer"
    TRANSITION = "transition"


class DayType(enum.Enum):
    WORKDAY = "workday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"  # also public holidays


def period_of(day: date) -> Period:
    month_day = (day.month, day.day)
    if month_day >= (11, 1) or month_day <= (3, 20):
        return Period.WINTER
    if (5, 15) <= month_day <= (9, 14):
        return Period.SUMMER
    return Period.TRANSITION


def austrian_holidays(year: int) -> Container[date]:
    """Austria's national public holidays of ``year``."""
    return _austrian_holidays(year)


@functools.cache
def _austrian_holidays(year: int) -> frozenset[date]:
    # Imported here: the holidays package loads every country's calendar (~0.1 s).
    import holidays

    return frozenset(holidays.country_holidays("AT", years=year))


def day_type_of(day: date, holidays: Container[date]) -> DayType:
    if day.weekday() == 6 or day in holidays:
        return DayType.SUNDAY
    if day.weekday() == 5 or (day.month == 12 and day.day in (24, 31)):
        return DayType.SATURDAY
    return DayType.WORKDAY


def dynamisation_factor(day_of_year: int) -> float:
    """The H0 dynamisation polynomial for day ``day_of_year`` (1 = 1 January). [1]"""
    t = float(day_of_year)
    return -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 2.1e-3 * t + 1.24


def h0_table_w(period: Period, day_type: DayType) -> tuple[float, ...]:
    """The 96 quarter-hour values of one period and day type, for 1,000 kWh/a. [W]"""
    return H0_W[(period.value, day_type.value)]


@dataclass(frozen=True, slots=True)
class _Year:
    #: Energy of the dynamised profile over the local calendar year, for 1,000 kWh/a. [Wh]
    energy_wh: float


class StandardLoadProfile:
    """H0 scaled to an annual consumption: the expected power of a household at any time.

    The dynamised profile sums to about, not exactly, 1,000 kWh in a year; each calendar
    year is scaled so that its quarter hours add up to ``annual_kwh`` exactly.
    """

    def __init__(
        self,
        annual_kwh: float,
        *,
        holidays: Callable[[int], Container[date]] = austrian_holidays,
    ) -> None:
        if annual_kwh <= 0:
            raise ValueError(f"annual consumption must be positive, got {annual_kwh} kWh")
        self.annual_kwh = annual_kwh
        self._holidays = holidays
        self._days: dict[date, tuple[float, ...]] = {}
        self._years: dict[int, _Year] = {}

    def power_w(self, at: datetime) -> float:
        """Mean power in the quarter hour (local time) that holds ``at``. [W]"""
        local = at.astimezone(VIENNA)
        values = self.day_w(local.date())
        return values[local.hour * 4 + local.minute // 15]

    def day_w(self, day: date) -> tuple[float, ...]:
        """The 96 quarter-hour powers of a local day, dynamised and scaled. [W]"""
        values = self._days.get(day)
        if values is None:
            scale = self.annual_kwh * 1000.0 / self._year(day.year).energy_wh
            values = tuple(v * scale for v in self.unscaled_day_w(day))
            if len(self._days) > 400:
                self._days.clear()
            self._days[day] = values
        return values

    def unscaled_day_w(self, day: date) -> tuple[float, ...]:
        """The dynamised profile of a day for 1,000 kWh/a, before the yearly scaling. [W]"""
        base = h0_table_w(period_of(day), day_type_of(day, self._holidays(day.year)))
        factor = dynamisation_factor(day.timetuple().tm_yday)
        return tuple(v * factor for v in base)

    def quarter_hour_energies_wh(self, first: datetime, count: int) -> NDArray[np.float64]:
        """Expected energy of ``count`` consecutive quarter hours from ``first``. [Wh]

        ``first`` is a timezone-aware instant on a quarter-hour boundary (Vienna's quarter
        hours are UTC's: its offsets are whole hours).

        Raises:
            ValueError: ``first`` is naive or off a quarter-hour boundary, or ``count`` < 0.
        """
        if first.tzinfo is None or first.utcoffset() is None:
            raise ValueError(f"{first.isoformat()} has no UTC offset")
        start = first.astimezone(UTC)
        if start.minute % 15 or start.second or start.microsecond:
            raise ValueError(f"{first.isoformat()} is not on a quarter-hour boundary")
        if count < 0:
            raise ValueError(f"a negative number of quarter hours: {count}")
        energies = np.empty(count, dtype=np.float64)
        filled = 0
        day = start.astimezone(VIENNA).date()
        # The day's quarter hours from its local midnight; skip those before ``first``.
        skip = int((start - _local_midnight_utc(day)) / QUARTER_HOUR)
        while filled < count:
            values = self.day_w(day)
            quarters = [values[q] / 4.0 for q in _quarter_hours_of(day)[skip:]]
            take = min(len(quarters), count - filled)
            energies[filled : filled + take] = quarters[:take]
            filled += take
            day += timedelta(days=1)
            skip = 0
        return energies

    def day_energy_wh(self, day: date) -> float:
        """Expected energy of a local day (23, 24 or 25 hours long). [Wh]"""
        values = self.day_w(day)
        return sum(values[q] for q in _quarter_hours_of(day)) / 4.0

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is None:
            energy = 0.0
            day = date(year, 1, 1)
            while day.year == year:
                values = self.unscaled_day_w(day)
                energy += sum(values[q] for q in _quarter_hours_of(day)) / 4.0
                day += timedelta(days=1)
            cached = self._years[year] = _Year(energy)
        return cached


def _local_midnight_utc(day: date) -> datetime:
    # Vienna's clocks change at 02:00/03:00, so local midnight exists and is unambiguous.
    return datetime(day.year, day.month, day.day, tzinfo=VIENNA).astimezone(UTC)


@functools.lru_cache(maxsize=1024)
def _quarter_hours_of(day: date) -> tuple[int, ...]:
    """The local quarter-hour indexes a day really has: the summer-time change skips or
    repeats 02:00-03:00."""
    start = _local_midnight_utc(day)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=VIENNA)
    count = int((end.astimezone(UTC) - start) / QUARTER_HOUR)
    if count == 96:
        return tuple(range(96))
    indexes = []
    for k in range(count):
        local = (start + k * QUARTER_HOUR).astimezone(VIENNA)
        indexes.append(local.hour * 4 + local.minute // 15)
    return tuple(indexes)
