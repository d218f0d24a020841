"""Cloud test fixtures: every test runs on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from ecommunity.cloud import security
from ecommunity.cloud.app import create_app
from ecommunity.cloud.db.engine import migrate
from ecommunity.cloud.db.models import Base
from ecommunity.cloud.settings import CloudSettings
from tests.services import scratch_postgres_database


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still Argon2id, but at the lowest cost: the production cost (~0.2 s per hash here)
    would make the cloud tests take minutes. test_auth checks the production cost once."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(security, "_hasher", cheap)
    monkeypatch.setattr(security, "_DUMMY_HASH", cheap.hash("not a password of anyone"))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "cloud.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    """A database of its own for this test run, migrated once, dropped at the end."""
    with scratch_postgres_database("ecommunity_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the run's PostgreSQL truncated."""
    if request.param == "sqlite":
        path = tmp_path / "cloud.sqlite3"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("_postgres_database")
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> CloudSettings:
    return CloudSettings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        public_url="http://testserver",
        device_poll_interval_s=1,
    )


@pytest.fixture
def client(settings: CloudSettings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()
