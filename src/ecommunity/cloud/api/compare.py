"""/api/v1 route: ``GET /communities/compare?ids=1,2,3``, communities side by side with the
caller's estimated yearly savings in each (``cloud.community_view.compare``).

Registered before ``/communities/{community_id}`` (``app.py``): otherwise "compare" would be
taken for a community id.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from ecommunity.cloud.api.auth import ErrorOut
from ecommunity.cloud.api.clock import Now
from ecommunity.cloud.community_view.assumptions import REFERENCE_TARIFF
from ecommunity.cloud.community_view.compare import (
    Year,
    assumptions_of,
    caller_consumption,
    estimate_in,
    today_rules,
)
from ecommunity.cloud.community_view.schemas import (
    CommunityComparison,
    Comparison,
    PlantSummary,
)
from ecommunity.cloud.db.communities import find_community, member_counts, plants_of
from ecommunity.cloud.deps import CurrentCaller, DbSession
from ecommunity.cloud.errors import CloudError, NotFoundError
from ecommunity.community import AllocationModel, CommunityKind, ConsumerTariff, TariffError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["communities"])

MAX_COMPARED = 4
_MICRO = 10**6


def _price(what: str) -> object:
    """A price query parameter: [ct/kWh], net of VAT, at most four decimals."""
    return Query(ge=0, le=1000, decimal_places=4, description=f"{what}, net. [ct/kWh]")


class CompareIdsError(CloudError):
    code = "bad_ids"


class CompareTariffError(CloudError):
    code = "bad_tariff"


def parse_ids(text: str) -> list[int]:
    """``"1,2,3"`` as ids: 2 to 4 different community ids.

    Raises:
        CompareIdsError: anything else, with the reason.
    """
    parts = [part.strip() for part in text.split(",")]
    ids = []
    for part in parts:
        if not part.isdigit() or not 0 < int(part) < 2**31:
            raise CompareIdsError(f"ids is a comma-separated list of community ids, got {part!r}")
        ids.append(int(part))
    if len(set(ids)) != len(ids):
        raise CompareIdsError("ids names a community twice")
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise CompareIdsError(f"compare 2 to {MAX_COMPARED} communities, got {len(ids)}")
    return ids


@router.get(
    "/communities/compare",
    response_model=Comparison,
    responses={
        400: {
            "model": ErrorOut,
            "description": "ids not 2 to 4 community ids; no gateway history and no "
            "annual_kwh; a tariff the domain refuses",
        },
        401: {"model": ErrorOut, "description": "Not signed in"},
        404: {"model": ErrorOut, "description": "No such community"},
    },
)
def compare_communities(
    caller: CurrentCaller,
    db: DbSession,
    now: Now,
    ids: Annotated[
        str,
        Query(
            max_length=64,
            description="2 to 4 community ids, comma-separated (1,2,3)",
            examples=["1,2"],
        ),
    ],
    annual_kwh: Annotated[
        Decimal | None,
        Query(
            gt=0,
            le=1_000_000,
            decimal_places=1,
            description="Your yearly consumption, when no paired gateway has a day of history. "
            "[kWh]",
        ),
    ] = None,
    supplier_ct_per_kwh: Annotated[Decimal | None, _price("Your supplier's energy price")] = None,
    grid_fee_ct_per_kwh: Annotated[
        Decimal | None, _price("Your energy-based grid usage fee")
    ] = None,
    renewable_levy_ct_per_kwh: Annotated[
        Decimal | None, _price("The Erneuerbaren-Förderbeitrag")
    ] = None,
    grid_level: Annotated[
        int, Query(ge=1, le=7, description="The grid level you are connected at (7: household)")
    ] = REFERENCE_TARIFF.grid_level,
) -> Comparison:
    """Communities side by side, with your estimated yearly savings in each.

    Your consumption comes from your gateway's last year of minute readings when it has a day
    of them (``basis: metered``), else from ``annual_kwh`` shaped by the standard load profile
    H0 (``basis: h0``). Each community's production is its producer members' metered history
    (``production_basis: metered``) or its PV plants' kWp in a typical year (``kwp``). You join
    with factor 100 %. Grid prices are a reference tariff unless you give yours. The
    assumptions and notes come with the answer (docs/cloud-communities.md).
    """
    wanted = parse_ids(ids)
    communities = []
    for community_id in wanted:
        community = find_community(db, community_id)
        if community is None:
            raise NotFoundError(f"there is no community {community_id}")
        communities.append(community)
    try:
        tariff = ConsumerTariff(
            energy_ct_per_kwh=(
                REFERENCE_TARIFF.energy_ct_per_kwh
                if supplier_ct_per_kwh is None
                else supplier_ct_per_kwh
            ),
            grid_usage_ct_per_kwh=(
                REFERENCE_TARIFF.grid_usage_ct_per_kwh
                if grid_fee_ct_per_kwh is None
                else grid_fee_ct_per_kwh
            ),
            renewable_levy_ct_per_kwh=(
                REFERENCE_TARIFF.renewable_levy_ct_per_kwh
                if renewable_levy_ct_per_kwh is None
                else renewable_levy_ct_per_kwh
            ),
            grid_level=grid_level,
        )
    except TariffError as exc:
        raise CompareTariffError(str(exc)) from None
    year = Year.before(now)
    caller_year = caller_consumption(db, caller.user.id, annual_kwh, year)
    rules = today_rules(now)
    plants = plants_of(db, wanted)
    counts = member_counts(db, wanted)
    compared = []
    for community in communities:
        own_plants = plants.get(community.id, [])
        estimate, unavailable = estimate_in(
            db,
            community,
            own_plants,
            user_id=caller.user.id,
            caller=caller_year,
            year=year,
            now=now,
            tariff=tariff,
            rules=rules,
        )
        compared.append(
            CommunityComparison(
                id=community.id,
                name=community.name,
                kind=CommunityKind(community.kind),
                allocation_model=AllocationModel(community.allocation_model),
                consumer_price_ct_per_kwh=_ct(community.consumer_price_uct_per_kwh),
                producer_price_ct_per_kwh=_ct(community.producer_price_uct_per_kwh),
                member_fee_eur_per_year=(
                    Decimal(community.member_fee_cents_per_year) / 100
                ).quantize(Decimal("0.01")),
                member_count=counts.get(community.id, 0),
                generation_kwp=Decimal(sum(p.peak_power_wp for p in own_plants)) / 1000,
                plants=[
                    PlantSummary(
                        source=p.source, peak_power_kwp=Decimal(p.peak_power_wp) / 1000, name=p.name
                    )
                    for p in own_plants
                ],
                open_for_members=community.open_for_members,
                estimate=estimate,
                estimate_unavailable=unavailable,
            )
        )
    return Comparison(
        assumptions=assumptions_of(caller_year, year, now, tariff), communities=compared
    )


def _ct(uct: int) -> Decimal:
    return (Decimal(uct) / _MICRO).quantize(Decimal("0.0001"))
