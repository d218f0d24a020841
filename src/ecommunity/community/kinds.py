"""The forms of energy community in Austria and their fixed properties (rules doc 1.1, 1.2).

A community's kind and allocation model are part of its contract with the grid operator: changing
either means a new contract and a new community ID (rules doc 1.1, 1.2), so a :class:`Community`
is immutable.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ecommunity.community.errors import CommunityError

#: Grid levels (Netzebenen) 1 (extra-high voltage) to 7 (low-voltage connection).
GRID_LEVELS = range(1, 8)


class CommunityKind(StrEnum):
    """The four forms of community (rules doc 1.1)."""

    #: Gemeinschaftliche Erzeugungsanlage, § 16a ElWOG 2010: one building's main line (NE 7).
    GEA = "gea"
    #: Erneuerbare-Energie-Gemeinschaft, local: same transformer, grid levels 6–7 (§ 16c ElWOG).
    EEG_LOCAL = "eeg_local"
    #: Erneuerbare-Energie-Gemeinschaft, regional: same substation, grid levels 4–5.
    EEG_REGIONAL = "eeg_regional"
    #: Bürgerenergiegemeinschaft, § 16b ElWOG: all of Austria, across grid operators.
    BEG = "beg"

    @property
    def legal_basis(self) -> str:
        return _LEGAL_BASIS[self]

    @property
    def renewable_only(self) -> bool:
        """Whether only renewable generation may take part (EEG: yes; GEA, BEG: any source)."""
        return self in (CommunityKind.EEG_LOCAL, CommunityKind.EEG_REGIONAL)

    @property
    def scope_grid_levels(self) -> frozenset[int]:
        """The grid levels that bound the community's area (empty for BEG: no limit)."""
        return _SCOPE_LEVELS[self]

    @property
    def member_grid_levels(self) -> frozenset[int]:
        """The grid levels a member may be connected at.

        GEA: the house connection (NE 7); local EEG: NE 6–7 behind one transformer; regional
        EEG: anything below the substation's busbar (NE 4–7); BEG: any level.
        """
        return _MEMBER_LEVELS[self]


_LEGAL_BASIS = {
    CommunityKind.GEA: "§ 16a ElWOG 2010",
    CommunityKind.EEG_LOCAL: "§ 16c ElWOG 2010, EAG 2021",
    CommunityKind.EEG_REGIONAL: "§ 16c ElWOG 2010, EAG 2021",
    CommunityKind.BEG: "§ 16b ElWOG 2010",
}
_SCOPE_LEVELS = {
    CommunityKind.GEA: frozenset({7}),
    CommunityKind.EEG_LOCAL: frozenset({6, 7}),
    CommunityKind.EEG_REGIONAL: frozenset({4, 5}),
    CommunityKind.BEG: frozenset[int](),
}
_MEMBER_LEVELS = {
    CommunityKind.GEA: frozenset({7}),
    CommunityKind.EEG_LOCAL: frozenset({6, 7}),
    CommunityKind.EEG_REGIONAL: frozenset({4, 5, 6, 7}),
    CommunityKind.BEG: frozenset(GRID_LEVELS),
}


class AllocationModel(StrEnum):
    """How production is shared in each quarter hour (rules doc 1.2)."""

    #: Each consumer has a fixed key; an unused share is surplus, never redistributed.
    STATIC = "static"
    #: Production is shared in proportion to the consumption in that quarter hour.
    DYNAMIC = "dynamic"


class Role(StrEnum):
    """The direction a metering point measures: a consumption or a generation point."""

    CONSUMER = "consumer"
    PRODUCER = "producer"


class GenerationSource(StrEnum):
    """Primary energy of a generating plant (matters for the electricity-levy exemption)."""

    PV = "pv"
    WIND = "wind"
    HYDRO = "hydro"
    BIOMASS = "biomass"
    BIOGAS = "biogas"
    GEOTHERMAL = "geothermal"
    #: Anything else; only GEA and BEG may have it.
    NON_RENEWABLE = "non_renewable"

    @property
    def renewable(self) -> bool:
        return self is not GenerationSource.NON_RENEWABLE


@dataclass(frozen=True)
class Community:
    """A community's kind and allocation model, fixed by its grid-operator contract."""

    kind: CommunityKind
    model: AllocationModel

    def check_member_grid_level(self, grid_level: int) -> None:
        """Refuse a member connected at a grid level the community cannot reach.

        Raises:
            CommunityError: ``grid_level`` is outside :attr:`CommunityKind.member_grid_levels`.
        """
        allowed = self.kind.member_grid_levels
        if grid_level not in allowed:
            levels = ", ".join(str(level) for level in sorted(allowed))
            raise CommunityError(
                f"a {self.kind.value} member is connected at grid level {levels}, not {grid_level}"
            )

    def check_generation_source(self, source: GenerationSource) -> None:
        """Refuse non-renewable generation in an EEG (rules doc 1.1).

        Raises:
            CommunityError: an EEG with a non-renewable source.
        """
        if self.kind.renewable_only and not source.renewable:
            raise CommunityError(f"a {self.kind.value} community takes renewable generation only")
