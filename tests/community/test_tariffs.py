"""Dated parameters: each change of the Austrian rules on its day, in Vienna time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest

from ecommunity.community import (
    STATUTORY_PARAMETERS,
    CommunityKind,
    CommunityPrices,
    ConsumerCategory,
    ConsumerTariff,
    Dated,
    GenerationSource,
    MissingParameterError,
    ProducerTariff,
    Schedule,
    TariffError,
    epoch_seconds,
)
from ecommunity.community.tariffs import price_uct_per_kwh

LAW = STATUTORY_PARAMETERS
HOUSEHOLD, BUSINESS = ConsumerCategory.HOUSEHOLD, ConsumerCategory.BUSINESS


@pytest.mark.parametrize(
    ("day", "household", "business"),
    [
        (date(2022, 4, 30), "1.5", "1.5"),
        (date(2022, 5, 1), "0.1", "0.1"),  # cut to the EU minimum
        (date(2024, 12, 31), "0.1", "0.1"),
        (date(2025, 1, 1), "1.5", "1.5"),  # rules doc 1.6
        (date(2026, 1, 1), "0.1", "0.82"),  # BGBl. I Nr. 95/2025
        (date(2026, 12, 31), "0.1", "0.82"),
        (date(2027, 1, 1), "1.5", "1.5"),
    ],
)
def test_electricity_levy(day: date, household: str, business: str) -> None:
    assert LAW.electricity_levy(HOUSEHOLD).at(day) == Decimal(household)
    assert LAW.electricity_levy(BUSINESS).at(day) == Decimal(business)


@pytest.mark.parametrize(
    ("kind", "level", "before", "after"),
    [
        (CommunityKind.EEG_LOCAL, 7, 0, 57),
        (CommunityKind.EEG_LOCAL, 6, 0, 57),
        (CommunityKind.EEG_REGIONAL, 7, 0, 28),
        (CommunityKind.EEG_REGIONAL, 6, 0, 28),
        (CommunityKind.EEG_REGIONAL, 5, 0, 64),
        (CommunityKind.BEG, 7, 0, 0),
        (CommunityKind.BEG, 3, 0, 0),
    ],
)
def test_grid_fee_reductions(kind: CommunityKind, level: int, before: int, after: int) -> None:
    schedule = LAW.grid_fee_reduction(kind, level)
    assert schedule.at(date(2021, 10, 31)) == before
    assert schedule.at(date(2021, 11, 1)) == after  # SNE-V amendment in force
    assert schedule.at(date(2030, 1, 1)) == after


@pytest.mark.parametrize(
    ("kind", "level"),
    [
        (CommunityKind.GEA, 7),  # the rules doc gives no figure for a GEA
        (CommunityKind.EEG_REGIONAL, 4),  # NE 4: an open question in the rules doc
        (CommunityKind.EEG_LOCAL, 5),  # not a local member's level
    ],
)
def test_no_rule_no_guess(kind: CommunityKind, level: int) -> None:
    with pytest.raises(MissingParameterError, match="gives no grid fee reduction"):
        LAW.grid_fee_reduction(kind, level)


def test_levy_exemptions() -> None:
    eeg = LAW.levy_exempt_sources(CommunityKind.EEG_REGIONAL)
    assert eeg.at(date(2022, 6, 30)) == {GenerationSource.PV}
    assert eeg.at(date(2022, 7, 1)) >= {GenerationSource.WIND, GenerationSource.HYDRO}
    assert GenerationSource.NON_RENEWABLE not in eeg.at(date(2022, 7, 1))
    assert LAW.levy_exempt_sources(CommunityKind.BEG).at(date(2025, 1, 1)) == set()
    assert LAW.renewable_levy_exemption(CommunityKind.EEG_LOCAL).at(date(2025, 1, 1))
    assert not LAW.renewable_levy_exemption(CommunityKind.BEG).at(date(2025, 1, 1))
    for lookup in (LAW.levy_exempt_sources, LAW.renewable_levy_exemption):
        with pytest.raises(MissingParameterError, match="gea"):
            lookup(CommunityKind.GEA)
    without = dataclasses.replace(LAW, electricity_levy_ct_per_kwh={})
    with pytest.raises(MissingParameterError, match="no Elektrizitätsabgabe for household"):
        without.electricity_levy(HOUSEHOLD)


def test_renewable_levy_suspension() -> None:
    charged = LAW.renewable_levy_charged
    assert charged.at(date(2021, 12, 31))
    assert not charged.at(date(2022, 1, 1))
    assert not charged.at(date(2024, 12, 31))
    assert charged.at(date(2025, 1, 1))


def test_every_statutory_entry_names_its_source() -> None:
    schedules = [
        *LAW.grid_fee_reduction_percent.values(),
        *LAW.electricity_levy_ct_per_kwh.values(),
        *LAW.electricity_levy_exempt_sources.values(),
        LAW.renewable_levy_charged,
        *LAW.renewable_levy_exempt.values(),
    ]
    assert all(entry.source for schedule in schedules for entry in schedule.entries)


def test_changes_happen_at_midnight_in_vienna() -> None:
    starts = epoch_seconds(
        [
            datetime(2024, 12, 31, 22, 45, tzinfo=UTC),  # 23:45 on 31 December in Vienna
            datetime(2024, 12, 31, 23, 0, tzinfo=UTC),  # midnight, 1 January, in Vienna
        ]
    )
    levy = LAW.electricity_levy(HOUSEHOLD).values_at(starts, price_uct_per_kwh)
    assert levy.tolist() == [100_000, 1_500_000]
    # Summer: midnight is 22:00 UTC.
    summer = epoch_seconds(
        [datetime(2022, 6, 30, 21, 45, tzinfo=UTC), datetime(2022, 6, 30, 22, 0, tzinfo=UTC)]
    )
    wind = LAW.levy_exempt_sources(CommunityKind.EEG_LOCAL).values_at(
        summer, lambda exempt: int(GenerationSource.WIND in exempt)
    )
    assert wind.tolist() == [0, 1]


def test_schedules_refuse_overlaps_and_report_gaps() -> None:
    with pytest.raises(TariffError, match="overlap"):
        Schedule("x", [Dated(1, date(2024, 1, 1)), Dated(2, date(2024, 6, 1))])
    with pytest.raises(TariffError, match="overlap"):
        Schedule("x", [Dated(1, None, date(2024, 6, 1)), Dated(2, None, date(2025, 1, 1))])
    with pytest.raises(TariffError, match="ends on or before"):
        Schedule("x", [Dated(1, date(2024, 1, 1), date(2024, 1, 1))])
    gappy = Schedule("price", [Dated(1, None, date(2024, 1, 1)), Dated(2, date(2024, 2, 1), None)])
    assert gappy.at(date(2023, 12, 31)) == 1
    assert gappy.at(date(2024, 2, 1)) == 2
    with pytest.raises(MissingParameterError, match="no value of price for 2024-01-15"):
        gappy.at(date(2024, 1, 15))
    with pytest.raises(MissingParameterError, match="2024-01-15"):
        gappy.values_at(epoch_seconds([datetime(2024, 1, 15, 12, tzinfo=UTC)]), int)
    assert Schedule("none", []).values_at(np.zeros(0, dtype=np.int64), int).tolist() == []
    assert "price" in repr(gappy)
    assert Schedule.constant("c", 7).at(date(1999, 1, 1)) == 7


@pytest.mark.parametrize(
    ("price", "uct"),
    [(Decimal("16.691"), 16_691_000), (Decimal("0.0001"), 100), (12, 12_000_000), (Decimal(0), 0)],
)
def test_prices_convert_exactly(price: Decimal, uct: int) -> None:
    assert price_uct_per_kwh(price) == uct


@pytest.mark.parametrize(
    "price",
    [Decimal("0.00001"), Decimal(-1), Decimal(1001), Decimal("NaN"), 12.5, True, "12"],
)
def test_inexact_or_odd_prices_are_refused(price: object) -> None:
    with pytest.raises(TariffError):
        price_uct_per_kwh(price)  # type: ignore[arg-type]


def test_tariff_records_check_their_prices() -> None:
    with pytest.raises(TariffError, match="grid usage fee"):
        ConsumerTariff(Decimal(20), Decimal("8.00001"))
    with pytest.raises(TariffError, match="grid levels"):
        ConsumerTariff(Decimal(20), Decimal(8), grid_level=8)
    with pytest.raises(TariffError, match="producer price"):
        CommunityPrices(Decimal(12), Decimal(-1))
    with pytest.raises(TariffError, match="feed-in"):
        ProducerTariff(Decimal("1e4"))
