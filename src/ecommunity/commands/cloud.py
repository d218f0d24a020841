"""``ecommunity cloud serve | migrate``."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ecommunity.cli import EXIT_FAILURE, EXIT_OK, UsageError

if TYPE_CHECKING:
    from ecommunity.cloud.settings import CloudSettings

logger = logging.getLogger(__name__)


def load_settings(data_dir: str | None) -> CloudSettings:
    from ecommunity.cloud.settings import CloudSettings

    try:
        settings = CloudSettings()
    except ValidationError as exc:
        raise UsageError(f"bad ECOMMUNITY_CLOUD_* setting: {exc}") from None
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": Path(data_dir)})
    return settings


def migrate_command(*, data_dir: str | None) -> int:
    from ecommunity.cloud.db.engine import migrate

    settings = load_settings(data_dir)
    if settings.is_embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    try:
        migrate(url)
    except Exception as exc:
        sys.stderr.write(f"migration failed: {exc}\n")
        return EXIT_FAILURE
    sys.stderr.write("database is at the current schema\n")
    return EXIT_OK


def serve_command(*, host: str, port: int, data_dir: str | None, workers: int = 1) -> int:
    import uvicorn

    from ecommunity.cloud.app import create_app
    from ecommunity.cloud.db.engine import SchemaError, migrate

    settings = load_settings(data_dir)
    if workers > 1 and settings.bus_url is None:
        # Each worker would relay only between the gateways and watchers it happens to hold.
        raise UsageError(
            "--workers above 1 needs ECOMMUNITY_CLOUD_BUS_URL (a Redis live bus): with the "
            "in-process bus, a watcher and its gateway on different workers never meet"
        )
    if settings.is_embedded:
        # The embedded default works with zero setup: create and migrate it here.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate(settings.effective_database_url)
    if workers > 1:
        return _serve_workers(settings, host=host, port=port, workers=workers)
    try:
        app = create_app(settings)
    except SchemaError as exc:
        sys.stderr.write(f"cannot start: {exc}\n")
        return EXIT_FAILURE
    # Keep what start-up allocated (app, SQLAlchemy, pydantic) out of the collector's reach:
    # full collections then stay short instead of stalling live delivery for 100-300 ms.
    gc.collect()
    gc.freeze()
    # uvicorn shuts down on SIGTERM, then raises the signal again: with a handler that does
    # nothing, that second raise ends nothing and a clean stop exits 0 (as systemd expects).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    uvicorn.run(app, host=host, port=port, log_level="info", ws_max_size=1_000_000)
    return EXIT_OK


def _serve_workers(settings: CloudSettings, *, host: str, port: int, workers: int) -> int:
    """Serve with ``workers`` uvicorn processes on one socket, supervised by this process."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from ecommunity.cloud.db.engine import SchemaError, check_schema, make_engine

    url = settings.effective_database_url
    engine = make_engine(url)
    try:
        # Once here, with a clear message, rather than in every worker's start-up log.
        check_schema(engine, url)
    except SchemaError as exc:
        sys.stderr.write(f"cannot start: {exc}\n")
        return EXIT_FAILURE
    finally:
        engine.dispose()
    # Workers build their settings from the environment alone: hand them --data-dir there.
    os.environ["ECOMMUNITY_CLOUD_DATA_DIR"] = str(settings.data_dir.resolve())
    config = uvicorn.Config(
        "ecommunity.cloud.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        ws_max_size=1_000_000,
    )
    # What uvicorn.run does for workers, kept in hand to read the workers' exit codes after:
    # the supervisor stops on SIGTERM or SIGINT by itself and returns (exit 0), but also
    # returns when a worker cannot start, which must not look like a clean stop.
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        sys.stderr.write("cannot start: a worker failed to start (see the log above)\n")
        return EXIT_FAILURE
    return EXIT_OK
