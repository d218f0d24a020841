"""The application starts on a migrated database only, and publishes its OpenAPI schema."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ecommunity.cloud.app import create_app
from ecommunity.cloud.db.engine import SchemaError
from ecommunity.cloud.settings import CloudSettings


def test_openapi_is_published(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "eCommunity cloud API"


def test_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    settings = CloudSettings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SchemaError, match="cloud migrate"):
        create_app(settings)


def test_declared_oversized_body_is_refused(client: TestClient, settings: CloudSettings) -> None:
    response = client.post(
        "/api/v1/auth/login",
        content=b"x" * (settings.max_request_bytes + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_framework_refusals_have_our_error_shape(
    client: TestClient, settings: CloudSettings
) -> None:
    """Refusals FastAPI and Starlette raise themselves carry a code like ours (found by the
    schemathesis run: a body that is not UTF-8 got a 400 without the code ErrorOut promises)."""
    not_utf8 = client.post(
        "/api/v1/devices/activate",
        content=b'[\xff+\xfet"',
        headers={"content-type": "application/json"},
    )
    assert not_utf8.status_code == 400
    assert not_utf8.json() == {
        "detail": "There was an error parsing the body",
        "code": "bad_request",
    }

    unknown = client.get("/api/v1/nothing-here")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")

    wrong_method = client.put("/api/v1/devices")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")
    assert "GET" in wrong_method.headers["allow"]

    def chunks() -> Iterator[bytes]:
        # No declared length: the limit applies while the body streams in.
        for _ in range(settings.max_request_bytes // 65536 + 2):
            yield b" " * 65536

    chunked = client.post(
        "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413
    assert chunked.json()["code"] == "too_large"


def test_retention_runs_in_the_app(settings: CloudSettings) -> None:
    """Raw readings past raw_retention_days go; minute readings within their limit stay."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select

    from ecommunity.cloud.db.models import MinuteReading, RawReading
    from tests.cloud.test_ingest import add_account, add_gateway, reading

    settings = settings.model_copy(update={"raw_retention_days": 7, "retention_interval_s": 0.2})
    app = create_app(settings)
    old = datetime.now(UTC) - timedelta(days=8)
    with TestClient(app) as client:
        gateway = add_gateway(client, add_account(client))
        response = client.post(
            "/api/v1/gateway/readings",
            json={"readings": [reading(old, 1000)]},
            headers=gateway.headers,
        )
        assert response.status_code == 200
        with app.state.sessions() as db:
            db.add(
                RawReading(
                    meter_id=db.scalar(select(MinuteReading.meter_id)),
                    measured_at=old,
                    energy_import_wh=1000,
                    flags=0,
                    received_at=old,
                )
            )
            db.commit()

        def count(model: type[RawReading] | type[MinuteReading]) -> int:
            with app.state.sessions() as db:
                return int(db.scalar(select(func.count()).select_from(model)) or 0)

        deadline = time.monotonic() + 10
        while count(RawReading) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert count(RawReading) == 0
        assert count(MinuteReading) == 1
    app.state.engine.dispose()
