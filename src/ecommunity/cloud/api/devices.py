"""/api/v1 routes: devices (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
