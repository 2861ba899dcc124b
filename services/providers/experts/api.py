"""HTTP routes of the providers service: experts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
