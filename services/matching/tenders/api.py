"""HTTP routes of the matching service: tenders."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
