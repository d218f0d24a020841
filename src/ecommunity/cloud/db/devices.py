"""Queries on paired gateways and their RFC 8628 device authorizations. Each takes a Session;
none commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from ecommunity.cloud.db import postgres
from ecommunity.cloud.db.models import Device, DeviceAuthorization


def find_authorization_by_device_code_hash(
    db: Session, device_code_hash: str, *, for_update: bool = False
) -> DeviceAuthorization | None:
    """The authorization a gateway polls with. ``for_update`` locks the row on PostgreSQL, so
    that two polls racing each other cannot both collect the device token."""
    query = select(DeviceAuthorization).where(
        DeviceAuthorization.device_code_hash == device_code_hash
    )
    if for_update:
        query = query.with_for_update()
    return db.scalar(query)


def find_authorization_by_user_code(
    db: Session, user_code: str, *, for_update: bool = False
) -> DeviceAuthorization | None:
    """The authorization a user confirms or denies (``user_code`` normalised: no dash, upper
    case)."""
    query = select(DeviceAuthorization).where(DeviceAuthorization.user_code == user_code)
    if for_update:
        query = query.with_for_update()
    return db.scalar(query)


def user_code_taken(db: Session, user_code: str) -> bool:
    """Whether any stored authorization (of any state) has this user code."""
    return bool(db.scalar(select(exists().where(DeviceAuthorization.user_code == user_code))))


def forget_authorizations_expired_before(db: Session, cutoff: datetime) -> None:
    """Delete authorizations that expired before ``cutoff``: no gateway can use them any more,
    and their user codes become free again."""
    db.execute(delete(DeviceAuthorization).where(DeviceAuthorization.expires_at < cutoff))


def find_device_by_token_hash(db: Session, token_hash: str) -> Device | None:
    """The device whose ``token_hash`` column holds this value, revoked or not."""
    return db.scalar(select(Device).where(Device.token_hash == token_hash))


def find_live_device_id(db: Session, token_hash: str) -> int | None:
    """The id of the unrevoked device whose ``token_hash`` column holds this value: one cheap
    statement (every batch upload asks it; on PostgreSQL a prepared one)."""
    if db.get_bind().dialect.name == "postgresql":
        return postgres.live_device_id(db, token_hash)
    statement = select(Device.id).where(
        Device.token_hash == token_hash, Device.revoked_at.is_(None)
    )
    return db.scalar(statement)


def list_devices_of_user(db: Session, user_id: int) -> Sequence[Device]:
    """All gateways ``user_id`` paired, revoked ones included, oldest first."""
    return db.scalars(
        select(Device).where(Device.user_id == user_id).order_by(Device.created_at, Device.id)
    ).all()


def find_device_of_user(db: Session, user_id: int, device_id: int) -> Device | None:
    """The device ``device_id`` if ``user_id`` paired it; None for anyone else's."""
    return db.scalar(select(Device).where(Device.id == device_id, Device.user_id == user_id))
