"""Dated parameters: statutory grid-fee reductions and levies, and the prices people agree on.

Every parameter is a :class:`Schedule` of values valid over Vienna calendar days, each with its
source. :data:`STATUTORY_PARAMETERS` holds the Austrian rules (rules doc 1.5, 1.6, plus the
sources named on each entry); where the rules doc gives no figure (a GEA; a regional EEG member
connected at grid level 4) there is no entry and a lookup raises :class:`MissingParameterError`
instead of guessing. Callers may pass their own :class:`StatutoryParameters`.

Money is exact: prices are :class:`~decimal.Decimal` cents per kWh, net of VAT, with at most four
decimal places (0.16691 €/kWh = 16.691 ct/kWh fits), converted to integer micro-cents per kWh
(µct/kWh) for computing. A reduction of a whole percent of such a price is again a whole number
of µct/kWh, and Wh × µct/kWh is a whole number of nano-cents (nct, 10⁻⁹ ct = 10⁻¹¹ €).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Final, Generic, TypeVar

import numpy as np

from ecommunity.community.errors import MissingParameterError, TariffError
from ecommunity.community.intervals import vienna_midnight_s
from ecommunity.community.kinds import GRID_LEVELS, CommunityKind, GenerationSource
from ecommunity.community.rounding import Int64Array

T = TypeVar("T")

#: µct per ct.
MICRO: Final = 1_000_000
#: Prices may have at most this many decimal places in ct/kWh.
PRICE_DECIMALS: Final = 4
#: Largest accepted price, 10 €/kWh: keeps Wh × µct/kWh inside int64 for any interval energy.
MAX_PRICE_CT_PER_KWH: Final = Decimal(1000)


def price_uct_per_kwh(price_ct_per_kwh: Decimal | int, *, what: str = "price") -> int:
    """An exact price in ct/kWh as whole µct/kWh.

    Raises:
        TariffError: not a finite number from 0 to 1000 ct/kWh with at most four decimals.
    """
    if isinstance(price_ct_per_kwh, bool) or not isinstance(price_ct_per_kwh, Decimal | int):
        raise TariffError(f"{what} must be a Decimal or int in ct/kWh, got {price_ct_per_kwh!r}")
    value = Decimal(price_ct_per_kwh)
    if not value.is_finite() or not 0 <= value <= MAX_PRICE_CT_PER_KWH:
        raise TariffError(f"{what} must be 0 to {MAX_PRICE_CT_PER_KWH} ct/kWh, got {value}")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PRICE_DECIMALS:
        raise TariffError(f"{what} {value} ct/kWh has more than {PRICE_DECIMALS} decimal places")
    return int(value * MICRO)


@dataclass(frozen=True)
class Dated(Generic[T]):
    """A value valid from ``valid_from`` up to, not including, ``valid_to`` (Vienna days).

    None means open: since ever, or until further notice.
    """

    value: T
    valid_from: date | None = None
    valid_to: date | None = None
    source: str = ""

    def covers(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day < self.valid_to
        )


class Schedule(Generic[T]):
    """Non-overlapping dated values of one parameter; days between them have no value."""

    def __init__(self, name: str, entries: Iterable[Dated[T]]) -> None:
        self.name = name
        ordered = sorted(entries, key=lambda e: e.valid_from or date.min)
        for entry in ordered:
            if (
                entry.valid_from is not None
                and entry.valid_to is not None
                and entry.valid_to <= entry.valid_from
            ):
                raise TariffError(f"{name}: an entry ends on or before it starts ({entry})")
        for before, after in pairwise(ordered):
            if before.valid_to is None or (
                after.valid_from is None or after.valid_from < before.valid_to
            ):
                raise TariffError(f"{name}: entries overlap ({before} and {after})")
        self.entries: tuple[Dated[T], ...] = tuple(ordered)

    @classmethod
    def constant(cls, name: str, value: T, source: str = "") -> Schedule[T]:
        """One value for all days."""
        return cls(name, [Dated(value, source=source)])

    def __repr__(self) -> str:
        return f"Schedule({self.name!r}, {list(self.entries)!r})"

    def entry_at(self, day: date) -> Dated[T]:
        """The entry valid on ``day``.

        Raises:
            MissingParameterError: none is.
        """
        for entry in self.entries:
            if entry.covers(day):
                return entry
        raise MissingParameterError(f"no value of {self.name} for {day.isoformat()}")

    def at(self, day: date) -> T:
        """The value valid on ``day``.

        Raises:
            MissingParameterError: none is.
        """
        return self.entry_at(day).value

    def indices_at(self, starts_s: Int64Array) -> Int64Array:
        """For each interval start (UTC seconds), the index of the entry valid on its Vienna day.

        Raises:
            MissingParameterError: an interval on a day without a value.
        """
        index = np.full(starts_s.shape, -1, dtype=np.int64)
        for position, entry in enumerate(self.entries):
            inside = np.ones(starts_s.shape, dtype=bool)
            if entry.valid_from is not None:
                inside &= starts_s >= vienna_midnight_s(entry.valid_from)
            if entry.valid_to is not None:
                inside &= starts_s < vienna_midnight_s(entry.valid_to)
            index[inside] = position
        if np.any(index < 0):
            first = int(starts_s[np.argmax(index < 0)])
            day = np.datetime64(first, "s").astype("datetime64[D]")
            raise MissingParameterError(f"no value of {self.name} for an interval on {day} (UTC)")
        return index

    def values_at(self, starts_s: Int64Array, convert: Callable[[T], int]) -> Int64Array:
        """``convert(value)`` for each interval start's Vienna day, as int64.

        Raises:
            MissingParameterError: an interval on a day without a value.
        """
        table = np.array([convert(entry.value) for entry in self.entries], dtype=np.int64)
        if not self.entries:
            table = np.zeros(1, dtype=np.int64)
        return table[self.indices_at(starts_s)]


class ConsumerCategory(StrEnum):
    """Households and others pay different electricity-levy rates in 2026."""

    HOUSEHOLD = "household"
    BUSINESS = "business"


@dataclass(frozen=True)
class StatutoryParameters:
    """The dated rules that make community energy cheaper (rules doc 1.5, 1.6)."""

    #: Reduction of the energy-based grid usage fee (Netznutzungsentgelt, Arbeitspreis) for
    #: community energy, by community kind and the member's grid level. [%]
    grid_fee_reduction_percent: Mapping[tuple[CommunityKind, int], Schedule[int]]
    #: Elektrizitätsabgabe by consumer category. [ct/kWh]
    electricity_levy_ct_per_kwh: Mapping[ConsumerCategory, Schedule[Decimal]]
    #: Generation sources whose community energy is exempt from the Elektrizitätsabgabe.
    electricity_levy_exempt_sources: Mapping[CommunityKind, Schedule[frozenset[GenerationSource]]]
    #: Whether the Erneuerbaren-Förderbeitrag is charged at all (it was suspended for a while).
    renewable_levy_charged: Schedule[bool]
    #: Whether community energy is exempt from the Erneuerbaren-Förderbeitrag.
    renewable_levy_exempt: Mapping[CommunityKind, Schedule[bool]]

    def grid_fee_reduction(self, kind: CommunityKind, grid_level: int) -> Schedule[int]:
        """Raises: MissingParameterError: no rule for that kind and level."""
        return _lookup(
            self.grid_fee_reduction_percent,
            (kind, grid_level),
            f"grid fee reduction for a {kind.value} member at grid level {grid_level}",
        )

    def electricity_levy(self, category: ConsumerCategory) -> Schedule[Decimal]:
        """Raises: MissingParameterError: no rate for that category."""
        return _lookup(
            self.electricity_levy_ct_per_kwh, category, f"Elektrizitätsabgabe for {category}"
        )

    def levy_exempt_sources(self, kind: CommunityKind) -> Schedule[frozenset[GenerationSource]]:
        """Raises: MissingParameterError: no rule for that kind."""
        return _lookup(
            self.electricity_levy_exempt_sources,
            kind,
            f"electricity-levy exemption of a {kind.value}",
        )

    def renewable_levy_exemption(self, kind: CommunityKind) -> Schedule[bool]:
        """Raises: MissingParameterError: no rule for that kind."""
        return _lookup(
            self.renewable_levy_exempt,
            kind,
            f"Erneuerbaren-Förderbeitrag exemption of a {kind.value}",
        )


K = TypeVar("K")


def _lookup(table: Mapping[K, Schedule[T]], key: K, what: str) -> Schedule[T]:
    try:
        return table[key]
    except KeyError:
        raise MissingParameterError(
            f"the rules doc gives no {what}; pass StatutoryParameters with your own"
        ) from None


@dataclass(frozen=True)
class ConsumerTariff:
    """What a consumer pays per kWh drawn from the grid, net of VAT. [ct/kWh]"""

    #: The supplier's energy price.
    energy_ct_per_kwh: Decimal
    #: The energy-based grid usage fee (Netznutzungsentgelt, Arbeitspreis) at the member's level.
    grid_usage_ct_per_kwh: Decimal
    #: The Erneuerbaren-Förderbeitrag per kWh while it is charged.
    renewable_levy_ct_per_kwh: Decimal = Decimal(0)
    #: The grid level the member is connected at (7: low-voltage house connection).
    grid_level: int = 7
    category: ConsumerCategory = ConsumerCategory.HOUSEHOLD

    def __post_init__(self) -> None:
        price_uct_per_kwh(self.energy_ct_per_kwh, what="energy price")
        price_uct_per_kwh(self.grid_usage_ct_per_kwh, what="grid usage fee")
        price_uct_per_kwh(self.renewable_levy_ct_per_kwh, what="Erneuerbaren-Förderbeitrag")
        if self.grid_level not in GRID_LEVELS:
            raise TariffError(f"grid levels are 1 to 7, got {self.grid_level}")


@dataclass(frozen=True)
class CommunityPrices:
    """The community's internal prices, net of VAT. [ct/kWh]"""

    #: What consumers pay for covered energy (G.03).
    consumer_ct_per_kwh: Decimal
    #: What producers are credited for energy consumers took (G.01T − P.01T).
    producer_ct_per_kwh: Decimal

    def __post_init__(self) -> None:
        price_uct_per_kwh(self.consumer_ct_per_kwh, what="consumer price")
        price_uct_per_kwh(self.producer_ct_per_kwh, what="producer price")


