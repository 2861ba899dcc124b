"""Requests and responses of admission overrides, evaluations, surveys and credit scores."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.credit.performance.rules import PERIOD_RE

Text = Annotated[str, StringConstraints(strip_whitespace=True)]

# ------------------------------------------------------------------------------ overrides


class OverrideCreate(BaseModel):
    """An operator's override of an admission outcome (准入复核), with a written reason."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["admitted", "rejected"]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=20, max_length=4000)]


class OverrideDecision(BaseModel):
    """The second operator's note on confirming or rejecting an override."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class OverridePublic(BaseModel):
    """An override with both steps: who proposed it and why, who confirmed or rejected it.

    `confirmed_by` / `confirmed_at` / `confirm_note` record the second operator's step,
    whichever way it went (`state` says which)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str
    review_id: str
    outcome: str
    reason: str
    state: str
    proposed_by: str
    proposed_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    confirm_note: str | None
    # After confirmation: the organisation's status, and the review recording the override.
    status: str | None = None
    decision_review_id: str | None = None


# ------------------------------------------------------------------------------ evaluations

Period = Annotated[str, StringConstraints(pattern=PERIOD_RE.pattern)]
EvaluationState = Literal["open", "published"]
EvaluationResult = Literal["qualified", "unqualified"]
EvaluationSort = Literal[
    "created_at", "-created_at", "published_at", "-published_at", "total", "-total"
]


class EvaluationCreate(BaseModel):
    """Open the performance evaluation (绩效评价) of one contract period."""

    model_config = ConfigDict(extra="forbid")

    contract_id: Annotated[str, StringConstraints(min_length=1, max_length=36)]
    period: Period = Field(description="YYYY, YYYY-H1/H2, YYYY-Q1..Q4 or YYYY-MM")


class PartScore(BaseModel):
    """The purchaser's or the third-party evaluator's score, 0–100 (two decimals kept)."""

    model_config = ConfigDict(extra="forbid")

    score: float = Field(ge=0, le=100, allow_inf_nan=False)
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class SurveyCreate(BaseModel):
    """One recipient's satisfaction answer (满意度测评), recorded by an official.

    `recipient_ref` is the pseudonymous reference; no name or ID number ever comes here.
    """

    model_config = ConfigDict(extra="forbid")

    recipient_ref: Annotated[str, StringConstraints(min_length=1, max_length=36)]
    satisfaction: int = Field(ge=1, le=5, description="1 非常不满意 … 5 非常满意")
    answers: dict[str, Any] = Field(default_factory=dict, max_length=50)
    channel: Literal["visit", "phone", "app", "proxy"]


class SurveyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    evaluation_id: str
    recipient_ref: str
    satisfaction: int
    channel: str
    recorded_by: str
    submitted_at: datetime


class EvaluationPublic(BaseModel):
    """An evaluation as officials see it, with the clauses its weights and mark rest on."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    contract_id: str
    organisation_id: str
    region_code: str
    period: str
    state: str
    purchaser_score: float | None
    purchaser_by: str | None
    third_party_score: float | None
    third_party_by: str | None
    satisfaction_score: float | None
    responses: int
    weights: dict[str, Any]
    total: float | None
    result: str | None
    pack: str
    created_at: datetime
    published_at: datetime | None
    # Filled by the service: answers still needed to publish, the pass mark and the rules.
    responses_required: int | None = None
    pass_mark: float | None = None
    rules: list[str] = Field(default_factory=list)
    # In the answer to a publication: what an unqualified result led to.
    rectification_ordered: bool | None = None
    violation_id: str | None = None


class EvaluationPublished(BaseModel):
    """A published evaluation as everybody may see it (评价结果向社会公开): scores, weights,
    total and result; no recipient references and no officials' accounts."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    contract_id: str
    organisation_id: str
    organisation_name: str | None = None
    region_code: str
    period: str
    purchaser_score: float | None
    satisfaction_score: float | None
    third_party_score: float | None
    responses: int
    weights: dict[str, Any]
    total: float | None
    result: str | None
    published_at: datetime | None


# ------------------------------------------------------------------------------ scores

ScoreSort = Literal["score", "-score", "organisation_id", "computed_at", "-computed_at"]


class ScorePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    organisation_id: str
    score: float
    grade: str
    parts: dict[str, Any]
    version: int
    computed_at: datetime | None


class ScoreChangePublic(BaseModel):
    """One change of score: old → new, the reason, its cause, and the parts (their `terms`
    add up to the new score)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    version: int
    old_score: float | None
    new_score: float
    old_grade: str | None
    new_grade: str
    reason: str
    cause: str
    cause_id: str | None
    parts: dict[str, Any]
    at: datetime


class ScoreDetail(BaseModel):
    """The current score and its whole history, oldest change first. Before any change the
    score is the pack's base (version 0, provisional, no history)."""

    current: ScorePublic
    provisional: bool
    history: list[ScoreChangePublic]


class RecomputeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: Annotated[str, StringConstraints(pattern=r"^\d{0,12}$")] | None = None
    batch_size: int = Field(default=1000, ge=10, le=10_000)


class RecomputeReport(BaseModel):
    """What a full recompute did, with its progress log."""

    organisations: int
    changed: int
    unchanged: int
    skipped: int
    evaluations: int
    seconds: float
    log: list[str]
