"""Tables of the matching service: projections from events, and the matches it makes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, text
from sqlmodel import Field, SQLModel

from libs.common.db import make_registry
from libs.common.events import EventTables

registry = make_registry()
metadata = registry.metadata
event_tables = EventTables.define(metadata)


class MatchingTable(SQLModel, registry=registry):
    """Base of every table this service owns."""


class OrganisationView(MatchingTable, table=True):
    """What matching knows of an organisation: its offer (from providers) and its standing
    (from credit). Either event may arrive first; the row fills in from both."""

    __tablename__ = "organisation_view"

    organisation_id: str = Field(primary_key=True, max_length=36)
    registered: bool = Field(default=False)
    # Providers' `version` of the offer last applied (organisation.registered|updated): a late
    # or replayed offer event never overwrites a newer one.
    offer_version: int = Field(default=0)
    service_regions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # catalogue code → monthly capacity
    capacities: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="unknown", max_length=20, index=True)
    status_version: int = Field(default=0)
    uscc: str | None = Field(default=None, max_length=18, index=True)
    name: str | None = Field(default=None, max_length=200)
    kind: str | None = Field(default=None, max_length=50)
    qualifications: dict[str, bool] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    # From credit: score (0–100) and grade (`sa.credit.score.changed`), and the average
    # recipients' satisfaction of recent evaluations (0–1, `sa.credit.evaluation.recorded`,
    # as of the latest evaluation published), used as selection weights.
    credit_score: float | None = Field(default=None)
    credit_grade: str | None = Field(default=None, max_length=10)
    score_version: int = Field(default=0)
    satisfaction: float | None = Field(default=None)
    satisfaction_as_of: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class NeedView(MatchingTable, table=True):
    """An open need item as matching sees it: pseudonymous, no personal data."""

    __tablename__ = "need_view"

    need_id: str = Field(primary_key=True, max_length=36)
    recipient_ref: str = Field(max_length=36)
    region_code: str = Field(max_length=12, index=True)
    service_code: str = Field(max_length=60)
    urgency: int
    categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    opened_at: datetime = Field(sa_type=DateTime(timezone=True))
    # open | matched | unplaced (its provider was barred and nobody could take it over: the
    # purchaser is told, and every run retries it) | cancelled
    status: str = Field(default="open", max_length=20, index=True)
    last_unmatched_reason: str | None = Field(default=None, max_length=1000)
    # Why the last run left it unmatched: no_coverage | capacity_exhausted | all_ineligible,
    # and the engine's "why not" with the capacity figures.
    unmatched_code: str | None = Field(default=None, max_length=30)
    unmatched_detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # When a run last considered it; NULL = not yet (the micro-batch picks these up).
    considered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Match(MatchingTable, table=True):
    """A need linked to a provider, with the explanation of why this one.

    A need keeps its history: a match taken over (临时接管) stays as `replaced` next to the
    new one, so at most one match per need is `active` (a partial unique index).
    """

    __tablename__ = "match"
    __table_args__ = (
        # Capacity used this month per contract: the re-check of every write reads it.
        Index("ix_match_contract_id_period", "contract_id", "period"),
        Index(
            "uq_match_active_need",
            "need_id",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    need_id: str = Field(max_length=36, index=True)
    # Exactly one of organisation_id (under contract_id) and resource_id (a charity resource).
    organisation_id: str | None = Field(default=None, max_length=36, index=True)
    contract_id: str | None = Field(default=None, max_length=36)
    resource_id: str | None = Field(default=None, max_length=36, index=True)
    recipient_ref: str = Field(max_length=36)
    region_code: str = Field(max_length=12)
    service_code: str = Field(max_length=60)
    period: str = Field(max_length=7, index=True)  # YYYY-MM, for monthly capacity
    score: float
    explanation: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    run_id: str = Field(max_length=36, index=True)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    # active | ended (need closed) | replaced (taken over by another match)
    state: str = Field(default="active", max_length=20, index=True)
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AllocationRun(MatchingTable, table=True):
    __tablename__ = "allocation_run"

    id: str = Field(primary_key=True, max_length=36)
    requested_by: str = Field(max_length=100)
    region_scope: str = Field(max_length=12)
    matched: int
    unmatched: int
    started_at: datetime = Field(sa_type=DateTime(timezone=True))
    finished_at: datetime = Field(sa_type=DateTime(timezone=True))
