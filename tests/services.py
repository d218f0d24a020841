"""The machine's PostgreSQL and Redis for tests: used for real, skipped only where absent.

CI sets ECOMMUNITY_REQUIRE_SERVICES=1: there a missing service fails the run instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ADMIN_URL = os.environ.get(
    "ECOMMUNITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ECOMMUNITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    return os.environ.get("ECOMMUNITY_REQUIRE_SERVICES", "") not in ("", "0")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """Skip (or fail, when services are required) unless ``host:port`` answers."""
    if reachable(host, port):
        return
    message = f"{name} not reachable on {host}:{port}"
    if services_required():
        pytest.fail(message + " (ECOMMUNITY_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@contextmanager
def scratch_postgres_database(prefix: str, *, migrated: bool = True) -> Iterator[str]:
    """A PostgreSQL database of its own, migrated unless told otherwise (skipped where there
    is no PostgreSQL), dropped afterwards; yields its URL."""
    from ecommunity.cloud.db.engine import migrate

    admin = make_url(POSTGRES_ADMIN_URL)
    require("PostgreSQL", admin.host or "127.0.0.1", admin.port or 5432)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            migrate(url)
        yield url
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
