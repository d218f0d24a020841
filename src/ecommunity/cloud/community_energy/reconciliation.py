"""Official measurements against the members' own meters: a difference beyond a threshold is
flagged.

For each metering point and interval (a quarter hour, an hour or a Vienna day): the official
G.01 (consumers: consumption; producers: production, rules doc 1.4) summed over the quarter
hours the point takes part in, against the energy of the member's meter from its counters
(``cloud.db.readings.energy_intervals``: consumption from the import counter, production from
the export counter). An interval is compared when the official values of all its quarter hours
are there and the meter's counters were read close to both ends. It is flagged when the
difference exceeds both the absolute threshold and the relative one (of the official value):
small intervals then do not flag on a few Wh, large ones not on a fraction of a percent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Final

import numpy as np
from sqlalchemy.orm import Session

from ecommunity.cloud.community_energy.meter_links import MeterLink
from ecommunity.cloud.community_energy.official_csv import Quantity
from ecommunity.cloud.community_energy.participants import (
    Official,
    Participant,
    Participation,
    epoch_s,
)
from ecommunity.cloud.db.readings import energy_intervals
from ecommunity.community import Role

#: How long before an interval boundary a counter reading may lie (as the meters' history).
BOUNDARY_TOLERANCE: Final = timedelta(minutes=2)


class Resolution(StrEnum):
    QUARTER_HOUR = "15min"
    HOUR = "1h"
    DAY = "1d"


@dataclass(frozen=True)
class Thresholds:
    """Flag when ``|gateway − official|`` exceeds both. [Wh], [%]"""

    energy_wh: int
    percent: Fraction


@dataclass(frozen=True)
class Comparison:
    start: datetime
    end: datetime
    #: [Wh]; None when incomplete.
    official_wh: int | None
    gateway_wh: int | None
    #: gateway − official. [Wh]
    difference_wh: int | None
    #: Of the official value; None when it is 0 or either is missing. [%]
    difference_percent: float | None
    flagged: bool


@dataclass(frozen=True)
class PointReconciliation:
    participant: Participant
    link: MeterLink
    compared: int
    flagged: int
    #: Intervals the point takes part in without every official G.01, or without meter data.
    without_official: int
    without_gateway: int
    intervals: list[Comparison]


def reconcile(
    db: Session,
    participation: Participation,
    official: dict[tuple[Role, Quantity], Official],
    subjects: Sequence[tuple[Role, int]],
    links: dict[Participant, MeterLink],
    boundaries: Sequence[datetime],
    *,
    thresholds: Thresholds,
    now: datetime,
    flagged_only: bool = False,
) -> list[PointReconciliation]:
    """Compare the ``subjects`` (role, row) over the intervals between ``boundaries`` (which
    lie on the participation's quarter hours)."""
    edges = np.array(
        [(epoch_s(b) - int(participation.starts_s[0])) // 900 for b in boundaries], dtype=np.int64
    )
    results = []
    for role, row in subjects:
        side = participation.side(role)
        participant = side.participants[row]
        link = links[participant]
        given = official[(role, Quantity.G01)]
        taking = side.tf_percent[row] > 0
        meter = None
        if link.meter_id is not None:
            meter = energy_intervals(
                db, link.meter_id, boundaries, tolerance=BOUNDARY_TOLERANCE, now=now
            )
        intervals: list[Comparison] = []
        counts = {"compared": 0, "flagged": 0, "without_official": 0, "without_gateway": 0}
        for index in range(len(boundaries) - 1):
            first, stop = int(edges[index]), int(edges[index + 1])
            part = taking[first:stop]
            if not part.any():
                continue
            official_wh = None
            if given.present[row, first:stop][part].all():
                official_wh = int(given.energy_wh[row, first:stop][part].sum())
            else:
                counts["without_official"] += 1
            gateway_wh = None
            if meter is not None and meter[index].complete:
                measured = meter[index]
                gateway_wh = (
                    measured.energy_import_wh
                    if role is Role.CONSUMER
                    else measured.energy_export_wh
                )
            if gateway_wh is None:
                counts["without_gateway"] += 1
            comparison = _compare(
                boundaries[index], boundaries[index + 1], official_wh, gateway_wh, thresholds
            )
            if comparison.difference_wh is not None:
                counts["compared"] += 1
                counts["flagged"] += comparison.flagged
            if comparison.flagged or not flagged_only:
                intervals.append(comparison)
        results.append(PointReconciliation(participant, link, intervals=intervals, **counts))
    return results


def _compare(
    start: datetime,
    end: datetime,
    official_wh: int | None,
    gateway_wh: int | None,
    thresholds: Thresholds,
) -> Comparison:
    if official_wh is None or gateway_wh is None:
        return Comparison(start, end, official_wh, gateway_wh, None, None, False)
    difference = gateway_wh - official_wh
    percent = None if official_wh == 0 else round(100 * difference / official_wh, 2)
    flagged = abs(difference) > thresholds.energy_wh and (
        Fraction(abs(difference) * 100) > thresholds.percent * official_wh
    )
    return Comparison(start, end, official_wh, gateway_wh, difference, percent, flagged)
