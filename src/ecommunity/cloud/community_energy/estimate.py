"""Estimates where official values are missing: our engine on the members' own meter data.

Each point's G.01 per quarter hour is its official one where delivered, else the energy its
member's meter counted (counter differences, ``cloud.db.readings.energy_intervals``:
consumption from the import counter, production from the export counter), else unknown. The
engine then allocates with the community's model, keys and participation factors. An unknown
G.01 enters as 0, and every point's unknown quarter hours are kept, so that a member's own
figures are never made up from nothing (their unknown quarter hours stay unknown) and the
operator sees how much of the community an estimate is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from ecommunity.cloud.community_energy.allocation_check import our_allocation
from ecommunity.cloud.community_energy.meter_links import MeterLink
from ecommunity.cloud.community_energy.official_csv import Quantity
from ecommunity.cloud.community_energy.participants import (
    BoolArray,
    Int64Array,
    Official,
    Participant,
    Participation,
    from_epoch_s,
)
from ecommunity.cloud.community_energy.reconciliation import BOUNDARY_TOLERANCE
from ecommunity.cloud.db.readings import energy_intervals
from ecommunity.community import AllocationModel, Role

_INTERVAL_S = 900


@dataclass(frozen=True, eq=False)
class Measured:
    """G.01 per role ``(N, T)`` from official values or meters, and where it is known."""

    energy_wh: dict[Role, Int64Array]
    known: dict[Role, BoolArray]


@dataclass(frozen=True, eq=False)
class Estimate:
    """Our allocation in the estimated quarter hours (``columns``), on the full grid."""

    columns: BoolArray
    measured: Measured
    #: Consumers ``(N_c, T)``: G.01T, G.02, G.03; producers ``(N_p, T)``: G.01T, P.01T.
    consumption_t_wh: Int64Array
    allocated_wh: Int64Array
    covered_wh: Int64Array
    production_t_wh: Int64Array
    surplus_wh: Int64Array


def measured_g01(
    db: Session,
    participation: Participation,
    official: dict[tuple[Role, Quantity], Official],
    links: dict[Participant, MeterLink],
    columns: BoolArray,
    *,
    now: datetime,
) -> Measured:
    """Every point's G.01 in the selected quarter hours: official, else from its meter."""
    energy: dict[Role, Int64Array] = {}
    known: dict[Role, BoolArray] = {}
    for role in Role:
        given = official[(role, Quantity.G01)]
        values = given.energy_wh.copy()
        present = given.present.copy()
        for row, participant in enumerate(participation.side(role).participants):
            link = links.get(participant)
            wanted = columns & ~present[row]
            if link is None or link.meter_id is None or not wanted.any():
                continue
            for column, wh in _meter_quarter_hours(
                db, link.meter_id, participation, wanted, role, now
            ):
                values[row, column] = wh
                present[row, column] = True
        energy[role], known[role] = values, present
    return Measured(energy, known)


def _meter_quarter_hours(
    db: Session,
    meter_id: int,
    participation: Participation,
    wanted: BoolArray,
    role: Role,
    now: datetime,
) -> list[tuple[int, int]]:
    """(column, Wh) of the wanted quarter hours the meter measured completely."""
    starts = participation.starts_s[wanted]
    edges = np.union1d(starts, starts + _INTERVAL_S)
    boundaries = [from_epoch_s(int(s)) for s in edges]
    found = []
    first = int(participation.starts_s[0])
    wanted_starts = set(starts.tolist())
    for interval in energy_intervals(
        db, meter_id, boundaries, tolerance=BOUNDARY_TOLERANCE, now=now
    ):
        start_s = int(interval.start.timestamp())
        if start_s not in wanted_starts or not interval.complete:
            continue
        wh = interval.energy_import_wh if role is Role.CONSUMER else interval.energy_export_wh
        if wh is not None and wh >= 0:
            found.append(((start_s - first) // _INTERVAL_S, wh))
    return found


def estimate(
    participation: Participation,
    measured: Measured,
    columns: BoolArray,
    model: AllocationModel,
) -> Estimate:
    """Our allocation of the measured G.01 (unknown as 0) in the selected quarter hours.

    Raises:
        CommunityError: input the engine refuses (e.g. static keys adding up to more than 1).
    """
    consumption = np.where(measured.known[Role.CONSUMER], measured.energy_wh[Role.CONSUMER], 0)
    production = np.where(measured.known[Role.PRODUCER], measured.energy_wh[Role.PRODUCER], 0)
    allocation = our_allocation(participation, consumption, production, columns, model)
    return Estimate(
        columns=columns,
        measured=measured,
        consumption_t_wh=_spread(allocation.consumption_t_wh, columns),
        allocated_wh=_spread(allocation.allocated_wh, columns),
        covered_wh=_spread(allocation.covered_wh, columns),
        production_t_wh=_spread(allocation.production_t_wh, columns),
        surplus_wh=_spread(allocation.surplus_wh, columns),
    )


def _spread(values: Int64Array, columns: BoolArray) -> Int64Array:
    out = np.zeros((values.shape[0], columns.size), dtype=np.int64)
    out[:, columns] = values
    return out


def unknown_quarter_hours(
    participation: Participation, measured: Measured, columns: BoolArray
) -> dict[Role, Int64Array]:
    """Per role and point: quarter hours among ``columns`` it takes part in without a G.01."""
    return {
        role: ((participation.side(role).tf_percent > 0) & ~measured.known[role] & columns).sum(
            axis=1
        )
        for role in Role
    }
