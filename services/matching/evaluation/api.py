"""HTTP routes of the matching service: evaluation."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
