"""Members' energy per interval from their gateways' minute readings, allocated and priced with
``ecommunity.community``.

Who takes part, in which row and with which factor per quarter hour, is
``community_energy.participants.load_participation`` (rows are metering points, as the official
data's check allocates them); the allocation with static keys is its ``our_allocation``.

Which meter measures a metering point: the one its member chose for the membership, else
the member's only meter (``community_energy.meter_links``, as the reconciliation of official
data): a household's smart meter counts both directions, its import is the consumption point,
its export the generation point. A member with several meters and no choice, or none, has no
gateway data here.

A point whose meter did not report both ends of an interval (a reading at most ``TOLERANCE``
before each boundary) does not take part in that interval: its factor is 0 there, as for a
member not yet active, so it is neither allocated to nor counted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Final

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from ecommunity.cloud.community_energy.allocation_check import our_allocation
from ecommunity.cloud.community_energy.meter_links import meter_links
from ecommunity.cloud.community_energy.participants import Participation
from ecommunity.cloud.community_view.assumptions import generation_sources
from ecommunity.cloud.db.community_models import Community, GenerationPlant
from ecommunity.cloud.db.meter_counters import BoundaryCounters
from ecommunity.community import (
    STATUTORY_PARAMETERS,
    VIENNA,
    Allocation,
    AllocationModel,
    CommunityKind,
    CommunityPrices,
    ConsumerSavings,
    ConsumerTariff,
    GenerationSource,
    Role,
    Schedule,
    StatutoryParameters,
    allocate,
    consumer_savings,
)

#: How long before a boundary a reading may lie for the boundary to count (one lost minute
#: reading plus clock jitter), as for a meter's own history (``api/meters.py``).
TOLERANCE: Final = timedelta(minutes=2)
QUARTER_HOUR: Final = timedelta(minutes=15)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = 10**6
#: Euro amounts are answered to a hundredth of a cent.
EURO_PLACES: Final = Decimal("0.0001")

Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def epoch_s(at: datetime) -> int:
    return int((at - _EPOCH) // timedelta(seconds=1))


def vienna_day_of(at: datetime) -> date:
    return at.astimezone(VIENNA).date()


def starts_from(first: datetime, count: int, step: timedelta = QUARTER_HOUR) -> Int64Array:
    """``count`` interval starts from ``first``, UTC seconds."""
    step_s = int(step // timedelta(seconds=1))
    return epoch_s(first) + step_s * np.arange(count, dtype=np.int64)


def ratio(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to four places; None when there is no whole."""
    return None if whole <= 0 else round(part / whole, 4)


def meters_of(db: Session, participation: Participation) -> dict[Role, list[int | None]]:
    """Per role, each row's meter (``community_energy.meter_links``)."""
    sides = {role: participation.side(role).participants for role in Role}
    links = meter_links(db, [p for participants in sides.values() for p in participants])
    return {role: [links[p].meter_id for p in participants] for role, participants in sides.items()}


@dataclass(frozen=True, eq=False)
class SideCounters:
    """One role's counters at a window's boundaries, ``(N, B)``, and where they count. [Wh]"""

    value_wh: Int64Array
    fresh: BoolArray

    @classmethod
    def of(
        cls,
        role: Role,
        meters: Sequence[int | None],
        counters: dict[int, BoundaryCounters],
        boundaries: int,
    ) -> SideCounters:
        value = np.zeros((len(meters), boundaries), dtype=np.int64)
        fresh = np.zeros((len(meters), boundaries), dtype=np.bool_)
        for row, meter_id in enumerate(meters):
            if meter_id is None or meter_id not in counters:
                continue
            meter = counters[meter_id]
            if role is Role.CONSUMER:
                value[row], fresh[row] = meter.import_wh, meter.import_fresh
            else:
                value[row], fresh[row] = meter.export_wh, meter.export_fresh
        return cls(value, fresh)

    def energies(self) -> tuple[Int64Array, BoolArray]:
        """Energy between consecutive boundaries ``(N, B − 1)``, and where it is known."""
        known = self.fresh[:, 1:] & self.fresh[:, :-1]
        return np.where(known, np.diff(self.value_wh, axis=1), 0), known

    def between(self, first: int, last: int) -> tuple[Int64Array, BoolArray]:
        """Energy from boundary ``first`` to boundary ``last`` ``(N,)``, and where known."""
        known = self.fresh[:, first] & self.fresh[:, last]
        return np.where(known, self.value_wh[:, last] - self.value_wh[:, first], 0), known


