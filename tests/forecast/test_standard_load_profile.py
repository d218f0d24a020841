"""The standard load profile H0: table, calendar, dynamisation and scaling to a year."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ecommunity.forecast import (
    VIENNA,
    DayType,
    Period,
    StandardLoadProfile,
    austrian_holidays,
    day_type_of,
    dynamisation_factor,
    h0_table_w,
    period_of,
)

# Values of BDEW's own table ("Repräsentative Profile VDEW", one decimal), as read from the
# BDEW workbook by the R package standardlastprofile (inst/extdata/slp.csv): an independent
# check of the demandlib copy the table was generated from. (period, day, quarter, W)
PUBLISHED = [
    (Period.WINTER, DayType.SATURDAY, 0, 70.8),
    (Period.WINTER, DayType.SATURDAY, 3, 63.3),
    (Period.WINTER, DayType.SATURDAY, 76, 213.2),
    (Period.SUMMER, DayType.SATURDAY, 51, 183.9),
    (Period.TRANSITION, DayType.SATURDAY, 78, 199.4),
    (Period.WINTER, DayType.SUNDAY, 0, 87.5),
    (Period.WINTER, DayType.SUNDAY, 48, 211.8),
    (Period.SUMMER, DayType.SUNDAY, 48, 213.7),
    (Period.TRANSITION, DayType.SUNDAY, 48, 213.5),
    (Period.WINTER, DayType.WORKDAY, 78, 188.9),
    (Period.SUMMER, DayType.WORKDAY, 0, 86.3),
    (Period.SUMMER, DayType.WORKDAY, 79, 170.6),
    (Period.TRANSITION, DayType.WORKDAY, 79, 176.5),
    (Period.TRANSITION, DayType.WORKDAY, 95, 86.6),
]


@pytest.mark.parametrize(("period", "day", "quarter", "published_w"), PUBLISHED)
def test_the_table_is_bdews_h0(
    period: Period, day: DayType, quarter: int, published_w: float
) -> None:
    assert h0_table_w(period, day)[quarter] == pytest.approx(published_w, abs=0.07)


def test_nine_days_of_96_quarter_hours() -> None:
    for period in Period:
        for day in DayType:
            values = h0_table_w(period, day)
            assert len(values) == 96
            assert all(30 < v < 260 for v in values)


@pytest.mark.parametrize(
    ("day", "period"),
    [
        (date(2025, 3, 20), Period.WINTER),
        (date(2025, 3, 21), Period.TRANSITION),
        (date(2025, 5, 14), Period.TRANSITION),
        (date(2025, 5, 15), Period.SUMMER),
        (date(2025, 9, 14), Period.SUMMER),
        (date(2025, 9, 15), Period.TRANSITION),
        (date(2025, 10, 31), Period.TRANSITION),
        (date(2025, 11, 1), Period.WINTER),
        (date(2025, 1, 1), Period.WINTER),
    ],
)
def test_periods(day: date, period: Period) -> None:
    assert period_of(day) is period


@pytest.mark.parametrize(
    ("day", "day_type"),
    [
        (date(2025, 1, 7), DayType.WORKDAY),  # a Tuesday
        (date(2025, 1, 11), DayType.SATURDAY),
        (date(2025, 1, 12), DayType.SUNDAY),
        (date(2025, 1, 6), DayType.SUNDAY),  # Epiphany, a Monday
        (date(2025, 5, 1), DayType.SUNDAY),  # Labour Day, a Thursday
        (date(2025, 6, 19), DayType.SUNDAY),  # Corpus Christi, a Thursday
        (date(2025, 10, 27), DayType.WORKDAY),  # the Monday after the National Day
        (date(2025, 12, 8), DayType.SUNDAY),  # Immaculate Conception, a Monday
        (date(2025, 12, 24), DayType.SATURDAY),  # a Wednesday
        (date(2025, 12, 31), DayType.SATURDAY),
        (date(2028, 12, 24), DayType.SUNDAY),  # a Sunday stays one
        (date(2025, 4, 18), DayType.WORKDAY),  # Good Friday: no public holiday in Austria
    ],
)
def test_day_types_with_austrias_holidays(day: date, day_type: DayType) -> None:
    assert day_type_of(day, austrian_holidays(day.year)) is day_type


def test_dynamisation_lifts_winter_and_lowers_summer() -> None:
    assert dynamisation_factor(1) == pytest.approx(1.2421, abs=1e-4)
    summer = min(dynamisation_factor(d) for d in range(1, 366))
    assert 0.75 < summer < 0.85
    assert dynamisation_factor(355) > 1.2


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_a_year_sums_to_the_annual_consumption(year: int) -> None:
    profile = StandardLoadProfile(3500)
    days = [date(year, 1, 1) + timedelta(days=i) for i in range(366)]
    days = [d for d in days if d.year == year]
    total_wh = sum(profile.day_energy_wh(d) for d in days)
    assert total_wh == pytest.approx(3_500_000, rel=1e-9)
    # The dynamised profile is built to give about 1,000 kWh a year before our scaling.
    unscaled_wh = sum(sum(profile.unscaled_day_w(d)) / 4 for d in days)
    assert unscaled_wh == pytest.approx(1_000_000, rel=0.01)


def test_daily_energy_is_higher_in_winter() -> None:
    profile = StandardLoadProfile(3500)
    january = profile.day_energy_wh(date(2025, 1, 15))
    july = profile.day_energy_wh(date(2025, 7, 16))
    assert january > 1.3 * july
    assert 9_000 < january < 14_000  # 3,500 kWh/a is 9.6 kWh a day on average


def test_the_winter_evening_peak() -> None:
    profile = StandardLoadProfile(3500)
    values = profile.day_w(date(2025, 1, 15))  # a Wednesday
    peak = max(range(96), key=values.__getitem__)
    assert 18 * 4 <= peak < 21 * 4
    assert values[peak] > 1.3 * values[12 * 4]
    assert values[peak] > 4 * values[4 * 4]
    at = datetime(2025, 1, 15, peak // 4, peak % 4 * 15, tzinfo=VIENNA)
    assert profile.power_w(at) == values[peak]


def test_sunday_differs_from_a_workday() -> None:
    profile = StandardLoadProfile(3500)
    workday = profile.day_w(date(2025, 1, 15))
    sunday = profile.day_w(date(2025, 1, 19))
    assert workday[7 * 4] > 1.5 * sunday[7 * 4]  # people get up later on Sundays
    assert sunday[12 * 4] > 1.3 * workday[12 * 4]  # and cook lunch at home
    saturday = profile.day_w(date(2025, 1, 18))
    assert saturday != sunday


def test_summer_time_changes_have_23_and_25_hours() -> None:
    profile = StandardLoadProfile(3500)
    spring, autumn = date(2025, 3, 30), date(2025, 10, 26)
    values = profile.day_w(spring)
    skipped = sum(values[8:12])  # 02:00-03:00 does not exist
    assert profile.day_energy_wh(spring) == pytest.approx((sum(values) - skipped) / 4)
    values = profile.day_w(autumn)
    assert profile.day_energy_wh(autumn) == pytest.approx((sum(values) + sum(values[8:12])) / 4)


def test_power_follows_local_quarter_hours() -> None:
    profile = StandardLoadProfile(2000)
    values = profile.day_w(date(2025, 7, 2))
    # 10:14:59 local is in the quarter hour 10:00-10:15, 10:15:00 in the next one.
    assert profile.power_w(datetime(2025, 7, 2, 10, 14, 59, tzinfo=VIENNA)) == values[40]
    assert profile.power_w(datetime(2025, 7, 2, 10, 15, tzinfo=VIENNA)) == values[41]


def test_a_consumption_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        StandardLoadProfile(0)


def test_quarter_hour_energies_are_the_profile_in_utc_order() -> None:
    """A range of quarter hours from any boundary, across midnight and the summer-time
    change: each is the local quarter hour's power over 15 minutes."""
    profile = StandardLoadProfile(4200)
    first = datetime(2025, 3, 29, 22, 30, tzinfo=VIENNA)  # the night of the spring change
    energies = profile.quarter_hour_energies_wh(first, 2 * 96)
    for k in (0, 5, 6, 13, 14, 15, 100, 191):
        at = first.astimezone(UTC) + k * timedelta(minutes=15)  # not wall-clock arithmetic
        assert energies[k] == pytest.approx(profile.power_w(at) / 4), k
    # A whole local day is its day energy; a whole year its annual consumption.
    day = profile.quarter_hour_energies_wh(datetime(2025, 10, 26, tzinfo=VIENNA), 100)
    assert day.sum() == pytest.approx(profile.day_energy_wh(date(2025, 10, 26)))
    year = profile.quarter_hour_energies_wh(datetime(2025, 1, 1, tzinfo=VIENNA), 365 * 96)
    assert year.sum() == pytest.approx(4_200_000, rel=1e-9)
    assert profile.quarter_hour_energies_wh(first, 0).size == 0


@pytest.mark.parametrize(
    ("first", "count"),
    [
        (datetime(2025, 1, 1, 0, 5, tzinfo=VIENNA), 4),
        (datetime(2025, 1, 1), 4),
        (datetime(2025, 1, 1, tzinfo=VIENNA), -1),
    ],
)
def test_quarter_hour_energies_refuse_a_bad_range(first: datetime, count: int) -> None:
    with pytest.raises(ValueError, match=r"offset|boundary|negative"):
        StandardLoadProfile(3500).quarter_hour_energies_wh(first, count)
