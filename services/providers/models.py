"""Tables of the providers service: the social-forces library (社会力量库)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from libs.common.db import make_registry
from libs.common.events import EventTables

registry = make_registry()
metadata = registry.metadata
event_tables = EventTables.define(metadata)


class ProvidersTable(SQLModel, registry=registry):
    """Base of every table this service owns (its own metadata, its own database)."""


class Organisation(ProvidersTable, table=True):
    """A social force (社会力量) in the provincial library.

    `status` follows credit's decisions only (admitted, rejected, suspended, exited,
    blacklisted); `status_version` is credit's decision counter, so a late or replayed
    decision never overwrites a newer one.
    """

    __tablename__ = "organisation"

    id: str = Field(primary_key=True, max_length=36)
    uscc: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=50)
    registration_authority: str | None = Field(default=None, max_length=200)  # 登记管理机关
    region_code: str = Field(max_length=12, index=True)
    service_regions: list[str] = Field(sa_column=Column(JSON, nullable=False))
    services: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    qualifications: dict[str, bool] = Field(sa_column=Column(JSON, nullable=False))
    # Admission condition code → where the evidence is (document number, file reference).
    evidence: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict)
    )
    pack: str = Field(max_length=40)
    status: str = Field(default="pending", max_length=20, index=True)
    status_version: int = Field(default=0)
    status_reason: str | None = Field(default=None, max_length=2000)
    # Credit's score and grade (信用等级), from `sa.credit.score.changed`; version guards order.
    credit_score: float | None = Field(default=None, index=True)
    credit_grade: str | None = Field(default=None, max_length=10, index=True)
    score_version: int = Field(default=0)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class OrganisationServiceRegion(ProvidersTable, table=True):
    """One division code an organisation serves (search index of `service_regions`).

    Search for code X finds organisations serving X or an area containing it (their code is a
    prefix of X: an equality test on X's few prefixes) or serving inside X (their code starts
    with X: a range scan on `code`).
    """

    __tablename__ = "organisation_service_region"

    organisation_id: str = Field(
        primary_key=True, max_length=36, foreign_key="organisation.id", ondelete="CASCADE"
    )
    code: str = Field(primary_key=True, max_length=12, index=True)


class OrganisationCapability(ProvidersTable, table=True):
    """A catalogue item an organisation offers, with its monthly capacity (search index)."""

    __tablename__ = "organisation_capability"

    organisation_id: str = Field(
        primary_key=True, max_length=36, foreign_key="organisation.id", ondelete="CASCADE"
    )
    code: str = Field(primary_key=True, max_length=60, index=True)
    monthly_capacity: int


class OrganisationStaff(ProvidersTable, table=True):
    """A worker of an organisation: social-work qualification and education (专业人员).

    Staff dispatched to government offices (派遣人员) need at least a college diploma (大专);
    a social-work qualification or education is preferred.
    """

    __tablename__ = "organisation_staff"

    id: str = Field(primary_key=True, max_length=36)
    organisation_id: str = Field(
        max_length=36, foreign_key="organisation.id", index=True, ondelete="CASCADE"
    )
    name: str = Field(max_length=100)
    # none | assistant_social_worker (助理社会工作师) | social_worker (社会工作师)
    # | senior_social_worker (高级社会工作师)
    qualification_level: str = Field(default="none", max_length=30)
    # below_college | college (大专) | bachelor | master | doctorate
    education: str = Field(max_length=20)
    social_work_education: bool = Field(default=False)
    dispatched: bool = Field(default=False)  # 派遣到县级民政部门、乡镇（街道）等
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
