"""A rooftop PV system: clear-sky irradiance on its plane, dimmed by clouds, times its size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ecommunity.sim._solar import (
    clear_sky_ghi_w_m2,
    plane_of_array_w_m2,
    solar_position,
    split_erbs,
)

#: Irradiance at which a module gives its rated (peak) power. [W/m²]
STC_IRRADIANCE_W_M2: Final = 1000.0


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
