"""Clouds over the simulated neighbourhood: deterministic per seed, lasting days, smooth."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

from ecommunity.forecast import VIENNA
from ecommunity.sim import Weather


def test_clouds_are_deterministic_per_seed() -> None:
    start = datetime(2025, 5, 1, tzinfo=VIENNA)
    times = [start + timedelta(seconds=s) for s in range(0, 20 * 86_400, 3_607)]
    one, other = Weather(3), Weather(4)
    first = [one.clear_sky_index(t) for t in times]
    assert first[:50] == [Weather(3).clear_sky_index(t) for t in times[:50]]  # new ones agree
    assert first != [other.clear_sky_index(t) for t in times]
    assert all(0.25 <= k <= 1.0 for k in first)
    assert max(first) > 0.9
    assert min(first) < 0.5


def test_weather_lasts_a_few_days() -> None:
    weather = Weather(11)
    days = [weather.day_weather(date(2025, 1, 1) + timedelta(days=i)) for i in range(365)]
    same = sum(a is b for a, b in itertools.pairwise(days)) / 364
    assert 0.4 < same < 0.75
    assert len(set(days)) == 3


def test_clouds_change_within_seconds_smoothly() -> None:
    weather = Weather(5)
    start = datetime(2025, 7, 1, 10, tzinfo=VIENNA)
    values = [weather.cloud_cover(start + timedelta(seconds=s)) for s in range(3600)]
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) < 0.1
