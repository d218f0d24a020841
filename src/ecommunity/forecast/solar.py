"""Sun position and clear-sky irradiance: published formulas, small enough to write down.

- Sun position: NOAA Global Monitoring Laboratory, "General Solar Position Calculations"
  (fractional year, equation of time and declination from Spencer, J. W. (1971), "Fourier
  series representation of the position of the sun", Search 2(5), 172). Within a fraction of
  a degree, plenty for simulated PV; refraction is ignored.
- Extraterrestrial irradiance: Spencer (1971) Earth-Sun distance factor, solar constant
  1366.1 W/m² (Gueymard 2004).
- Clear-sky global horizontal irradiance: Haurwitz, B. (1945), "Insolation in relation to
  cloudiness and cloud density", J. Meteorology 2, 154-166, in the form of Reno, Hansen and
  Stein (2012), "Global Horizontal Irradiance Clear Sky Models", Sandia SAND2012-2389:
  GHI = 1098 cos z exp(-0.059 / cos z).
- Diffuse fraction: Erbs, D. G., Klein, S. A., Duffie, J. A. (1982), "Estimation of the
  diffuse radiation fraction for hourly, daily and monthly-average global radiation",
  Solar Energy 28(4), 293-302, eq. 1.
- Plane of array: isotropic sky (Liu, B. Y. H., Jordan, R. C. (1963), "The long-term average
  performance of flat-plate solar-energy collectors", Solar Energy 7(2), 53-74).

Angles in degrees, azimuth clockwise from north (180 = south), irradiance in W/m².
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

SOLAR_CONSTANT_W_M2: Final = 1366.1
#: Erbs: no beam below this cosine of the zenith / above this zenith (as pvlib does).
MIN_ERBS_COS_ZENITH: Final = 0.065
MAX_ERBS_ZENITH_DEG: Final = 87.0


@dataclass(frozen=True, slots=True)
class SolarPosition:
    zenith_deg: float
    azimuth_deg: float

    @property
    def elevation_deg(self) -> float:
        return 90.0 - self.zenith_deg


@dataclass(frozen=True, slots=True)
class Irradiance:
    """Global horizontal, direct normal and diffuse horizontal irradiance. [W/m²]"""

    ghi_w_m2: float
    dni_w_m2: float
    dhi_w_m2: float


def _day_fraction(at: datetime) -> tuple[int, float, int]:
    utc = at.astimezone(UTC)
    day_of_year = utc.timetuple().tm_yday
    hours = utc.hour + utc.minute / 60.0 + (utc.second + utc.microsecond / 1e6) / 3600.0
    days_in_year = 366 if utc.year % 4 == 0 and (utc.year % 100 or utc.year % 400 == 0) else 365
    return day_of_year, hours, days_in_year


def solar_position(at: datetime, latitude_deg: float, longitude_deg: float) -> SolarPosition:
    """Where the sun is at ``at`` (timezone-aware) seen from a place (east longitude > 0)."""
    day_of_year, hours, days_in_year = _day_fraction(at)
    gamma = 2.0 * math.pi / days_in_year * (day_of_year - 1 + (hours - 12.0) / 24.0)
    equation_of_time_min = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    declination = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    true_solar_time_min = hours * 60.0 + equation_of_time_min + 4.0 * longitude_deg
    hour_angle = math.radians(true_solar_time_min / 4.0 - 180.0)
    latitude = math.radians(latitude_deg)
    cos_zenith = math.sin(latitude) * math.sin(declination) + math.cos(latitude) * math.cos(
        declination
    ) * math.cos(hour_angle)
    zenith = math.acos(max(-1.0, min(1.0, cos_zenith)))
    azimuth = math.atan2(
        math.sin(hour_angle),
        math.cos(hour_angle) * math.sin(latitude) - math.tan(declination) * math.cos(latitude),
    )
    return SolarPosition(math.degrees(zenith), (math.degrees(azimuth) + 180.0) % 360.0)


def extraterrestrial_normal_w_m2(at: datetime) -> float:
    """Irradiance on a plane normal to the sun outside the atmosphere (Spencer). [W/m²]"""
    day_of_year, _, days_in_year = _day_fraction(at)
    b = 2.0 * math.pi * (day_of_year - 1) / days_in_year
    factor = (
        1.00011
        + 0.034221 * math.cos(b)
        + 0.00128 * math.sin(b)
        + 0.000719 * math.cos(2 * b)
        + 0.000077 * math.sin(2 * b)
    )
    return SOLAR_CONSTANT_W_M2 * factor


def clear_sky_ghi_w_m2(zenith_deg: float) -> float:
    """Haurwitz clear-sky global horizontal irradiance; 0 with the sun below the horizon."""
    cos_zenith = math.cos(math.radians(zenith_deg))
    if cos_zenith <= 0.0:
        return 0.0
    return 1098.0 * cos_zenith * math.exp(-0.059 / cos_zenith)


def split_erbs(ghi_w_m2: float, zenith_deg: float, at: datetime) -> Irradiance:
    """Split global horizontal irradiance into direct normal and diffuse (Erbs et al.)."""
    cos_zenith = math.cos(math.radians(zenith_deg))
    horizontal_extra = extraterrestrial_normal_w_m2(at) * max(cos_zenith, MIN_ERBS_COS_ZENITH)
    kt = min(max(ghi_w_m2 / horizontal_extra, 0.0), 1.0)
    if kt <= 0.22:
        diffuse_fraction = 1.0 - 0.09 * kt
    elif kt <= 0.8:
        diffuse_fraction = 0.9511 - 0.1604 * kt + 4.388 * kt**2 - 16.638 * kt**3 + 12.336 * kt**4
    else:
        diffuse_fraction = 0.165
    dhi = diffuse_fraction * ghi_w_m2
    dni = (ghi_w_m2 - dhi) / cos_zenith if cos_zenith > 0.0 else 0.0
    if zenith_deg > MAX_ERBS_ZENITH_DEG or ghi_w_m2 < 0.0 or dni < 0.0:
        return Irradiance(ghi_w_m2, 0.0, ghi_w_m2)
    return Irradiance(ghi_w_m2, dni, dhi)


def plane_of_array_w_m2(
    irradiance: Irradiance,
    sun: SolarPosition,
    *,
    tilt_deg: float,
    surface_azimuth_deg: float,
    albedo: float,
) -> float:
    """Irradiance on a tilted plane: beam, isotropic sky diffuse and ground reflection."""
    tilt = math.radians(tilt_deg)
    zenith = math.radians(sun.zenith_deg)
    cos_incidence = math.cos(zenith) * math.cos(tilt) + math.sin(zenith) * math.sin(
        tilt
    ) * math.cos(math.radians(sun.azimuth_deg - surface_azimuth_deg))
    beam = irradiance.dni_w_m2 * max(cos_incidence, 0.0)
    sky = irradiance.dhi_w_m2 * (1.0 + math.cos(tilt)) / 2.0
    ground = irradiance.ghi_w_m2 * albedo * (1.0 - math.cos(tilt)) / 2.0
    return beam + sky + ground
