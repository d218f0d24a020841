"""``ecommunity cloud serve | migrate``."""

from __future__ import annotations

import gc
import logging
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


def serve_command(*, host: str, port: int, data_dir: str | None) -> int:
    import uvicorn

    from ecommunity.cloud.app import create_app
    from ecommunity.cloud.db.engine import SchemaError, migrate

    settings = load_settings(data_dir)
    if settings.is_embedded:
        # The embedded default works with zero setup: create and migrate it here.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate(settings.effective_database_url)
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
