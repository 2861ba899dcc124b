"""Request and response models of the needs service.

Models that take personal data hide inputs from validation errors, so an ID number never
lands in an error message or a log line.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from libs.common.validators import DivisionCode, ResidentId


class RecipientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    id_number: ResidentId
    name: str = Field(min_length=1, max_length=50)
    region_code: DivisionCode = Field(description="Residence: 12-digit village/community code")
    categories: list[str] = Field(
        min_length=1, max_length=8, description="Recipient category codes"
    )
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9\- ]{5,20}$")
    address: str | None = Field(default=None, max_length=300)


class RecipientPublic(BaseModel):
    """A recipient as most roles see it: personal fields masked."""

    ref: str
    id_number_masked: str
    name_masked: str
    region_code: str
    categories: list[str]
    created_at: datetime


class NeedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_ref: str = Field(min_length=1, max_length=36)
    service_code: str = Field(
        min_length=1, max_length=60, description="Direct-service catalogue code"
    )
    urgency: int = Field(ge=1, le=4, description="1 (can wait) … 4 (immediate)")


class NeedPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    recipient_ref: str
    region_code: str
    service_code: str
    urgency: int
    categories: list[str]
    status: str
    matched_organisation_id: str | None
    created_at: datetime
    updated_at: datetime
