"""The FastAPI application factory: settings in, app out. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from ecommunity import __version__
from ecommunity.cloud.db.engine import check_schema, make_engine, make_sessionmaker
from ecommunity.cloud.errors import CloudError
from ecommunity.cloud.limits import BodySizeLimit
from ecommunity.cloud.settings import CloudSettings

API_PREFIX = "/api/v1"
#: ``code`` of the refusals that FastAPI and Starlette raise themselves (see _http_error).
_HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}

logger = logging.getLogger(__name__)


async def _apply_retention(app: FastAPI) -> None:
    """Delete raw and minute readings past their retention, now and then every interval."""
    from ecommunity.cloud.actions.ingest import purge_old_readings

    settings: CloudSettings = app.state.settings

    def purge() -> None:
        with app.state.sessions() as db:
            purge_old_readings(
                db,
                raw_retention_days=settings.raw_retention_days,
                minute_retention_days=settings.minute_retention_days,
                now=datetime.now(UTC),
            )

    while True:
        try:
            await asyncio.to_thread(purge)
        except Exception:
            logger.warning(
                "retention failed; retrying in %.0f s", settings.retention_interval_s, exc_info=True
            )
        await asyncio.sleep(settings.retention_interval_s)


def create_app(settings: CloudSettings, *, engine: Engine | None = None) -> FastAPI:
    """Build the app. The database must already be migrated (``cloud serve`` sees to it)."""
    from ecommunity.cloud.api import (
        auth,
        communities,
        community_live,
        compare,
        devices,
        gateway,
        live,
        memberships,
        meters,
        notifications,
    )
    from ecommunity.cloud.live.bus import make_bus
    from ecommunity.cloud.live.hub import LiveHub

    url = settings.effective_database_url
    engine = engine or make_engine(url)
    check_schema(engine, url)
    bus = make_bus(settings.bus_url)
    live_hub = LiveHub(bus)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bus.start()
        await live_hub.start()
        retention = asyncio.create_task(_apply_retention(app))
        try:
            yield
        finally:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
            await live_hub.close()
            await bus.close()

    app = FastAPI(
        title="eCommunity cloud API",
        version=__version__,
        description="Accounts, gateway pairing (RFC 8628), ingestion and live meter data; "
        "energy communities: finder, join flow, notifications.",
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)
    app.state.bus = bus
    app.state.live = live_hub

    @app.exception_handler(CloudError)
    async def _cloud_error(_request: Request, exc: CloudError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail, "code": exc.code},
            status_code=exc.status,
            headers=dict(exc.headers),
        )

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        # FastAPI's and Starlette's own refusals (a body that is not UTF-8 JSON, an unknown path,
        # a wrong method, a body that grew past the limit) in the shape of ours: ErrorOut, which
        # the schema promises for a 400, has a code too.
        return JSONResponse(
            {"detail": str(exc.detail), "code": _HTTP_ERROR_CODES.get(exc.status_code, "error")},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's default handler echoes each bad input: that may be a password, and a lone
        # surrogate in it (valid JSON, not UTF-8) made the response itself fail with a 500.
        problems = [
            {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
            for error in exc.errors()
        ]
        body = json.dumps({"detail": problems, "code": "invalid_request"}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    app.add_middleware(BodySizeLimit, limit_bytes=settings.max_request_bytes)

    # compare before communities: "/communities/compare" is not "/communities/{community_id}".
    for module in (
        auth,
        devices,
        gateway,
        meters,
        live,
        compare,
        communities,
        community_live,
        memberships,
        notifications,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    # Official 15-minute data, reconciliation and members' energy figures (issue 5).
    from ecommunity.cloud.api import community_energy, official_energy

    app.include_router(official_energy.router, prefix=API_PREFIX)
    app.include_router(community_energy.router, prefix=API_PREFIX)
    # The communities a user operates (the web app's operator screen).
    from ecommunity.cloud.api import operated_communities

    app.include_router(operated_communities.router, prefix=API_PREFIX)
    # The web app: its screens, service worker, manifest and static files (it only serves files).
    from ecommunity.web import mount_web

    mount_web(app)
    return app


def create_app_from_environment() -> FastAPI:
    """The app of one ``cloud serve --workers N`` worker process (uvicorn needs an import string
    for those): settings from ``ECOMMUNITY_CLOUD_*`` alone, where the parent also put its
    ``--data-dir``; the parent has migrated and checked the database already."""
    app = create_app(CloudSettings())
    # As ``cloud serve`` does in-process: what start-up allocated stays out of the collector's
    # reach, so full collections stay short instead of stalling live delivery.
    gc.collect()
    gc.freeze()
    return app