@dataclass(frozen=True)
class ProducerTariff:
    """What a producer's surplus buyer (e.g. OeMAG) pays, net of VAT. [ct/kWh]"""

    feed_in_ct_per_kwh: Decimal

    def __post_init__(self) -> None:
        price_uct_per_kwh(self.feed_in_ct_per_kwh, what="feed-in tariff")


# --- The Austrian rules -------------------------------------------------------------------

_SNE_V = date(2021, 11, 1)
_SRC_GRID = (
    "rules doc 1.5: SNE-V 2018, 2nd amendment 2021, in force 2021-11-01; "
    "https://energiegemeinschaften.gv.at/niedrigere-netzkosten-fuer-eegs/"
)
_SRC_GRID_BEFORE = "rules doc 1.5: the reduction was introduced by the SNE-V amendment of 2021"
_SRC_BEG = "rules doc 1.1: a BEG has no grid-fee reduction and no levy exemptions"


def _grid_fee_reductions() -> dict[tuple[CommunityKind, int], Schedule[int]]:
    table: dict[tuple[CommunityKind, int], Schedule[int]] = {}
    for kind, level, percent in (
        (CommunityKind.EEG_LOCAL, 6, 57),
        (CommunityKind.EEG_LOCAL, 7, 57),
        (CommunityKind.EEG_REGIONAL, 6, 28),
        (CommunityKind.EEG_REGIONAL, 7, 28),
        (CommunityKind.EEG_REGIONAL, 5, 64),
    ):
        table[kind, level] = Schedule(
            f"grid fee reduction {kind.value} level {level}",
            [
                Dated(0, valid_to=_SNE_V, source=_SRC_GRID_BEFORE),
                Dated(percent, valid_from=_SNE_V, source=_SRC_GRID),
            ],
        )
    for level in GRID_LEVELS:
        table[CommunityKind.BEG, level] = Schedule.constant(
            f"grid fee reduction beg level {level}", 0, _SRC_BEG
        )
    return table


