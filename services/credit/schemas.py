"""Request and response models of the credit service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AdmissionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str
    outcome: str
    reasons: list[dict[str, Any]]
    pack: str
    decided_by: str
    decided_at: datetime
