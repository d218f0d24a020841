"""One household's load at 1-s resolution: its mean is H0, its seconds look like a home."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from ecommunity.forecast import VIENNA
from ecommunity.sim import APPLIANCES, HouseholdLoad


def _seconds(day: date) -> range:
    start = int(datetime(day.year, day.month, day.day, tzinfo=VIENNA).timestamp())
    return range(start, start + 86_400)


def test_the_same_seed_gives_the_same_household() -> None:
    day = _seconds(date(2025, 2, 3))
    first, again, other = HouseholdLoad(3500, 7), HouseholdLoad(3500, 7), HouseholdLoad(3500, 8)
    sample = day[::97]
    assert [first.power(s) for s in sample] == [again.power(s) for s in sample]
    assert [first.power(s) for s in sample] != [other.power(s) for s in sample]
    # Evaluating out of order (no state) gives the same values.
    assert [first.power(s) for s in reversed(sample)] == [again.power(s) for s in reversed(sample)]


@pytest.mark.parametrize("day", [date(2025, 1, 15), date(2025, 7, 13)])
def test_the_mean_over_households_is_h0(day: date) -> None:
    """Eight households, one day each, sampled every 20 s: their energy is H0's."""
    simulated_wh = expected_wh = 0.0
    for seed in range(8):
        load = HouseholdLoad(4000, seed)
        simulated_wh += sum(load.power(s).total_w for s in _seconds(day)[::20]) * 20 / 3600
        expected_wh += load.profile.day_energy_wh(day)
    assert simulated_wh == pytest.approx(expected_wh, rel=0.12)


def test_seconds_show_appliances_switching() -> None:
    load = HouseholdLoad(3500, 3)
    day = _seconds(date(2025, 1, 15))
    powers = [load.power(s).total_w for s in day]
    steps = [abs(b - a) for a, b in itertools.pairwise(powers)]
    assert max(steps) > 1000  # a kettle, hob or oven switching on or off
    assert max(powers) > 2000
    # At night only standby and the fridge: below 300 W most of the time.
    night = powers[2 * 3600 : 4 * 3600]
    assert sorted(night)[len(night) // 2] < 300
    assert min(powers) >= load.standby_w - 3  # the jitter is ±1 W a phase
    runs = load.runs_between(day.start, day.stop)
    names = {run.name for run in runs}
    assert len(names) >= 4
    by_name = {a.name: a for a in APPLIANCES}
    for run in runs:
        hour = datetime.fromtimestamp(run.start_s, UTC).astimezone(VIENNA).hour
        assert by_name[run.name].may_start_at(hour)


def test_an_appliance_run_follows_its_programme() -> None:
    oven = next(a for a in APPLIANCES if a.name == "oven")
    load = HouseholdLoad(3500, 1)
    runs = [r for r in load.runs_between(*_bounds(date(2025, 1, 1), 60)) if r.name == "oven"]
    assert runs
    run = runs[0]
    powers = [run.power_w(s) for s in range(run.start_s - 5, run.end_s + 5)]
    assert powers[:5] == [0.0] * 5
    assert powers[-5:] == [0.0] * 5
    energy_j = sum(powers)
    assert energy_j == pytest.approx(oven.energy_j, rel=0.3)  # scaled ±10 % power, ±15 % time
    assert max(powers) == pytest.approx(2500, rel=0.11)


def _bounds(first: date, days: int) -> tuple[int, int]:
    start = int(datetime(first.year, first.month, first.day, tzinfo=VIENNA).timestamp())
    return start, start + days * 86_400


def test_phases_add_up() -> None:
    load = HouseholdLoad(3500, 5)
    start = int(datetime(2025, 3, 3, 18, tzinfo=VIENNA).timestamp())
    for s in range(start, start + 3600, 7):
        power = load.power(s)
        assert power.total_w == pytest.approx(power.l1_w + power.l2_w + power.l3_w)
        assert min(power.l1_w, power.l2_w, power.l3_w) >= 0


def test_expected_power_is_the_scaled_profile() -> None:
    load = HouseholdLoad(5000, 2)
    at = datetime(2025, 12, 1, 19, 0, tzinfo=VIENNA)
    assert load.expected_power_w(at) == load.profile.power_w(at)
    assert load.expected_power_w(at + timedelta(hours=8)) < load.expected_power_w(at)
