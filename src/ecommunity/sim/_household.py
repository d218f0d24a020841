"""A simulated household: its load and PV at every second, and its meter's counters.

Time comes in as arguments (nothing here reads the clock). The counters integrate the power
of every second exactly, in integer joules (W x 1 s), so they never drift from the powers the
meter reported: import = max(load - PV, 0), export = max(PV - load, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from ecommunity.forecast import LINZ, PVSystem, Site
from ecommunity.sim import _random
from ecommunity.sim._load import HouseholdLoad
from ecommunity.sim._weather import Weather

_STREAM_METER: Final = 21
_STREAM_VOLTAGE: Final = 22
_J_PER_WH: Final = 3600
#: Above this PV size a system feeds all three phases (Austria: at most 3.68 kVA on one).
SINGLE_PHASE_PV_MAX_KWP: Final = 3.68
_NOMINAL_V: Final = 230.0
_LINE_RESISTANCE_OHM: Final = 0.25


@dataclass(frozen=True, slots=True)
class Power:
    """The household during one second: integer watts as a meter shows them."""

    load_w: int
    pv_w: int
    #: Net power per phase, load minus PV (negative: feeding in). [W]
    phases_w: tuple[int, int, int]
    #: Reactive power of the load. [var]
    reactive_w: int

    @property
    def import_w(self) -> int:
        return max(self.load_w - self.pv_w, 0)

    @property
    def export_w(self) -> int:
        return max(self.pv_w - self.load_w, 0)


@dataclass(frozen=True, slots=True)
class MeterSample:
    """What the household's meter shows at one instant."""

    #: The instant, a whole second. [UTC]
    at: datetime
    load_w: int
    pv_w: int
    power_import_w: int
    power_export_w: int
    reactive_power_import_var: int
    reactive_power_export_var: int
    #: Counters. [Wh, varh]
    energy_import_wh: int
    energy_export_wh: int
    reactive_energy_import_varh: int
    reactive_energy_export_varh: int
    #: Per phase. [V], [A]
    voltages_v: tuple[Decimal, Decimal, Decimal]
    currents_a: tuple[Decimal, Decimal, Decimal]
    #: |P| / S of the net power. [1]
    power_factor: Decimal


