"""Simulated households and smart meters that emit real encrypted frames.

The models are pure (time comes in as an argument, nothing reads the clock or does I/O):

- :class:`StandardLoadProfile`: the standard load profile H0 scaled to an annual consumption
  (from ``ecommunity.forecast``, re-exported here);
- :class:`HouseholdLoad`: one household's load at 1-s resolution whose mean is H0 (standby,
  fridge, smooth part, appliance runs), determined by a seed;
- :class:`PVSystem` (from ``ecommunity.forecast``) and :class:`Weather`: clear-sky PV
  under seeded clouds;
- :class:`SimulatedHousehold`: load and PV together, with meter counters that integrate the
  power of every second;
- :class:`SimulatedMeter`: a household's pushes as the readings and wire frames of a meter
  profile (AMIS or DLMS).

The I/O part: :class:`MeterLink` writes pushes to a serial line (:class:`FdLine`, a pty from
:func:`open_pty` or a tty from :func:`open_port`) with the meter's link behaviour.
"""

from __future__ import annotations

from ecommunity.forecast import (
    LINZ,
    DayType,
    Irradiance,
    Period,
    PVSystem,
    Site,
    SolarPosition,
    StandardLoadProfile,
    austrian_holidays,
    clear_sky_ghi_w_m2,
    day_type_of,
    dynamisation_factor,
    period_of,
    plane_of_array_w_m2,
    solar_position,
    split_erbs,
)
from ecommunity.sim._appliances import APPLIANCES, Appliance, ApplianceRun
from ecommunity.sim._household import MeterSample, Power, SimulatedHousehold
from ecommunity.sim._link import FdLine, LinkStats, MeterLink
from ecommunity.sim._load import HouseholdLoad, PhasePower
from ecommunity.sim._meter import Push, SimulatedMeter
from ecommunity.sim._pty import PtyPair, open_port, open_pty
from ecommunity.sim._weather import DayWeather, Weather

#: The key of the simulated meters unless one is given (the example key of the README).
DEMO_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")

__all__ = [
    "APPLIANCES",
    "DEMO_KEY",
    "LINZ",
    "Appliance",
    "ApplianceRun",
    "DayType",
    "DayWeather",
    "FdLine",
    "HouseholdLoad",
    "Irradiance",
    "LinkStats",
    "MeterLink",
    "MeterSample",
    "PVSystem",
    "Period",
    "PhasePower",
    "Power",
    "PtyPair",
    "Push",
    "SimulatedHousehold",
    "SimulatedMeter",
    "Site",
    "SolarPosition",
    "StandardLoadProfile",
    "Weather",
    "austrian_holidays",
    "clear_sky_ghi_w_m2",
    "day_type_of",
    "dynamisation_factor",
    "open_port",
    "open_pty",
    "period_of",
    "plane_of_array_w_m2",
    "solar_position",
    "split_erbs",
]
