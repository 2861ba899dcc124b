"""Tables of purchasing projects (项目库) and the per-region fund ledgers behind the 2 % cap."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime, Numeric
from sqlmodel import Field

from services.providers.models import ProvidersTable


class FundLedger(ProvidersTable, table=True):
    """A region's purchasing budget for one year (资金台账), in fen (分).

    `base_fen`: central + provincial special social-assistance funds recorded for the region
    and year; `cap_fen` = floor(base × pack ratio); `reserved_fen`: what approved projects
    hold. Approval reserves with one conditional UPDATE (`reserved + amount <= cap`), so
    concurrent approvals can never oversubscribe the cap.
    """

    __tablename__ = "fund_ledger"

    region_code: str = Field(primary_key=True, max_length=12)
    year: int = Field(primary_key=True)
    base_fen: int = Field(default=0, sa_type=BigInteger)
    cap_ratio: Any = Field(sa_type=Numeric(6, 4))
    cap_fen: int = Field(default=0, sa_type=BigInteger)
    reserved_fen: int = Field(default=0, sa_type=BigInteger)
    version: int = Field(default=1)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class FundAllocation(ProvidersTable, table=True):
    """One transfer of special funds recorded into a ledger (中央/省级专项资金下达).

    source: central | provincial. Ledgers are only ever changed by adding these rows (and
    reservations), so the base can be audited back to documents.
    """

    __tablename__ = "fund_allocation"

    id: str = Field(primary_key=True, max_length=36)
    region_code: str = Field(max_length=12, index=True)
    year: int
    source: str = Field(max_length=20)
    amount_fen: int = Field(sa_type=BigInteger)
    document: str = Field(max_length=200)  # the funding document number (文号)
    recorded_by: str = Field(max_length=100)
    recorded_at: datetime = Field(sa_type=DateTime(timezone=True))


class Project(ProvidersTable, table=True):
    """A purchasing project (政府购买服务项目) set by a purchaser.

    states: draft → approved → published → tendered → awarded → in_service → closed, or
    cancelled. Approval reserves `budget_fen` in the ledger of (region_code, budget_year);
    cancelling before award releases it.
    """

    __tablename__ = "project"

    id: str = Field(primary_key=True, max_length=36)
    region_code: str = Field(max_length=12, index=True)
    department: str = Field(max_length=200)
    title: str = Field(max_length=200)
    service_codes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    quantity: int
    unit: str = Field(max_length=20)
    quality_standards: str = Field(max_length=4000)
    # Admission-condition codes (stage `project`) and free-text specific conditions.
    qualification_requirements: list[str] = Field(sa_column=Column(JSON, nullable=False))
    specific_conditions: str | None = Field(default=None, max_length=2000)
    budget_fen: int = Field(sa_type=BigInteger)
    budget_year: int = Field(index=True)
    fund_source: str = Field(max_length=30)  # working_funds | special_funds | welfare_lottery
    period_start: date = Field(sa_type=Date)
    period_end: date = Field(sa_type=Date)
    stable_recurring: bool = Field(default=False)  # 购买内容相对固定、连续性强 …
    budget_secured: bool = Field(default=False)  # 预算保障
    purchasing_method: str = Field(max_length=40)
    pack: str = Field(max_length=40)
    state: str = Field(default="draft", max_length=20, index=True)
    state_reason: str | None = Field(default=None, max_length=2000)
    tender_id: str | None = Field(default=None, max_length=36)
    contract_id: str | None = Field(default=None, max_length=36)
    version: int = Field(default=1)
    created_by: str = Field(max_length=100)
    approved_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    approved_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ProjectTransition(ProvidersTable, table=True):
    """History of a project's states: who or which event moved it, when and why."""

    __tablename__ = "project_transition"

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = Field(max_length=36, foreign_key="project.id", index=True)
    from_state: str = Field(max_length=20)
    to_state: str = Field(max_length=20)
    actor: str = Field(max_length=100)  # a principal's subject, or `event:<type>`
    reason: str | None = Field(default=None, max_length=2000)
    at: datetime = Field(sa_type=DateTime(timezone=True))
