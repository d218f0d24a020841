"""What the estimates assume where the platform knows nothing better, each with its source.

The cloud does not know a member's supply contract: prices from the grid are compared at a
reference tariff (a caller of compare may give their own). Nor does it know which meter
measures which metering point: a member's gateways' meters are taken as measuring it (see
``members.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Final, TypeVar

from ecommunity.community import (
    STATUTORY_PARAMETERS,
    CommunityKind,
    ConsumerTariff,
    GenerationSource,
    MissingParameterError,
    Schedule,
    StatutoryParameters,
)

K = TypeVar("K")
T = TypeVar("T")

#: The supplier's energy price, net of VAT. [ct/kWh] The average main product of the regional
#: suppliers in November 2024, 17.6 ct/kWh (E-Control's monthly survey as reported by
#: https://energynewsmagazine.at/?p=19699), taken as including 20 % VAT: 17.6 / 1.2.
SUPPLIER_ENERGY_CT_PER_KWH: Final = Decimal("14.6667")
#: The energy-based grid usage fee (Netznutzungsentgelt, Arbeitspreis) at grid level 7, net.
#: [ct/kWh] Rules doc 1.5: the 28 % reduction is 1.86 ct/kWh in the Energienetze Steiermark
#: area (https://eeg-premstaetten.at/vorteile), so the fee is 1.86 / 0.28 = 6.64 ct/kWh (2023;
#: grid fees rose by about 23 % in 2025, rules doc 1.5).
GRID_USAGE_CT_PER_KWH: Final = Decimal("6.64")
#: The Erneuerbaren-Förderbeitrag per kWh while it is charged. [ct/kWh] Rules doc 1.6:
#: "0,00 ct/kWh statt etwa 1,30 ct/kWh" (https://eeg-premstaetten.at/vorteile).
RENEWABLE_LEVY_CT_PER_KWH: Final = Decimal("1.30")
#: A household's connection: grid level 7 (low voltage).
HOUSEHOLD_GRID_LEVEL: Final = 7
#: The tariff grid prices are compared at unless a caller gives their own.
REFERENCE_TARIFF: Final = ConsumerTariff(
    energy_ct_per_kwh=SUPPLIER_ENERGY_CT_PER_KWH,
    grid_usage_ct_per_kwh=GRID_USAGE_CT_PER_KWH,
    renewable_levy_ct_per_kwh=RENEWABLE_LEVY_CT_PER_KWH,
    grid_level=HOUSEHOLD_GRID_LEVEL,
)
#: A member's yearly consumption when their meter tells nothing. [kWh] The average household
#: of E-Control's comparisons (https://energynewsmagazine.at/?p=19699: "durchschnittlicher
#: Haushalt (3500 kWh pro Jahr)").
HOUSEHOLD_ANNUAL_KWH: Final = 3500
#: Quarter hours in a year of 365 days: what a history is scaled to.
QUARTERS_PER_YEAR: Final = 365 * 96


def generation_sources(
    kind: CommunityKind, plant_sources: set[GenerationSource]
) -> frozenset[GenerationSource]:
    """The community's generation sources for the levy exemption: its plants'; without plants
    an EEG's are renewable by law (rules doc 1.1), anyone else's unknown and so not exempt."""
    if plant_sources:
        return frozenset(plant_sources)
    if kind.renewable_only:
        return frozenset({GenerationSource.PV})
    return frozenset({GenerationSource.NON_RENEWABLE})


def rules_on(
    day: date, parameters: StatutoryParameters = STATUTORY_PARAMETERS
) -> StatutoryParameters:
    """The statutory parameters of ``day`` held constant: a yearly estimate is priced with the
    rules of today, whatever they were on the days its history comes from. A case without a
    rule on that day (a GEA) stays without one."""

    def fixed(schedule: Schedule[T]) -> Schedule[T]:
        entry = schedule.entry_at(day)
        return Schedule.constant(schedule.name, entry.value, entry.source)

    def table(schedules: Mapping[K, Schedule[T]]) -> dict[K, Schedule[T]]:
        result: dict[K, Schedule[T]] = {}
        for key, schedule in schedules.items():
            try:
                result[key] = fixed(schedule)
            except MissingParameterError:
                continue
        return result

    return StatutoryParameters(
        grid_fee_reduction_percent=table(parameters.grid_fee_reduction_percent),
        electricity_levy_ct_per_kwh=table(parameters.electricity_levy_ct_per_kwh),
        electricity_levy_exempt_sources=table(parameters.electricity_levy_exempt_sources),
        renewable_levy_charged=fixed(parameters.renewable_levy_charged),
        renewable_levy_exempt=table(parameters.renewable_levy_exempt),
    )
