"""API schemas of communities and memberships (``XCreate``/``XUpdate``/``XPublic``).

Prices, fees, plant sizes and static keys are exact decimals: sent as JSON numbers or strings,
answered as strings (``"12.5000"``), stored as integers in base units (see
``cloud.db.community_models``). Unknown fields are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ecommunity.cloud.actions.communities import CommunityChanges, CommunitySpec, PlantSpec
from ecommunity.cloud.actions.participation_rules import KEY_SCALE
from ecommunity.cloud.community_view.schemas import CommunityPerformance
from ecommunity.cloud.db.community_models import Community, CommunityMembership, GenerationPlant
from ecommunity.cloud.finder import POSTAL_CODE, Match
from ecommunity.community import (
    AllocationModel,
    CommunityKind,
    GenerationSource,
    Role,
    parse_metering_point,
)

_MICRO = 10**6


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _accepted(value: bool) -> bool:
    if not value:
        raise ValueError("accept the community's statutes to apply")
    return value


def _postal_code(value: str) -> str:
    if not POSTAL_CODE.fullmatch(value):
        raise ValueError("an Austrian postal code is 4 digits, 1010 to 9992")
    return value


#: One line of text: no control characters (PostgreSQL refuses NUL; names are shown to others).
Line = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
OptionalLine = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")
]
AreaId = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")
]
#: Free text over several lines: anything but NUL and the other C0 controls except tab and
#: line breaks.
Description = Annotated[str, Field(max_length=5000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$")]
Statutes = Annotated[str, Field(max_length=100_000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$")]
PostalCode = Annotated[str, Field(max_length=4, examples=["4020"]), AfterValidator(_postal_code)]
#: [ct/kWh], net of VAT: 0 to 1000 with at most four decimals (0.16691 €/kWh = 16.691 ct/kWh).
Price = Annotated[Decimal, Field(ge=0, le=1000, decimal_places=4, examples=["12.5"])]
#: [€/year]
Fee = Annotated[Decimal, Field(ge=0, le=100_000, decimal_places=2, examples=["12.00"])]
#: [kWp], to the watt.
PeakPower = Annotated[Decimal, Field(gt=0, le=10_000_000, decimal_places=3, examples=["9.9"])]
#: Share of production, 0 to 1, at most nine decimals.
StaticKey = Annotated[Decimal, Field(ge=0, le=1, decimal_places=9, examples=["0.25"])]
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def ct_from_uct(value: int) -> Decimal:
    return (Decimal(value) / _MICRO).quantize(Decimal("0.0001"))


class Location(BaseModel):
    """Where the finder measures distances from. [°, WGS 84]"""

    model_config = ConfigDict(extra="forbid")

    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False, examples=[48.3069])
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False, examples=[14.2858])


class PlantIn(BaseModel):
    """A generating plant of the community."""

    model_config = ConfigDict(extra="forbid")

    source: GenerationSource
    peak_power_kwp: PeakPower
    name: OptionalLine = ""

    def to_spec(self) -> PlantSpec:
        return PlantSpec(self.source, int(self.peak_power_kwp * 1000), self.name)


class PlantPublic(BaseModel):
    source: GenerationSource
    peak_power_kwp: Decimal
    name: str

    @classmethod
    def of(cls, plant: GenerationPlant) -> PlantPublic:
        return cls(
            source=GenerationSource(plant.source),
            peak_power_kwp=Decimal(plant.peak_power_wp) / 1000,
            name=plant.name,
        )


class CommunityCreate(BaseModel):
    """A new community; the caller becomes its operator."""

    model_config = ConfigDict(extra="forbid")

    name: Line
    description: Description = ""
    kind: CommunityKind
    allocation_model: AllocationModel = Field(
        description="Fixed once created: it is part of the contract with the grid operator."
    )
    grid_operator: Line
    municipality: OptionalLine = ""
    area_id: AreaId = Field(
        default="", description="The grid operator's local or regional area id, if known."
    )
    postal_codes: list[PostalCode] = Field(min_length=1, max_length=200)
    consumer_price_ct_per_kwh: Price
    producer_price_ct_per_kwh: Price
    member_fee_eur_per_year: Fee = Decimal(0)
    plants: list[PlantIn] = Field(default_factory=list, max_length=100)
    open_for_members: bool = True
    statutes: Statutes = ""
    location: Location

    def to_spec(self) -> CommunitySpec:
        return CommunitySpec(
            name=self.name,
            kind=self.kind,
            allocation_model=self.allocation_model,
            grid_operator=self.grid_operator,
            postal_codes=self.postal_codes,
            consumer_price_uct_per_kwh=int(self.consumer_price_ct_per_kwh * _MICRO),
            producer_price_uct_per_kwh=int(self.producer_price_ct_per_kwh * _MICRO),
            latitude=self.location.latitude,
            longitude=self.location.longitude,
            description=self.description,
            municipality=self.municipality,
            area_id=self.area_id or None,
            member_fee_cents_per_year=int(self.member_fee_eur_per_year * 100),
            open_for_members=self.open_for_members,
            statutes=self.statutes,
            plants=[plant.to_spec() for plant in self.plants],
        )


class CommunityUpdate(BaseModel):
    """An edit: fields left out stay as they are; lists replace the whole list."""

    model_config = ConfigDict(extra="forbid")

    name: Line | None = None
    description: Description | None = None
    kind: CommunityKind | None = Field(default=None, description="Fixed: only the current value.")
    allocation_model: AllocationModel | None = Field(
        default=None, description="Fixed: only the current value."
    )
    grid_operator: Line | None = None
    municipality: OptionalLine | None = None
    area_id: AreaId | None = Field(default=None, description='"" clears it.')
    postal_codes: list[PostalCode] | None = Field(default=None, min_length=1, max_length=200)
    consumer_price_ct_per_kwh: Price | None = None
    producer_price_ct_per_kwh: Price | None = None
    member_fee_eur_per_year: Fee | None = None
    plants: list[PlantIn] | None = Field(default=None, max_length=100)
    open_for_members: bool | None = None
    statutes: Statutes | None = None
    location: Location | None = None

    def to_changes(self) -> CommunityChanges:
        def scaled(value: Decimal | None, factor: int) -> int | None:
            return None if value is None else int(value * factor)

        return CommunityChanges(
            name=self.name,
            description=self.description,
            kind=self.kind,
            allocation_model=self.allocation_model,
            grid_operator=self.grid_operator,
            municipality=self.municipality,
            area_id=self.area_id,
            postal_codes=self.postal_codes,
            consumer_price_uct_per_kwh=scaled(self.consumer_price_ct_per_kwh, _MICRO),
            producer_price_uct_per_kwh=scaled(self.producer_price_ct_per_kwh, _MICRO),
            member_fee_cents_per_year=scaled(self.member_fee_eur_per_year, 100),
            open_for_members=self.open_for_members,
            statutes=self.statutes,
            latitude=None if self.location is None else self.location.latitude,
            longitude=None if self.location is None else self.location.longitude,
            plants=None if self.plants is None else [plant.to_spec() for plant in self.plants],
        )


@dataclass(frozen=True)
class CommunityExtras:
    """What a community's answer needs besides its row."""

    postal_codes: list[str]
    plants: list[GenerationPlant]
    member_count: int
    #: The last 30 days from the members' meters (``cloud.community_view.performance``).
    performance: CommunityPerformance | None = None


