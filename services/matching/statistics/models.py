"""Tables of the statistics: facts gathered from events, and the daily aggregates.

The fact tables hold one row per need, project, ledger, evaluation and organisation with
only what the aggregates need (no recipient data: needs are known by id and region only).
Each row is filled from whichever events arrive, in any order; version columns keep a late
event from overwriting a newer one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime
from sqlmodel import Field

from services.matching.models import MatchingTable


class StatNeed(MatchingTable, table=True):
    """A need item's milestones (需求): opened, first matched, first served, closed."""

    __tablename__ = "stat_need"

    need_id: str = Field(primary_key=True, max_length=36)
    region_code: str | None = Field(default=None, max_length=12, index=True)
    opened_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    matched_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    served_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    fulfilled_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    cancelled_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)


class StatProject(MatchingTable, table=True):
    """A purchasing project's budget held against its region's ledger (项目预算)."""

    __tablename__ = "stat_project"

    project_id: str = Field(primary_key=True, max_length=36)
    region_code: str = Field(max_length=12, index=True)
    budget_year: int = Field(index=True)
    budget_fen: int = Field(default=0, sa_type=BigInteger)
    approved_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    cancelled_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    released_fen: int = Field(default=0, sa_type=BigInteger)


class StatLedger(MatchingTable, table=True):
    """A region's fund ledger for a year (资金台账): the base and the 2 % cap."""

    __tablename__ = "stat_ledger"

    region_code: str = Field(primary_key=True, max_length=12)
    year: int = Field(primary_key=True)
    base_fen: int = Field(default=0, sa_type=BigInteger)
    cap_fen: int | None = Field(default=None, sa_type=BigInteger)
    version: int = Field(default=0)


class StatEvaluation(MatchingTable, table=True):
    """A published performance evaluation's recipients' satisfaction (0–1)."""

    __tablename__ = "stat_evaluation"

    evaluation_id: str = Field(primary_key=True, max_length=36)
    region_code: str = Field(max_length=12, index=True)
    satisfaction: float | None = Field(default=None)
    published_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)


class StatOrganisation(MatchingTable, table=True):
    """An organisation's home region, market status and credit grade."""

    __tablename__ = "stat_organisation"

    organisation_id: str = Field(primary_key=True, max_length=36)
    region_code: str | None = Field(default=None, max_length=12, index=True)
    offer_version: int = Field(default=0)
    status: str = Field(default="unknown", max_length=20)
    status_version: int = Field(default=0)
    grade: str | None = Field(default=None, max_length=10)
    score_version: int = Field(default=0)


class StatDay(MatchingTable, table=True):
    """A day whose aggregates are computed; `dirty` when a late fact changed it."""

    __tablename__ = "stat_day"

    day: date = Field(primary_key=True, sa_type=Date)
    version: int = Field(default=1)
    dirty: bool = Field(default=False, index=True)
    computed_at: datetime = Field(sa_type=DateTime(timezone=True))


class StatDaily(MatchingTable, table=True):
    """One region's aggregates for one day (China time), as served and announced."""

    __tablename__ = "stat_daily"

    day: date = Field(primary_key=True, sa_type=Date)
    region_code: str = Field(primary_key=True, max_length=12)
    needs_opened: int = Field(default=0)
    needs_matched: int = Field(default=0)
    needs_served: int = Field(default=0)
    needs_fulfilled: int = Field(default=0)
    needs_cancelled: int = Field(default=0)
    median_minutes_to_match: float | None = Field(default=None)
    budget_reserved_fen: int = Field(default=0, sa_type=BigInteger)
    cap_fen: int | None = Field(default=None, sa_type=BigInteger)
    cap_used: float | None = Field(default=None)
    evaluations: int = Field(default=0)
    average_satisfaction: float | None = Field(default=None)
    active_organisations: int = Field(default=0)
    active_by_grade: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    version: int = Field(default=1)
    computed_at: datetime = Field(sa_type=DateTime(timezone=True))
