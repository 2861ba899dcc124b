"""Table of single-window intake (一门受理): one row per application received."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field

from services.needs.models import NeedsTable


class Intake(NeedsTable, table=True):
    """An application received at the single window (一门受理).

    `received_by` is the official who took it first (首问负责): they stay answerable for it
    whoever it is routed to. `missing_documents` is derived from `required_documents` and
    `provided_documents` (一次性告知) and stored so lists and notices need no recomputation.
    The applicant's name is kept only sealed (`applicant_name_enc`); `applicant_recipient_ref`
    carries no foreign key because an application may come before the person is registered.
    `overdue_notified_at` is set in the transaction that emits `sa.needs.intake.overdue`, by a
    conditional UPDATE, so the notice goes out once however many replicas scan.
    """

    __tablename__ = "intake"

    id: str = Field(primary_key=True, max_length=36)
    # Township (9 digits) or village (12 digits) of the window that received it.
    region_code: str = Field(max_length=12, index=True)
    channel: str = Field(max_length=20)  # window | online | grid_worker
    received_by: str = Field(max_length=100)
    received_on: date  # the day in China (UTC+8), not a UTC date
    applicant_recipient_ref: str | None = Field(default=None, max_length=36, index=True)
    applicant_name_enc: str | None = Field(default=None, max_length=400)
    requested: list[str] = Field(sa_column=Column(JSON, nullable=False))
    required_documents: list[str] = Field(sa_column=Column(JSON, nullable=False))
    provided_documents: list[str] = Field(sa_column=Column(JSON, nullable=False))
    missing_documents: list[str] = Field(sa_column=Column(JSON, nullable=False))
    routed_to: str | None = Field(default=None, max_length=100)
    status: str = Field(default="received", max_length=20, index=True)
    rejection_reason: str | None = Field(default=None, max_length=300)
    due_on: date = Field(index=True)
    overdue_notified_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True), nullable=True
    )
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
