"""Queries the live relay needs of devices and meters. Each takes a Session; none commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecommunity.cloud.db.models import Device, Meter


def active_device(db: Session, device_id: int) -> Device | None:
    """The device, unless it is gone or its token was revoked."""
    return db.scalar(select(Device).where(Device.id == device_id, Device.revoked_at.is_(None)))


def meter_ids_of_device(db: Session, device_id: int) -> list[int]:
    """The ids of the meters a gateway reads (bound on their first reading)."""
    return list(db.scalars(select(Meter.id).where(Meter.device_id == device_id).order_by(Meter.id)))
