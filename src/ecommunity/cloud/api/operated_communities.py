"""/api/v1 route: the communities the caller operates, with what waits for them (the web app's
operator screen starts here)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ecommunity.cloud.api.auth import ErrorOut
from ecommunity.cloud.db.communities import member_counts
from ecommunity.cloud.db.operated import communities_operated_by, membership_counts_by_status
from ecommunity.cloud.deps import CurrentCaller, DbSession
from ecommunity.community import AllocationModel, CommunityKind

router = APIRouter(tags=["communities"])


class OperatedCommunity(BaseModel):
    """A community you operate, and the work waiting in it."""

    id: int
    name: str
    kind: CommunityKind
    allocation_model: AllocationModel
    open_for_members: bool
    #: Users with an active membership (as on the community's page).
    member_count: int
    #: Applications to approve or reject.
    applied: int
    #: Approved memberships to activate once the grid operator confirms.
    approved: int
    #: Active memberships (metering points).
    active: int


@router.get(
    "/me/communities",
    response_model=list[OperatedCommunity],
    responses={401: {"model": ErrorOut, "description": "Not signed in"}},
)
def list_operated_communities(caller: CurrentCaller, db: DbSession) -> list[OperatedCommunity]:
    """The communities you operate, oldest first, with the applications waiting in each."""
    communities = communities_operated_by(db, caller.user.id)
    ids = [c.id for c in communities]
    counts = membership_counts_by_status(db, ids)
    members = member_counts(db, ids)
    return [
        OperatedCommunity(
            id=c.id,
            name=c.name,
            kind=CommunityKind(c.kind),
            allocation_model=AllocationModel(c.allocation_model),
            open_for_members=c.open_for_members,
            member_count=members.get(c.id, 0),
            applied=counts[c.id].get("applied", 0),
            approved=counts[c.id].get("approved", 0),
            active=counts[c.id].get("active", 0),
        )
        for c in communities
    ]
