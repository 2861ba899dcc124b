"""Requests and responses of violations, sanctions, the dishonesty list, appeals and repair.

`DishonestyEntry` is the only shape the public (no login) ever sees: an explicit allow-list
of organisation facts. It is built field by field from the blacklist entry, never from a
whole row, so a column added later (or the violation's description, which may quote a
person) cannot leak into it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.credit.sanctions.rules import DecisionKind, Severity, ViolationKind

# Four characters: a Chinese reason such as 违背合同 says enough; less says nothing.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=4000)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=8000)]
ViolationState = Literal["notified", "responded", "decided", "dismissed"]
SanctionState = Literal["in_force", "completed", "lifted", "overturned"]
EntryState = Literal["listed", "expired", "repaired", "overturned"]
ViolationSort = Literal["recorded_at", "-recorded_at", "response_due", "-response_due"]


class EvidenceItem(BaseModel):
    """One piece of evidence (证据): what it is and where it is kept."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    reference: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
    ]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


# ------------------------------------------------------------------------------ violations


class ViolationCreate(BaseModel):
    """Record a violation (违约失信行为) with evidence; the organisation is notified."""

    model_config = ConfigDict(extra="forbid")

    organisation_id: str = Field(min_length=1, max_length=36)
    contract_id: str | None = Field(default=None, min_length=1, max_length=36)
    kind: ViolationKind
    severity: Severity
    description: Text
    evidence: list[EvidenceItem] = Field(min_length=1, max_length=50)


class ViolationResponse(BaseModel):
    """The organisation's statement and defence (陈述申辩)."""

    model_config = ConfigDict(extra="forbid")

    response: LongText


class ViolationPublic(BaseModel):
    """A violation as its region's officials and the organisation itself see it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str
    contract_id: str | None
    kind: str
    severity: str
    description: str
    evidence: list[dict[str, Any]]
    state: str
    recorded_by: str
    recorded_at: datetime
    notified_at: datetime
    response_due: date
    response: str | None
    responded_at: datetime | None
    response_open: bool = False
    decision_open: bool = False
    rules: list[str] = Field(default_factory=list)


class DecisionCreate(BaseModel):
    """The decision on a violation (处理决定): a sanction, or dismissal."""

    model_config = ConfigDict(extra="forbid")

    sanction: DecisionKind
    reason: Text
    deadline: date | None = Field(default=None, description="Rectification deadline (整改期限)")
    months: int | None = Field(default=None, ge=1, le=36, description="Suspension length")
    deciding_authority: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
        | None
    ) = None

    @model_validator(mode="after")
    def _fields_of_the_sanction(self) -> DecisionCreate:
        if self.sanction == "rectification" and self.deadline is None:
            raise ValueError("a rectification order needs `deadline`")
        if self.sanction != "rectification" and self.deadline is not None:
            raise ValueError("`deadline` is only for a rectification order")
        if self.sanction == "suspension" and self.months is None:
            raise ValueError("a suspension needs `months`")
        if self.sanction != "suspension" and self.months is not None:
            raise ValueError("`months` is only for a suspension")
        return self


class SanctionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    violation_id: str | None
    organisation_id: str
    kind: str
    reason: str
    legal_basis: list[str]
    starts_on: date
    ends_on: date | None
    deadline: date | None
    state: str
    decided_by: str
    deciding_authority: str
    decided_at: datetime
    decision_version: int
    appeal_due: date | None = None


class BlacklistPublic(BaseModel):
    """A blacklist entry as officials see it (reason and decider included); login needed."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: str
    organisation_id: str
    uscc: str
    name: str
    severity: str
    reason: str
    legal_basis: list[str]
    starts_on: date
    ban_until: date = Field(validation_alias="ends_on")
    last_day: date | None = None
    decided_by: str
    created_at: datetime
    sanction_id: str | None
    violation_kind: str | None
    deciding_authority: str | None
    state: str
    lifted_on: date | None
    lifted_reason: str | None
    repair_earliest: date | None = None


class DecisionResult(BaseModel):
    violation: ViolationPublic
    sanction: SanctionPublic | None
    blacklist_entry: BlacklistPublic | None


class BlacklistCreate(BaseModel):
    """Record a ban (列入黑名单) for the pack's period by severity.

    For a ban an authority decided outside this platform's violation procedure (e.g. a
    finance department under 政府采购法 第七十七条, or a court), which had its own hearing;
    bans decided here go through `POST /violations/{id}/decision`.
    """

    model_config = ConfigDict(extra="forbid")

    organisation_id: str = Field(min_length=1, max_length=36)
    severity: Severity
    reason: str = Field(min_length=5, max_length=2000)
    violation_kind: ViolationKind | None = None
    deciding_authority: str | None = Field(default=None, min_length=2, max_length=200)


# ------------------------------------------------------------------------------ public list


class DishonestyEntry(BaseModel):
    """One line of the public dishonesty list (失信名单): organisation facts only."""

    model_config = ConfigDict(extra="forbid")

    entry_id: str
    name: str = Field(description="Organisation name")
    uscc: str = Field(description="Unified social credit code (统一社会信用代码)")
    violation_kind: str | None
    violation: str | None = Field(description="The violation, in Chinese")
    legal_basis: list[str]
    sanction: str
    starts_on: date
    ends_on: date = Field(description="First day the listing no longer applies")
    last_day: date = Field(description="Last day listed (ends_on − 1)")
    deciding_authority: str | None


# ------------------------------------------------------------------------------ appeals


class AppealCreate(BaseModel):
    """An appeal (申诉) against a sanction, by the organisation."""

    model_config = ConfigDict(extra="forbid")

    grounds: LongText


class AppealDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["upheld", "dismissed"]
    reason: Text


class AppealPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    sanction_id: str
    organisation_id: str
    grounds: str
    filed_at: datetime
    state: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None


# ------------------------------------------------------------------------------ repair


class RepairCreate(BaseModel):
    """An application for credit repair (信用修复): the correction, evidence and a pledge."""

    model_config = ConfigDict(extra="forbid")

    correction: LongText
    evidence: list[EvidenceItem] = Field(min_length=1, max_length=50)
    pledge: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=4000)]


class RepairDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["approved", "refused"]
    reason: Text


class RepairPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    blacklist_entry_id: str
    organisation_id: str
    correction: str
    evidence: list[dict[str, Any]]
    pledge: str
    filed_at: datetime
    state: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None


# ------------------------------------------------------------------------------ history


class HistoryItem(BaseModel):
    """One step in an organisation's credit history, oldest first."""

    at: datetime
    step: str  # violation.recorded, violation.responded, sanction.decided, appeal.filed, …
    record: Literal["violation", "sanction", "blacklist", "appeal", "repair"]
    record_id: str
    state: str
    summary: str


class CreditHistory(BaseModel):
    organisation_id: str
    status: str
    decision_version: int
    violations: list[ViolationPublic]
    sanctions: list[SanctionPublic]
    blacklist: list[BlacklistPublic]
    appeals: list[AppealPublic]
    repairs: list[RepairPublic]
    timeline: list[HistoryItem]
