"""Schemas of members' energy settings, reconciliation and energy figures.

Money is answered in euros as decimal strings rounded to 0.01 ct (``"1.2345"``); the sums
behind them are exact (nano-cents, ``ecommunity.community``). CO₂ in grams.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ecommunity.cloud.actions.energy_settings import EnergySettingsSpec
from ecommunity.cloud.api.community_schemas import Price, ct_from_uct
from ecommunity.cloud.community_energy.energy_report import CommunityPeriod, Period
from ecommunity.cloud.community_energy.reconciliation import PointReconciliation
from ecommunity.cloud.db.energy_models import MemberEnergySettings
from ecommunity.community import ConsumerCategory, nct_to_euro

_CENT_HUNDREDTHS = Decimal("0.0001")


def euro(amount_nct: int) -> Decimal:
    """Nano-cents as euros, rounded to 0.01 ct."""
    return nct_to_euro(amount_nct).quantize(_CENT_HUNDREDTHS, rounding=ROUND_HALF_EVEN)


def euros(amount_nct: int | None) -> Decimal | None:
    return None if amount_nct is None else euro(amount_nct)


def _uct(price: Decimal | None) -> int | None:
    return None if price is None else int(price * 1_000_000)


class EnergySettingsIn(BaseModel):
    """What your figures of one membership use; fields left out are cleared."""

    model_config = ConfigDict(extra="forbid")

    meter_id: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="Your meter that measures this metering point (default: your only meter)",
    )
    supplier_energy_ct_per_kwh: Price | None = Field(
        default=None, description="Consumers: your supplier's energy price, net. [ct/kWh]"
    )
    grid_usage_ct_per_kwh: Price | None = Field(
        default=None, description="Consumers: the grid usage fee (Arbeitspreis), net. [ct/kWh]"
    )
    renewable_levy_ct_per_kwh: Price | None = Field(
        default=None, description="Consumers: the Erneuerbaren-Förderbeitrag, net. [ct/kWh]"
    )
    grid_level: int | None = Field(default=None, ge=1, le=7, description="Default 7")
    consumer_category: ConsumerCategory | None = None
    feed_in_ct_per_kwh: Price | None = Field(
        default=None, description="Producers: what your surplus buyer pays, net. [ct/kWh]"
    )

    @model_validator(mode="after")
    def _whole_tariff(self) -> Self:
        prices = (self.supplier_energy_ct_per_kwh, self.grid_usage_ct_per_kwh)
        rest = (self.renewable_levy_ct_per_kwh, self.grid_level, self.consumer_category)
        if (prices[0] is None) != (prices[1] is None) or (
            prices[0] is None and any(v is not None for v in rest)
        ):
            raise ValueError(
                "a supplier tariff needs supplier_energy_ct_per_kwh and grid_usage_ct_per_kwh"
            )
        return self

    def to_spec(self) -> EnergySettingsSpec:
        return EnergySettingsSpec(
            meter_id=self.meter_id,
            energy_price_uct_per_kwh=_uct(self.supplier_energy_ct_per_kwh),
            grid_usage_uct_per_kwh=_uct(self.grid_usage_ct_per_kwh),
            renewable_levy_uct_per_kwh=_uct(self.renewable_levy_ct_per_kwh),
            grid_level=self.grid_level,
            consumer_category=None
            if self.consumer_category is None
            else self.consumer_category.value,
            feed_in_uct_per_kwh=_uct(self.feed_in_ct_per_kwh),
        )


class EnergySettingsOut(BaseModel):
    membership_id: int
    meter_id: int | None
    supplier_energy_ct_per_kwh: Decimal | None
    grid_usage_ct_per_kwh: Decimal | None
    renewable_levy_ct_per_kwh: Decimal | None
    grid_level: int | None
    consumer_category: ConsumerCategory | None
    feed_in_ct_per_kwh: Decimal | None

    @classmethod
    def of(cls, membership_id: int, row: MemberEnergySettings | None) -> EnergySettingsOut:
        def ct(value: int | None) -> Decimal | None:
            return None if value is None else ct_from_uct(value)

        if row is None:
            return cls(
                membership_id=membership_id,
                meter_id=None,
                supplier_energy_ct_per_kwh=None,
                grid_usage_ct_per_kwh=None,
                renewable_levy_ct_per_kwh=None,
                grid_level=None,
                consumer_category=None,
                feed_in_ct_per_kwh=None,
            )
        return cls(
            membership_id=membership_id,
            meter_id=row.meter_id,
            supplier_energy_ct_per_kwh=ct(row.energy_price_uct_per_kwh),
            grid_usage_ct_per_kwh=ct(row.grid_usage_uct_per_kwh),
            renewable_levy_ct_per_kwh=ct(row.renewable_levy_uct_per_kwh),
            grid_level=row.grid_level,
            consumer_category=None
            if row.consumer_category is None
            else ConsumerCategory(row.consumer_category),
            feed_in_ct_per_kwh=ct(row.feed_in_uct_per_kwh),
        )


class ComparisonOut(BaseModel):
    start: datetime
    end: datetime
    #: Official G.01 (consumers: consumption; producers: production). [Wh]
    official_wh: int | None
    #: The member's meter: import (consumers) or export (producers) counter difference. [Wh]
    gateway_wh: int | None
    difference_wh: int | None
    difference_percent: float | None
    flagged: bool


class PointReconciliationOut(BaseModel):
    metering_point: str
    role: str
    user_id: int
    meter_id: int | None
    #: ``chosen`` (the member's choice) or ``only_meter``; null without a meter.
    meter_link: str | None
    note: str | None
    compared: int
    flagged: int
    without_official: int
    without_gateway: int
    intervals: list[ComparisonOut]

    @classmethod
    def of(cls, point: PointReconciliation) -> PointReconciliationOut:
        return cls(
            metering_point=point.participant.metering_point,
            role=point.participant.role.value,
            user_id=point.participant.user_id,
            meter_id=point.link.meter_id,
            meter_link=None if point.link.kind is None else point.link.kind.value,
            note=point.link.note,
            compared=point.compared,
            flagged=point.flagged,
            without_official=point.without_official,
            without_gateway=point.without_gateway,
            intervals=[
                ComparisonOut(
                    start=c.start,
                    end=c.end,
                    official_wh=c.official_wh,
                    gateway_wh=c.gateway_wh,
                    difference_wh=c.difference_wh,
                    difference_percent=c.difference_percent,
                    flagged=c.flagged,
                )
                for c in point.intervals
            ],
        )


class ReconciliationOut(BaseModel):
    community_id: int
    start: datetime
    end: datetime
    resolution: str
    threshold_wh: int
    threshold_percent: Decimal
    points: list[PointReconciliationOut]


class PeriodOut(BaseModel):
    """One day or month of a metering point's figures."""

    period: str
    start: datetime
    end: datetime
    #: ``official``: the grid operator's values for every quarter hour; ``estimate``: ours
    #: (from the members' meters) for some, or some without data (``missing_intervals``);
    #: ``none``: no data.
    source: str
    official_days: int
    estimated_days: int
    #: Quarter hours the point took part in, and those without its own data.
    taking_intervals: int
    missing_intervals: int
    #: G.01 (consumption or production) and G.01T. [Wh]
    measured_wh: int
    participating_wh: int
    #: Consumers: allocated G.02, covered G.03, residual grid draw G.01 − G.03. [Wh]
    allocated_wh: int | None
    covered_wh: int | None
    residual_wh: int | None
    #: Producers: taken by consumers (G.01T − P.01T) and the surplus P.01T. [Wh]
    credited_wh: int | None
    surplus_wh: int | None
    #: Consumers: G.03 at the community's price (what the community bills); producers: what
    #: consumers took, at the community's producer price. [€]
    community_price_eur: Decimal
    #: Consumers, with a supplier tariff: the covered energy's full cost in the community
    #: (price, reduced grid fee, levies still due) and from the supplier, and the savings. [€]
    community_cost_eur: Decimal | None
    supplier_cost_eur: Decimal | None
    savings_eur: Decimal | None
    #: Producers, with a feed-in tariff: the same energy at it, and the gain over it. [€]
    feed_in_revenue_eur: Decimal | None
    gain_eur: Decimal | None
    #: With an emission factor: G.03 × factor. [g]
    co2_avoided_g: Decimal | None

    @classmethod
    def of(cls, p: Period, consumer: bool) -> PeriodOut:
        savings = None
        if p.community_cost_nct is not None and p.supplier_cost_nct is not None:
            savings = p.supplier_cost_nct - p.community_cost_nct
        gain = None
        if p.feed_in_revenue_nct is not None:
            gain = p.community_price_nct - p.feed_in_revenue_nct
        return cls(
            period=p.label,
            start=p.start,
            end=p.end,
            source=p.source.value,
            official_days=p.official_days,
            estimated_days=p.estimated_days,
            taking_intervals=p.taking_intervals,
            missing_intervals=p.missing_intervals,
            measured_wh=p.measured_wh,
            participating_wh=p.participating_wh,
            allocated_wh=p.allocated_wh if consumer else None,
            covered_wh=p.covered_wh if consumer else None,
            residual_wh=p.measured_wh - p.covered_wh if consumer else None,
            credited_wh=None if consumer else p.credited_wh,
            surplus_wh=None if consumer else p.surplus_wh,
            community_price_eur=euro(p.community_price_nct),
            community_cost_eur=euros(p.community_cost_nct),
            supplier_cost_eur=euros(p.supplier_cost_nct),
            savings_eur=euros(savings),
            feed_in_revenue_eur=euros(p.feed_in_revenue_nct),
            gain_eur=euros(gain),
            co2_avoided_g=None
            if p.co2_avoided_mg is None
            else (Decimal(p.co2_avoided_mg) / 1000).quantize(Decimal("0.001")),
        )


