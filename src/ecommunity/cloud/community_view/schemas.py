"""What the community energy views answer: the live snapshot, the recent performance and the
compare estimate (pydantic, as the API sends them). Energies in whole Wh, money in euros as
decimal strings to a hundredth of a cent, shares from 0 to 1, instants in UTC."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from ecommunity.community import AllocationModel, CommunityKind

#: Where the figures come from. ``members_meters``: the members' gateways, minute by minute.
#: (When the grid operator's imported values cover a period, a view may say ``official``
#: and ``estimate: false`` for it; the live view's today never is: those values arrive a day
#: later.)
Basis = Literal["members_meters"]


class CommunityPerformance(BaseModel):
    """How the community did over the last ``period_days`` Vienna days, from the members' data
    (allocated per quarter hour as the grid operator does)."""

    period_days: int
    #: Share of the members' consumption covered by the community: Σ G.03 / Σ G.01. [0–1]
    #: Null when no consumption was measured.
    self_sufficiency: float | None
    #: Share of the community's production the members used: Σ G.03 / Σ production. [0–1]
    #: Null when no production was measured.
    production_used_share: float | None
    #: The sums behind the shares, over the quarter hours members reported. [Wh]
    consumption_wh: int
    production_wh: int
    covered_wh: int
    #: True while it comes from the members' own meters, before the grid operator's values.
    estimate: bool


class LivePower(BaseModel):
    """The last complete minute: mean power of the members who reported it. [W]"""

    start: datetime
    end: datetime
    production_w: int
    consumption_w: int
    producers_reporting: int
    consumers_reporting: int


class LiveQuarterHour(BaseModel):
    """The current quarter hour so far, allocated as the grid operator will allocate it. [Wh]"""

    start: datetime
    #: The latest complete minute.
    end: datetime
    production_wh: int
    consumption_wh: int
    #: Σ G.02: the community share being allocated.
    allocated_wh: int
    #: Σ G.03: what covers members' consumption.
    covered_wh: int
    #: Σ P.01T: production left over, sold by the producers.
    surplus_wh: int
    #: Σ (G.01 − G.03): what members still draw from their suppliers.
    residual_wh: int
    #: covered / consumption. [0–1]
    self_sufficiency: float | None


class LiveToday(BaseModel):
    """The Vienna day so far: its quarter hours, the current one up to the latest minute."""

    day: date
    start: datetime
    end: datetime
    production_wh: int
    consumption_wh: int
    covered_wh: int
    surplus_wh: int
    self_sufficiency: float | None
    #: What the covered energy cost in the community and would have cost from the grid, and
    #: the difference, for all consumers together. [€] Null with ``savings_unavailable``.
    community_cost_eur: Decimal | None
    grid_cost_eur: Decimal | None
    savings_eur: Decimal | None
    savings_unavailable: str | None


class ReferenceTariffOut(BaseModel):
    """The grid side of a comparison, net of VAT. [ct/kWh]"""

    energy_ct_per_kwh: Decimal
    grid_usage_ct_per_kwh: Decimal
    renewable_levy_ct_per_kwh: Decimal
    grid_level: int


class LivePrices(BaseModel):
    """A kWh today. [ct/kWh, net of VAT]"""

    day: date
    #: The community's consumer price.
    internal_ct_per_kwh: Decimal
    #: What a member pays in all for a kWh of community energy: the internal price, the
    #: reduced grid fee and the levies still due.
    community_ct_per_kwh: Decimal | None
    #: The same kWh from the supplier: energy price, full grid fee and levies.
    grid_ct_per_kwh: Decimal | None
    #: Why the two are null (no statutory figures for the community's kind).
    unavailable: str | None
    #: The supplier's side compared with (a reference; the platform does not know members'
    #: contracts).
    tariff: ReferenceTariffOut


class CommunityLive(BaseModel):
    """The live community view: what the members' meters show now."""

    type: Literal["community_live"] = "community_live"
    community_id: int
    #: The latest complete minute: everything below is up to it.
    as_of: datetime
    #: True: from the members' own meters, not the grid operator's values (a day later).
    estimate: bool
    basis: Basis
    #: Memberships taking part now, and those whose meters reported the last minute.
    members: int
    members_reporting: int
    current: LivePower
    #: Null in the first minute of a quarter hour.
    quarter_hour: LiveQuarterHour | None
    today: LiveToday
    prices: LivePrices


class HistoryUsed(BaseModel):
    """The part of the last year the estimate stands on."""

    #: Quarter hours used, and as days (96 a day).
    intervals: int
    days: float
    first: datetime
    last: datetime


class CompareAssumptions(BaseModel):
    """What every community's estimate assumes alike."""

    #: ``metered``: the caller's own gateway history; ``h0``: ``annual_kwh`` shaped by H0.
    basis: Literal["metered", "h0"]
    #: The caller's yearly consumption the estimate works with. [kWh]
    annual_consumption_kwh: Decimal
    history: HistoryUsed | None
    #: The year of quarter hours estimated over (the 365 days before today, Vienna).
    year_start: datetime
    year_end: datetime
    #: Prices and statutory rules of this day apply to the whole year.
    priced_on: date
    tariff: ReferenceTariffOut
    #: Your factor in each community. [%]
    participation_factor: int
    notes: list[str]


class CommunityEstimate(BaseModel):
    """The caller's yearly savings in one community, estimated. [€/year, kWh/year]"""

    production_basis: Literal["metered", "kwp"]
    #: How the other members' consumption is known: ``metered`` (each one's metered yearly
    #: energy, shaped by H0), ``assumed`` (3,500 kWh each, H0), ``mixed``, or ``none`` (no
    #: other consumers).
    community_consumption_basis: Literal["metered", "assumed", "mixed", "none"]
    #: The key assumed for you in a static community.
    static_key: Decimal | None
    #: Your consumption and the part the community would cover. [kWh/year]
    consumption_kwh: Decimal
    covered_kwh: Decimal
    #: covered / consumption. [0–1]
    coverage_share: float | None
    community_cost_eur: Decimal
    grid_cost_eur: Decimal
    #: grid cost − community cost of the covered energy.
    savings_eur: Decimal
    member_fee_eur: Decimal
    #: savings − member fee.
    net_savings_eur: Decimal
    notes: list[str]


class CommunityComparison(BaseModel):
    """One community side by side with the others."""

    id: int
    name: str
    kind: CommunityKind
    allocation_model: AllocationModel
    consumer_price_ct_per_kwh: Decimal
    producer_price_ct_per_kwh: Decimal
    member_fee_eur_per_year: Decimal
    member_count: int
    generation_kwp: Decimal
    #: Plants by source: [{source, peak_power_kwp}].
    plants: list[PlantSummary]
    open_for_members: bool
    #: Null with ``estimate_unavailable`` saying why.
    estimate: CommunityEstimate | None
    estimate_unavailable: str | None


class PlantSummary(BaseModel):
    source: str
    peak_power_kwp: Decimal
    name: str


class Comparison(BaseModel):
    """``GET /communities/compare``: the communities in the order asked for."""

    assumptions: CompareAssumptions
    communities: list[CommunityComparison] = Field(min_length=2, max_length=4)


CommunityComparison.model_rebuild()
