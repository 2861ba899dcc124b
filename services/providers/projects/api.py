"""HTTP routes of the providers service: projects."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
