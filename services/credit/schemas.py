"""Request and response models of the credit service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AdmissionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str
    outcome: str
    reasons: list[dict[str, Any]]
    pack: str
    decided_by: str
    decided_at: datetime


class BlacklistCreate(BaseModel):
    """Put an organisation on the blacklist (列入黑名单) for the pack's ban period."""

    model_config = ConfigDict(extra="forbid")

    organisation_id: str = Field(min_length=1, max_length=36)
    severity: Literal["minor", "general", "serious"]
    reason: str = Field(min_length=5, max_length=2000)


class BlacklistPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str
    uscc: str
    name: str
    severity: str
    reason: str
    legal_basis: list[str]
    starts_on: date
    ban_until: date = Field(validation_alias="ends_on")
    decided_by: str
    created_at: datetime
