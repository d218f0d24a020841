"""The application starts on a migrated database only, and publishes its OpenAPI schema."""

from __future__ import annotations

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
