"""Request and response models of panels (评标委员会), score sheets, results (评审结果) and
awards (中标/成交).

Scores and money-like numbers are `Decimal` and travel as decimal strings ("83.4567"), so what
a client reads is exactly what decided the ranking.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Score = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
CriterionCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$", max_length=60)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------ panels


class PanelMember(BaseModel):
    expert_id: str
    name: str


class PanelExclusion(BaseModel):
    """An expert drawn but not seated: recused (回避) with the tie, or passed over."""

    expert_id: str
    reason: str
    detail: str
    organisation_id: str | None = None
    organisation_uscc: str | None = None
    kind: str | None = None


class PanelPublic(BaseModel):
    """The panel as the purchaser sees it, with everything an auditor needs to re-run it.

    Members' names stay confidential outside the purchaser's office until the results notice
    (评审专家名单在评审结果确定前应当保密).
    """

    id: str
    tender_id: str
    size: int
    seed: str
    candidates: list[str]
    members: list[PanelMember]
    excluded: list[PanelExclusion]
    drawn_by: str
    drawn_at: datetime
    draw_date: date
    rules: list[str] = Field(description="Clauses behind the size and the recusal")


class PanelAudit(BaseModel):
    """The draw re-run from the stored seed and candidates (审计复核)."""

    tender_id: str
    seed: str
    size: int
    candidates: list[str]
    excluded: list[str]
    recorded_members: list[str]
    replayed_members: list[str]
    reproduced: bool


class CriterionPublic(BaseModel):
    code: str
    name: str
    weight: Decimal


class PanelBid(BaseModel):
    """An opened bid as a panel member reads it, with the bidder's past performance
    (credit score and recipients' satisfaction) for the past-performance criterion."""

    bid_id: str
    organisation_id: str
    organisation_name: str | None
    state: str
    price_fen: int | None
    invalid_reason: str | None
    content: dict[str, Any] | None
    credit_score: float | None
    credit_grade: str | None
    satisfaction: float | None
    scored_by_me: bool


class PanelBids(BaseModel):
    tender_id: str
    criteria: list[CriterionPublic]
    items: list[PanelBid]


# ------------------------------------------------------------------------------ score sheets


class ScoreSheetIn(_Body):
    """One member's scores of one valid bid: every criterion of the tender, 0–100."""

    bid_id: str = Field(min_length=1, max_length=36)
    scores: dict[CriterionCode, Score] = Field(min_length=1, max_length=20)


class ScoreSheetUpdate(_Body):
    """A correction of one's own sheet before the results are computed."""

    scores: dict[CriterionCode, Score] = Field(min_length=1, max_length=20)


class ScoreSheetPublic(BaseModel):
    id: str
    tender_id: str
    bid_id: str
    expert_id: str
    scores: dict[str, Decimal]
    submitted_at: datetime


# ---------------------------------------------------------------------------------- results


class CriterionResult(BaseModel):
    """One criterion of one bid: the members' mean and its weighted share of the total."""

    name: str
    weight: Decimal
    mean: Decimal
    weighted: Decimal


class BidResultPublic(BaseModel):
    bid_id: str
    organisation_id: str
    organisation_name: str | None
    price_fen: int | None
    criteria: dict[str, CriterionResult]
    quality_score: Decimal
    price_score: Decimal
    total: Decimal
    credit_score: float | None
    rank: int


class InvalidBidPublic(BaseModel):
    bid_id: str
    organisation_id: str
    organisation_name: str | None
    reason: str | None


class AwardPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    tender_id: str
    bid_id: str
    organisation_id: str
    rank: int
    state: str
    reason: str | None
    decided_by: str
    created_at: datetime
    updated_at: datetime


class ResultsPublic(BaseModel):
    """The results notice (评审结果公告): every bidder's per-criterion, price and total scores
    and rank, the panel's names, and where the award stands. No contact data, no bid content."""

    tender_id: str
    title: str
    method: str
    state: str
    state_reason: str | None
    price_weight: Decimal
    criteria: list[CriterionPublic]
    panel: list[str] = Field(description="Names of the panel members (评审专家名单)")
    results: list[BidResultPublic]
    invalid: list[InvalidBidPublic]
    award: AwardPublic | None
    rules: list[str]


# ----------------------------------------------------------------------------------- awards


class AwardDecision(_Body):
    """Why an award is refused by the organisation or excluded by the purchaser."""

    # Two characters can be a whole reason in Chinese (放弃, 违约).
    reason: str = Field(min_length=2, max_length=2000)


class AwardOutcome(BaseModel):
    """The award decided, and the offer that followed it (None when nobody was left)."""

    award: AwardPublic
    next_award: AwardPublic | None
    tender_state: str
    tender_state_reason: str | None
