"""Request and response models of purchasing projects (项目库) and fund ledgers (资金台账).

Money is integer fen (分) everywhere, in requests as in storage and events: `amount_fen`,
`budget_fen`. JSON numbers are taken strictly: `150000` is accepted, while `1500.5`,
`150000.0` and `"150000"` are refused, so no amount is ever rounded or guessed
(100 fen = 1 yuan).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from libs.common.policy import PurchasingMethodCode
from libs.common.validators import DivisionCode

#: The largest amount one request may carry: 10^14 fen = 1 trillion yuan (far above any
#: budget, far below BigInteger's range even summed over many allocations).
MAX_FEN = 10**14

FundSource = Literal["central", "provincial"]  # 中央 / 省级 special social-assistance funds
FundingSourceCode = Literal["working_funds", "special_funds", "welfare_lottery"]
ProjectState = Literal[
    "draft", "approved", "published", "tendered", "awarded", "in_service", "closed", "cancelled"
]
PROJECT_STATES: tuple[str, ...] = (
    "draft",
    "approved",
    "published",
    "tendered",
    "awarded",
    "in_service",
    "closed",
    "cancelled",
)

Fen = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=MAX_FEN,
        description="Amount in fen (分), an integer: 100 fen = 1 yuan; decimals are refused",
    ),
]
Year = Annotated[int, Field(strict=True, ge=2000, le=2100, description="Budget year (年度)")]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$", max_length=60),
]


def _no_repeats(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"listed more than once: {repeated}")
    return values


ServiceCodes = Annotated[
    list[Code],
    Field(
        min_length=1,
        max_length=30,
        description="Catalogue item codes of the province pack, e.g. `care`, `counselling`",
    ),
    AfterValidator(_no_repeats),
]
Qualifications = Annotated[
    list[Code],
    Field(
        max_length=20,
        description="Admission-condition codes of the province pack the contractor must meet",
    ),
    AfterValidator(_no_repeats),
]


# ------------------------------------------------------------------------------ funds


class AllocationCreate(BaseModel):
    """A transfer of central or provincial special social-assistance funds (专项资金下达).

    Idempotent on (region_code, year, source, document): recording the same document again
    returns the allocation already recorded; the same key with another amount is a 409.
    """

    model_config = ConfigDict(extra="forbid")

    region_code: DivisionCode
    year: Year
    source: FundSource
    amount_fen: Fen
    document: Text200 = Field(
        description="The funding document number (文号), e.g. 吉财社〔2027〕1号"
    )


class AllocationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    region_code: str
    year: int
    source: str
    amount_fen: int
    document: str
    recorded_by: str
    recorded_at: datetime


class LedgerPublic(BaseModel):
    """A region's purchasing budget for a year (资金台账), in fen.

    `cap_fen` = floor(base_fen × cap_ratio); null (with `available_fen`) when the province
    pack sets no cap: the ledger then only tracks what approved projects hold.
    """

    region_code: str
    year: int
    pack: str
    base_fen: int
    cap_ratio: str | None
    cap_fen: int | None
    reserved_fen: int
    available_fen: int | None
    cap_rule: str | None = Field(description="The clause behind the cap, when there is one")
    version: int
    updated_at: datetime


class LedgerDetail(LedgerPublic):
    allocations: list[AllocationPublic]


class AllocationRecorded(BaseModel):
    """What POST /funds/allocations answers: the allocation and the ledger after it."""

    allocation: AllocationPublic
    ledger: LedgerPublic
    replayed: bool = Field(description="True when this allocation had been recorded before")


# ------------------------------------------------------------------------------ projects


class ProjectCreate(BaseModel):
    """A purchasing project (政府购买服务项目) as the purchaser sets it; it starts as a draft.

    The period is inclusive of `period_end`. `budget_year` (the ledger the budget is reserved
    in on approval) defaults to the year of `period_start`.
    """

    model_config = ConfigDict(extra="forbid")

    region_code: DivisionCode = Field(description="The purchaser's region; its ledger pays")
    department: Text200 = Field(description="Purchasing department (购买主体)")
    title: Text200
    service_codes: ServiceCodes
    quantity: int = Field(strict=True, ge=1, le=10_000_000)
    unit: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    quality_standards: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ] = Field(description="Service quality standards (服务标准)")
    qualification_requirements: Qualifications = Field(default_factory=list)
    specific_conditions: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
        | None
    ) = Field(default=None, description="Specific conditions for contractors (具体条件)")
    budget_fen: Fen
    budget_year: Year | None = None
    fund_source: FundingSourceCode = Field(description="经费来源, a code of the province pack")
    period_start: date
    period_end: date = Field(description="Last day of service (inclusive)")
    stable_recurring: bool = Field(
        default=False,
        description="购买内容相对固定、连续性强、经费来源稳定、价格变化幅度小 (allows > 1 year)",
    )
    budget_secured: bool = Field(default=False, description="预算保障 (needed for > 1 year)")
    purchasing_method: PurchasingMethodCode


class ProjectUpdate(BaseModel):
    """Changes to a draft; only the fields given change (region_code cannot)."""

    model_config = ConfigDict(extra="forbid")

    department: Text200 | None = None
    title: Text200 | None = None
    service_codes: ServiceCodes | None = None
    quantity: int | None = Field(default=None, strict=True, ge=1, le=10_000_000)
    unit: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] | None
    ) = None
    quality_standards: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
        | None
    ) = None
    qualification_requirements: Qualifications | None = None
    specific_conditions: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
        | None
    ) = None
    budget_fen: Fen | None = None
    budget_year: Year | None = None
    fund_source: FundingSourceCode | None = None
    period_start: date | None = None
    period_end: date | None = None
    stable_recurring: bool | None = None
    budget_secured: bool | None = None
    purchasing_method: PurchasingMethodCode | None = None


#: Fields of ProjectUpdate that may be set to null (the others may only be omitted).
NULLABLE_UPDATES: frozenset[str] = frozenset({"specific_conditions", "budget_year"})


class ProjectCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ProjectPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    region_code: str
    department: str
    title: str
    service_codes: list[str]
    quantity: int
    unit: str
    quality_standards: str
    qualification_requirements: list[str]
    specific_conditions: str | None
    budget_fen: int
    budget_year: int
    fund_source: str
    period_start: date
    period_end: date
    stable_recurring: bool
    budget_secured: bool
    purchasing_method: str
    pack: str
    state: ProjectState
    state_reason: str | None
    tender_id: str | None
    contract_id: str | None
    version: int
    created_by: str
    approved_by: str | None
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None
    published_at: datetime | None


class TransitionPublic(BaseModel):
    """One step in a project's history; `from_state` is `new` on the creation row."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    project_id: str
    from_state: str
    to_state: str
    actor: str
    reason: str | None
    at: datetime
