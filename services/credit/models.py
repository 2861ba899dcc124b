"""Tables of the credit service: who may take part, and why."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from libs.common.db import make_registry
from libs.common.events import EventTables

registry = make_registry()
metadata = registry.metadata
event_tables = EventTables.define(metadata)


class CreditTable(SQLModel, registry=registry):
    """Base of every table this service owns."""


class OrganisationRecord(CreditTable, table=True):
    """Credit's own record of an organisation, built from providers' events.

    `decision_version` counts credit's decisions on it; every decision event carries it so
    consumers can ignore one that arrives late.
    """

    __tablename__ = "organisation_record"

    organisation_id: str = Field(primary_key=True, max_length=36)
    uscc: str = Field(max_length=18, index=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=50)
    region_code: str = Field(max_length=12, index=True)
    pack: str = Field(max_length=40)
    qualifications: dict[str, bool] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=20, index=True)
    decision_version: int = Field(default=0)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class AdmissionReview(CreditTable, table=True):
    """An admission review (准入审查): the outcome and every condition with its clause."""

    __tablename__ = "admission_review"

    id: str = Field(primary_key=True, max_length=36)
    organisation_id: str = Field(max_length=36, index=True)
    outcome: str = Field(max_length=20)
    reasons: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    pack: str = Field(max_length=40)
    decided_by: str = Field(max_length=100)
    decided_at: datetime = Field(sa_type=DateTime(timezone=True))


class BlacklistEntry(CreditTable, table=True):
    """A ban from taking part (黑名单), with its legal basis and period."""

    __tablename__ = "blacklist_entry"

    id: str = Field(primary_key=True, max_length=36)
    organisation_id: str = Field(max_length=36, index=True)
    uscc: str = Field(max_length=18, index=True)
    name: str = Field(max_length=200)
    severity: str = Field(max_length=20)
    reason: str = Field(max_length=2000)
    legal_basis: list[str] = Field(sa_column=Column(JSON, nullable=False))
    starts_on: date
    ends_on: date
    decided_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
