"""Memberships of metering points in communities and the grid operators' rules for them.

Rules doc 1.3: since 2024-04-08 a consumption or generation metering point may take part in up
to five communities (GEA, EEG, BEG). Each participation carries a participation factor
(Teilnahmefaktor, TF): the whole percentage, at least 1 %, of the point's measured energy that
takes part; the factors of one point add up to at most 100 % and are not normalised by the grid
operator. A factor can change once a day per community and point, effective the next calendar day
if the change arrives between 09:00 and 17:00. Points registered before 2024-04-08 have 100 %.

A TF of 0 is not a registration the grid operators accept, so :class:`Membership` refuses it.
It appears only as the *effective* factor of a membership in an interval in which it is not
active (not yet activated, or ended): :meth:`Membership.effective_tf_percent` and
:func:`effective_tf_matrix` give 0 there, and the allocation gives such a member nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import numpy as np
from numpy.typing import NDArray

from ecommunity.community.errors import (
    DuplicateParticipationError,
    IntervalError,
    MeteringPointError,
    ParticipationChangeError,
    ParticipationError,
    ParticipationFactorError,
    ParticipationSumError,
    RoleConflictError,
    TooManyCommunitiesError,
)
from ecommunity.community.intervals import VIENNA, IntervalStarts, epoch_seconds
from ecommunity.community.kinds import Role

#: Multiple participation and the participation factor apply from this day (rules doc 1.3).
MULTIPLE_PARTICIPATION_SINCE: Final = date(2024, 4, 8)
MAX_COMMUNITIES_PER_METERING_POINT: Final = 5
MAX_TF_SUM_PERCENT: Final = 100
#: The window in which the grid operators accept a factor change (Vienna time).
TF_CHANGE_WINDOW: Final = (time(9), time(17))

_METERING_POINT = re.compile(r"AT[0-9A-Z]{31}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def parse_metering_point(text: str) -> str:
    """A metering point number (Zählpunkt): ``AT`` and 31 letters or digits, 33 in all.

    Spaces are dropped and letters upper-cased, as people copy the number from bills.

    Raises:
        MeteringPointError: anything else.
    """
    cleaned = "".join(text.split()).upper()
    if not _METERING_POINT.fullmatch(cleaned):
        raise MeteringPointError(
            f"a metering point is AT followed by 31 letters or digits (33 characters), "
            f"got {text!r} ({len(cleaned)} characters)"
        )
    return cleaned


def check_tf_percent(tf_percent: int) -> int:
    """A registered participation factor: a whole percent from 1 to 100.

    Raises:
        ParticipationFactorError: anything else, including 0 and booleans.
    """
    if isinstance(tf_percent, bool) or not isinstance(tf_percent, int):
        raise ParticipationFactorError(
            f"a participation factor is a whole percent, got {tf_percent!r}"
        )
    if not 1 <= tf_percent <= 100:
        raise ParticipationFactorError(f"a participation factor is 1 to 100 %, got {tf_percent} %")
    return tf_percent


@dataclass(frozen=True)
class Membership:
    """One metering point's participation in one community.

    ``active_from``/``active_until`` are UTC instants (the grid operator activates from the start
    of a day); ``active_from`` None means not yet active (applied or approved), ``active_until``
    None means open-ended. Outside that period the membership's effective factor is 0.
    """

    community_id: str
    metering_point: str
    role: Role
    tf_percent: int = 100
    active_from: datetime | None = None
    active_until: datetime | None = None

    def __post_init__(self) -> None:
        if parse_metering_point(self.metering_point) != self.metering_point:
            raise MeteringPointError(
                f"metering point {self.metering_point!r} is not in its normal form "
                "(use parse_metering_point)"
            )
        check_tf_percent(self.tf_percent)
        for name in ("active_from", "active_until"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise IntervalError(f"{name} {value.isoformat()} has no UTC offset")
        if (
            self.active_from is not None
            and self.active_until is not None
            and self.active_until <= self.active_from
        ):
            raise ParticipationError(
                f"membership of {self.metering_point} in {self.community_id} ends "
                f"({self.active_until.isoformat()}) before it starts "
                f"({self.active_from.isoformat()})"
            )

    def is_active(self, at: datetime) -> bool:
        """Whether the membership takes part at instant ``at``."""
        if self.active_from is None or at < self.active_from:
            return False
        return self.active_until is None or at < self.active_until

    def effective_tf_percent(self, at: datetime) -> int:
        """The factor that applies at ``at``: :attr:`tf_percent` while active, else 0."""
        return self.tf_percent if self.is_active(at) else 0


def _seconds(at: datetime | None, default: int) -> int:
    return default if at is None else (at - _EPOCH) // timedelta(seconds=1)


def effective_tf_matrix(
    memberships: Sequence[Membership], interval_starts: IntervalStarts
) -> NDArray[np.int64]:
    """Effective factors ``(N, T)`` in percent: the factor while active, 0 outside.

    An interval counts when it *starts* inside the active period.

    Raises:
        IntervalError: an interval start that is naive or off a 15-minute boundary.
    """
    starts = epoch_seconds(interval_starts)
    matrix = np.zeros((len(memberships), starts.size), dtype=np.int64)
    never = np.iinfo(np.int64).max
    for row, membership in enumerate(memberships):
        begin = _seconds(membership.active_from, never)
        end = _seconds(membership.active_until, never)
        matrix[row] = np.where((starts >= begin) & (starts < end), membership.tf_percent, 0)
    return matrix


def check_participations(memberships: Iterable[Membership]) -> None:
    """Check one metering point's memberships against the rules of multiple participation.

    Memberships count together where their periods overlap; one not yet active
    (``active_from`` None) counts as overlapping everything that has not ended, so that an
    application reserves its factor. At no instant may the point be in more than five
    communities, in one community twice, or have factors adding up to more than 100 %.

    Raises:
        ParticipationError: memberships of different metering points.
        RoleConflictError: the point appears both as consumer and as producer.
        DuplicateParticipationError: the same community twice at once.
        TooManyCommunitiesError: more than five at once.
        ParticipationSumError: factors adding up to more than 100 % at once.
    """
    items = list(memberships)
    if not items:
        return
    points = {m.metering_point for m in items}
    if len(points) > 1:
        raise ParticipationError(f"memberships of several metering points: {sorted(points)}")
    (point,) = points
    if len({m.role for m in items}) > 1:
        raise RoleConflictError(
            f"{point} is listed as consumer and as producer; a metering point measures one "
            "direction"
        )
    lowest, highest = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    periods = [
        (_seconds(m.active_from, lowest), _seconds(m.active_until, highest), m) for m in items
    ]
    # The most memberships overlap at the start of one of them.
    for instant in sorted({begin for begin, _, _ in periods}):
        current = [m for begin, end, m in periods if begin <= instant < end]
        communities = [m.community_id for m in current]
        duplicates = sorted({c for c in communities if communities.count(c) > 1})
        if duplicates:
            raise DuplicateParticipationError(
                f"{point} would be in community {duplicates[0]} twice at the same time"
            )
        if len(current) > MAX_COMMUNITIES_PER_METERING_POINT:
            raise TooManyCommunitiesError(
                f"{point} would be in {len(current)} communities at once; the limit is "
                f"{MAX_COMMUNITIES_PER_METERING_POINT}"
            )
        total = sum(m.tf_percent for m in current)
        if total > MAX_TF_SUM_PERCENT:
            raise ParticipationSumError(
                f"the participation factors of {point} would add up to {total} %; the limit "
                f"is {MAX_TF_SUM_PERCENT} %"
            )


def tf_change_effective_on(
    received_at: datetime, *, previous_change_received_at: datetime | None = None
) -> date:
    """The day from which a participation-factor change applies: the next Vienna calendar day.

    The grid operators accept one change a day per community and metering point, received
    between 09:00 and 17:00 (rules doc 1.3). The rules doc says nothing about changes received
    outside that window, so they are refused rather than guessed at; callers may queue them.

    Raises:
        IntervalError: a naive datetime.
        ParticipationChangeError: outside 09:00–17:00 Vienna time, or a second change that day.
    """
    for name, value in (
        ("received_at", received_at),
        ("previous_change_received_at", previous_change_received_at),
    ):
        if value is not None and value.utcoffset() is None:
            raise IntervalError(f"{name} {value.isoformat()} has no UTC offset")
    local = received_at.astimezone(VIENNA)
    opens, closes = TF_CHANGE_WINDOW
    if not opens <= local.time() < closes:
        raise ParticipationChangeError(
            f"participation-factor changes are accepted 09:00–17:00 Vienna time, not at "
            f"{local.strftime('%H:%M')}"
        )
    if (
        previous_change_received_at is not None
        and previous_change_received_at.astimezone(VIENNA).date() == local.date()
    ):
        raise ParticipationChangeError(
            f"the participation factor was already changed on {local.date().isoformat()}; "
            "one change a day per community and metering point"
        )
    return local.date() + timedelta(days=1)
