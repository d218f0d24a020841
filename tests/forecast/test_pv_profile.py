"""Sun position, clear-sky irradiance, PV power and a typical PV year.

The reference values come from pvlib 0.16.1 (an independent implementation of the same
published models), computed once with
``pvlib.solarposition.get_solarposition(times, 48.3, 14.3, method="nrel_numpy")``,
``pvlib.clearsky.haurwitz(zenith)``, ``pvlib.irradiance.erbs`` and
``pvlib.irradiance.get_total_irradiance(30, 180, ..., albedo=0.2, model="isotropic")``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from ecommunity.forecast import (
    LINZ,
    TYPICAL_CLEAR_SKY_INDEX,
    VIENNA,
    PVSystem,
    Site,
    SolarPosition,
    clear_sky_energies_wh,
    clear_sky_ghi_w_m2,
    plane_of_array_w_m2,
    power_w_at,
    solar_position,
    split_erbs,
    typical_energies_wh,
)

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


def test_negative_peak_power_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        PVSystem(-1.0)


def test_power_at_many_instants_is_the_scalar_model() -> None:
    """The array version runs the same formulas: it agrees with ``PVSystem.power_w`` at every
    instant, day and night, summer and winter, for several orientations."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    instants = [start + timedelta(seconds=s) for s in range(0, 366 * 86_400, 86_400 // 7 + 131)]
    epoch = np.array([t.timestamp() for t in instants])
    for system in (
        PVSystem(6.0),
        PVSystem(2.5, Site(47.07, 15.44), tilt_deg=10.0, azimuth_deg=100.0),
        PVSystem(1.0, Site(48.21, 16.37), tilt_deg=60.0, azimuth_deg=250.0, albedo=0.3),
    ):
        for index in (1.0, 0.4):
            expected = [system.power_w(t, index) for t in instants]
            assert power_w_at(system, epoch, index) == pytest.approx(expected, abs=1e-6)
    assert not power_w_at(PVSystem(0.0), epoch).any()


def test_a_typical_year_yields_the_rule_of_thumb() -> None:
    """1 kWp south at 30° in Vienna: ~1,000 kWh a year (900–1,100, Urban Innovation Vienna)."""
    vienna = PVSystem(1.0, Site(48.21, 16.37))
    first = datetime(2025, 1, 1, tzinfo=VIENNA)
    year = typical_energies_wh(vienna, first, 365 * 96)
    assert year.sum() == pytest.approx(1_000_000, rel=0.01)
    clear = clear_sky_energies_wh(vienna, first, 365 * 96)
    assert 1.8 * year.sum() < clear.sum() < 2.0 * year.sum()
    assert (year >= 0).all()
    # June gives more than December, nights nothing.
    june, december = year[151 * 96 : 181 * 96].sum(), year[334 * 96 :].sum()
    assert june > 3 * december
    assert year[151 * 96] == 0.0  # 1 June, 00:00-00:15 local
    assert TYPICAL_CLEAR_SKY_INDEX == 0.625


def test_a_quarter_hours_energy_is_its_mean_power() -> None:
    """Each quarter hour holds its mean power over 15 minutes (sampled at three instants)."""
    system = PVSystem(4.0)
    first = datetime(2025, 6, 21, 10, 0, tzinfo=UTC)
    energy = typical_energies_wh(system, first, 1, clear_sky_index=1.0)[0]
    fine = sum(system.power_w(first + timedelta(seconds=s)) for s in range(0, 900, 10)) / 90
    assert energy == pytest.approx(fine * 0.25, rel=1e-3)


@pytest.mark.parametrize(
    "first",
    [datetime(2025, 6, 21, 10, 7, tzinfo=UTC), datetime(2025, 6, 21, 10, 0)],
)
def test_a_typical_year_starts_on_an_aware_quarter_hour(first: datetime) -> None:
    with pytest.raises(ValueError, match=r"quarter-hour|offset"):
        typical_energies_wh(PVSystem(1.0), first, 4)


def test_a_clear_sky_index_is_a_share() -> None:
    with pytest.raises(ValueError, match="0 to 1"):
        typical_energies_wh(PVSystem(1.0), datetime(2025, 1, 1, tzinfo=UTC), 4, clear_sky_index=2)
    with pytest.raises(ValueError, match="negative"):
        typical_energies_wh(PVSystem(1.0), datetime(2025, 1, 1, tzinfo=UTC), -1)
