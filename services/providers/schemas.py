"""Request and response models of the providers service."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from libs.common.validators import USCC, DivisionCode, RegionScope


class ServiceCapability(BaseModel):
    code: str = Field(min_length=1, max_length=60, description="Catalogue item code, e.g. `care`")
    monthly_capacity: int = Field(
        ge=0, le=1_000_000, description="Units the organisation can serve per month"
    )


class OrganisationCreate(BaseModel):
    """Register a social force in the library (社会力量库)."""

    model_config = ConfigDict(extra="forbid")

    uscc: USCC
    name: str = Field(min_length=2, max_length=200)
    kind: str = Field(
        description="Contractor kind code from the province pack, e.g. `social_organisation`"
    )
    region_code: DivisionCode = Field(
        description="Where the organisation is registered (6/9/12 digits)"
    )
    service_regions: list[RegionScope] = Field(min_length=1, max_length=200)
    services: list[ServiceCapability] = Field(min_length=1, max_length=100)
    qualifications: dict[str, bool] = Field(
        default_factory=dict,
        description="Admission condition code → evidence provided (codes from the province pack)",
    )


class OrganisationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    uscc: str
    name: str
    kind: str
    region_code: str
    service_regions: list[str]
    services: list[ServiceCapability]
    qualifications: dict[str, bool]
    pack: str
    status: str
    status_reason: str | None
    created_at: datetime
    updated_at: datetime
