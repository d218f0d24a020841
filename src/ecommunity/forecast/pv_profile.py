"""A rooftop PV system: clear-sky irradiance on its plane, dimmed by clouds, times its size;
and a typical year of its quarter-hour energies.

:class:`PVSystem` gives the power at one instant under a given clear-sky index (the simulator
evaluates it every second under its own clouds). :func:`typical_energies_wh` gives a typical
year without weather data: the clear-sky energy of each quarter hour times one average
clear-sky index, :data:`TYPICAL_CLEAR_SKY_INDEX`, chosen so that a south-facing system at 30°
in Vienna yields the rule of thumb of 1,000 kWh per kWp and year (docs/forecast.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
from numpy.typing import NDArray

from ecommunity.forecast.solar import (
    MAX_ERBS_ZENITH_DEG,
    MIN_ERBS_COS_ZENITH,
    SOLAR_CONSTANT_W_M2,
    clear_sky_ghi_w_m2,
    plane_of_array_w_m2,
    solar_position,
    split_erbs,
)

#: Irradiance at which a module gives its rated (peak) power. [W/m²]
STC_IRRADIANCE_W_M2: Final = 1000.0
#: Global irradiance over a typical year as a share of the clear-sky irradiance. [1]
#: Calibrated: with it a 1 kWp system facing south at 30° in Vienna (48.21° N, 16.37° E) with
#: the default performance ratio yields 1,000 kWh a year, the rule of thumb of Urban Innovation
#: Vienna ("900 – 1.100 kWh pro installiertem kWp", south, 30°;
#: https://erneuerbare-energie.urbaninnovation.at/unsere-schwerpunkte/photovoltaik/leistung-ertrag-und-kosten/).
#: One value for every season: winters (fog) are overestimated, summers underestimated.
TYPICAL_CLEAR_SKY_INDEX: Final = 0.625
_QUARTER_HOUR: Final = timedelta(minutes=15)
#: Instants sampled in each quarter hour for its mean power (midpoints of three 5-min thirds).
_SAMPLE_OFFSETS_S: Final = (150.0, 450.0, 750.0)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Site:
    """Where the households are. [degrees, east and north positive]"""

    latitude_deg: float
    longitude_deg: float


LINZ: Final = Site(48.3, 14.3)


@dataclass(frozen=True, slots=True)
class PVSystem:
    """A PV system of ``kwp`` peak power facing ``azimuth_deg`` (180 = south) at ``tilt_deg``.

    AC power = kWp x plane-of-array irradiance / 1000 W/m² x performance ratio, the ratio
    standing for temperature, inverter and wiring losses together.
    """

    kwp: float
    site: Site = LINZ
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    performance_ratio: float = 0.85
    albedo: float = 0.2

    def __post_init__(self) -> None:
        if self.kwp < 0:
            raise ValueError(f"PV peak power cannot be negative, got {self.kwp} kWp")
        if not 0.0 < self.performance_ratio <= 1.0:
            raise ValueError(f"performance ratio must be in (0, 1], got {self.performance_ratio}")

    def plane_of_array_w_m2(self, at: datetime, clear_sky_index: float = 1.0) -> float:
        """Irradiance on the modules at ``at`` under the given clear-sky index. [W/m²]"""
        sun = solar_position(at, self.site.latitude_deg, self.site.longitude_deg)
        ghi = clear_sky_ghi_w_m2(sun.zenith_deg) * clear_sky_index
        if ghi <= 0.0:
            return 0.0
        return plane_of_array_w_m2(
            split_erbs(ghi, sun.zenith_deg, at),
            sun,
            tilt_deg=self.tilt_deg,
            surface_azimuth_deg=self.azimuth_deg,
            albedo=self.albedo,
        )

    def power_w(self, at: datetime, clear_sky_index: float = 1.0) -> float:
        """AC power at ``at``. [W]"""
        if self.kwp == 0:
            return 0.0
        irradiance = self.plane_of_array_w_m2(at, clear_sky_index)
        return self.kwp * 1000.0 * irradiance / STC_IRRADIANCE_W_M2 * self.performance_ratio


def typical_energies_wh(
    system: PVSystem,
    first: datetime,
    count: int,
    *,
    clear_sky_index: float = TYPICAL_CLEAR_SKY_INDEX,
) -> NDArray[np.float64]:
    """The system's energy in ``count`` consecutive quarter hours from ``first`` in a typical
    year: under a constant clear-sky index. [Wh]

    Each quarter hour's mean power is the mean of the powers at the midpoints of its three
    5-minute thirds (:meth:`PVSystem.power_w`, computed for all instants at once).

    Raises:
        ValueError: ``first`` naive or off a quarter-hour boundary, ``count`` < 0, or a
            clear-sky index outside 0–1.
    """
    if first.tzinfo is None or first.utcoffset() is None:
        raise ValueError(f"{first.isoformat()} has no UTC offset")
    start = first.astimezone(UTC)
    if start.minute % 15 or start.second or start.microsecond:
        raise ValueError(f"{first.isoformat()} is not on a quarter-hour boundary")
    if count < 0:
        raise ValueError(f"a negative number of quarter hours: {count}")
    if not 0.0 <= clear_sky_index <= 1.0:
        raise ValueError(f"a clear-sky index is 0 to 1, got {clear_sky_index}")
    start_s = (start - _EPOCH) / timedelta(seconds=1)
    quarters = start_s + 900.0 * np.arange(count, dtype=np.float64)
    instants = (quarters[:, None] + np.array(_SAMPLE_OFFSETS_S)[None, :]).ravel()
    power = power_w_at(system, instants, clear_sky_index)
    mean_w: NDArray[np.float64] = power.reshape(count, len(_SAMPLE_OFFSETS_S)).mean(axis=1)
    return mean_w * 0.25


def clear_sky_energies_wh(system: PVSystem, first: datetime, count: int) -> NDArray[np.float64]:
    """:func:`typical_energies_wh` under a clear sky (index 1): the upper bound. [Wh]"""
    return typical_energies_wh(system, first, count, clear_sky_index=1.0)


def power_w_at(
    system: PVSystem, epoch_s: NDArray[np.float64], clear_sky_index: float = 1.0
) -> NDArray[np.float64]:
    """:meth:`PVSystem.power_w` at many instants (UTC seconds since 1970) at once: the same
    formulas (``ecommunity.forecast.solar``) on arrays. [W]"""
    if system.kwp == 0:
        return np.zeros_like(epoch_s)
    zenith, azimuth, extraterrestrial = _sun(epoch_s, system.site)
    cos_zenith = np.cos(zenith)
    above = cos_zenith > 0.0
    safe_cos = np.where(above, cos_zenith, 1.0)
    ghi = np.where(above, 1098.0 * safe_cos * np.exp(-0.059 / safe_cos), 0.0) * clear_sky_index
    # Erbs: diffuse fraction from the clearness index.
    horizontal_extra = extraterrestrial * np.maximum(cos_zenith, MIN_ERBS_COS_ZENITH)
    kt = np.clip(ghi / horizontal_extra, 0.0, 1.0)
    fraction = np.where(
        kt <= 0.22,
        1.0 - 0.09 * kt,
        np.where(
            kt <= 0.8,
            0.9511 - 0.1604 * kt + 4.388 * kt**2 - 16.638 * kt**3 + 12.336 * kt**4,
            0.165,
        ),
    )
    dhi = fraction * ghi
    dni = np.where(above, (ghi - dhi) / safe_cos, 0.0)
    no_beam = (np.degrees(zenith) > MAX_ERBS_ZENITH_DEG) | (dni < 0.0)
    dni = np.where(no_beam, 0.0, dni)
    dhi = np.where(no_beam, ghi, dhi)
    # Plane of array, isotropic sky.
    tilt = np.radians(system.tilt_deg)
    cos_incidence = np.cos(zenith) * np.cos(tilt) + np.sin(zenith) * np.sin(tilt) * np.cos(
        azimuth - np.radians(system.azimuth_deg)
    )
    poa = (
        dni * np.maximum(cos_incidence, 0.0)
        + dhi * (1.0 + np.cos(tilt)) / 2.0
        + ghi * system.albedo * (1.0 - np.cos(tilt)) / 2.0
    )
    poa = np.where(ghi > 0.0, poa, 0.0)
    return system.kwp * 1000.0 * poa / STC_IRRADIANCE_W_M2 * system.performance_ratio


def _sun(
    epoch_s: NDArray[np.float64], site: Site
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Zenith and azimuth [rad] and extraterrestrial normal irradiance [W/m²]: the NOAA and
    Spencer formulas of ``solar.solar_position`` and ``solar.extraterrestrial_normal_w_m2``."""
    days = np.floor(epoch_s / 86400.0).astype(np.int64)
    dates = days.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]")
    day_of_year = (dates - years).astype(np.int64) + 1
    year = years.astype(np.int64) + 1970
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_year = np.where(leap, 366.0, 365.0)
    hours = (epoch_s - days * 86400.0) / 3600.0
    gamma = 2.0 * np.pi / days_in_year * (day_of_year - 1 + (hours - 12.0) / 24.0)
    equation_of_time_min = 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )
    declination = (
        0.006918
        - 0.399912 * np.cos(gamma)
        + 0.070257 * np.sin(gamma)
        - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma)
        - 0.002697 * np.cos(3 * gamma)
        + 0.00148 * np.sin(3 * gamma)
    )
    true_solar_time_min = hours * 60.0 + equation_of_time_min + 4.0 * site.longitude_deg
    hour_angle = np.radians(true_solar_time_min / 4.0 - 180.0)
    latitude = np.radians(site.latitude_deg)
    cos_zenith = np.sin(latitude) * np.sin(declination) + np.cos(latitude) * np.cos(
        declination
    ) * np.cos(hour_angle)
    zenith = np.arccos(np.clip(cos_zenith, -1.0, 1.0))
    azimuth = (
        np.arctan2(
            np.sin(hour_angle),
            np.cos(hour_angle) * np.sin(latitude) - np.tan(declination) * np.cos(latitude),
        )
        + np.pi
    ) % (2 * np.pi)
    b = 2.0 * np.pi * (day_of_year - 1) / days_in_year
    extraterrestrial = SOLAR_CONSTANT_W_M2 * (
        1.00011
        + 0.034221 * np.cos(b)
        + 0.00128 * np.sin(b)
        + 0.000719 * np.cos(2 * b)
        + 0.000077 * np.sin(2 * b)
    )
    return zenith, azimuth, extraterrestrial