class CommunityFacts(BaseModel):
    """What anyone signed in may see of a community."""

    id: int
    name: str
    description: str
    kind: CommunityKind
    allocation_model: AllocationModel
    grid_operator: str
    municipality: str
    area_id: str | None
    postal_codes: list[str]
    consumer_price_ct_per_kwh: Decimal
    producer_price_ct_per_kwh: Decimal
    member_fee_eur_per_year: Decimal
    plants: list[PlantPublic]
    #: Sum of the plants' peak power. [kWp]
    generation_kwp: Decimal
    #: Users with an active membership.
    member_count: int
    open_for_members: bool
    location: Location
    #: The last 30 days from the members' meters; null while no member's meter reported.
    performance: CommunityPerformance | None

    @classmethod
    def of(cls, c: Community, extras: CommunityExtras, **extra: Any) -> Self:
        """The answer for ``c``; ``extra`` fills a subclass's own fields."""
        return cls(
            id=c.id,
            name=c.name,
            description=c.description,
            kind=CommunityKind(c.kind),
            allocation_model=AllocationModel(c.allocation_model),
            grid_operator=c.grid_operator,
            municipality=c.municipality,
            area_id=c.area_id,
            postal_codes=extras.postal_codes,
            consumer_price_ct_per_kwh=ct_from_uct(c.consumer_price_uct_per_kwh),
            producer_price_ct_per_kwh=ct_from_uct(c.producer_price_uct_per_kwh),
            member_fee_eur_per_year=(Decimal(c.member_fee_cents_per_year) / 100).quantize(
                Decimal("0.01")
            ),
            plants=[PlantPublic.of(plant) for plant in extras.plants],
            generation_kwp=Decimal(sum(p.peak_power_wp for p in extras.plants)) / 1000,
            member_count=extras.member_count,
            open_for_members=c.open_for_members,
            location=Location(latitude=c.latitude, longitude=c.longitude),
            performance=extras.performance,
            **extra,
        )


