"""/api/v1 routes of the gateway uplink: batch upload (backfill) over HTTP."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from ecommunity.cloud.actions.ingest import IngestResult, ingest_readings
from ecommunity.cloud.api.batch_body import ReadingBatch, parse_reading_batch
from ecommunity.cloud.deps import DeviceToken, live_device_id
from ecommunity.cloud.live.uplink import serve_uplink

logger = logging.getLogger(__name__)

router = APIRouter(tags=["gateway"])


class IngestSummary(BaseModel):
    """What the upload changed: counts of new, already stored and flagged readings."""

    accepted: int
    duplicates: int
    flagged: int


def _inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each ``$ref`` to its ``$defs`` replaced by the definition: OpenAPI
    resolves a ``$ref`` against the whole document, not against the schema it sits in."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_BATCH_BODY_DOCS = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline_definitions(ReadingBatch.model_json_schema())}
        },
    }
}


def _store_upload(
    sessions: sessionmaker[Session], token: str, content_type: str | None, body: bytes
) -> tuple[int, IngestResult]:
    """Authenticate, parse, store: one worker thread, one session, one transaction.

    In this order, as the dependencies of other routes would: an unknown token is a 401 even
    when the body is bad too.
    """
    with sessions() as db:
        device_id = live_device_id(db, token)
        return device_id, ingest_readings(db, device_id, parse_reading_batch(content_type, body))


@router.post(
    "/gateway/readings",
    response_model=IngestSummary,
    summary="Upload minute readings (idempotent batch, for backfill)",
    responses={
        401: {"description": "No device token, or a revoked one"},
        409: {"description": "The upload names more meters than a gateway may read"},
        422: {"description": "Malformed readings, or a time stamp the meter cannot have set"},
    },
    openapi_extra=_BATCH_BODY_DOCS,
)
async def upload_readings(request: Request, token: DeviceToken) -> IngestSummary:
    """Store readings the gateway measured; a reading stored before is counted as a duplicate
    and not stored again, so a gateway may resend a batch whose answer it did not get."""
    body = await request.body()
    content_type = request.headers.get("content-type")
    sessions = request.app.state.sessions
    device_id, result = await run_in_threadpool(_store_upload, sessions, token, content_type, body)
    if result.new_meters:
        await request.app.state.live.meters_bound(device_id, result.new_meters)
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
