"""Tables of the credit service: who may take part, and why."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
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
    # What the public list shows (失信名单): the violation, the sanction and who decided.
    sanction_id: str | None = Field(default=None, max_length=36, index=True)
    violation_kind: str | None = Field(default=None, max_length=40)
    deciding_authority: str | None = Field(default=None, max_length=200)
    # listed → expired (period over) | repaired (信用修复, lifted early) | overturned (appeal)
    state: str = Field(
        default="listed", max_length=20, index=True, sa_column_kwargs={"server_default": "listed"}
    )
    lifted_on: date | None = Field(default=None)
    lifted_reason: str | None = Field(default=None, max_length=2000)
    updated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AdmissionOverride(CreditTable, table=True):
    """An operator's override of an admission outcome, with a written reason (四眼原则).

    Proposed by one operator, it takes effect only when a second, different operator
    confirms it; both steps are kept. state: proposed | confirmed | rejected.
    """

    __tablename__ = "admission_override"

    id: str = Field(primary_key=True, max_length=36)
    organisation_id: str = Field(max_length=36, index=True)
    review_id: str = Field(max_length=36, foreign_key="admission_review.id")
    outcome: str = Field(max_length=20)  # the outcome the override sets
    reason: str = Field(max_length=4000)
    state: str = Field(default="proposed", max_length=20)
    proposed_by: str = Field(max_length=100)
    proposed_at: datetime = Field(sa_type=DateTime(timezone=True))
    confirmed_by: str | None = Field(default=None, max_length=100)
    confirmed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    confirm_note: str | None = Field(default=None, max_length=2000)


class ContractRecord(CreditTable, table=True):
    """A contract as credit knows it (from matching's contract events), for evaluations."""

    __tablename__ = "contract_record"

    contract_id: str = Field(primary_key=True, max_length=36)
    organisation_id: str = Field(max_length=36, index=True)
    project_id: str | None = Field(default=None, max_length=36)
    region_code: str = Field(max_length=12, index=True)
    state: str = Field(max_length=20)
    period_start: date | None = Field(default=None)
    period_end: date | None = Field(default=None)
    version: int = Field(default=0)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class ServedRecipient(CreditTable, table=True):
    """A recipient actually served under a contract (from confirmed deliveries / acceptance).

    Only these may answer the satisfaction survey of that contract's evaluation.
    """

    __tablename__ = "served_recipient"

    contract_id: str = Field(primary_key=True, max_length=36)
    recipient_ref: str = Field(primary_key=True, max_length=36)
    first_served_on: date | None = Field(default=None)
    last_served_on: date | None = Field(default=None)
    deliveries: int = Field(default=0)
    on_time: int = Field(default=0)  # deliveries confirmed on time, for timely delivery


class Evaluation(CreditTable, table=True):
    """A performance evaluation of one contract period (绩效评价).

    Three parts, weighted by the pack (recipients' satisfaction weighted most): the
    purchaser's score, recipients' satisfaction (aggregated survey answers), and a
    third-party evaluator's score. state: open → published. result: qualified | unqualified.
    """

    __tablename__ = "evaluation"
    __table_args__ = (UniqueConstraint("contract_id", "period"),)

    id: str = Field(primary_key=True, max_length=36)
    contract_id: str = Field(max_length=36, index=True)
    organisation_id: str = Field(max_length=36, index=True)
    region_code: str = Field(max_length=12, index=True)
    period: str = Field(max_length=10)  # YYYY, YYYY-Hn, YYYY-Qn or YYYY-MM
    purchaser_score: float | None = Field(default=None)
    purchaser_by: str | None = Field(default=None, max_length=100)
    third_party_score: float | None = Field(default=None)
    third_party_by: str | None = Field(default=None, max_length=100)
    satisfaction_score: float | None = Field(default=None)  # 0–100, mean of responses
    responses: int = Field(default=0)
    weights: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    total: float | None = Field(default=None)
    result: str | None = Field(default=None, max_length=20)
    state: str = Field(default="open", max_length=20, index=True)
    pack: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)


class SurveyResponse(CreditTable, table=True):
    """One recipient's satisfaction answer for an evaluation: one each, only if served."""

    __tablename__ = "survey_response"
    __table_args__ = (UniqueConstraint("evaluation_id", "recipient_ref"),)

    id: str = Field(primary_key=True, max_length=36)
    evaluation_id: str = Field(max_length=36, foreign_key="evaluation.id", index=True)
    recipient_ref: str = Field(max_length=36)
    satisfaction: int  # 1–5 (非常不满意 … 非常满意)
    answers: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    channel: str = Field(max_length=20)  # visit | phone | app | proxy
    recorded_by: str = Field(max_length=100)
    submitted_at: datetime = Field(sa_type=DateTime(timezone=True))