class CommunitySummary(CommunityFacts):
    """A finder result."""

    #: Why it matched (see the finder's rule in docs/cloud-communities.md).
    match: Match
    #: From the coordinates asked for; null for a postal-code search. [km]
    distance_km: float | None


class MembershipStatus(StrEnum):
    """Where an application or membership stands (see ``cloud.actions.memberships``)."""

    APPLIED = "applied"
    APPROVED = "approved"
    REJECTED = "rejected"
    ACTIVE = "active"
    LEFT = "left"


class MembershipPublic(BaseModel):
    """An application or membership as its member and the operator see it."""

    id: int
    community_id: int
    metering_point: str
    role: Role
    status: MembershipStatus
    #: The factor that applies now. [%]
    participation_factor: int
    #: A change that applies from ``pending_from`` (the next Vienna day). [%]
    pending_participation_factor: int | None
    pending_from: UtcDatetime | None
    static_key: Decimal | None
    applied_at: UtcDatetime
    decided_at: UtcDatetime | None
    rejection_reason: str | None
    #: From when (and until when) the metering point takes part (Vienna midnights).
    active_from: UtcDatetime | None
    active_until: UtcDatetime | None
    left_at: UtcDatetime | None

    @classmethod
    def of(
        cls,
        m: CommunityMembership,
        factor: int,
        pending: tuple[int, datetime] | None,
        **extra: Any,
    ) -> Self:
        """``factor`` applies now; ``pending`` is a scheduled change (factor, from when);
        ``extra`` fills a subclass's own fields."""
        return cls(
            id=m.id,
            community_id=m.community_id,
            metering_point=m.metering_point,
            role=Role(m.role),
            status=MembershipStatus(m.status),
            participation_factor=factor,
            pending_participation_factor=None if pending is None else pending[0],
            pending_from=None if pending is None else pending[1],
            static_key=None if m.static_key_ppb is None else Decimal(m.static_key_ppb) / KEY_SCALE,
            applied_at=m.applied_at,
            decided_at=m.decided_at,
            rejection_reason=m.rejection_reason,
            active_from=m.active_from,
            active_until=m.active_until,
            left_at=m.left_at,
            **extra,
        )


class MemberPublic(MembershipPublic):
    """A membership in the operator's list."""

    user_id: int
    display_name: str
    email: str


class OwnMembership(MembershipPublic):
    """A membership in the member's own list."""

    community_name: str


class CommunityPublic(CommunityFacts):
    """The community page."""

    statutes: str
    operator_id: int
    #: Whether the caller operates this community.
    you_operate: bool
    #: Its active members: only for the operator (null for everyone else).
    members: list[MemberPublic] | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ApplicationCreate(BaseModel):
    """An application to join a community."""

    model_config = ConfigDict(extra="forbid")

    metering_point: Annotated[str, AfterValidator(parse_metering_point)] = Field(
        max_length=64,
        description="The metering point number (Zählpunkt): AT and 31 letters or digits; "
        "spaces are ignored.",
        examples=["AT0030000000000000000000000012345"],
    )
    participation_factor: int = Field(
        default=100, ge=1, le=100, description="Share of the point's energy that takes part. [%]"
    )
    role: Role = Role.CONSUMER
    accept_statutes: Annotated[bool, AfterValidator(_accepted)] = Field(
        description="Must be true: the community's statutes apply to members."
    )


class ApplicationDecision(BaseModel):
    """A rejection, with a reason the applicant sees."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$")] = ""


class MembershipActivation(BaseModel):
    """The grid operator confirmed the registration: the day the point takes part from."""

    model_config = ConfigDict(extra="forbid")

    active_on: date | None = Field(
        default=None,
        description="The Vienna calendar day from which the point takes part; default: the "
        "next day. From the day of the application up to a year ahead.",
    )


class MembershipUpdate(BaseModel):
    """The operator sets a member's participation factor and/or static key."""

    model_config = ConfigDict(extra="forbid")

    participation_factor: int | None = Field(default=None, ge=1, le=100)
    static_key: StaticKey | None = None
