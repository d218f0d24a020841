"""Household appliances as runs of power at 1-s resolution: what makes a real meter's load jump.

The ratings and programmes are typical nameplate values of household appliances, chosen by us
to look plausible on a meter (a kettle's 2 kW for two and a half minutes, an oven heating up
and then cycling on its thermostat); they are illustrative, not measured data.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Final


def _cycling(power_w: float, on_s: int, off_s: int, times: int) -> tuple[tuple[int, float], ...]:
    """A thermostat or programme that switches between ``power_w`` and off."""
    return ((on_s, power_w), (off_s, 0.0)) * times


@dataclass(frozen=True, slots=True)
class Appliance:
    """One kind of appliance and its typical run."""

    name: str
    #: One run, in order: (duration [s], power [W]) segments.
    run: tuple[tuple[int, float], ...]
    #: Share of the appliance events' energy this appliance takes. [1]
    share: float
    #: Local hours in which a run may start: first (inclusive) to last (exclusive).
    hours: tuple[int, int] = (0, 24)
    #: Spread over the three phases (stoves, ovens) rather than on one.
    three_phase: bool = False

    @property
    def energy_j(self) -> float:
        """Energy of one typical run. [J]"""
        return sum(seconds * power for seconds, power in self.run)

    @property
    def duration_s(self) -> int:
        return sum(seconds for seconds, _ in self.run)

    def may_start_at(self, local_hour: int) -> bool:
        return self.hours[0] <= local_hour < self.hours[1]


APPLIANCES: Final[tuple[Appliance, ...]] = (
    Appliance("kettle", ((150, 2000.0),), share=0.10, hours=(5, 24)),
    Appliance("coffee machine", ((45, 1300.0), (30, 0.0), (25, 1300.0)), share=0.04, hours=(5, 21)),
    Appliance("toaster", ((150, 900.0),), share=0.02, hours=(5, 12)),
    Appliance("microwave", ((180, 1150.0),), share=0.06),
    Appliance("hair dryer", ((300, 1600.0),), share=0.04, hours=(5, 23)),
    Appliance("vacuum cleaner", ((900, 750.0),), share=0.05, hours=(8, 20)),
    Appliance(
        "hob",
        ((300, 1800.0), *_cycling(1800.0, 60, 60, 10)),
        share=0.16,
        hours=(6, 21),
        three_phase=True,
    ),
    Appliance(
        "oven",
        ((600, 2500.0), *_cycling(2500.0, 90, 150, 10)),
        share=0.16,
        hours=(10, 21),
        three_phase=True,
    ),
    Appliance(
        "washing machine",
        ((900, 2000.0), *_cycling(250.0, 50, 10, 40), (600, 450.0)),
        share=0.14,
        hours=(7, 21),
    ),
    Appliance(
        "dishwasher",
        ((1200, 2000.0), (1800, 80.0), (900, 2000.0), (1200, 80.0)),
        share=0.13,
        hours=(11, 23),
    ),
    Appliance("iron", _cycling(1200.0, 40, 40, 15), share=0.04, hours=(8, 22)),
    Appliance("electric drill", ((120, 600.0),), share=0.01, hours=(9, 19)),
    Appliance("toilet fan", ((600, 25.0),), share=0.05),
)


@dataclass(frozen=True, slots=True)
class ApplianceRun:
    """One run of an appliance, started at ``start_s`` and scaled a little in power and time."""

    name: str
    #: Start. [s since the epoch]
    start_s: int
    #: Phase 1, 2 or 3; 0 for all three.
    phase: int
    #: Ends of the segments after the start. [s]
    ends_s: tuple[int, ...]
    #: Power of each segment. [W]
    powers_w: tuple[float, ...]
    end_s: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "end_s", self.start_s + (self.ends_s[-1] if self.ends_s else 0))

    @classmethod
    def of(
        cls,
        appliance: Appliance,
        start_s: int,
        *,
        power_scale: float,
        time_scale: float,
        phase: int,
    ) -> ApplianceRun:
        ends: list[int] = []
        elapsed = 0
        for seconds, _ in appliance.run:
            elapsed += max(1, round(seconds * time_scale))
            ends.append(elapsed)
        powers = tuple(power * power_scale for _, power in appliance.run)
        return cls(
            appliance.name, start_s, 0 if appliance.three_phase else phase, tuple(ends), powers
        )

    def power_w(self, at_s: int) -> float:
        """Power in the second ``at_s``. [W]"""
        if not self.start_s <= at_s < self.end_s:
            return 0.0
        return self.powers_w[bisect.bisect_right(self.ends_s, at_s - self.start_s)]
