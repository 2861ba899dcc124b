"""Request and response models of assessments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.needs.schemas import NeedItem


class AssessmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_ref: str = Field(min_length=1, max_length=36)
    kind: Literal["intake", "periodic", "reassessment", "closure"]
    assessor_name: str = Field(min_length=2, max_length=100, description="Who assessed (named)")
    assessed_on: date | None = Field(default=None, description="Defaults to today (China time)")
    self_care: dict[str, bool] | None = Field(
        default=None,
        description="For 特困人员: activity → can do it alone (eating, dressing, bed_transfer, "
        "toileting, indoor_walking, bathing)",
    )
    needs: list[NeedItem] = Field(default_factory=list, max_length=30)
    notes: str | None = Field(default=None, max_length=2000)


class AssessmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    recipient_ref: str
    kind: str
    assessor_name: str
    assessed_on: date
    self_care_tier: str | None
    needs_found: list[dict[str, Any]]
    need_ids: list[str]
    reassessment_due_on: date | None
    created_at: datetime
