"""Request and response models of the matching service (allocation, matches, explanations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

MatchSort = Literal["-created_at", "created_at", "-score", "score"]
NeedSort = Literal["opened_at", "-opened_at", "-urgency"]
MatchState = Literal["active", "ended", "replaced"]
NeedStatus = Literal["open", "matched", "unplaced", "cancelled"]
UnmatchedCode = Literal["no_coverage", "capacity_exhausted", "all_ineligible", "invalid_need"]


class AllocationRunIn(BaseModel):
    """`POST /allocations/run`: which area to allocate (default: the caller's whole region)."""

    model_config = ConfigDict(extra="forbid")

    region_scope: str | None = Field(
        default=None,
        pattern=r"^[0-9]{2,12}$",
        description="Division-code prefix to allocate in, inside the caller's region",
    )
    max_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Optional fairness cap: no organisation takes more than this share of a "
        "county's open needs for an item",
    )


class MatchPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    need_id: str
    organisation_id: str | None
    contract_id: str | None = None
    resource_id: str | None = None
    region_code: str
    service_code: str
    period: str
    score: float
    explanation: dict[str, Any]
    run_id: str
    created_at: datetime
    state: str = "active"
    ended_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def basis(self) -> str:
        """contract | charity_resource | registered_capacity (walking skeleton only)."""
        if self.resource_id:
            return "charity_resource"
        return "contract" if self.contract_id else "registered_capacity"


class UnmatchedNeed(BaseModel):
    need_id: str
    reason: str
    reason_code: str


class AllocationResult(BaseModel):
    """What a run did. `matches` and `unmatched` list at most the first 1,000 of each; the
    counts are complete."""

    run_id: str
    region_scope: str
    matched: int
    unmatched_count: int
    retried: int = Field(description="needs whose capacity a concurrent run took; retried")
    matches: list[MatchPublic]
    unmatched: list[UnmatchedNeed]
    truncated: bool
    seconds: dict[str, float]


class NeedPublic(BaseModel):
    """An open need as matching sees it (pseudonymous: no personal data)."""

    model_config = ConfigDict(from_attributes=True)

    need_id: str
    recipient_ref: str
    region_code: str
    service_code: str
    urgency: int
    categories: list[str]
    opened_at: datetime
    status: str
    unmatched_code: str | None
    last_unmatched_reason: str | None
    considered_at: datetime | None


class Eligibility(BaseModel):
    organisation_id: str
    status: str
    registered: bool
    eligible: bool


class PastMatch(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str | None
    contract_id: str | None
    resource_id: str | None
    state: str
    created_at: datetime
    ended_at: datetime | None


class Explanation(BaseModel):
    """Why this provider (a matched need: score parts, binding constraints) or why not (an
    unmatched one: the reason code and the figures behind it)."""

    need_id: str
    status: str
    match_id: str | None = None
    organisation_id: str | None
    contract_id: str | None = None
    resource_id: str | None = None
    basis: str | None = None
    score: float | None = None
    explanation: dict[str, Any] | None
    binding_constraints: list[str] = Field(default_factory=list)
    reason: str | None
    reason_code: str | None = None
    why_not: dict[str, Any] | None = None
    history: list[PastMatch] = Field(default_factory=list)
