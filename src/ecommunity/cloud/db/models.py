"""SQLAlchemy models. Instants are stored as timezone-aware UTC; energies as integer Wh."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so that Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


UtcDateTime = DateTime(timezone=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Lower-cased; unique.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class UserSession(Base):
    """A login: the bearer token (API clients) and the cookie (web app) are the same secret."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: SHA-256 of the token: a database leak does not leak sessions.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class LoginAttempt(Base):
    """Failed logins, for rate limiting per account and per address (works across instances)."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class DeviceAuthorization(Base):
    """One RFC 8628 device authorization request of a gateway."""

    __tablename__ = "device_authorizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: What the user types, without the dash: 8 characters from an unambiguous alphabet.
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    hardware_id: Mapped[str] = mapped_column(String(128))
    #: pending, approved, denied, consumed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    interval_s: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    device_name: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Device(Base):
    """A paired gateway. Its token authenticates the uplink; revoking it ends the uplink."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    hardware_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Meter(Base):
    """A meter read by a gateway (a gateway reads one meter; the model allows more)."""

    __tablename__ = "meters"
    __table_args__ = (UniqueConstraint("device_id", "serial", name="uq_meters_device_serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    #: The meter's own id as its frames carry it ("" when they carry none).
    serial: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


#: Reading flags (bit mask).
FLAG_COUNTER_BACKWARDS = 1
FLAG_IMPLAUSIBLE_JUMP = 2


class _ReadingColumns:
    meter_id: Mapped[int] = mapped_column(
        ForeignKey("meters.id", ondelete="CASCADE"), primary_key=True
    )
    #: The meter's time stamp, UTC.
    measured_at: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    energy_import_wh: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    energy_export_wh: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    power_import_w: Mapped[int | None] = mapped_column(Integer, nullable=True)
    power_export_w: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: FLAG_* bits: a counter that ran backwards or jumped is kept, flagged, never summed.
    flags: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MinuteReading(_ReadingColumns, Base):
    """One reading per meter and minute: the uplink's steady stream and its backfill."""

    __tablename__ = "minute_readings"
    __table_args__ = (
        Index("ix_minute_readings_measured_at", "measured_at", postgresql_using="brin"),
    )


class RawReading(_ReadingColumns, Base):
    """Every push, while someone watches live; kept ``raw_retention_days``."""

    __tablename__ = "raw_readings"
    __table_args__ = (Index("ix_raw_readings_measured_at", "measured_at", postgresql_using="brin"),)


# The community tables live in a module of their own on the same Base: importing it here puts
# them into Base.metadata wherever the models are used (Alembic, the test fixtures).
from ecommunity.cloud.db import community_models as _community_models  # noqa: E402, F401
from ecommunity.cloud.db import energy_models as _energy_models  # noqa: E402, F401
