"""Creating and editing a community. Each action runs one transaction.

The user who creates a community is its operator; only they edit it. Its kind and allocation
model are part of its contract with the grid operator (rules doc 1.1, 1.2): changing either
needs a new contract and a new community ID, so here they are fixed once created.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ecommunity.cloud.db.communities import find_community
from ecommunity.cloud.db.community_models import Community, CommunityPostalCode, GenerationPlant
from ecommunity.cloud.db.models import User
from ecommunity.cloud.errors import CloudError, ConflictError, ForbiddenError, NotFoundError
from ecommunity.community import AllocationModel, CommunityError, CommunityKind, GenerationSource
from ecommunity.community import Community as CommunityRules

logger = logging.getLogger(__name__)


class NotOperatorError(ForbiddenError):
    code = "not_operator"


class FixedFieldError(ConflictError):
    code = "fixed_field"


class GenerationSourceError(CloudError):
    code = "renewable_only"


@dataclass(frozen=True)
class PlantSpec:
    source: GenerationSource
    #: [Wp]
    peak_power_wp: int
    name: str = ""


@dataclass(frozen=True)
class CommunitySpec:
    """Everything an operator sets when creating a community, in base units."""

    name: str
    kind: CommunityKind
    allocation_model: AllocationModel
    grid_operator: str
    postal_codes: Sequence[str]
    #: [µct/kWh]
    consumer_price_uct_per_kwh: int
    producer_price_uct_per_kwh: int
    #: [°]
    latitude: float
    longitude: float
    description: str = ""
    municipality: str = ""
    area_id: str | None = None
    #: [cents/year]
    member_fee_cents_per_year: int = 0
    open_for_members: bool = True
    statutes: str = ""
    plants: Sequence[PlantSpec] = ()


@dataclass(frozen=True)
class CommunityChanges:
    """An edit: None leaves a field as it is; ``area_id=""`` clears the area id; ``plants``
    and ``postal_codes`` replace the whole list. ``kind`` and ``allocation_model`` may only
    repeat the current value."""

    name: str | None = None
    description: str | None = None
    kind: CommunityKind | None = None
    allocation_model: AllocationModel | None = None
    grid_operator: str | None = None
    municipality: str | None = None
    area_id: str | None = None
    postal_codes: Sequence[str] | None = None
    consumer_price_uct_per_kwh: int | None = None
    producer_price_uct_per_kwh: int | None = None
    member_fee_cents_per_year: int | None = None
    open_for_members: bool | None = None
    statutes: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    plants: Sequence[PlantSpec] | None = None


#: Fields copied as they are from CommunityChanges onto the row.
_PLAIN_FIELDS = (
    "name",
    "description",
    "grid_operator",
    "municipality",
    "consumer_price_uct_per_kwh",
    "producer_price_uct_per_kwh",
    "member_fee_cents_per_year",
    "open_for_members",
    "statutes",
    "latitude",
    "longitude",
)


def create_community(db: Session, operator: User, spec: CommunitySpec, *, now: datetime) -> int:
    """Create a community run by ``operator``; its id.

    Raises:
        GenerationSourceError: a non-renewable plant in an EEG.
    """
    _check_plants(spec.kind, spec.allocation_model, spec.plants)
    community = Community(
        operator_id=operator.id,
        name=spec.name,
        description=spec.description,
        kind=spec.kind.value,
        allocation_model=spec.allocation_model.value,
        grid_operator=spec.grid_operator,
        municipality=spec.municipality,
        area_id=spec.area_id or None,
        consumer_price_uct_per_kwh=spec.consumer_price_uct_per_kwh,
        producer_price_uct_per_kwh=spec.producer_price_uct_per_kwh,
        member_fee_cents_per_year=spec.member_fee_cents_per_year,
        open_for_members=spec.open_for_members,
        statutes=spec.statutes,
        latitude=spec.latitude,
        longitude=spec.longitude,
        created_at=now,
        updated_at=now,
    )
    db.add(community)
    db.flush()
    _replace_postal_codes(db, community.id, spec.postal_codes)
    _replace_plants(db, community.id, spec.plants)
    db.commit()
    logger.info("user %d created community %d (%s)", operator.id, community.id, spec.kind.value)
    return community.id


def update_community(
    db: Session, user: User, community_id: int, changes: CommunityChanges, *, now: datetime
) -> None:
    """Apply ``changes`` to a community ``user`` operates.

    Raises:
        NotFoundError: no such community.
        NotOperatorError: ``user`` does not operate it.
        FixedFieldError: a different kind or allocation model.
        GenerationSourceError: a non-renewable plant in an EEG.
    """
    community = operated_community(db, user, community_id, for_update=True)
    for field, current in (
        ("kind", community.kind),
        ("allocation_model", community.allocation_model),
    ):
        wanted = getattr(changes, field)
        if wanted is not None and wanted.value != current:
            raise FixedFieldError(
                f"{field} is fixed by the community's contract with the grid operator "
                f"({current}); changing it needs a new community"
            )
    kind, model = CommunityKind(community.kind), AllocationModel(community.allocation_model)
    if changes.plants is not None:
        _check_plants(kind, model, changes.plants)
        _replace_plants(db, community.id, changes.plants)
    if changes.postal_codes is not None:
        _replace_postal_codes(db, community.id, changes.postal_codes)
    for field in _PLAIN_FIELDS:
        value = getattr(changes, field)
        if value is not None:
            setattr(community, field, value)
    if changes.area_id is not None:
        community.area_id = changes.area_id or None
    community.updated_at = now
    db.commit()
    logger.info("user %d edited community %d", user.id, community.id)


def operated_community(
    db: Session, user: User, community_id: int, *, for_update: bool = False
) -> Community:
    """The community, if ``user`` operates it.

    Raises:
        NotFoundError: no such community.
        NotOperatorError: someone else operates it.
    """
    community = find_community(db, community_id, for_update=for_update)
    if community is None:
        raise NotFoundError(f"there is no community {community_id}")
    if community.operator_id != user.id:
        raise NotOperatorError(f"only the operator of community {community_id} may do this")
    return community


def _check_plants(kind: CommunityKind, model: AllocationModel, plants: Sequence[PlantSpec]) -> None:
    rules = CommunityRules(kind, model)
    for plant in plants:
        try:
            rules.check_generation_source(plant.source)
        except CommunityError as exc:
            raise GenerationSourceError(f"{exc}: {plant.source.value} is not renewable") from None


def _replace_postal_codes(db: Session, community_id: int, codes: Sequence[str]) -> None:
    db.execute(delete(CommunityPostalCode).where(CommunityPostalCode.community_id == community_id))
    db.add_all(
        CommunityPostalCode(community_id=community_id, postal_code=code)
        for code in dict.fromkeys(codes)
    )


def _replace_plants(db: Session, community_id: int, plants: Sequence[PlantSpec]) -> None:
    db.execute(delete(GenerationPlant).where(GenerationPlant.community_id == community_id))
    db.add_all(
        GenerationPlant(
            community_id=community_id,
            name=plant.name,
            source=plant.source.value,
            peak_power_wp=plant.peak_power_wp,
        )
        for plant in plants
    )
