"""API schemas shared by several resources (``XCreate``/``XPublic`` per resource live beside
their routes). Unknown fields are refused: a typo must not pass silently."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ReadingIn(BaseModel):
    """One meter reading as a gateway uploads it (minute reading or raw live push)."""

    model_config = ConfigDict(extra="forbid")

    #: The meter's id as its frames carry it ("" when they carry none).
    meter_serial: str = Field(default="", max_length=64)
    #: The meter profile the gateway decodes with (e.g. ``amis``).
    profile: str = Field(default="", max_length=64)
    #: The meter's time stamp; must carry its offset (stored as UTC).
    measured_at: AwareDatetime
    energy_import_wh: int | None = Field(default=None, ge=0, le=10**15)
    energy_export_wh: int | None = Field(default=None, ge=0, le=10**15)
    power_import_w: int | None = Field(default=None, ge=0, le=10**9)
    power_export_w: int | None = Field(default=None, ge=0, le=10**9)


class ReadingFields(Protocol):
    """What ingestion reads of a reading: a :class:`ReadingIn`, or its twin from the batch
    upload's fast decoder (``ecommunity.cloud.api.batch_body``)."""

    @property
    def meter_serial(self) -> str: ...
    @property
    def profile(self) -> str: ...
    @property
    def measured_at(self) -> datetime: ...
    @property
    def energy_import_wh(self) -> int | None: ...
    @property
    def energy_export_wh(self) -> int | None: ...
    @property
    def power_import_w(self) -> int | None: ...
    @property
    def power_export_w(self) -> int | None: ...


class ReadingOut(BaseModel):
    """A stored reading."""

    measured_at: datetime
    energy_import_wh: int | None
    energy_export_wh: int | None
    power_import_w: int | None
    power_export_w: int | None
    flags: list[str]
