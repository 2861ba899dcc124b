"""Tables of contracts (合同), their amendments, service delivery and acceptance (验收)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime
from sqlmodel import Field

from services.matching.models import MatchingTable


class Contract(MatchingTable, table=True):
    """A written purchase contract with one organisation (政府购买服务合同).

    states: pending → active → completed | terminated; `paused` while credit suspends the
    organisation. Subcontracting is forbidden (an obligation, enforced on delivery).
    Amendments may change the value by at most 10 % of `original_value_fen` in total.
    """

    __tablename__ = "contract"

    id: str = Field(primary_key=True, max_length=36)
    tender_id: str = Field(max_length=36, index=True)
    award_id: str = Field(max_length=36, unique=True)
    project_id: str = Field(max_length=36, index=True)
    organisation_id: str = Field(max_length=36, index=True)
    region_code: str = Field(max_length=12, index=True)
    service_codes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    regions: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # catalogue code → units per month the organisation must be able to serve
    monthly_capacity: dict[str, int] = Field(sa_column=Column(JSON, nullable=False))
    original_value_fen: int = Field(sa_type=BigInteger)
    value_fen: int = Field(sa_type=BigInteger)
    settlement: str = Field(max_length=2000)  # 结算方式
    obligations: list[str] = Field(sa_column=Column(JSON, nullable=False))
    period_start: date = Field(sa_type=Date)
    period_end: date = Field(sa_type=Date)
    state: str = Field(default="pending", max_length=20, index=True)
    state_reason: str | None = Field(default=None, max_length=2000)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    signed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ContractAmendment(MatchingTable, table=True):
    """A change to a contract's value or capacity (合同变更), with its reason."""

    __tablename__ = "contract_amendment"

    id: str = Field(primary_key=True, max_length=36)
    contract_id: str = Field(max_length=36, foreign_key="contract.id", index=True)
    delta_fen: int = Field(sa_type=BigInteger)
    capacity_changes: dict[str, int] = Field(sa_column=Column(JSON, nullable=False))
    reason: str = Field(max_length=2000)
    decided_by: str = Field(max_length=100)
    at: datetime = Field(sa_type=DateTime(timezone=True))


class Delivery(MatchingTable, table=True):
    """A service session delivered against a match (服务记录), confirmed by the recipient.

    `confirmed_by`: recipient | proxy (a guardian or village cadre confirming for them).
    """

    __tablename__ = "delivery"

    id: str = Field(primary_key=True, max_length=36)
    match_id: str = Field(max_length=36, index=True)
    contract_id: str | None = Field(default=None, max_length=36, index=True)
    organisation_id: str = Field(max_length=36, index=True)
    recipient_ref: str = Field(max_length=36, index=True)
    delivered_on: date = Field(sa_type=Date)
    units: int
    worker: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=2000)
    confirmed_by: str | None = Field(default=None, max_length=20)
    confirmed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    recorded_by: str = Field(max_length=100)
    recorded_at: datetime = Field(sa_type=DateTime(timezone=True))


class Acceptance(MatchingTable, table=True):
    """Acceptance of a contract period (履约验收): recipients invited, result published."""

    __tablename__ = "acceptance"

    id: str = Field(primary_key=True, max_length=36)
    contract_id: str = Field(max_length=36, foreign_key="contract.id", index=True)
    period: str = Field(max_length=7)  # YYYY-MM or YYYY-Qn
    invited_recipients: list[str] = Field(sa_column=Column(JSON, nullable=False))
    result: str | None = Field(default=None, max_length=20)  # qualified | unqualified
    summary: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    decided_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