_LEVY_CUT = date(2022, 5, 1)
_LEVY_BACK = date(2025, 1, 1)
_LEVY_2026 = date(2026, 1, 1)
_LEVY_2027 = date(2027, 1, 1)
_SRC_LEVY_STANDARD = "Elektrizitätsabgabegesetz: 1.5 ct/kWh (rules doc 1.6)"
_SRC_LEVY_CUT = (
    "§ 7 (11) ElAbgG as of BGBl I 63/2022: 0.1 ct/kWh from 2022-05-01, extended to 2023-12-31 "
    "and through 2024 (https://wko.at/oe/oesterreich/befristete-reduktion-elektrizitaets-"
    "erdgasabgabe; rules doc 1.6)"
)
_SRC_LEVY_BACK = "rules doc 1.6: 1.5 ct/kWh again since 2025-01-01"
_SRC_LEVY_2026 = (
    "BGBl. I Nr. 95/2025: 0.82 ct/kWh, households 0.1 ct/kWh, calendar year 2026 "
    "(https://www.bmf.gv.at/rechtsnews/steuern-rechtsnews/neue-gesetze/2025/)"
)
_SRC_LEVY_2027 = "the 2026 cut ends with 2026 (https://www.krone.at/3989966): 1.5 ct/kWh"


def _electricity_levy() -> dict[ConsumerCategory, Schedule[Decimal]]:
    table: dict[ConsumerCategory, Schedule[Decimal]] = {}
    for category, rate_2026 in (
        (ConsumerCategory.HOUSEHOLD, Decimal("0.1")),
        (ConsumerCategory.BUSINESS, Decimal("0.82")),
    ):
        table[category] = Schedule(
            f"Elektrizitätsabgabe {category.value}",
            [
                Dated(Decimal("1.5"), valid_to=_LEVY_CUT, source=_SRC_LEVY_STANDARD),
                Dated(Decimal("0.1"), _LEVY_CUT, _LEVY_BACK, _SRC_LEVY_CUT),
                Dated(Decimal("1.5"), _LEVY_BACK, _LEVY_2026, _SRC_LEVY_BACK),
                Dated(rate_2026, _LEVY_2026, _LEVY_2027, _SRC_LEVY_2026),
                Dated(Decimal("1.5"), valid_from=_LEVY_2027, source=_SRC_LEVY_2027),
            ],
        )
    return table


