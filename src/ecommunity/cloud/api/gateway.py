"""/api/v1 routes of the gateway uplink: batch upload (backfill) over HTTP."""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field

from ecommunity.cloud.actions.ingest import ingest_readings
from ecommunity.cloud.deps import CurrentDevice, DbSession
from ecommunity.cloud.live.uplink import serve_uplink
from ecommunity.cloud.schemas import ReadingIn

logger = logging.getLogger(__name__)

router = APIRouter(tags=["gateway"])

#: Readings per batch upload: a day of minute readings is 1,440.
MAX_BATCH_READINGS = 5000


class ReadingBatch(BaseModel):
    """Readings a gateway uploads in one request, e.g. what it stored while offline."""

    model_config = ConfigDict(extra="forbid")

    readings: list[ReadingIn] = Field(min_length=1, max_length=MAX_BATCH_READINGS)


class IngestSummary(BaseModel):
    """What the upload changed: counts of new, already stored and flagged readings."""

    accepted: int
    duplicates: int
    flagged: int


@router.post(
    "/gateway/readings",
    response_model=IngestSummary,
    summary="Upload minute readings (idempotent batch, for backfill)",
    responses={
        401: {"description": "No device token, or a revoked one"},
        409: {"description": "The upload names more meters than a gateway may read"},
        422: {"description": "Malformed readings, or a time stamp the meter cannot have set"},
    },
)
def upload_readings(batch: ReadingBatch, device: CurrentDevice, db: DbSession) -> IngestSummary:
    """Store readings the gateway measured; a reading stored before is counted as a duplicate
    and not stored again, so a gateway may resend a batch whose answer it did not get."""
    result = ingest_readings(db, device, batch.readings)
    return IngestSummary(
        accepted=result.accepted, duplicates=result.duplicates, flagged=result.flagged
    )


# The live uplink (WebSocket); its protocol is documented in ecommunity.cloud.live.uplink.
@router.websocket("/gateway/ws")
async def gateway_uplink(websocket: WebSocket) -> None:
    """The gateway's uplink: minute readings (acknowledged once committed), raw live readings
    on demand, and ``stream`` orders telling it whether anyone watches. Authenticated with the
    device token in ``Authorization: Bearer`` on the handshake."""
    await serve_uplink(websocket)
