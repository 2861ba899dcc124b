"""Request and response models of the needs service.

Models that take personal data hide inputs from validation errors, so an ID number never
lands in an error message or a log line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from libs.common.validators import DivisionCode, ResidentId

PHONE = r"^\+?[0-9\- ]{5,20}$"
DISABILITY_LEVELS = ("none", "1", "2", "3", "4")  # 残疾等级 一级…四级


class Guardian(BaseModel):
    """Guardian (监护人) of a minor recipient."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=50)
    relation: str = Field(min_length=1, max_length=40, description="e.g. 父亲, 祖母, 村委会")
    phone: str | None = Field(default=None, pattern=PHONE)
    consent: bool = Field(description="The guardian consents to the registration")


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(min_length=3, max_length=200)
    basis: Literal["consent", "legal_obligation", "vital_interest", "public_task"] = "consent"
    given: bool = True


class RecipientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    id_number: ResidentId
    name: str = Field(min_length=1, max_length=50)
    region_code: DivisionCode = Field(description="Residence: 12-digit village/community code")
    categories: list[str] = Field(
        min_length=1, max_length=8, description="Recipient category codes"
    )
    phone: str | None = Field(default=None, pattern=PHONE)
    address: str | None = Field(default=None, max_length=300)
    household_size: int | None = Field(default=None, ge=1, le=50)
    disability_level: Literal["none", "1", "2", "3", "4"] | None = None
    guardian: Guardian | None = None
    consents: list[ConsentIn] = Field(default_factory=list, max_length=20)


class ConsentRecordIn(ConsentIn):
    """Record consent given, or withdrawn, after registration."""

    given_by: Literal["recipient", "guardian"] = "recipient"


class ConsentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    purpose: str
    basis: str
    given: bool
    given_by: str
    recorded_by: str
    recorded_at: datetime


class RecipientUpdate(BaseModel):
    """Fields that may change; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str | None = Field(default=None, min_length=1, max_length=50)
    region_code: DivisionCode | None = None
    categories: list[str] | None = Field(default=None, min_length=1, max_length=8)
    phone: str | None = Field(default=None, pattern=PHONE)
    address: str | None = Field(default=None, max_length=300)
    household_size: int | None = Field(default=None, ge=1, le=50)
    disability_level: Literal["none", "1", "2", "3", "4"] | None = None
    status: Literal["active", "inactive"] | None = None


class PersonalDataPublic(BaseModel):
    """Unmasked personal data: served only with a stated purpose, and audited."""

    ref: str
    id_number: str
    name: str
    phone: str | None
    address: str | None
    guardian_name: str | None
    guardian_phone: str | None
    access_id: str


class RecipientChangePublic(BaseModel):
    version: int
    field_name: str
    old_value: str | None
    new_value: str | None
    changed_by: str
    changed_at: datetime


class AccessRecordPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    recipient_ref: str
    accessed_by: str
    role: str
    purpose: str
    fields: list[str]
    accessed_at: datetime


class RecipientPublic(BaseModel):
    """A recipient as most roles see it: personal fields masked."""

    ref: str
    id_number_masked: str
    name_masked: str
    phone_masked: str | None
    region_code: str
    categories: list[str]
    status: str
    household_size: int | None
    disability_level: str | None
    self_care_tier: str | None
    has_guardian: bool
    version: int
    created_at: datetime
    updated_at: datetime


class NeedItem(BaseModel):
    """One service a person needs (需求项), as an assessment finds it."""

    model_config = ConfigDict(extra="forbid")

    service_code: str = Field(
        min_length=1, max_length=60, description="Direct-service catalogue code"
    )
    urgency: int = Field(ge=1, le=4, description="1 (can wait) … 4 (immediate)")
    quantity: int | None = Field(default=None, ge=1, le=10_000)
    unit: Literal["hours", "sessions"] | None = None
    period_months: int | None = Field(default=None, ge=1, le=36)


class NeedCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


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
    quantity: int | None
    unit: str | None
    period_months: int | None
    assessment_id: str | None
    status: str
    status_reason: str | None
    matched_organisation_id: str | None
    created_at: datetime
    updated_at: datetime