class SimulatedHousehold:
    """A household with an annual consumption and optional PV, determined by ``seed``.

    Households that share a :class:`Weather` see the same clouds. The first call of
    :meth:`sample` starts the meter with plausible counters (a meter some years in service);
    later calls integrate the power of every second since the previous one.
    """

    def __init__(
        self,
        *,
        seed: int,
        annual_kwh: float = 3500.0,
        pv_kwp: float = 0.0,
        weather: Weather | None = None,
        site: Site = LINZ,
    ) -> None:
        self.seed = seed
        self.load = HouseholdLoad(annual_kwh, seed)
        self.pv = PVSystem(pv_kwp, site=site)
        self.weather = weather or Weather()
        rng = _random.stream(seed, _STREAM_METER)
        years = rng.uniform(1.0, 8.0)
        pv_years = min(years, rng.uniform(0.5, 6.0)) if pv_kwp > 0 else 0.0
        self._tan_phi = rng.uniform(0.1, 0.3)
        self._pv_phase = rng.randint(1, 3)
        # Counters at the start: what a meter in service for some years shows. PV households
        # import less since they had PV and export about 60 % of ~1,000 kWh per kWp a year.
        self.initial_import_wh = round(annual_kwh * 1000 * (years - 0.3 * pv_years))
        self.initial_export_wh = round(pv_kwp * 1000 * 0.6 * 1000 * pv_years)
        self.initial_reactive_import_varh = round(self.initial_import_wh * self._tan_phi)
        self.initial_reactive_export_varh = 0
        self._last_s: int | None = None
        self._import_j = 0
        self._export_j = 0
        self._reactive_import_j = 0
        self._cached: tuple[int, Power] | None = None

    @property
    def started_at(self) -> datetime | None:
        """When the meter was started (the first sample), if it was."""
        return None if self._last_s is None else datetime.fromtimestamp(self._last_s, UTC)

    def power(self, at_s: int) -> Power:
        """The household during the second that starts ``at_s`` seconds after the epoch."""
        if self._cached is not None and self._cached[0] == at_s:
            return self._cached[1]
        phases = self.load.power(at_s)
        loads = (phases.l1_w, phases.l2_w, phases.l3_w)
        pv_w = 0.0
        pv_phases = [0.0, 0.0, 0.0]
        if self.pv.kwp > 0:
            at = datetime.fromtimestamp(at_s, UTC)
            pv_w = self.pv.power_w(at, self.weather.clear_sky_index(at))
            if self.pv.kwp > SINGLE_PHASE_PV_MAX_KWP:
                pv_phases = [pv_w / 3.0] * 3
            else:
                pv_phases[self._pv_phase - 1] = pv_w
        load_w = round(phases.total_w)
        power = Power(
            load_w=load_w,
            pv_w=round(pv_w),
            phases_w=(
                round(loads[0] - pv_phases[0]),
                round(loads[1] - pv_phases[1]),
                round(loads[2] - pv_phases[2]),
            ),
            reactive_w=round(load_w * self._tan_phi),
        )
        self._cached = (at_s, power)
        return power

    def sample(self, at: datetime) -> MeterSample:
        """Advance the meter to ``at`` (truncated to the second) and read it.

        Raises:
            ValueError: ``at`` is earlier than the previous sample.
        """
        at_s = math.floor(at.timestamp())
        if self._last_s is None:
            self._last_s = at_s
        if at_s < self._last_s:
            previous = datetime.fromtimestamp(self._last_s, UTC).isoformat()
            raise ValueError(
                f"time runs backwards: {datetime.fromtimestamp(at_s, UTC).isoformat()} is "
                f"before the previous sample {previous}"
            )
        for second in range(self._last_s, at_s):
            power = self.power(second)
            self._import_j += power.import_w
            self._export_j += power.export_w
            self._reactive_import_j += power.reactive_w
        self._last_s = at_s
        now = self.power(at_s)
        voltages, currents = self._phases(at_s, now)
        return MeterSample(
            at=datetime.fromtimestamp(at_s, UTC),
            load_w=now.load_w,
            pv_w=now.pv_w,
            power_import_w=now.import_w,
            power_export_w=now.export_w,
            reactive_power_import_var=now.reactive_w,
            reactive_power_export_var=0,
            energy_import_wh=self.initial_import_wh + self._import_j // _J_PER_WH,
            energy_export_wh=self.initial_export_wh + self._export_j // _J_PER_WH,
            reactive_energy_import_varh=self.initial_reactive_import_varh
            + self._reactive_import_j // _J_PER_WH,
            reactive_energy_export_varh=self.initial_reactive_export_varh,
            voltages_v=voltages,
            currents_a=currents,
            power_factor=_power_factor(now.load_w - now.pv_w, now.reactive_w),
        )

    def _phases(
        self, at_s: int, power: Power
    ) -> tuple[tuple[Decimal, Decimal, Decimal], tuple[Decimal, Decimal, Decimal]]:
        voltages = []
        currents = []
        for phase, net_w in enumerate(power.phases_w, start=1):
            # The grid's voltage drifts over minutes; the household's own current pulls it
            # down (import) or pushes it up (export) over the line's resistance.
            grid_v = _NOMINAL_V + 3.0 * _random.smooth_noise(
                600.0, at_s, self.load.seed, _STREAM_VOLTAGE, phase
            )
            current_a = net_w / grid_v
            voltages.append(Decimal(f"{grid_v - _LINE_RESISTANCE_OHM * current_a:.1f}"))
            currents.append(Decimal(f"{abs(current_a):.2f}"))
        return (voltages[0], voltages[1], voltages[2]), (currents[0], currents[1], currents[2])


def _power_factor(net_w: int, reactive_var: int) -> Decimal:
    apparent = math.hypot(net_w, reactive_var)
    if apparent == 0:
        return Decimal("1.000")
    return Decimal(f"{abs(net_w) / apparent:.3f}")
