"""Our allocation of the official measurements against the grid operator's, to the Wh.

The domain engine (``ecommunity.community.allocate``) runs on the official G.01 of every point
taking part, with the community's allocation model, static keys and the participation factors
of our membership history; its G.01T, G.02, G.03 (consumers) and G.01T, P.01T (producers) are
compared with the delivered ones. A quarter hour is checked only when every point taking part
in it has its official G.01: the allocation depends on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Final

import numpy as np
from sqlalchemy.orm import Session

from ecommunity.cloud.actions.participation_rules import KEY_SCALE
from ecommunity.cloud.community_energy.official_csv import Quantity
from ecommunity.cloud.community_energy.participants import (
    BoolArray,
    Int64Array,
    Official,
    Participation,
    from_epoch_s,
    lay_out,
    load_participation,
)
from ecommunity.cloud.db.community_models import Community
from ecommunity.cloud.db.official_energy import official_values
from ecommunity.community import (
    Allocation,
    AllocationModel,
    CommunityError,
    Role,
    StaticKeys,
    allocate,
)

#: Differences listed in a check; the rest are counted.
MAX_DIFFERENCES: Final = 200

#: What is compared, per role.
COMPARED: Final = (
    (Role.CONSUMER, Quantity.G01T),
    (Role.CONSUMER, Quantity.G02),
    (Role.CONSUMER, Quantity.G03),
    (Role.PRODUCER, Quantity.G01T),
    (Role.PRODUCER, Quantity.P01T),
)


@dataclass(frozen=True)
class Difference:
    metering_point: str
    quantity: Quantity
    interval_start: datetime
    official_wh: int
    ours_wh: int


@dataclass(frozen=True)
class QuantityCheck:
    role: Role
    quantity: Quantity
    #: Official values compared in the checked quarter hours.
    compared: int
    equal: int
    #: Differences larger than the tolerance.
    beyond_tolerance: int
    max_abs_difference_wh: int


@dataclass(frozen=True)
class AllocationCheck:
    model: AllocationModel
    start: datetime
    end: datetime
    tolerance_wh: int
    #: Quarter hours in the range, those checked, and those skipped (a G.01 missing).
    intervals: int
    checked_intervals: int
    unchecked_intervals: int
    quantities: list[QuantityCheck]
    #: The first differences beyond the tolerance, by time and point.
    differences: list[Difference]
    #: Why nothing could be checked (e.g. static keys adding up to more than 1), if so.
    problem: str | None = None

    @property
    def reproduced(self) -> bool:
        """Every compared value within the tolerance, and something was compared."""
        return (
            self.problem is None
            and any(q.compared for q in self.quantities)
            and all(q.beyond_tolerance == 0 for q in self.quantities)
        )


def checkable_columns(
    participation: Participation, official: dict[tuple[Role, Quantity], Official]
) -> BoolArray:
    """Quarter hours in which someone takes part and everyone taking part has an official G.01."""
    ok = np.ones(participation.starts_s.size, dtype=bool)
    anyone = np.zeros_like(ok)
    for role in Role:
        taking = participation.side(role).tf_percent > 0
        present = official[(role, Quantity.G01)].present
        ok &= ~(taking & ~present).any(axis=0)
        anyone |= taking.any(axis=0)
    result: BoolArray = ok & anyone
    return result


def our_allocation(
    participation: Participation,
    consumption_wh: Int64Array,
    production_wh: Int64Array,
    columns: BoolArray,
    model: AllocationModel,
) -> Allocation:
    """The engine on the given G.01 ``(N, T)`` in the selected quarter hours.

    Raises:
        CommunityError: input the engine refuses (e.g. static keys adding up to more than 1).
    """
    consumers, producers = participation.consumers, participation.producers
    keys = None
    if model is AllocationModel.STATIC:
        keys = StaticKeys.from_values(
            Fraction(p.static_key_ppb or 0, KEY_SCALE) for p in consumers.participants
        )
    return allocate(
        consumption_wh[:, columns],
        production_wh[:, columns],
        model=model,
        consumer_tf_percent=consumers.tf_percent[:, columns],
        producer_tf_percent=producers.tf_percent[:, columns],
        keys=keys,
    )


def check_allocation(
    participation: Participation,
    official: dict[tuple[Role, Quantity], Official],
    *,
    model: AllocationModel,
    tolerance_wh: int = 0,
) -> AllocationCheck:
    """Allocate the official G.01 ourselves and compare with the official results."""
    columns = checkable_columns(participation, official)
    checked = int(columns.sum())

    def result(
        quantities: list[QuantityCheck], differences: list[Difference], problem: str | None = None
    ) -> AllocationCheck:
        return AllocationCheck(
            model=model,
            start=participation.start,
            end=participation.end,
            tolerance_wh=tolerance_wh,
            intervals=int(columns.size),
            checked_intervals=checked if problem is None else 0,
            unchecked_intervals=int(columns.size) - (checked if problem is None else 0),
            quantities=quantities,
            differences=differences[:MAX_DIFFERENCES],
            problem=problem,
        )

    consumption = official[(Role.CONSUMER, Quantity.G01)].energy_wh
    production = official[(Role.PRODUCER, Quantity.G01)].energy_wh
    try:
        ours = our_allocation(participation, consumption, production, columns, model)
    except CommunityError as exc:
        return result([], [], f"our engine refused the input: {exc}")
    computed = {
        (Role.CONSUMER, Quantity.G01T): ours.consumption_t_wh,
        (Role.CONSUMER, Quantity.G02): ours.allocated_wh,
        (Role.CONSUMER, Quantity.G03): ours.covered_wh,
        (Role.PRODUCER, Quantity.G01T): ours.production_t_wh,
        (Role.PRODUCER, Quantity.P01T): ours.surplus_wh,
    }
    starts = participation.starts_s[columns]
    quantities: list[QuantityCheck] = []
    differences: list[Difference] = []
    for role, quantity in COMPARED:
        given = official[(role, quantity)]
        present = given.present[:, columns]
        delta = np.where(present, computed[(role, quantity)] - given.energy_wh[:, columns], 0)
        beyond = present & (np.abs(delta) > tolerance_wh)
        quantities.append(
            QuantityCheck(
                role=role,
                quantity=quantity,
                compared=int(present.sum()),
                equal=int((present & (delta == 0)).sum()),
                beyond_tolerance=int(beyond.sum()),
                max_abs_difference_wh=int(np.abs(delta).max(initial=0)),
            )
        )
        points = participation.side(role).participants
        for row, column in zip(*np.nonzero(beyond), strict=True):
            differences.append(
                Difference(
                    metering_point=points[row].metering_point,
                    quantity=quantity,
                    interval_start=from_epoch_s(int(starts[column])),
                    official_wh=int(given.energy_wh[:, columns][row, column]),
                    ours_wh=int(computed[(role, quantity)][row, column]),
                )
            )
    differences.sort(key=lambda d: (d.interval_start, d.metering_point, d.quantity.value))
    return result(quantities, differences)


def check_stored(
    db: Session, community: Community, start: datetime, end: datetime, *, tolerance_wh: int = 0
) -> AllocationCheck:
    """:func:`check_allocation` on the stored official values of ``[start, end)`` (quarter-hour
    aligned, start before end)."""
    participation = load_participation(db, community.id, start, end)
    official = lay_out(official_values(db, community.id, start, end), participation)
    return check_allocation(
        participation,
        official,
        model=AllocationModel(community.allocation_model),
        tolerance_wh=tolerance_wh,
    )
