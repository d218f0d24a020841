"""Clouds over a neighbourhood: a clear-sky index for any instant, determined by a seed.

Two processes, both ours and illustrative (not fitted to Austrian climate data):

- the day's weather: a Markov chain over clear, mixed and overcast days, run from 1 January
  of each year, so that sunny and dull spells last a few days;
- within the day: cloud cover as an AR(1) process on a one-minute grid around the day's mean,
  restarted at local midnight, joined linearly between minutes.

Cloud cover becomes a clear-sky index by Kasten, F., Czeplak, G. (1980), "Solar and
terrestrial radiation dependent on the amount and type of cloud", Solar Energy 24(2),
177-189: GHI / GHI_clear = 1 - 0.75 N^3.4, with N the cover in [0, 1].

Households that share a weather seed see the same clouds, as neighbours do.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from ecommunity.forecast import VIENNA
from ecommunity.sim import _random

_STREAM_DAYS: Final = 11
_STREAM_CLOUDS: Final = 12


class DayWeather(enum.Enum):
    CLEAR = 0
    MIXED = 1
    OVERCAST = 2


@dataclass(frozen=True, slots=True)
class _CloudRegime:
    mean_cover: float
    spread: float  # standard deviation of the AR(1) process
    correlation_min: float  # its time constant [min]


_REGIMES: Final = {
    DayWeather.CLEAR: _CloudRegime(0.05, 0.08, 90.0),
    DayWeather.MIXED: _CloudRegime(0.5, 0.3, 12.0),
    DayWeather.OVERCAST: _CloudRegime(0.92, 0.08, 60.0),
}
#: Day-to-day transition probabilities (rows: today, columns: tomorrow).
_TRANSITIONS: Final = {
    DayWeather.CLEAR: (0.65, 0.25, 0.10),
    DayWeather.MIXED: (0.30, 0.40, 0.30),
    DayWeather.OVERCAST: (0.10, 0.30, 0.60),
}
_STATES: Final = (DayWeather.CLEAR, DayWeather.MIXED, DayWeather.OVERCAST)


def clear_sky_index_of(cover: float) -> float:
    """Kasten-Czeplak: the share of clear-sky irradiance left under cloud cover. [1]"""
    clipped = min(max(cover, 0.0), 1.0)
    return 1.0 - 0.75 * math.pow(clipped, 3.4)


class Weather:
    """Cloud cover over time, the same for everyone with the same ``seed``."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._years: dict[int, tuple[DayWeather, ...]] = {}
        self._days: OrderedDict[date, tuple[datetime, tuple[float, ...]]] = OrderedDict()

    def day_weather(self, day: date) -> DayWeather:
        """The kind of day (clear, mixed, overcast) of a local date."""
        days = self._years.get(day.year)
        if days is None:
            rng = _random.stream(self.seed, _STREAM_DAYS, day.year)
            state = rng.choice(_STATES)
            chain = []
            current = date(day.year, 1, 1)
            while current.year == day.year:
                chain.append(state)
                state = rng.choices(_STATES, weights=_TRANSITIONS[state])[0]
                current += timedelta(days=1)
            days = self._years[day.year] = tuple(chain)
        return days[day.timetuple().tm_yday - 1]

    def cloud_cover(self, at: datetime) -> float:
        """Cloud cover at ``at``: 0 clear sky, 1 overcast. [1]"""
        day = at.astimezone(VIENNA).date()
        start, knots = self._day(day)
        minutes = (at.astimezone(UTC) - start).total_seconds() / 60.0
        index = min(int(minutes), len(knots) - 2)
        fraction = minutes - index
        return knots[index] + (knots[index + 1] - knots[index]) * fraction

    def clear_sky_index(self, at: datetime) -> float:
        """Global irradiance at ``at`` over what a clear sky would give. [1]"""
        return clear_sky_index_of(self.cloud_cover(at))

    def _day(self, day: date) -> tuple[datetime, tuple[float, ...]]:
        cached = self._days.get(day)
        if cached is not None:
            return cached
        regime = _REGIMES[self.day_weather(day)]
        start = datetime(day.year, day.month, day.day, tzinfo=VIENNA).astimezone(UTC)
        rng = _random.stream(self.seed, _STREAM_CLOUDS, day.toordinal())
        keep = math.exp(-1.0 / regime.correlation_min)
        innovation = regime.spread * math.sqrt(1.0 - keep * keep)
        deviation = rng.gauss(0.0, regime.spread)
        knots = []
        for _ in range(25 * 60 + 2):  # the longest local day (summer-time change) and one
            knots.append(min(max(regime.mean_cover + deviation, 0.0), 1.0))
            deviation = keep * deviation + innovation * rng.gauss(0.0, 1.0)
        cached = self._days[day] = (start, tuple(knots))
        if len(self._days) > 4:
            self._days.popitem(last=False)
        return cached
