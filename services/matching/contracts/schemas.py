"""Request and response models of contracts (合同), amendments, delivery and acceptance."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$", max_length=60)]
Region = Annotated[str, Field(pattern=r"^[0-9]{2,12}$")]
Reason = Annotated[str, Field(min_length=3, max_length=2000)]


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Instant = Annotated[datetime, AfterValidator(_utc)]

ContractState = Literal["pending", "active", "paused", "completed", "terminated", "refused"]
ContractSort = Literal["created_at", "-created_at", "period_end", "-period_end"]
DeliverySort = Literal["delivered_on", "-delivered_on", "recorded_at", "-recorded_at"]

#: Largest acceptance summary accepted, as compact JSON.
MAX_SUMMARY_CHARS = 8000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------------- contracts


class ContractCreate(_Body):
    """A written contract (书面合同) drawn up from an accepted award.

    Items (the tender's service codes) and the price (the winning bid's) are taken from the
    award; the purchaser states where, how much a month, how it is paid and for how long.
    """

    award_id: str = Field(min_length=1, max_length=36)
    regions: list[Region] = Field(min_length=1, max_length=200)
    monthly_capacity: dict[Code, int] = Field(max_length=60)
    settlement: str = Field(min_length=2, max_length=2000)  # 资金结算方式
    obligations: list[Code] = Field(default_factory=list, max_length=50)
    period_start: date
    period_end: date


class ContractPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    tender_id: str
    award_id: str
    project_id: str
    organisation_id: str
    region_code: str
    service_codes: list[str]
    regions: list[str]
    monthly_capacity: dict[str, int]
    original_value_fen: int
    value_fen: int
    settlement: str
    obligations: list[str]
    period_start: date
    period_end: date
    state: str
    state_reason: str | None
    version: int
    created_at: Instant
    updated_at: Instant
    signed_at: Instant | None


class ContractDecision(_Body):
    """Why a contract is refused (拒签) or terminated (终止)."""

    reason: Reason


# ---------------------------------------------------------------------------------- amendments


class AmendmentCreate(_Body):
    """A supplementary contract (补充合同): a value change and/or capacity changes."""

    delta_fen: int = Field(default=0, ge=-(10**15), le=10**15)
    # catalogue code → units a month added (positive) or removed (negative)
    capacity_changes: dict[Code, int] = Field(default_factory=dict, max_length=60)
    reason: Reason


class AmendmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    contract_id: str
    delta_fen: int
    capacity_changes: dict[str, int]
    reason: str
    decided_by: str
    at: Instant


class AmendmentResult(BaseModel):
    amendment: AmendmentPublic
    contract: ContractPublic
    # Fen of change amendments may still make (政府采购法 第四十九条, 10 %).
    headroom_fen: int


# ----------------------------------------------------------------------------------- delivery


class DeliveryCreate(_Body):
    """One service session delivered (服务记录)."""

    delivered_on: date
    units: int = Field(ge=1, le=1000)
    worker: str | None = Field(default=None, min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=2000)


class DeliveryConfirm(_Body):
    """Confirmation by the recipient, or by a proxy (a guardian or village cadre) for them."""

    by: Literal["recipient", "proxy"]


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    match_id: str
    contract_id: str | None
    organisation_id: str
    recipient_ref: str
    delivered_on: date
    units: int
    worker: str | None
    note: str | None
    confirmed_by: str | None
    confirmed_at: Instant | None
    recorded_by: str
    recorded_at: Instant


# --------------------------------------------------------------------------------- acceptance


class AcceptanceCreate(_Body):
    """Acceptance of one period of a contract (履约验收): `YYYY-MM` or `YYYY-Qn`."""

    period: str = Field(pattern=r"^\d{4}-(?:0[1-9]|1[0-2]|Q[1-4])$")


class AcceptanceResultIn(_Body):
    result: Literal["qualified", "unqualified"]
    # What the acceptance found: free structured notes (satisfaction, issues, …).
    summary: dict[str, Any] = Field(default_factory=dict)

    @field_validator("summary")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, ensure_ascii=False)) > MAX_SUMMARY_CHARS:
            raise ValueError(f"summary is larger than {MAX_SUMMARY_CHARS} characters as JSON")
        return value


class AcceptancePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    contract_id: str
    period: str
    invited_recipients: list[str]
    result: str | None
    summary: dict[str, Any]
    decided_by: str | None
    created_at: Instant
    published_at: Instant | None