class PointEnergyOut(BaseModel):
    metering_point: str
    role: str
    user_id: int
    #: Why money figures are missing (no tariff set, no rule for the case), if so.
    pricing_note: str | None
    periods: list[PeriodOut]


class MemberEnergyOut(BaseModel):
    """Your own figures in this community."""

    community_id: int
    start: datetime
    end: datetime
    resolution: str
    estimate_note: str | None
    points: list[PointEnergyOut]


class CommunityPeriodOut(BaseModel):
    period: str
    start: datetime
    end: datetime
    source: str
    consumption_wh: int
    covered_wh: int
    production_wh: int
    credited_wh: int
    surplus_wh: int
    consumers_paid_eur: Decimal
    producers_credited_eur: Decimal
    #: Savings of the consumers with a supplier tariff, and how many they are.
    savings_eur: Decimal
    priced_consumers: int
    missing_intervals: int

    @classmethod
    def of(cls, p: CommunityPeriod) -> CommunityPeriodOut:
        return cls(
            period=p.label,
            start=p.start,
            end=p.end,
            source=p.source.value,
            consumption_wh=p.consumption_wh,
            covered_wh=p.covered_wh,
            production_wh=p.production_wh,
            credited_wh=p.credited_wh,
            surplus_wh=p.surplus_wh,
            consumers_paid_eur=euro(p.consumers_paid_nct),
            producers_credited_eur=euro(p.producers_credited_nct),
            savings_eur=euro(p.savings_nct),
            priced_consumers=p.priced_consumers,
            missing_intervals=p.missing_intervals,
        )


class CommunityEnergyOut(BaseModel):
    """The community's totals and each member's figures (operator)."""

    community_id: int
    start: datetime
    end: datetime
    resolution: str
    estimate_note: str | None
    totals: list[CommunityPeriodOut]
    members: list[PointEnergyOut]
