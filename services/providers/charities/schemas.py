"""Request and response models of charities (慈善组织) and their resources (慈善资源)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.validators import USCC, DivisionCode, RegionScope

CharityStatus = Literal["active", "inactive"]
ResourceKind = Literal["funds", "goods", "volunteer_hours", "services"]
ResourceStatus = Literal["offered", "withdrawn", "exhausted", "expired"]
ResourceSort = Literal[
    "-created_at",
    "created_at",
    "valid_until",
    "-valid_until",
    "-remaining",
    "remaining",
    "title",
    "-title",
]

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


# --------------------------------------------------------------------------------------------
# Charities
# --------------------------------------------------------------------------------------------


class CharityCreate(BaseModel):
    """Register a charity (慈善组织) in the library."""

    model_config = ConfigDict(extra="forbid")

    uscc: USCC
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
    charity_registration: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)
    ] = Field(description="慈善组织登记/认定 number issued by the civil-affairs department")
    registration_authority: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
        | None
    ) = Field(default=None, description="登记管理机关")
    region_code: DivisionCode = Field(description="Where the charity is registered")


class CharityPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    uscc: str
    name: str
    charity_registration: str
    registration_authority: str | None
    region_code: str
    status: CharityStatus
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class CharityRegistered(CharityPublic):
    """The registration answer."""


# --------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------


class ResourceCreate(BaseModel):
    """A resource a charity offers: funds (in fen), goods, volunteer hours or services."""

    model_config = ConfigDict(extra="forbid")

    kind: ResourceKind
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    service_codes: list[Code] = Field(
        min_length=1, max_length=50, description="Catalogue items of the province pack"
    )
    regions: list[RegionScope] = Field(
        min_length=1, max_length=200, description="Division codes or prefixes it may serve"
    )
    target_categories: list[
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    ] = Field(min_length=1, max_length=20, description="Recipient categories (救助对象类别)")
    quantity: int = Field(
        gt=0, le=10**15, description="Whole units; funds in fen (分), e.g. 100 yuan = 10000"
    )
    unit: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    valid_from: date
    valid_until: date = Field(description="Last day the resource may be used (inclusive)")


class ResourceWithdraw(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=500)]


class ResourcePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    charity_id: str
    kind: ResourceKind
    title: str
    service_codes: list[str]
    regions: list[str]
    target_categories: list[str]
    quantity: int
    remaining: int
    unit: str
    valid_from: date
    valid_until: date
    status: ResourceStatus
    status_reason: str | None
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class MovementPublic(BaseModel):
    """One change of the remaining quantity, from matching's allocation events."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    resource_id: str
    allocation_id: str
    delta: int = Field(description="Negative when allocated, positive when released")
    reason: Literal["allocated", "released"]
    event_id: str
    at: datetime
