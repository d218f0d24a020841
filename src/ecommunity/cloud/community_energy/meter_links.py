"""Which of a member's meters measures a metering point, for reconciliation and estimates.

A membership names its meter explicitly (``PUT /memberships/{id}/energy-settings``); without
that, a member with exactly one meter is taken to measure their points with it (a household's
smart meter counts both directions: consumption for its consumer point, feed-in for its
producer point). A member with several meters and no choice, or none, has no gateway data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from ecommunity.cloud.community_energy.participants import Participant
from ecommunity.cloud.db.official_energy import meters_by_user, settings_of


class LinkKind(StrEnum):
    #: The member chose the meter for this membership.
    CHOSEN = "chosen"
    #: The member's only meter.
    ONLY_METER = "only_meter"


@dataclass(frozen=True)
class MeterLink:
    meter_id: int | None
    kind: LinkKind | None
    #: Why there is none.
    note: str | None = None


def meter_links(db: Session, participants: Sequence[Participant]) -> dict[Participant, MeterLink]:
    """Each participant's meter."""
    settings = settings_of(db, [m for p in participants for m in p.membership_ids])
    meters = meters_by_user(db, {p.user_id for p in participants})
    links: dict[Participant, MeterLink] = {}
    for participant in participants:
        chosen = next(
            (
                settings[m].meter_id
                for m in reversed(participant.membership_ids)
                if m in settings and settings[m].meter_id is not None
            ),
            None,
        )
        own = meters.get(participant.user_id, [])
        if chosen is not None:
            links[participant] = MeterLink(chosen, LinkKind.CHOSEN)
        elif len(own) == 1:
            links[participant] = MeterLink(own[0], LinkKind.ONLY_METER)
        elif own:
            links[participant] = MeterLink(
                None, None, f"{len(own)} meters and none chosen for this membership"
            )
        else:
            links[participant] = MeterLink(None, None, "no paired gateway")
    return links
