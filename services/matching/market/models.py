"""Tables of the market: tenders (招标/采购), sealed bids, expert panels, scores and awards."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime, Numeric, UniqueConstraint
from sqlmodel import Field

from services.matching.models import MatchingTable


class Tender(MatchingTable, table=True):
    """One purchase of a published project by one of the five methods (采购方式).

    states: draft → published → bidding → evaluating → awarded | failed | cancelled
    (OCDS tender status: planned, active, active, active, complete, unsuccessful, cancelled).
    A failed open tender (废标) may be followed by a new tender of the same project by
    competitive negotiation or consultation (`previous_tender_id`).
    """

    __tablename__ = "tender"

    id: str = Field(primary_key=True, max_length=36)
    project_id: str = Field(max_length=36, index=True)
    previous_tender_id: str | None = Field(default=None, max_length=36)
    method: str = Field(max_length=40)
    # Why the method differs from the project's intended one (or follows a failed tender).
    method_reason: str | None = Field(default=None, max_length=2000)
    state: str = Field(default="draft", max_length=20, index=True)
    state_reason: str | None = Field(default=None, max_length=2000)
    region_code: str = Field(max_length=12, index=True)
    title: str = Field(max_length=200)
    service_codes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    budget_fen: int = Field(sa_type=BigInteger)
    pack: str = Field(max_length=40)
    # Evaluation criteria [{code, name, weight}] (weights of quality, summing with the price
    # weight to 1) and the price weight inside the pack's band for services.
    criteria: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    price_weight: Any = Field(sa_type=Numeric(5, 4))
    qualification_requirements: list[str] = Field(sa_column=Column(JSON, nullable=False))
    high_value: bool = Field(default=False)
    panel_size: int
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    bid_deadline: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Invited tender / negotiation / consultation: who was invited (and the draw behind it).
    invited: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # How many suppliers to draw at publication (None: open to every qualified bidder, or
    # the one named supplier of a single-source purchase).
    invitation_count: int | None = Field(default=None)
    invitation_seed: str | None = Field(default=None, max_length=64)
    invitation_candidates: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Single source: why, and the publicity period that must pass before award.
    single_source_justification: str | None = Field(default=None, max_length=4000)
    publicity_until: date | None = Field(default=None, sa_type=Date)
    version: int = Field(default=1)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class Bid(MatchingTable, table=True):
    """A sealed bid (投标/响应文件): one per organisation per tender.

    Until the deadline the price and content exist only as an AES-GCM token bound to the
    tender and organisation; nobody can read another's bid, the purchaser included.
    Opening (开标) after the deadline fills `price_fen` and `content`.
    states: submitted | withdrawn | valid | invalid.
    """

    __tablename__ = "bid"
    __table_args__ = (UniqueConstraint("tender_id", "organisation_id"),)

    id: str = Field(primary_key=True, max_length=36)
    tender_id: str = Field(max_length=36, foreign_key="tender.id", index=True)
    organisation_id: str = Field(max_length=36, index=True)
    state: str = Field(default="submitted", max_length=20)
    sealed: str = Field(max_length=200_000)
    price_fen: int | None = Field(default=None, sa_type=BigInteger)
    content: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    invalid_reason: str | None = Field(default=None, max_length=2000)
    version: int = Field(default=1)
    submitted_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    opened_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Panel(MatchingTable, table=True):
    """An evaluation panel (评标委员会/评审小组) drawn at random from the expert library.

    Reproducible: `seed` and `candidates` (the ordered eligible list at draw time) are kept,
    so an auditor re-running the draw gets the same `members`; `excluded` records recusals
    ({expert_id, reason, organisation_id}) and replacements.
    """

    __tablename__ = "panel"

    id: str = Field(primary_key=True, max_length=36)
    tender_id: str = Field(max_length=36, foreign_key="tender.id", unique=True)
    size: int
    seed: str = Field(max_length=64)
    candidates: list[str] = Field(sa_column=Column(JSON, nullable=False))
    members: list[str] = Field(sa_column=Column(JSON, nullable=False))
    excluded: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    drawn_by: str = Field(max_length=100)
    drawn_at: datetime = Field(sa_type=DateTime(timezone=True))


class PanelScore(MatchingTable, table=True):
    """One panel member's scores of one bid, per criterion (0–100 each)."""

    __tablename__ = "panel_score"
    __table_args__ = (UniqueConstraint("bid_id", "expert_id"),)

    id: str = Field(primary_key=True, max_length=36)
    tender_id: str = Field(max_length=36, foreign_key="tender.id", index=True)
    bid_id: str = Field(max_length=36, foreign_key="bid.id", index=True)
    expert_id: str = Field(max_length=36)
    scores: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    submitted_at: datetime = Field(sa_type=DateTime(timezone=True))


class BidResult(MatchingTable, table=True):
    """A bid's published result (综合评分): per-criterion and price scores, total and rank."""

    __tablename__ = "bid_result"

    bid_id: str = Field(primary_key=True, max_length=36, foreign_key="bid.id")
    tender_id: str = Field(max_length=36, foreign_key="tender.id", index=True)
    organisation_id: str = Field(max_length=36)
    criteria: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    quality_score: Any = Field(sa_type=Numeric(9, 4))
    price_score: Any = Field(sa_type=Numeric(9, 4))
    total: Any = Field(sa_type=Numeric(9, 4))
    credit_score: float | None = Field(default=None)
    rank: int


class Award(MatchingTable, table=True):
    """An award offered to a ranked bidder (中标/成交); refused or excluded → the next.

    states: offered | accepted | refused | excluded.
    """

    __tablename__ = "award"

    id: str = Field(primary_key=True, max_length=36)
    tender_id: str = Field(max_length=36, foreign_key="tender.id", index=True)
    bid_id: str = Field(max_length=36, foreign_key="bid.id")
    organisation_id: str = Field(max_length=36, index=True)
    rank: int
    state: str = Field(default="offered", max_length=20)
    reason: str | None = Field(default=None, max_length=2000)
    decided_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