_PV_ONLY = frozenset({GenerationSource.PV})
_ALL_RENEWABLES = frozenset(s for s in GenerationSource if s.renewable)
_EXEMPT_ALL = date(2022, 7, 1)
_SRC_EXEMPT_PV = (
    "rules doc 1.6: the exemption of EEG energy from the Elektrizitätsabgabe first covered PV "
    "only (https://linda.lindeverlag.at/Dokument/76832_2_vz2021010120211231)"
)
_SRC_EXEMPT_ALL = (
    "rules doc 1.6: all renewable sources since 2022-07-01 (https://eeg-premstaetten.at/vorteile; "
    "ElAbg-ESBV § 2)"
)


def _levy_exempt_sources() -> dict[CommunityKind, Schedule[frozenset[GenerationSource]]]:
    table: dict[CommunityKind, Schedule[frozenset[GenerationSource]]] = {}
    for kind in (CommunityKind.EEG_LOCAL, CommunityKind.EEG_REGIONAL):
        table[kind] = Schedule(
            f"electricity-levy exemption {kind.value}",
            [
                Dated(_PV_ONLY, valid_to=_EXEMPT_ALL, source=_SRC_EXEMPT_PV),
                Dated(_ALL_RENEWABLES, valid_from=_EXEMPT_ALL, source=_SRC_EXEMPT_ALL),
            ],
        )
    table[CommunityKind.BEG] = Schedule.constant(
        "electricity-levy exemption beg", frozenset[GenerationSource](), _SRC_BEG
    )
    return table


_SUSPENDED_FROM = date(2022, 1, 1)
_SUSPENDED_TO = date(2025, 1, 1)
_SRC_RENEWABLE_LEVY_SUSPENDED = (
    "suspended 2022 (EAG as of BGBl I 7/2022; https://360.lexisnexis.at, Ennser EAG § 4) and "
    "2023–2024 (rules doc 1.6)"
)
_SRC_RENEWABLE_LEVY_CHARGED = "rules doc 1.6: charged again from 2025"
_SRC_RENEWABLE_LEVY_EXEMPT = (
    "rules doc 1.1, 1.6: EEG members pay no Erneuerbaren-Förderbeitrag on EEG energy "
    "(E-Control newsletter 3/2021)"
)


def _renewable_levy_charged() -> Schedule[bool]:
    return Schedule(
        "Erneuerbaren-Förderbeitrag charged",
        [
            Dated(True, valid_to=_SUSPENDED_FROM, source="charged (ÖSG 2012, then EAG)"),
            Dated(False, _SUSPENDED_FROM, _SUSPENDED_TO, _SRC_RENEWABLE_LEVY_SUSPENDED),
            Dated(True, valid_from=_SUSPENDED_TO, source=_SRC_RENEWABLE_LEVY_CHARGED),
        ],
    )


def _renewable_levy_exempt() -> dict[CommunityKind, Schedule[bool]]:
    return {
        CommunityKind.EEG_LOCAL: Schedule.constant(
            "Förderbeitrag exemption eeg_local", True, _SRC_RENEWABLE_LEVY_EXEMPT
        ),
        CommunityKind.EEG_REGIONAL: Schedule.constant(
            "Förderbeitrag exemption eeg_regional", True, _SRC_RENEWABLE_LEVY_EXEMPT
        ),
        CommunityKind.BEG: Schedule.constant("Förderbeitrag exemption beg", False, _SRC_BEG),
    }


#: The Austrian rules as the rules doc (and the sources on each entry) state them.
STATUTORY_PARAMETERS: Final = StatutoryParameters(
    grid_fee_reduction_percent=_grid_fee_reductions(),
    electricity_levy_ct_per_kwh=_electricity_levy(),
    electricity_levy_exempt_sources=_levy_exempt_sources(),
    renewable_levy_charged=_renewable_levy_charged(),
    renewable_levy_exempt=_renewable_levy_exempt(),
)
