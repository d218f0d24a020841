"""/api/v1 routes: the grid operator's official 15-minute values of a community (operator only).

- ``POST /communities/{id}/official-energy``: upload a delivery as CSV (the body, ``text/csv``);
  all or nothing; answers the import report with gaps, corrections and our allocation check.
- ``GET /communities/{id}/official-energy/imports``: earlier imports, newest first.
- ``GET /communities/{id}/official-energy/corrections?from=&to=``: values a re-delivery changed.
- ``GET /communities/{id}/official-energy/check?from=&to=``: our allocation against theirs.

The format is in docs/cloud-communities.md and ``cloud.community_energy.official_csv``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from ecommunity.cloud.actions.communities import operated_community
from ecommunity.cloud.actions.energy_import import import_official_energy
from ecommunity.cloud.api.auth import ErrorOut
from ecommunity.cloud.api.clock import Now
from ecommunity.cloud.api.energy_ranges import quarter_hour_range
from ecommunity.cloud.api.official_energy_schemas import (
    AllocationCheckOut,
    CorrectionOut,
    ImportOut,
    ImportReportOut,
    OfficialDataErrorOut,
)
from ecommunity.cloud.community_energy.allocation_check import check_stored
from ecommunity.cloud.community_energy.official_csv import OfficialDataError, read_official_csv
from ecommunity.cloud.db.models import User
from ecommunity.cloud.db.official_energy import as_utc, corrections_between, imports_of
from ecommunity.cloud.deps import CurrentCaller, DbSession
from ecommunity.cloud.errors import CloudError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["official energy"])

CommunityId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The community's id")]
#: Values per upload (the request body limit, 2 MB by default, usually comes first).
MAX_UPLOAD_ROWS: Final = 100_000
#: Longest range of a check or a list of corrections. [days]
MAX_CHECK_DAYS: Final = 92
_CSV_TYPES = ("text/csv", "text/plain")

_OPERATOR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not signed in"},
    403: {"model": ErrorOut, "description": "Not the operator (or a cookie write without CSRF)"},
    404: {"model": ErrorOut, "description": "No such community"},
}
_RANGE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "'from'/'to' off a quarter hour, reversed, too long"},
}


class UnsupportedMediaTypeError(CloudError):
    status = 415
    code = "unsupported_media_type"


@router.post(
    "/communities/{community_id}/official-energy",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportReportOut,
    responses={
        **_OPERATOR,
        400: {
            "model": OfficialDataErrorOut,
            "description": "Refused whole, nothing imported: every problem with its line",
        },
        413: {"model": ErrorOut, "description": "The body is larger than the server accepts"},
        415: {"model": ErrorOut, "description": "Not text/csv"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "interval_start,metering_point,quantity,energy_wh[,quality]",
        }
    },
)
async def upload_official_energy(
    community_id: CommunityId, request: Request, caller: CurrentCaller, db: DbSession, now: Now
) -> Any:
    """Import a delivery of the grid operator's 15-minute values (operator only).

    One row per value; a value delivered again replaces the earlier one and counts as a
    correction when it differs. A row that does not fit (format, a metering point not taking
    part in that quarter hour, a quantity of the other role, a value twice) refuses the whole
    delivery. Missing quarter hours are reported as gaps.
    """
    await run_in_threadpool(operated_community, db, caller.user, community_id)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _CSV_TYPES:
        raise UnsupportedMediaTypeError(f"send the CSV as text/csv, not {media_type or 'nothing'}")
    body = await request.body()
    try:
        return await run_in_threadpool(_import, db, caller.user, community_id, body, now)
    except OfficialDataError as exc:
        return JSONResponse(OfficialDataErrorOut.of(exc).model_dump(), status_code=400)


def _import(
    db: DbSession, user: User, community_id: int, body: bytes, now: datetime
) -> ImportReportOut:
    """Parse, import and check a delivery (CPU and database work: off the event loop).

    Raises:
        CloudError: the body is not UTF-8.
        OfficialDataError: the delivery is refused.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CloudError(f"the body is not UTF-8 text (byte {exc.start})") from None
    rows = read_official_csv(text, max_rows=MAX_UPLOAD_ROWS)
    report = import_official_energy(
        db, community_id, rows, source="upload", imported_by=user.id, now=now
    )
    community = operated_community(db, user, community_id)
    check = check_stored(db, community, report.first_start, report.last_end)
    return ImportReportOut.of(report, check)


@router.get(
    "/communities/{community_id}/official-energy/imports",
    response_model=list[ImportOut],
    responses=_OPERATOR,
)
def list_imports(
    community_id: CommunityId,
    caller: CurrentCaller,
    db: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ImportOut]:
    """The community's imports of official values, newest first (operator only)."""
    operated_community(db, caller.user, community_id)
    return [ImportOut.of(record) for record in imports_of(db, community_id, limit=limit)]


@router.get(
    "/communities/{community_id}/official-energy/corrections",
    response_model=list[CorrectionOut],
    responses={**_OPERATOR, **_RANGE},
)
def list_corrections(
    community_id: CommunityId,
    caller: CurrentCaller,
    db: DbSession,
    start: Annotated[AwareDatetime, Query(alias="from", description="Start (quarter hour)")],
    end: Annotated[AwareDatetime, Query(alias="to", description="End, excluded")],
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[CorrectionOut]:
    """Official values of ``[from, to)`` that a re-delivery changed, oldest first: each with
    the value before and the imports of both (operator only)."""
    first, last = quarter_hour_range(start, end, max_days=MAX_CHECK_DAYS)
    operated_community(db, caller.user, community_id)
    return [
        CorrectionOut(
            metering_point=c.metering_point,
            quantity=c.quantity,
            interval_start=as_utc(c.interval_start),
            previous_energy_wh=c.previous_energy_wh,
            energy_wh=c.energy_wh,
            previous_import_id=c.previous_import_id,
            import_id=c.import_id,
        )
        for c in corrections_between(db, community_id, first, last, limit=limit)
    ]


@router.get(
    "/communities/{community_id}/official-energy/check",
    response_model=AllocationCheckOut,
    responses={**_OPERATOR, **_RANGE},
)
def check_official_allocation(
    community_id: CommunityId,
    caller: CurrentCaller,
    db: DbSession,
    start: Annotated[AwareDatetime, Query(alias="from", description="Start (quarter hour)")],
    end: Annotated[AwareDatetime, Query(alias="to", description="End, excluded")],
    tolerance_wh: Annotated[
        int, Query(ge=0, le=1_000_000, description="Differences up to this are fine. [Wh]")
    ] = 0,
) -> AllocationCheckOut:
    """Our allocation (the community's model, static keys and participation factors) of the
    official G.01 of ``[from, to)`` against the grid operator's G.01T, G.02, G.03 and P.01T,
    to the Wh (operator only)."""
    first, last = quarter_hour_range(start, end, max_days=MAX_CHECK_DAYS)
    community = operated_community(db, caller.user, community_id)
    return AllocationCheckOut.of(
        check_stored(db, community, first, last, tolerance_wh=tolerance_wh)
    )
