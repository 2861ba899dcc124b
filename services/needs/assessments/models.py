"""The assessment table."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field

from services.needs.models import NeedsTable


class Assessment(NeedsTable, table=True):
    """A needs assessment by a named assessor: the needs found and, for 特困人员, the
    self-care ability assessment (生活自理能力评估)."""

    __tablename__ = "assessment"

    id: str = Field(primary_key=True, max_length=36)
    recipient_ref: str = Field(max_length=36, index=True, foreign_key="recipient.ref")
    kind: str = Field(max_length=20)  # intake | periodic | reassessment | closure
    assessor_name: str = Field(max_length=100)
    assessed_on: date
    self_care_answers: dict[str, bool] | None = Field(default=None, sa_column=Column(JSON))
    self_care_tier: str | None = Field(default=None, max_length=20)
    needs_found: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    need_ids: list[str] = Field(sa_column=Column(JSON, nullable=False))
    reassessment_due_on: date | None = Field(default=None, index=True)
    notes: str | None = Field(default=None, max_length=2000)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
