"""Cloud settings: environment (``ECOMMUNITY_CLOUD_*``), flags and defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CloudSettings(BaseSettings):
    """Everything ``ecommunity cloud serve`` needs; nothing is read at import time."""

    model_config = SettingsConfigDict(env_prefix="ECOMMUNITY_CLOUD_", env_nested_delimiter="__")

    #: Where the embedded SQLite database lives (when no database URL is set).
    data_dir: Path = Path("ecommunity-data")
    #: SQLAlchemy URL; ``postgresql+psycopg://...`` in production. Empty: SQLite in data_dir.
    database_url: str | None = None
    #: ``redis://...`` to share the live bus between instances. Empty: in-process bus.
    bus_url: str | None = None
    #: Public base URL, used in the device grant's verification URI.
    public_url: str = "http://127.0.0.1:8000"
    #: Largest request body accepted: 5,000 readings of ~200 bytes fit. [bytes]
    max_request_bytes: int = Field(default=2_000_000, ge=1024)
    #: How long a login session lasts. [s]
    session_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    #: Device grant: lifetime of a user code and the polling interval. [s]
    device_code_ttl_s: int = Field(default=900, ge=60)
    device_poll_interval_s: int = Field(default=5, ge=1)
    #: Failed logins allowed per account and per address in ``login_window_s``.
    login_attempts: int = Field(default=5, ge=1)
    login_window_s: int = Field(default=300, ge=1)
    #: Retention of raw live readings and of minute readings. [days]
    raw_retention_days: int = Field(default=7, ge=1)
    minute_retention_days: int = Field(default=3650, ge=1)
    #: How often retention runs (each instance; deleting twice is harmless). [s]
    retention_interval_s: float = Field(default=3600.0, gt=0)
    #: Cookies only over HTTPS (on in production behind TLS).
    secure_cookies: bool = False

    @field_validator("database_url", "bus_url")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cloud.sqlite3').resolve()}"

    @property
    def is_embedded(self) -> bool:
        """SQLite in the data directory: migrated by ``cloud serve`` itself."""
        return self.effective_database_url.startswith("sqlite")
