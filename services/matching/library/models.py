"""What matching knows of the providers' library, from its events (event-carried state).

Projects open tenders; experts sit on panels; charity resources serve needs. Each row keeps
the producer's `version` so a late or replayed event never overwrites a newer one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime
from sqlmodel import Field

from services.matching.models import MatchingTable


class ProjectView(MatchingTable, table=True):
    """A published purchasing project (项目), from `sa.providers.project.published`."""

    __tablename__ = "project_view"

    project_id: str = Field(primary_key=True, max_length=36)
    region_code: str = Field(max_length=12, index=True)
    department: str = Field(max_length=200)
    title: str = Field(max_length=200)
    service_codes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    quantity: int
    unit: str = Field(max_length=20)
    budget_fen: int = Field(sa_type=BigInteger)
    purchasing_method: str = Field(max_length=40)
    period_start: date = Field(sa_type=Date)
    period_end: date = Field(sa_type=Date)
    qualification_requirements: list[str] = Field(sa_column=Column(JSON, nullable=False))
    pack: str = Field(max_length=40)
    state: str = Field(default="published", max_length=20)  # published | cancelled
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    version: int = Field(default=0)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class ExpertView(MatchingTable, table=True):
    """An expert who may be drawn for a panel, with affiliations for recusal (回避)."""

    __tablename__ = "expert_view"

    expert_id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=100)
    region_code: str = Field(max_length=12, index=True)
    fields: list[str] = Field(sa_column=Column(JSON, nullable=False))
    available: bool = Field(default=True)
    unavailable_until: date | None = Field(default=None, sa_type=Date)
    status: str = Field(default="active", max_length=20)
    # [{organisation_uscc, organisation_id, kind, started_on, ended_on}]
    affiliations: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    version: int = Field(default=0)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class ResourceView(MatchingTable, table=True):
    """A charity resource on offer (慈善资源), from `sa.providers.resource.*`.

    `remaining` is matching's own count: providers' figure minus allocations matching has
    made and not yet seen confirmed, so two runs never promise the same unit twice.
    """

    __tablename__ = "resource_view"

    resource_id: str = Field(primary_key=True, max_length=36)
    charity_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=20)
    service_codes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    regions: list[str] = Field(sa_column=Column(JSON, nullable=False))
    target_categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    remaining: int = Field(sa_type=BigInteger)
    unit: str = Field(max_length=20)
    valid_from: date = Field(sa_type=Date)
    valid_until: date = Field(sa_type=Date)
    status: str = Field(default="offered", max_length=20, index=True)
    version: int = Field(default=0)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class ResourceAllocation(MatchingTable, table=True):
    """Units of a charity resource given to a need (announced as `resource.allocated`)."""

    __tablename__ = "resource_allocation"

    id: str = Field(primary_key=True, max_length=36)
    resource_id: str = Field(max_length=36, index=True)
    need_id: str = Field(max_length=36, index=True)
    quantity: int = Field(sa_type=BigInteger)
    state: str = Field(default="allocated", max_length=20)  # allocated | released
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
