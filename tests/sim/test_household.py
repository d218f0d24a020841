"""A household's meter: counters that integrate the power of every second, never drifting."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from ecommunity.sim import MeterSample, SimulatedHousehold, Weather

MORNING = datetime(2025, 6, 2, 5, 30, tzinfo=UTC)  # 07:30 in Vienna: PV rising, breakfast


def _run(
    household: SimulatedHousehold, start: datetime, seconds: int, step_s: int = 1
) -> list[MeterSample]:
    return [household.sample(start + timedelta(seconds=s)) for s in range(0, seconds, step_s)]


def test_counters_integrate_the_power_of_every_second() -> None:
    household = SimulatedHousehold(seed=2, annual_kwh=4500, pv_kwp=6.0, weather=Weather(1))
    samples = _run(household, MORNING, 3600)
    first = samples[0]
    for earlier, later in itertools.pairwise(samples):
        assert later.energy_import_wh >= earlier.energy_import_wh
        assert later.energy_export_wh >= earlier.energy_export_wh
        assert later.reactive_energy_import_varh >= earlier.reactive_energy_import_varh
    # Counters keep the sub-Wh remainder: after n seconds they are the joules so far // 3600.
    imported_j = exported_j = 0
    for n, sample in enumerate(samples):
        assert sample.energy_import_wh - first.energy_import_wh == imported_j // 3600
        assert sample.energy_export_wh - first.energy_export_wh == exported_j // 3600
        imported_j += sample.power_import_w
        exported_j += sample.power_export_w
        assert n == 0 or sample.at - samples[n - 1].at == timedelta(seconds=1)
    # This morning had both: importing before the sun was up, exporting later.
    assert samples[-1].energy_import_wh > first.energy_import_wh
    assert samples[-1].energy_export_wh > first.energy_export_wh


def test_import_and_export_are_the_net_of_load_and_pv() -> None:
    household = SimulatedHousehold(seed=4, annual_kwh=3000, pv_kwp=5.0)
    for sample in _run(household, MORNING, 2 * 3600, step_s=61):
        assert sample.power_import_w == max(sample.load_w - sample.pv_w, 0)
        assert sample.power_export_w == max(sample.pv_w - sample.load_w, 0)
        assert sample.power_import_w * sample.power_export_w == 0


def test_gaps_between_samples_are_integrated_second_by_second() -> None:
    stepped = SimulatedHousehold(seed=9, annual_kwh=3500, pv_kwp=3.0)
    jumping = SimulatedHousehold(seed=9, annual_kwh=3500, pv_kwp=3.0)
    every_second = _run(stepped, MORNING, 601)
    jumped = [jumping.sample(MORNING), jumping.sample(MORNING + timedelta(seconds=600))]
    assert jumped[1] == every_second[600]
    assert jumped[0] == every_second[0]


def test_the_same_seed_gives_the_same_meter() -> None:
    def samples(seed: int) -> list[MeterSample]:
        household = SimulatedHousehold(seed=seed, annual_kwh=3500, pv_kwp=4.0)
        return _run(household, MORNING, 120, step_s=7)

    assert samples(5) == samples(5)
    assert samples(5) != samples(6)


def test_a_new_meter_shows_years_of_counting() -> None:
    household = SimulatedHousehold(seed=1, annual_kwh=3500, pv_kwp=5.0)
    sample = household.sample(MORNING)
    assert household.started_at == MORNING
    assert 3500 * 1000 * 0.5 < sample.energy_import_wh < 3500 * 1000 * 8
    assert sample.energy_export_wh > 0
    without_pv = SimulatedHousehold(seed=1, annual_kwh=3500).sample(MORNING)
    assert without_pv.energy_export_wh == 0
    assert without_pv.pv_w == 0


def test_phase_values_are_plausible() -> None:
    household = SimulatedHousehold(seed=3, annual_kwh=3500, pv_kwp=8.0)
    for sample in _run(household, MORNING, 2 * 3600, step_s=301):
        assert all(220 < v < 240 for v in sample.voltages_v)
        net_w = sample.power_import_w - sample.power_export_w
        current_w = sum(
            float(v * i) for v, i in zip(sample.voltages_v, sample.currents_a, strict=True)
        )
        assert current_w >= abs(net_w) * 0.97 - 10  # |sum| <= sum of |phases|
        assert 0 <= sample.power_factor <= 1


def test_time_cannot_run_backwards() -> None:
    household = SimulatedHousehold(seed=1)
    household.sample(MORNING)
    household.sample(MORNING + timedelta(seconds=0.9))  # the same second: fine
    with pytest.raises(ValueError, match="backwards"):
        household.sample(MORNING - timedelta(seconds=1))
