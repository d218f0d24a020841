"""Joining a community: apply, approve or reject, activate, change the participation factor or
static key, leave. Each action runs one transaction that also writes the notifications for the
member and the operator; the route publishes those after the commit.

States: ``applied`` → ``approved`` or ``rejected``; ``approved`` → ``active``; ``applied``,
``approved`` or ``active`` → ``left``. Approval is the community's yes; the operator then
registers the metering point with the grid operator (EDA) and, once the grid operator confirms,
activates the membership with the day it takes part from (by default the next day: grid
operators activate from the day after registration, rules doc 1.8). Leaving ends an active
membership at the next Vienna midnight; rows are never deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecommunity.cloud.actions.communities import operated_community
from ecommunity.cloud.actions.notifications import NotificationKind, notify
from ecommunity.cloud.actions.participation_rules import (
    KEY_SCALE,
    ParticipationRuleError,
    StaticKeyError,
    as_utc,
    check_point,
    check_static_keys,
    next_vienna_midnight,
    vienna_midnight,
)
from ecommunity.cloud.db.communities import (
    factors_of,
    find_community,
    find_membership,
    find_membership_of_user,
    lock_metering_point,
    static_keys_of_community,
)
from ecommunity.cloud.db.community_models import (
    OPEN_STATES,
    Community,
    CommunityMembership,
    Notification,
    ParticipationFactor,
)
from ecommunity.cloud.db.models import User
from ecommunity.cloud.errors import ConflictError, NotFoundError
from ecommunity.community import (
    VIENNA,
    AllocationModel,
    Membership,
    ParticipationChangeError,
    Role,
    tf_change_effective_on,
)

logger = logging.getLogger(__name__)

#: How far ahead an operator may date an activation. [days]
MAX_ACTIVATION_AHEAD_DAYS = 366


class CommunityClosedError(ConflictError):
    code = "community_closed"


class MembershipStateError(ConflictError):
    code = "wrong_state"


class ActivationDateError(ConflictError):
    code = "activation_date"


@dataclass(frozen=True)
class MembershipChange:
    """What an action changed, and the notifications to publish once it is committed."""

    membership: CommunityMembership
    notifications: list[Notification] = field(default_factory=list)


def apply(
    db: Session,
    user: User,
    community_id: int,
    *,
    metering_point: str,
    role: Role,
    tf_percent: int,
    now: datetime,
) -> MembershipChange:
    """Apply with ``metering_point`` (normalised) for ``community_id``, statutes accepted.

    Raises:
        NotFoundError: no such community.
        CommunityClosedError: it takes no new members.
        ParticipationRuleError: the point is already in this community, in five others, as
            the other role, or its factors would add up to more than 100 %.
    """
    community = find_community(db, community_id)
    if community is None:
        raise NotFoundError(f"there is no community {community_id}")
    if not community.open_for_members:
        raise CommunityClosedError(f"community {community_id} takes no new members at present")
    lock_metering_point(db, metering_point)
    candidate = Membership(str(community_id), metering_point, role, tf_percent)
    check_point(db, metering_point, now=now, extra=[candidate])
    membership = CommunityMembership(
        community_id=community_id,
        user_id=user.id,
        metering_point=metering_point,
        role=role.value,
        status="applied",
        tf_percent=tf_percent,
        applied_at=now,
        statutes_accepted_at=now,
    )
    db.add(membership)
    try:
        db.flush()
    except IntegrityError:
        # A racing application of the same point to the same community got in first.
        db.rollback()
        raise ParticipationRuleError(
            f"{metering_point} already applied to community {community_id}",
            "duplicate_participation",
        ) from None
    db.add(
        ParticipationFactor(
            membership_id=membership.id, tf_percent=tf_percent, valid_from=now, received_at=now
        )
    )
    notes = notify(
        db,
        [user.id, community.operator_id],
        NotificationKind.APPLIED,
        f"{user.display_name} applied to {community.name} with metering point "
        f"{metering_point} ({role.value}, participation factor {tf_percent} %).",
        now=now,
        community_id=community_id,
        membership_id=membership.id,
    )
    db.commit()
    logger.info("user %d applied to community %d", user.id, community_id)
    return MembershipChange(membership, notes)


def approve(
    db: Session, operator: User, community_id: int, membership_id: int, *, now: datetime
) -> MembershipChange:
    """The community accepts an application.

    Raises:
        NotFoundError, NotOperatorError: as :func:`operated_membership`.
        MembershipStateError: not an open application.
    """
    community, membership = operated_membership(db, operator, community_id, membership_id)
    _require_state(membership, "applied", "approve")
    membership.status = "approved"
    membership.decided_at = now
    return _commit_with_notice(
        db,
        community,
        membership,
        NotificationKind.APPROVED,
        f"The application of {membership.metering_point} to {community.name} was approved; "
        "the operator registers it with the grid operator next.",
        now,
    )


def reject(
    db: Session,
    operator: User,
    community_id: int,
    membership_id: int,
    *,
    reason: str,
    now: datetime,
) -> MembershipChange:
    """The community turns an application down, with a reason the applicant sees.

    Raises:
        NotFoundError, NotOperatorError: as :func:`operated_membership`.
        MembershipStateError: not an open application.
    """
    community, membership = operated_membership(db, operator, community_id, membership_id)
    _require_state(membership, "applied", "reject")
    membership.status = "rejected"
    membership.decided_at = now
    membership.rejection_reason = reason or None
    because = f": {reason}" if reason else "."
    return _commit_with_notice(
        db,
        community,
        membership,
        NotificationKind.REJECTED,
        f"The application of {membership.metering_point} to {community.name} was rejected"
        + because,
        now,
    )


def activate(
    db: Session,
    operator: User,
    community_id: int,
    membership_id: int,
    *,
    active_from: date | None,
    now: datetime,
) -> MembershipChange:
    """The grid operator registered the point: it takes part from ``active_from`` (a Vienna
    day; default the next day).

    Raises:
        NotFoundError, NotOperatorError: as :func:`operated_membership`.
        MembershipStateError: not approved.
        ActivationDateError: a day before the application or more than a year ahead.
    """
    community, membership = operated_membership(db, operator, community_id, membership_id)
    _require_state(membership, "approved", "activate")
    today = now.astimezone(VIENNA).date()
    day = active_from or today + timedelta(days=1)
    applied_on = as_utc(membership.applied_at).astimezone(VIENNA).date()
    if not applied_on <= day <= today + timedelta(days=MAX_ACTIVATION_AHEAD_DAYS):
        raise ActivationDateError(
            f"the membership can start from the day of the application ({applied_on}) up to "
            f"{MAX_ACTIVATION_AHEAD_DAYS} days ahead, not on {day}"
        )
    membership.status = "active"
    membership.activated_at = now
    membership.active_from = vienna_midnight(day)
    return _commit_with_notice(
        db,
        community,
        membership,
        NotificationKind.ACTIVATED,
        f"{membership.metering_point} takes part in {community.name} from {day.isoformat()}.",
        now,
    )


def change(
    db: Session,
    operator: User,
    community_id: int,
    membership_id: int,
    *,
    tf_percent: int | None,
    static_key_ppb: int | None,
    now: datetime,
) -> MembershipChange:
    """Set a membership's participation factor and/or static key.

    A factor change of an active membership follows the grid operators' rule: one change a day
    per community and metering point, received 09:00–17:00 Vienna time, applying from the next
    day (rules doc 1.3). Before the point is registered (applied, approved) it applies at once.

    Raises:
        NotFoundError, NotOperatorError: as :func:`operated_membership`.
        MembershipStateError: the membership was rejected or left.
        ParticipationRuleError: outside the change window, a second change that day, or
            factors of the point adding up to more than 100 %.
        StaticKeyError: a key in a dynamic community, for a producer, or keys adding up to more
            than 1.
    """
    community, membership = operated_membership(db, operator, community_id, membership_id)
    if membership.status not in OPEN_STATES:
        raise MembershipStateError(f"a {membership.status} membership cannot be changed")
    messages: list[str] = []
    kind = NotificationKind.KEY_CHANGED
    if static_key_ppb is not None and static_key_ppb != membership.static_key_ppb:
        _set_static_key(db, community, membership, static_key_ppb)
        messages.append(f"static key {static_key_ppb / KEY_SCALE:.9g}")
    if tf_percent is not None and tf_percent != membership.tf_percent:
        applies_from = _set_factor(db, membership, tf_percent, now)
        messages.append(f"participation factor {tf_percent} % from {applies_from}")
        kind = NotificationKind.FACTOR_CHANGED
    if not messages:
        return MembershipChange(membership)
    return _commit_with_notice(
        db,
        community,
        membership,
        kind,
        f"{membership.metering_point} in {community.name}: " + ", ".join(messages) + ".",
        now,
    )


def leave(db: Session, user: User, membership_id: int, *, now: datetime) -> MembershipChange:
    """The member leaves (or withdraws an application). An active membership takes part until
    the next Vienna midnight; its history stays.

    Raises:
        NotFoundError: ``user`` has no such membership.
        MembershipStateError: already rejected or left.
    """
    membership = find_membership_of_user(db, user.id, membership_id, for_update=True)
    if membership is None:
        raise NotFoundError(f"you have no membership {membership_id}")
    if membership.status not in OPEN_STATES:
        raise MembershipStateError(f"a {membership.status} membership cannot be left")
    community = find_community(db, membership.community_id)
    assert community is not None  # the foreign key cascades
    if membership.status == "active" and membership.active_from is not None:
        until = max(next_vienna_midnight(now), as_utc(membership.active_from))
        membership.active_until = until
        when = f" (taking part until {until.astimezone(VIENNA):%Y-%m-%d %H:%M} Vienna time)"
    else:
        when = ""
    membership.status = "left"
    membership.left_at = now
    return _commit_with_notice(
        db,
        community,
        membership,
        NotificationKind.LEFT,
        f"{membership.metering_point} left {community.name}{when}.",
        now,
    )


def operated_membership(
    db: Session, operator: User, community_id: int, membership_id: int
) -> tuple[Community, CommunityMembership]:
    """A membership of a community ``operator`` operates.

    Raises:
        NotFoundError: no such community, or no such membership in it.
        NotOperatorError: someone else operates the community.
    """
    community = operated_community(db, operator, community_id)
    membership = find_membership(db, community_id, membership_id, for_update=True)
    if membership is None:
        raise NotFoundError(f"community {community_id} has no membership {membership_id}")
    return community, membership


def _require_state(membership: CommunityMembership, state: str, verb: str) -> None:
    if membership.status != state:
        raise MembershipStateError(
            f"only a membership that is {state} can be {verb}d; this one is {membership.status}"
        )


def _set_static_key(
    db: Session, community: Community, membership: CommunityMembership, key_ppb: int
) -> None:
    if community.allocation_model != AllocationModel.STATIC.value:
        raise StaticKeyError(
            f"{community.name} shares production dynamically: static keys do not apply"
        )
    if membership.role != Role.CONSUMER.value:
        raise StaticKeyError("static keys share production among consumers, not producers")
    keys = static_keys_of_community(db, community.id)
    keys[membership.id] = key_ppb
    check_static_keys(keys.values())
    membership.static_key_ppb = key_ppb


def _set_factor(
    db: Session, membership: CommunityMembership, tf_percent: int, now: datetime
) -> str:
    """Record a factor change; when it applies, as text."""
    lock_metering_point(db, membership.metering_point)
    valid_from, applies = now, "now"
    if membership.status == "active":
        # Only changes made since the registration count towards the one a day; the first
        # factor is the application's.
        registered = as_utc(membership.activated_at or membership.applied_at)
        changes = [
            as_utc(f.received_at)
            for f in factors_of(db, [membership.id])[membership.id][1:]
            if as_utc(f.received_at) >= registered
        ]
        try:
            day = tf_change_effective_on(
                now, previous_change_received_at=changes[-1] if changes else None
            )
        except ParticipationChangeError as exc:
            raise ParticipationRuleError(str(exc), "participation_change") from None
        valid_from, applies = vienna_midnight(day), day.isoformat()
    membership.tf_percent = tf_percent
    db.add(
        ParticipationFactor(
            membership_id=membership.id,
            tf_percent=tf_percent,
            valid_from=valid_from,
            received_at=now,
        )
    )
    check_point(db, membership.metering_point, now=now)
    return applies


def _commit_with_notice(
    db: Session,
    community: Community,
    membership: CommunityMembership,
    kind: NotificationKind,
    message: str,
    now: datetime,
) -> MembershipChange:
    notes = notify(
        db,
        [membership.user_id, community.operator_id],
        kind,
        message,
        now=now,
        community_id=community.id,
        membership_id=membership.id,
    )
    db.commit()
    logger.info("membership %d: %s", membership.id, kind.value)
    return MembershipChange(membership, notes)