class CreditScore(CreditTable, table=True):
    """An organisation's current credit score (0–100) and grade (信用等级)."""

    __tablename__ = "credit_score"

    organisation_id: str = Field(primary_key=True, max_length=36)
    score: float
    grade: str = Field(max_length=10, index=True)
    parts: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    version: int = Field(default=1)
    computed_at: datetime = Field(sa_type=DateTime(timezone=True))


class ScoreChange(CreditTable, table=True):
    """History of scores: every change with its reason and the parts behind it."""

    __tablename__ = "score_change"

    id: str = Field(primary_key=True, max_length=36)
    organisation_id: str = Field(max_length=36, index=True)
    old_score: float | None = Field(default=None)
    new_score: float
    old_grade: str | None = Field(default=None, max_length=10)
    new_grade: str = Field(max_length=10)
    reason: str = Field(max_length=2000)
    cause: str = Field(max_length=40)  # evaluation | violation | sanction | repair | recompute
    cause_id: str | None = Field(default=None, max_length=36)
    parts: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    version: int
    at: datetime = Field(sa_type=DateTime(timezone=True), index=True)


class Violation(CreditTable, table=True):
    """A recorded violation (违约失信行为) with evidence and severity, under due process.

    kind: breach_of_contract | falsification | subcontracting | refusing_to_sign |
    failure_to_deliver | repeated_unqualified. severity: minor | general | serious.
    The organisation is notified and may respond until `response_due` (working days from
    the pack) before any decision. state: notified → responded → decided | dismissed.
    """

    __tablename__ = "violation"

    id: str = Field(primary_key=True, max_length=36)
    organisation_id: str = Field(max_length=36, index=True)
    contract_id: str | None = Field(default=None, max_length=36)
    kind: str = Field(max_length=40)
    severity: str = Field(max_length=20)
    description: str = Field(max_length=4000)
    evidence: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default="notified", max_length=20, index=True)
    recorded_by: str = Field(max_length=100)
    recorded_at: datetime = Field(sa_type=DateTime(timezone=True))
    notified_at: datetime = Field(sa_type=DateTime(timezone=True))
    response_due: date
    response: str | None = Field(default=None, max_length=8000)
    responded_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    source_event_id: str | None = Field(default=None, max_length=64, unique=True)


class Sanction(CreditTable, table=True):
    """A decision on a violation (处理决定), with its legal basis and period.

    kind: warning | rectification | suspension | exit | blacklist.
    state: in_force → completed (rectified / period over) | lifted (repair, reinstatement)
    | overturned (appeal upheld).
    """

    __tablename__ = "sanction"

    id: str = Field(primary_key=True, max_length=36)
    violation_id: str | None = Field(default=None, max_length=36, foreign_key="violation.id")
    organisation_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=20)
    reason: str = Field(max_length=4000)
    legal_basis: list[str] = Field(sa_column=Column(JSON, nullable=False))
    starts_on: date
    ends_on: date | None = Field(default=None)  # bans and suspensions
    deadline: date | None = Field(default=None)  # rectification orders
    state: str = Field(default="in_force", max_length=20, index=True)
    decided_by: str = Field(max_length=100)
    deciding_authority: str = Field(max_length=200)
    decided_at: datetime = Field(sa_type=DateTime(timezone=True))
    decision_version: int


class Appeal(CreditTable, table=True):
    """An organisation's appeal of a sanction (申诉), decided by a different operator."""

    __tablename__ = "appeal"

    id: str = Field(primary_key=True, max_length=36)
    sanction_id: str = Field(max_length=36, foreign_key="sanction.id", index=True)
    organisation_id: str = Field(max_length=36, index=True)
    grounds: str = Field(max_length=8000)
    filed_at: datetime = Field(sa_type=DateTime(timezone=True))
    state: str = Field(default="filed", max_length=20)  # filed | upheld | dismissed
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    decision_reason: str | None = Field(default=None, max_length=4000)


class RepairApplication(CreditTable, table=True):
    """An application for credit repair (信用修复): corrected, pledged, after the minimum
    publication period. Approval lifts the listing early; both stay in the history."""

    __tablename__ = "repair_application"

    id: str = Field(primary_key=True, max_length=36)
    blacklist_entry_id: str = Field(max_length=36, foreign_key="blacklist_entry.id", index=True)
    organisation_id: str = Field(max_length=36, index=True)
    correction: str = Field(max_length=8000)
    evidence: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    pledge: str = Field(max_length=4000)  # 信用承诺, made public
    filed_at: datetime = Field(sa_type=DateTime(timezone=True))
    state: str = Field(default="filed", max_length=20)  # filed | approved | refused
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    decision_reason: str | None = Field(default=None, max_length=4000)
