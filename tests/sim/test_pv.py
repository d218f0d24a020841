"""Sun position, clear-sky irradiance, clouds and PV power.

The reference values come from pvlib 0.16.1 (an independent implementation of the same
published models), computed once with
``pvlib.solarposition.get_solarposition(times, 48.3, 14.3, method="nrel_numpy")``,
``pvlib.clearsky.haurwitz(zenith)``, ``pvlib.irradiance.erbs`` and
``pvlib.irradiance.get_total_irradiance(30, 180, ..., albedo=0.2, model="isotropic")``.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from ecommunity.sim import (
    LINZ,
    PVSystem,
    SolarPosition,
    Weather,
    clear_sky_ghi_w_m2,
    plane_of_array_w_m2,
    solar_position,
    split_erbs,
)
from ecommunity.sim._h0 import VIENNA

# instant, pvlib zenith, azimuth, Haurwitz GHI, plane of array (30° south) [°, °, W/m², W/m²]
PVLIB = [
    (datetime(2025, 6, 21, 11, 0, tzinfo=UTC), 24.88, 177.47, 933.4, 1011.4),
    (datetime(2025, 12, 21, 11, 0, tzinfo=UTC), 71.74, 179.77, 285.0, 539.6),
    (datetime(2025, 3, 20, 7, 0, tzinfo=UTC), 72.17, 111.22, 277.2, 355.9),
    (datetime(2025, 9, 22, 15, 30, tzinfo=UTC), 75.95, 253.76, 209.0, 263.1),
    (datetime(2025, 6, 21, 22, 0, tzinfo=UTC), 106.81, 344.50, 0.0, 0.0),
]


@pytest.mark.parametrize(("at", "zenith", "azimuth", "ghi", "poa"), PVLIB)
def test_solar_position_within_a_degree_of_pvlib(
    at: datetime, zenith: float, azimuth: float, ghi: float, poa: float
) -> None:
    sun = solar_position(at, LINZ.latitude_deg, LINZ.longitude_deg)
    assert sun.zenith_deg == pytest.approx(zenith, abs=0.6)
    assert sun.azimuth_deg == pytest.approx(azimuth, abs=0.6)


@pytest.mark.parametrize(("at", "zenith", "azimuth", "ghi", "poa"), PVLIB)
def test_irradiance_models_match_pvlib(
    at: datetime, zenith: float, azimuth: float, ghi: float, poa: float
) -> None:
    sun = SolarPosition(zenith, azimuth)
    # The angles are rounded to 0.01°: the irradiances agree to a fraction of a W/m².
    assert clear_sky_ghi_w_m2(zenith) == pytest.approx(ghi, abs=0.5)
    irradiance = split_erbs(clear_sky_ghi_w_m2(zenith), zenith, at)
    tilted = plane_of_array_w_m2(irradiance, sun, tilt_deg=30, surface_azimuth_deg=180, albedo=0.2)
    assert tilted == pytest.approx(poa, abs=0.5)


def test_clear_sky_noon_in_june() -> None:
    """10 kWp facing south at 30° in Linz: ~1,010 W/m² x 10 kW x 0.85."""
    pv = PVSystem(10.0)
    noon = datetime(2025, 6, 21, 11, 0, tzinfo=UTC)
    assert pv.power_w(noon) == pytest.approx(1011.4 * 10 * 0.85, rel=0.02)
    assert PVSystem(5.0).power_w(noon) == pytest.approx(pv.power_w(noon) / 2)
    assert pv.power_w(noon, clear_sky_index=0.3) < 0.5 * pv.power_w(noon)


def test_no_pv_at_night() -> None:
    pv = PVSystem(8.0)
    for day in (date(2025, 6, 21), date(2025, 12, 21)):
        for minute in range(0, 24 * 60, 5):
            at = datetime(day.year, day.month, day.day, tzinfo=VIENNA) + timedelta(minutes=minute)
            sun = solar_position(at, LINZ.latitude_deg, LINZ.longitude_deg)
            power = pv.power_w(at)
            if sun.elevation_deg < 0:
                assert power == 0.0
            if at.hour < 4 or at.hour >= 22 or (day.month == 12 and not 8 <= at.hour < 17):
                assert power == 0.0, at


def test_a_june_day_yields_what_a_kwp_yields() -> None:
    """A clear June day gives roughly 7-8 kWh per kWp in Austria."""
    pv = PVSystem(1.0)
    start = datetime(2025, 6, 21, tzinfo=VIENNA)
    energy_wh = sum(pv.power_w(start + timedelta(minutes=m)) for m in range(24 * 60)) / 60
    assert 6_500 < energy_wh < 8_500


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


def test_negative_peak_power_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        PVSystem(-1.0)
