"""Request and response models of the matching service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class MatchPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    need_id: str
    organisation_id: str
    region_code: str
    service_code: str
    period: str
    score: float
    explanation: dict[str, Any]
    run_id: str
    created_at: datetime


class UnmatchedNeed(BaseModel):
    need_id: str
    reason: str


class AllocationResult(BaseModel):
    run_id: str
    matched: int
    matches: list[MatchPublic]
    unmatched: list[UnmatchedNeed]


class Eligibility(BaseModel):
    organisation_id: str
    status: str
    registered: bool
    eligible: bool


class Explanation(BaseModel):
    need_id: str
    status: str
    organisation_id: str | None
    explanation: dict[str, Any] | None
    reason: str | None
