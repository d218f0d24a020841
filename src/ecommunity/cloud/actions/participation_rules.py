"""The grid operators' participation rules applied to stored memberships, through the
community domain's checks (``ecommunity.community``): at most five communities per metering
point, participation factors adding up to at most 100 %, one change a day, static keys adding
up to at most 1. Refusals become 409s with the domain's reason."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

from sqlalchemy.orm import Session

from ecommunity.cloud.db.communities import factors_of, participations_of_point
from ecommunity.cloud.db.community_models import CommunityMembership, ParticipationFactor
from ecommunity.cloud.errors import ConflictError
from ecommunity.community import (
    VIENNA,
    AllocationKeyError,
    DuplicateParticipationError,
    Membership,
    ParticipationChangeError,
    ParticipationError,
    ParticipationSumError,
    Role,
    RoleConflictError,
    StaticKeys,
    TooManyCommunitiesError,
    check_participations,
)

#: Static keys are stored in parts per billion: nine decimal places.
KEY_SCALE = 10**9

_CODES: dict[type[ParticipationError], str] = {
    TooManyCommunitiesError: "too_many_communities",
    ParticipationSumError: "participation_sum",
    DuplicateParticipationError: "duplicate_participation",
    RoleConflictError: "role_conflict",
    ParticipationChangeError: "participation_change",
}


class ParticipationRuleError(ConflictError):
    """A change the grid operators' participation rules forbid; ``code`` names the rule."""

    def __init__(self, detail: str, code: str = "participation_rule") -> None:
        super().__init__(detail)
        self.code = code


def refusal(exc: ParticipationError) -> ParticipationRuleError:
    """The API error for a domain refusal."""
    code = next((c for kind, c in _CODES.items() if isinstance(exc, kind)), "participation_rule")
    return ParticipationRuleError(str(exc), code)


def as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def vienna_midnight(day: date) -> datetime:
    """The UTC instant at which ``day`` begins in Vienna."""
    return datetime.combine(day, time(0), tzinfo=VIENNA).astimezone(UTC)


def next_vienna_midnight(now: datetime) -> datetime:
    """The start of the next Vienna calendar day after ``now``."""
    return vienna_midnight(now.astimezone(VIENNA).date() + timedelta(days=1))


def factor_at(factors: Sequence[ParticipationFactor], at: datetime) -> int:
    """The participation factor that applies at ``at`` (the first one before any applies)."""
    current = factors[0].tf_percent
    for factor in factors:
        if as_utc(factor.valid_from) <= at:
            current = factor.tf_percent
    return current


def scheduled_factor(
    factors: Sequence[ParticipationFactor], now: datetime
) -> ParticipationFactor | None:
    """A factor change that applies only after ``now``, if one is waiting."""
    later = [f for f in factors if as_utc(f.valid_from) > now]
    return later[-1] if later else None


def periods(
    row: CommunityMembership, factors: Sequence[ParticipationFactor], now: datetime
) -> list[Membership]:
    """A stored membership as domain memberships, one per factor period, from ``now`` on.

    Applied and approved ones are not registered yet: they reserve their latest factor with no
    period (the domain counts them as overlapping everything). Active ones (and those that left
    but still take part) hold each factor from when it applies until the next one does.
    """
    community, role = str(row.community_id), Role(row.role)
    if row.status in ("applied", "approved") or row.active_from is None:
        return [Membership(community, row.metering_point, role, row.tf_percent)]
    start_all = as_utc(row.active_from)
    end_all = None if row.active_until is None else as_utc(row.active_until)
    result: list[Membership] = []
    for index, factor in enumerate(factors):
        begin = max(as_utc(factor.valid_from), start_all, now)
        end = as_utc(factors[index + 1].valid_from) if index + 1 < len(factors) else None
        if end_all is not None:
            end = end_all if end is None else min(end, end_all)
        if end is None or end > begin:
            result.append(
                Membership(community, row.metering_point, role, factor.tf_percent, begin, end)
            )
    return result


def check_point(
    db: Session, metering_point: str, *, now: datetime, extra: Iterable[Membership] = ()
) -> None:
    """Check a metering point's participations as they stand in this transaction (flushed),
    plus ``extra`` ones about to be added.

    Raises:
        ParticipationRuleError: the rules forbid that state.
    """
    db.flush()
    rows = participations_of_point(db, metering_point, now=now)
    factors = factors_of(db, [row.id for row in rows])
    memberships = [m for row in rows for m in periods(row, factors[row.id], now)]
    try:
        check_participations([*memberships, *extra])
    except ParticipationError as exc:
        raise refusal(exc) from None


class StaticKeyError(ConflictError):
    """Static keys that break the community's allocation (e.g. adding up to more than 1)."""

    code = "static_keys"


def check_static_keys(keys_ppb: Iterable[int]) -> None:
    """Static keys of one community must add up to at most 1.

    Raises:
        StaticKeyError: they add up to more.
    """
    try:
        StaticKeys.from_values(Fraction(key, KEY_SCALE) for key in keys_ppb)
    except AllocationKeyError as exc:
        raise StaticKeyError(f"static keys: {exc}") from None
