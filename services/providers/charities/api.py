"""HTTP routes of the providers service: charities."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