def where_known(participation: Participation, known: dict[Role, BoolArray]) -> Participation:
    """The participation with factor 0 wherever a point's energy is not known."""
    sides = {
        role: dataclasses.replace(
            participation.side(role),
            tf_percent=np.where(known[role], participation.side(role).tf_percent, 0),
        )
        for role in Role
    }
    return dataclasses.replace(
        participation, consumers=sides[Role.CONSUMER], producers=sides[Role.PRODUCER]
    )


def allocate_known(
    participation: Participation,
    energy: dict[Role, Int64Array],
    known: dict[Role, BoolArray],
    model: AllocationModel,
    columns: BoolArray | None = None,
) -> Allocation:
    """The engine on the members' energies, each point taking part where its energy is known.

    Raises:
        CommunityError: input the engine refuses (static keys adding up to more than 1).
    """
    if columns is None:
        columns = np.ones(participation.starts_s.size, dtype=np.bool_)
    taking = where_known(participation, known)
    return our_allocation(
        taking,
        np.where(taking.consumers.tf_percent > 0, energy[Role.CONSUMER], 0),
        np.where(taking.producers.tf_percent > 0, energy[Role.PRODUCER], 0),
        columns,
        model,
    )


def community_prices(community: Community) -> Schedule[CommunityPrices]:
    """The community's current internal prices, for every day."""
    return Schedule.constant(
        "community prices",
        CommunityPrices(
            consumer_ct_per_kwh=Decimal(community.consumer_price_uct_per_kwh) / _MICRO,
            producer_ct_per_kwh=Decimal(community.producer_price_uct_per_kwh) / _MICRO,
        ),
    )


def sources_of(
    community: Community, plants: Sequence[GenerationPlant]
) -> frozenset[GenerationSource]:
    return generation_sources(
        CommunityKind(community.kind), {GenerationSource(p.source) for p in plants}
    )


def savings_of(
    allocation: Allocation,
    starts: NDArray[np.datetime64],
    community: Community,
    plants: Sequence[GenerationPlant],
    tariff: ConsumerTariff,
    parameters: StatutoryParameters = STATUTORY_PARAMETERS,
) -> ConsumerSavings:
    """The consumers' covered energy priced in the community and from the grid.

    Raises:
        MissingParameterError: no rule for the community's kind (a GEA: the rules doc gives no
            grid-fee figures for it).
    """
    return consumer_savings(
        allocation,
        starts,
        kind=CommunityKind(community.kind),
        sources=sources_of(community, plants),
        prices=community_prices(community),
        tariffs=Schedule.constant("reference tariff", tariff),
        emission_factor_g_per_kwh=0,
        parameters=parameters,
    )


@dataclass(frozen=True)
class PricesPerKwh:
    """What a kWh of community energy costs a member in total, and what the same kWh costs from
    the supplier with the full grid fee and levies, on one day. [ct/kWh]"""

    community_ct_per_kwh: Decimal
    grid_ct_per_kwh: Decimal


def prices_per_kwh(
    community: Community,
    plants: Sequence[GenerationPlant],
    tariff: ConsumerTariff,
    at: datetime,
    parameters: StatutoryParameters = STATUTORY_PARAMETERS,
) -> PricesPerKwh:
    """The domain's per-kWh rates of the quarter hour starting at ``at``: community price +
    reduced grid fee + levies still due, against supplier price + grid fee + levies.

    Raises:
        MissingParameterError: no rule for the community's kind.
    """
    nothing = np.zeros((1, 1), dtype=np.int64)
    allocation = allocate(nothing, nothing, model=AllocationModel.DYNAMIC)
    starts = np.array([epoch_s(at)], dtype=np.int64).astype("datetime64[s]")
    savings = savings_of(allocation, starts, community, plants, tariff, parameters)
    return PricesPerKwh(
        community_ct_per_kwh=Decimal(int(savings.community_rate_uct_per_kwh[0, 0])) / _MICRO,
        grid_ct_per_kwh=Decimal(int(savings.grid_rate_uct_per_kwh[0, 0])) / _MICRO,
    )
