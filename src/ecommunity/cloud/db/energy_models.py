"""SQLAlchemy models of a community's energy data: the grid operator's official 15-minute
values (G.01, G.01T, G.02, G.03, G.03R, P.01, P.01T per metering point), each delivery that
brought them, the corrections a re-delivery made, and what a member tells us to compare and
price their figures with (their meter, their supplier's tariff).

Energies are integer Wh, prices integer µct/kWh (the community domain's units); instants UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ecommunity.cloud.db.models import Base, UtcDateTime


class OfficialEnergyImport(Base):
    """One delivery of official values, imported whole or not at all."""

    __tablename__ = "official_energy_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    #: The operator who uploaded it; None for ``ecommunity cloud import-energy``.
    imported_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: The file name (CLI) or "upload".
    source: Mapped[str] = mapped_column(String(200))
    rows: Mapped[int] = mapped_column(Integer)
    new_values: Mapped[int] = mapped_column(Integer)
    #: Values that replaced a different earlier value (each kept in OfficialEnergyCorrection).
    corrections: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    #: Missing member-intervals in the delivered range after this import.
    gaps: Mapped[int] = mapped_column(Integer)
    #: The delivered range: the first interval's start and the last one's end.
    first_start: Mapped[datetime] = mapped_column(UtcDateTime)
    last_end: Mapped[datetime] = mapped_column(UtcDateTime)


class OfficialEnergyValue(Base):
    """The current official value of one quantity of one metering point in one quarter hour.

    The role (consumer or producer) is the membership's in that interval: both directions use
    G.01 (rules doc 1.4).
    """

    __tablename__ = "official_energy_values"
    __table_args__ = (
        Index("ix_official_energy_values_community_start", "community_id", "interval_start"),
    )

    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    metering_point: Mapped[str] = mapped_column(String(33), primary_key=True)
    #: ``G.01``, ``G.01T``, ``G.02``, ``G.03``, ``G.03R``, ``P.01`` or ``P.01T``.
    quantity: Mapped[str] = mapped_column(String(8), primary_key=True)
    interval_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    energy_wh: Mapped[int] = mapped_column(BigInteger)
    #: The grid operator's quality flag (L1 measured, L2 replaced, L3 estimated), if given.
    quality: Mapped[str | None] = mapped_column(String(2), nullable=True)
    import_id: Mapped[int] = mapped_column(
        ForeignKey("official_energy_imports.id", ondelete="CASCADE"), index=True
    )


class OfficialEnergyCorrection(Base):
    """A re-delivered value that differed from the one before: the history of corrections."""

    __tablename__ = "official_energy_corrections"
    __table_args__ = (
        Index(
            "ix_official_energy_corrections_value",
            "community_id",
            "metering_point",
            "interval_start",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    metering_point: Mapped[str] = mapped_column(String(33))
    quantity: Mapped[str] = mapped_column(String(8))
    interval_start: Mapped[datetime] = mapped_column(UtcDateTime)
    previous_energy_wh: Mapped[int] = mapped_column(BigInteger)
    energy_wh: Mapped[int] = mapped_column(BigInteger)
    previous_import_id: Mapped[int] = mapped_column(
        ForeignKey("official_energy_imports.id", ondelete="CASCADE")
    )
    import_id: Mapped[int] = mapped_column(
        ForeignKey("official_energy_imports.id", ondelete="CASCADE"), index=True
    )


class MemberEnergySettings(Base):
    """What a member set for one membership: the meter whose gateway data measures its metering
    point (reconciliation, estimates), and the tariff its savings are priced against."""

    __tablename__ = "member_energy_settings"

    membership_id: Mapped[int] = mapped_column(
        ForeignKey("community_memberships.id", ondelete="CASCADE"), primary_key=True
    )
    meter_id: Mapped[int | None] = mapped_column(
        ForeignKey("meters.id", ondelete="SET NULL"), nullable=True
    )
    #: Consumers: the supplier's energy price, the grid usage fee (Arbeitspreis) at their grid
    #: level, the Erneuerbaren-Förderbeitrag per kWh. [µct/kWh]
    energy_price_uct_per_kwh: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    grid_usage_uct_per_kwh: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    renewable_levy_uct_per_kwh: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    grid_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: ``ecommunity.community.ConsumerCategory`` value.
    consumer_category: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: Producers: what their surplus buyer pays. [µct/kWh]
    feed_in_uct_per_kwh: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
