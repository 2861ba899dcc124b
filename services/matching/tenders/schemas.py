"""Request and response models of tenders (采购) and sealed bids (密封投标)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from libs.common.policy.schema import PurchasingMethodCode

Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$", max_length=60)]
Weight = Annotated[Decimal, Field(gt=0, lt=1, max_digits=5, decimal_places=4)]

#: Largest sealed content accepted (UTF-8 JSON), so its AES-GCM token (base64) fits the
#: bid's 200,000-character column.
MAX_CONTENT_BYTES = 100_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CriterionIn(_Body):
    """A quality criterion of the scoring method (评审因素): service plan, staffing, …"""

    code: Code
    name: str = Field(min_length=1, max_length=100)
    weight: Weight


class SingleSourceIn(_Body):
    """The one supplier of a single-source purchase and why (单一来源采购理由)."""

    organisation_id: str = Field(min_length=1, max_length=36)
    justification: str = Field(min_length=10, max_length=4000)


class TenderCreate(_Body):
    project_id: str = Field(min_length=1, max_length=36)
    method: PurchasingMethodCode
    # Why the method differs from the one the project was approved for.
    method_reason: str | None = Field(default=None, max_length=2000)
    criteria: list[CriterionIn] = Field(min_length=1, max_length=20)
    price_weight: Annotated[Decimal, Field(ge=0, le=1, max_digits=5, decimal_places=4)]
    bid_deadline: AwareDatetime
    # Default: the project's own requirements; a tender may add more, never drop them.
    qualification_requirements: list[Code] | None = Field(default=None, max_length=50)
    # Negotiation / consultation: invite drawn suppliers (default) or open to all qualified.
    suppliers: Literal["drawn", "open"] | None = None
    # How many to draw (default: the method's minimum).
    invited_count: int | None = Field(default=None, ge=1, le=50)
    single_source: SingleSourceIn | None = None


class TenderCancel(_Body):
    reason: str = Field(min_length=3, max_length=2000)


class CriterionOut(BaseModel):
    code: str
    name: str
    weight: Decimal


class TenderPublic(BaseModel):
    """A tender's public notice (采购公告): never a bid's price or content.

    Before opening, an organisation sees only whether it is invited: the list of invited
    suppliers and the draw behind it are shown to purchasers and operators, and to everyone
    once the bids are opened.
    """

    id: str
    project_id: str
    previous_tender_id: str | None
    method: str
    method_reason: str | None
    state: str
    state_reason: str | None
    ocds_status: str
    region_code: str
    title: str
    service_codes: list[str]
    budget_fen: int
    pack: str
    criteria: list[CriterionOut]
    price_weight: Decimal
    qualification_requirements: list[str]
    high_value: bool
    panel_size: int
    published_at: datetime | None
    bid_deadline: datetime | None
    bidding_open: bool
    invited: list[str]
    invitation_seed: str | None
    invitation_candidates: list[str]
    single_source_justification: str | None
    publicity_until: date | None
    version: int
    created_at: datetime
    updated_at: datetime


class BidIn(_Body):
    """A bid (投标/响应文件): the price and the offer, sealed until opening."""

    price_fen: int = Field(gt=0)
    content: dict[str, Any] = Field(default_factory=dict)

    @field_validator("content")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        import json

        if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_CONTENT_BYTES:
            raise ValueError(f"content longer than {MAX_CONTENT_BYTES} bytes (UTF-8 JSON)")
        return value


class BidMine(BaseModel):
    """The bidder's own bid, readable by it alone before opening."""

    id: str
    tender_id: str
    organisation_id: str
    state: str
    price_fen: int | None
    content: dict[str, Any] | None
    version: int
    submitted_at: datetime
    updated_at: datetime


class BidOpened(BaseModel):
    """A bid after opening (开标/唱标): price and validity are read out to all."""

    id: str
    organisation_id: str
    state: str
    price_fen: int | None
    invalid_reason: str | None
    content: dict[str, Any] | None
    submitted_at: datetime
    opened_at: datetime | None


class BidsSummary(BaseModel):
    """Bids of a tender: before opening only how many are in (sealed)."""

    tender_id: str
    opened: bool
    count: int
    items: list[BidOpened]


class OpeningResult(BaseModel):
    tender: TenderPublic
    valid: int
    invalid: int
    rule: str | None
