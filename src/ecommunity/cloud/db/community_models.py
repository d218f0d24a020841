"""SQLAlchemy models of energy communities: the community, its area and plants, memberships
(applications included) with their participation-factor history, and notifications.

Money and sizes are integers in base units, exact on SQLite and PostgreSQL alike: prices in
µct/kWh (the community domain's unit), fees in cents, plant sizes in Wp, static keys in parts
per billion. Instants are UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ecommunity.cloud.db.models import Base, UtcDateTime

#: Membership states that hold a place (and a participation factor) in a community.
OPEN_STATES = ("applied", "approved", "active")
_OPEN_STATES_SQL = text("status IN ('applied', 'approved', 'active')")


class Community(Base):
    """An energy community; ``operator_id`` is the user who created and runs it."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    #: ``ecommunity.community.CommunityKind`` value; fixed by the grid-operator contract.
    kind: Mapped[str] = mapped_column(String(16), index=True)
    #: ``ecommunity.community.AllocationModel`` value; fixed by the grid-operator contract.
    allocation_model: Mapped[str] = mapped_column(String(16))
    grid_operator: Mapped[str] = mapped_column(String(100))
    municipality: Mapped[str] = mapped_column(String(100), default="")
    #: The grid operator's local/regional area id (transformer or substation), if known.
    area_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    consumer_price_uct_per_kwh: Mapped[int] = mapped_column(BigInteger)
    producer_price_uct_per_kwh: Mapped[int] = mapped_column(BigInteger)
    member_fee_cents_per_year: Mapped[int] = mapped_column(BigInteger, default=0)
    open_for_members: Mapped[bool] = mapped_column(Boolean, default=True)
    statutes: Mapped[str] = mapped_column(Text, default="")
    #: Where the finder measures distances from. [°, WGS 84]
    latitude: Mapped[float] = mapped_column(Float, index=True)
    longitude: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CommunityPostalCode(Base):
    """One postal code of a community's area (the finder's match for an address)."""

    __tablename__ = "community_postal_codes"

    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    postal_code: Mapped[str] = mapped_column(String(8), primary_key=True, index=True)


class GenerationPlant(Base):
    """A generating plant of a community."""

    __tablename__ = "generation_plants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100), default="")
    #: ``ecommunity.community.GenerationSource`` value.
    source: Mapped[str] = mapped_column(String(16))
    peak_power_wp: Mapped[int] = mapped_column(BigInteger)


class CommunityMembership(Base):
    """One metering point's application to, and membership in, one community.

    States: applied → approved or rejected; approved → active (the grid operator registered the
    point; it takes part from ``active_from``); any open state → left. Rows are never deleted:
    leaving ends the period (``active_until``) and keeps the history.
    """

    __tablename__ = "community_memberships"
    __table_args__ = (
        # One open application or membership per community and metering point; the partial
        # index makes a racing second application fail instead of slipping in.
        Index(
            "uq_community_memberships_open_point",
            "community_id",
            "metering_point",
            unique=True,
            sqlite_where=_OPEN_STATES_SQL,
            postgresql_where=_OPEN_STATES_SQL,
        ),
        Index("ix_community_memberships_community_status", "community_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: 33 characters, ``AT`` first, normalised (upper case, no spaces).
    metering_point: Mapped[str] = mapped_column(String(33), index=True)
    #: ``ecommunity.community.Role`` value.
    role: Mapped[str] = mapped_column(String(16))
    #: applied, approved, rejected, active, left
    status: Mapped[str] = mapped_column(String(16))
    #: The latest participation factor asked for (it may apply only from tomorrow; see
    #: ParticipationFactor for when each applies). [%]
    tf_percent: Mapped[int] = mapped_column(Integer)
    #: Static allocation key in parts per billion (static communities only).
    static_key_ppb: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    applied_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: When the statutes were accepted (the applicant's consent).
    statutes_accepted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    rejection_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: When the operator recorded the registration at the grid operator.
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: From when the point takes part (a Vienna midnight).
    active_from: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: Until when it takes part (a Vienna midnight), once it left.
    active_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ParticipationFactor(Base):
    """A participation factor of a membership and the instant from which it applies.

    The factor at instant t is the one with the latest ``valid_from`` at or before t. The first
    row is the applicant's; changes of an active membership apply from the next Vienna day.
    """

    __tablename__ = "participation_factors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    membership_id: Mapped[int] = mapped_column(
        ForeignKey("community_memberships.id", ondelete="CASCADE"), index=True
    )
    tf_percent: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Notification(Base):
    """A message to one user about a change in a community (an application's state, a factor)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), nullable=True
    )
    membership_id: Mapped[int | None] = mapped_column(
        ForeignKey("community_memberships.id", ondelete="CASCADE"), nullable=True
    )
    #: What happened, e.g. ``membership_applied`` (see ``cloud.actions.notifications``).
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
