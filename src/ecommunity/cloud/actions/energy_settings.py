"""A member sets, per membership, the meter that measures its metering point and the tariff
their savings are priced against. One transaction; replaces what was set before."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ecommunity.cloud.db.communities import find_membership_of_user
from ecommunity.cloud.db.energy_models import MemberEnergySettings
from ecommunity.cloud.db.models import User
from ecommunity.cloud.db.readings import meter_of_user
from ecommunity.cloud.errors import CloudError, NotFoundError
from ecommunity.community import Role

logger = logging.getLogger(__name__)


class WrongRoleError(CloudError):
    code = "wrong_role"


@dataclass(frozen=True)
class EnergySettingsSpec:
    """Everything settable; None clears. Prices [µct/kWh]."""

    meter_id: int | None = None
    energy_price_uct_per_kwh: int | None = None
    grid_usage_uct_per_kwh: int | None = None
    renewable_levy_uct_per_kwh: int | None = None
    grid_level: int | None = None
    consumer_category: str | None = None
    feed_in_uct_per_kwh: int | None = None

    @property
    def has_consumer_tariff(self) -> bool:
        return any(
            value is not None
            for value in (
                self.energy_price_uct_per_kwh,
                self.grid_usage_uct_per_kwh,
                self.renewable_levy_uct_per_kwh,
                self.grid_level,
                self.consumer_category,
            )
        )


def set_energy_settings(
    db: Session, user: User, membership_id: int, spec: EnergySettingsSpec, *, now: datetime
) -> MemberEnergySettings:
    """Replace the settings of one of ``user``'s memberships and commit.

    Raises:
        NotFoundError: not the user's membership, or not the user's meter.
        WrongRoleError: a consumer's tariff on a producer's membership or the other way round.
    """
    membership = find_membership_of_user(db, user.id, membership_id)
    if membership is None:
        raise NotFoundError(f"you have no membership {membership_id}")
    if spec.meter_id is not None and meter_of_user(db, user.id, spec.meter_id) is None:
        raise NotFoundError(f"no meter {spec.meter_id} among yours")
    role = Role(membership.role)
    if role is Role.PRODUCER and spec.has_consumer_tariff:
        raise WrongRoleError("a producer's membership takes a feed-in tariff, not a supplier's")
    if role is Role.CONSUMER and spec.feed_in_uct_per_kwh is not None:
        raise WrongRoleError("a consumer's membership takes a supplier tariff, not a feed-in one")
    settings = db.get(MemberEnergySettings, membership_id)
    if settings is None:
        settings = MemberEnergySettings(membership_id=membership_id, updated_at=now)
        db.add(settings)
    settings.meter_id = spec.meter_id
    settings.energy_price_uct_per_kwh = spec.energy_price_uct_per_kwh
    settings.grid_usage_uct_per_kwh = spec.grid_usage_uct_per_kwh
    settings.renewable_levy_uct_per_kwh = spec.renewable_levy_uct_per_kwh
    settings.grid_level = spec.grid_level
    settings.consumer_category = spec.consumer_category
    settings.feed_in_uct_per_kwh = spec.feed_in_uct_per_kwh
    settings.updated_at = now
    db.commit()
    logger.info("membership %d: energy settings set", membership_id)
    return settings
