"""Pure models of what households use and PV systems produce: no clock, no I/O.

- :class:`StandardLoadProfile`: the standard load profile H0 (BDEW/VDEW 1999, as APCS and
  E-Control apply it in Austria) scaled to an annual consumption, per quarter hour;
- :class:`PVSystem`: clear-sky irradiance on a module plane (``solar``), and
  :func:`typical_energies_wh`, a typical year of its quarter-hour energies.

The simulator (``ecommunity.sim``) and the cloud's estimates build on them. Provenance and
formulas: docs/forecast.md.
"""

from __future__ import annotations

from ecommunity.forecast.pv_profile import (
    LINZ,
    STC_IRRADIANCE_W_M2,
    TYPICAL_CLEAR_SKY_INDEX,
    PVSystem,
    Site,
    clear_sky_energies_wh,
    power_w_at,
    typical_energies_wh,
)
from ecommunity.forecast.solar import (
    Irradiance,
    SolarPosition,
    clear_sky_ghi_w_m2,
    plane_of_array_w_m2,
    solar_position,
    split_erbs,
)
from ecommunity.forecast.standard_load_profile import (
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

__all__ = [
    "LINZ",
    "STC_IRRADIANCE_W_M2",
    "TYPICAL_CLEAR_SKY_INDEX",
    "VIENNA",
    "DayType",
    "Irradiance",
    "PVSystem",
    "Period",
    "Site",
    "SolarPosition",
    "StandardLoadProfile",
    "austrian_holidays",
    "clear_sky_energies_wh",
    "clear_sky_ghi_w_m2",
    "day_type_of",
    "dynamisation_factor",
    "h0_table_w",
    "period_of",
    "plane_of_array_w_m2",
    "power_w_at",
    "solar_position",
    "split_erbs",
    "typical_energies_wh",
]
