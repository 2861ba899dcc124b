"""The public documents of the market (信息公开): what anyone may read without login.

Organisations appear by id, name and credit code; experts on a panel by name (the results
notice names the panel, 评审专家名单随结果公告); officials' accounts, bid contents, free-text
acceptance notes and anything about recipients never appear. Scores are decimal strings,
money is fen (分) as integers.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

RegionQuery = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{2,12}$", description="Administrative division code prefix"),
]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CriterionNotice(_Doc):
    code: str
    name: str
    weight: Decimal


class TenderNotice(_Doc):
    """A tender notice (采购公告), from publication through its outcome."""

    tender_id: str
    project_id: str
    title: str
    method: str
    method_name: str = Field(description="The purchasing method in Chinese (采购方式)")
    method_reason: str | None
    purchaser: str | None = Field(description="The purchasing department (采购人)")
    region_code: str
    service_codes: list[str]
    budget_fen: int
    state: str
    ocds_status: str
    state_reason: str | None
    published_at: datetime | None
    bid_deadline: datetime | None
    criteria: list[CriterionNotice]
    price_weight: Decimal
    qualification_requirements: list[str]
    invited: list[str] = Field(
        description="Organisations invited (invited tender, 谈判, 磋商), once bids are opened"
    )
    single_source_justification: str | None
    publicity_until: date | None
    previous_tender_id: str | None
    version: int
    updated_at: datetime


class CriterionScore(_Doc):
    name: str
    weight: Decimal
    mean: Decimal
    weighted: Decimal


class BidScores(_Doc):
    bid_id: str
    organisation_id: str
    organisation_name: str | None
    uscc: str | None
    price_fen: int | None
    criteria: dict[str, CriterionScore]
    quality_score: Decimal
    price_score: Decimal
    total: Decimal
    credit_score: float | None
    rank: int


class InvalidBid(_Doc):
    bid_id: str
    organisation_id: str
    organisation_name: str | None
    reason: str | None


class AwardNotice(_Doc):
    award_id: str
    organisation_id: str
    organisation_name: str | None
    rank: int
    state: str
    reason: str | None
    decided_at: datetime


class ResultsNotice(_Doc):
    """The results notice (评审结果公告): every bidder's per-criterion, price and total scores,
    the panel's names and the succession of awards."""

    tender_id: str
    project_id: str
    title: str
    method: str
    region_code: str
    state: str
    state_reason: str | None
    price_weight: Decimal
    criteria: list[CriterionNotice]
    panel: list[str] = Field(description="Names of the panel members (评审专家名单)")
    results: list[BidScores]
    invalid: list[InvalidBid]
    awards: list[AwardNotice]


class AmendmentNotice(_Doc):
    amendment_id: str
    delta_fen: int
    reason: str
    at: datetime


class ContractNotice(_Doc):
    """A signed contract (合同公告, 吉民发〔2020〕44号 §四(三)4) and what became of it."""

    contract_id: str
    tender_id: str
    project_id: str
    title: str | None
    organisation_id: str
    organisation_name: str | None
    uscc: str | None
    region_code: str
    regions: list[str]
    service_codes: list[str]
    monthly_capacity: dict[str, int]
    original_value_fen: int
    value_fen: int
    settlement: str
    period_start: date
    period_end: date
    state: str
    state_reason: str | None
    signed_at: datetime | None
    amendments: list[AmendmentNotice]
    version: int
    updated_at: datetime


class AcceptanceNotice(_Doc):
    """An acceptance result (履约验收结果): counts only; the free-text notes and the invited
    recipients stay with the parties."""

    acceptance_id: str
    contract_id: str
    tender_id: str
    project_id: str
    organisation_id: str
    organisation_name: str | None
    region_code: str
    period: str
    result: str | None
    recipients_invited: int
    sessions_delivered: int
    units_delivered: int
    findings: dict[str, float | int | bool] = Field(
        description="The numeric findings of the acceptance (e.g. satisfaction rates)"
    )
    published_at: datetime | None
