"""/api/v1 routes: auth (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
