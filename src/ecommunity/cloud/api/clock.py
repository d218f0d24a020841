"""The current time as a dependency: routes that apply dated rules (a participation-factor
change is accepted 09:00–17:00 Vienna time) take it from here, so tests can set the clock with
``app.dependency_overrides[current_time]``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends


def current_time() -> datetime:
    """Now, UTC."""
    return datetime.now(UTC)


Now = Annotated[datetime, Depends(current_time)]
