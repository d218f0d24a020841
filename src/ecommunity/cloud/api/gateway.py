"""/api/v1 routes of the gateway uplink: batch upload (backfill) over HTTP."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


async def reading_batch(request: Request) -> ReadingBatch:
    """The upload, parsed and validated in one pass by pydantic's JSON parser.

    FastAPI would decode the JSON into Python objects first and validate those: twice the
    work, and about a seventh of the server's CPU time per upload (``bench/cloud.py``).
    Refusals are FastAPI's own 422s (``loc`` starting with ``body``).
    """
    # As FastAPI does: JSON, declared as such or not declared at all.
    media_type = request.headers.get("content-type", "application/json").partition(";")[0]
    main_type, _, subtype = media_type.strip().lower().partition("/")
    if main_type != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "send the readings as JSON", "type": "content_type"}]
        )
    try:
        return ReadingBatch.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None


ReadingBatchBody = Annotated[ReadingBatch, Depends(reading_batch)]


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
async def upload_readings(
    request: Request, device: CurrentDevice, db: DbSession, batch: ReadingBatchBody
) -> IngestSummary:
    """Store readings the gateway measured; a reading stored before is counted as a duplicate
    and not stored again, so a gateway may resend a batch whose answer it did not get."""
    result = await run_in_threadpool(ingest_readings, db, device, batch.readings)
    if result.new_meters:
        await request.app.state.live.meters_bound(device.id, result.new_meters)
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
