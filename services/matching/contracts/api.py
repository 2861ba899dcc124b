"""HTTP routes of the matching service: contracts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
