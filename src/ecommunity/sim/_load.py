"""A household's load at 1-s resolution whose expectation is the standard load profile H0.

H0 is the mean of many households; one household is a standby base, a fridge cycling on its
thermostat, a smoothly varying part (lights, electronics) and appliance runs. The expected
power of the household equals H0 at every quarter hour:

- standby and the fridge's mean take a fixed part of the lowest H0 value of the year;
- of what remains of H0 in a quarter hour, a fixed fraction is the smooth part (times noise
  of mean 1), the rest is the expected energy of appliance runs: their number in the quarter
  hour is Poisson with that expectation divided by the energy of a run.

Everything is a function of the time and the seed, so any instant can be evaluated without
simulating what came before, and the same seed gives the same household.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ecommunity.forecast import VIENNA, StandardLoadProfile, dynamisation_factor
from ecommunity.forecast._h0_table import H0_W
from ecommunity.sim import _random
from ecommunity.sim._appliances import APPLIANCES, Appliance, ApplianceRun

SLOT_S: Final = 900  # a quarter hour: H0 is constant within one
#: Share of H0 above standby and fridge that is smooth (lights, electronics, standby of the
#: day); the rest comes as appliance runs.
SMOOTH_SHARE: Final = 0.4
_STREAM_HOUSEHOLD: Final = 1
_STREAM_RUNS: Final = 2
_STREAM_SMOOTH: Final = 3
_STREAM_JITTER: Final = 4
_MAX_TIME_SCALE: Final = 1.15


@dataclass(frozen=True, slots=True)
class PhasePower:
    """Power on each phase during one second. [W]"""

    l1_w: float
    l2_w: float
    l3_w: float

    @property
    def total_w(self) -> float:
        return self.l1_w + self.l2_w + self.l3_w


@dataclass(frozen=True, slots=True)
class _Slot:
    expected_w: float
    smooth_w: float
    runs: tuple[ApplianceRun, ...]


class HouseholdLoad:
    """The load of one household with an annual consumption, determined by ``seed``."""

    def __init__(
        self,
        annual_kwh: float,
        seed: int,
        *,
        profile: StandardLoadProfile | None = None,
        appliances: Sequence[Appliance] = APPLIANCES,
    ) -> None:
        self.seed = seed
        self.profile = profile or StandardLoadProfile(annual_kwh)
        self.appliances = tuple(appliances)
        rng = _random.stream(seed, _STREAM_HOUSEHOLD)
        lowest_w = (
            annual_kwh
            / 1000.0
            * min(min(values) for values in H0_W.values())
            * min(dynamisation_factor(day) for day in range(1, 367))
        )
        #: Always-on devices (router, standby). [W]
        self.standby_w = lowest_w * rng.uniform(0.35, 0.5)
        fridge_mean_w = lowest_w * rng.uniform(0.2, 0.3)
        duty = rng.uniform(0.25, 0.35)
        #: Fridge compressor power while it runs. [W]
        self.fridge_w = fridge_mean_w / duty
        self.fridge_mean_w = fridge_mean_w
        self._fridge_period_s = rng.randint(1800, 3000)
        self._fridge_on_s = round(self._fridge_period_s * duty)
        self._fridge_offset_s = rng.randrange(self._fridge_period_s)
        self._fridge_phase = rng.randint(1, 3)
        self._lookback_slots = math.ceil(
            max((a.duration_s for a in self.appliances), default=0) * _MAX_TIME_SCALE / SLOT_S
        )
        self._slots: OrderedDict[int, _Slot] = OrderedDict()

    def expected_power_w(self, at: datetime) -> float:
        """H0 scaled to the annual consumption: the mean of this household's power. [W]"""
        return self.profile.power_w(at)

    def power(self, at_s: int) -> PhasePower:
        """Power on each phase during the second that starts ``at_s`` seconds after the epoch."""
        slot_index = at_s // SLOT_S
        slot = self._slot(slot_index)
        base = self.standby_w / 3.0
        smooth = slot.smooth_w * (1.0 + 0.5 * self._smooth_noise(at_s)) / 3.0
        jitter = (_random.uniform(self.seed, _STREAM_JITTER, at_s) - 0.5) * 6.0 / 3.0
        phases = [base + smooth + jitter] * 3
        if (at_s + self._fridge_offset_s) % self._fridge_period_s < self._fridge_on_s:
            phases[self._fridge_phase - 1] += self.fridge_w
        for index in range(slot_index - self._lookback_slots, slot_index + 1):
            for run in self._slot(index).runs:
                power = run.power_w(at_s)
                if power == 0.0:
                    continue
                if run.phase == 0:
                    for phase in range(3):
                        phases[phase] += power / 3.0
                else:
                    phases[run.phase - 1] += power
        return PhasePower(*(max(p, 0.0) for p in phases))

    def runs_between(self, start_s: int, end_s: int) -> list[ApplianceRun]:
        """The appliance runs that start in [start_s, end_s)."""
        runs = []
        for index in range(start_s // SLOT_S, (end_s - 1) // SLOT_S + 1):
            runs += [r for r in self._slot(index).runs if start_s <= r.start_s < end_s]
        return runs

    def _smooth_noise(self, at_s: int) -> float:
        # Two time scales: a slow drift (TV evening, lights) and minutes-long changes.
        slow = _random.smooth_noise(1800.0, at_s, self.seed, _STREAM_SMOOTH, 1)
        fast = _random.smooth_noise(120.0, at_s, self.seed, _STREAM_SMOOTH, 2)
        return 0.6 * slow + 0.4 * fast

    def _slot(self, index: int) -> _Slot:
        slot = self._slots.get(index)
        if slot is not None:
            self._slots.move_to_end(index)
            return slot
        start_s = index * SLOT_S
        start = datetime.fromtimestamp(start_s, UTC)
        expected_w = self.expected_power_w(start)
        above_base_w = max(expected_w - self.standby_w - self.fridge_mean_w, 0.0)
        hour = start.astimezone(VIENNA).hour
        allowed = [a for a in self.appliances if a.may_start_at(hour)]
        if not allowed:
            slot = _Slot(expected_w, above_base_w, ())
        else:
            events_j = (1.0 - SMOOTH_SHARE) * above_base_w * SLOT_S
            runs = self._draw_runs(index, allowed, events_j)
            slot = _Slot(expected_w, SMOOTH_SHARE * above_base_w, runs)
        self._slots[index] = slot
        if len(self._slots) > 4 * (self._lookback_slots + 2):
            self._slots.popitem(last=False)
        return slot

    def _draw_runs(
        self, index: int, allowed: Sequence[Appliance], events_j: float
    ) -> tuple[ApplianceRun, ...]:
        rng = _random.stream(self.seed, _STREAM_RUNS, index)
        total_share = sum(a.share for a in allowed)
        runs = []
        for appliance in allowed:
            expected_runs = appliance.share / total_share * events_j / appliance.energy_j
            for _ in range(_poisson(rng, expected_runs)):
                runs.append(
                    ApplianceRun.of(
                        appliance,
                        index * SLOT_S + rng.randrange(SLOT_S),
                        # Symmetric around 1, independent: a run's energy has the mean above.
                        power_scale=rng.uniform(0.9, 1.1),
                        time_scale=rng.uniform(2.0 - _MAX_TIME_SCALE, _MAX_TIME_SCALE),
                        phase=rng.randint(1, 3),
                    )
                )
        return tuple(runs)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means of appliance runs per quarter hour."""
    if mean <= 0.0:
        return 0
    limit = math.exp(-mean)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
