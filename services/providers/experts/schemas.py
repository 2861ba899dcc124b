"""Request and response models of the expert library (专家库).

Models that take contact details hide inputs from validation errors, so a phone number
never lands in an error message or a log line.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.common.validators import USCC, RegionScope

PHONE = r"^\+?[0-9\- ]{5,20}$"
# Deliberately loose (one @, a dotted domain): deliverability is the expert's business.
EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"

ExpertStatus = Literal["active", "retired"]
AffiliationKind = Literal["employment", "directorship", "shareholding"]
FieldCode = str


class ExpertContacts(BaseModel):
    """Contact details, sealed at rest. In an update, a key given replaces (null clears) and a
    key omitted stays."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    phone: str | None = Field(default=None, pattern=PHONE)
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL)


class ExpertCreate(BaseModel):
    """Enter an expert in the library."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=100)
    region_code: RegionScope = Field(
        description="Where the expert is registered: province (2 digits) down to village"
    )
    fields: list[FieldCode] = Field(
        min_length=1,
        max_length=40,
        description="Catalogue item codes of the province pack, or evaluation / finance / law",
    )
    title: str | None = Field(default=None, max_length=100, description="职称, e.g. 高级社会工作师")
    contacts: ExpertContacts = Field(default_factory=ExpertContacts)
    available: bool = True
    unavailable_until: date | None = Field(
        default=None, description="Temporarily unavailable up to and including this date"
    )


class ExpertUpdate(BaseModel):
    """Fields that may change; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    fields: list[FieldCode] | None = Field(default=None, min_length=1, max_length=40)
    title: str | None = Field(default=None, max_length=100)
    available: bool | None = None
    unavailable_until: date | None = None
    status: ExpertStatus | None = None
    contacts: ExpertContacts | None = None

    @field_validator("fields", "available", "status", "contacts", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Null would erase a value these columns must keep; say so rather than guess.
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class ExpertPublic(BaseModel):
    """An expert as the library shows it: contact details masked."""

    id: str
    name: str
    region_code: str
    fields: list[str]
    title: str | None
    phone_masked: str | None
    email_masked: str | None
    available: bool
    unavailable_until: date | None
    status: str
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class AffiliationCreate(BaseModel):
    """A tie to an organisation over time (任职 / 董事、监事 / 持股), for recusal."""

    model_config = ConfigDict(extra="forbid")

    organisation_uscc: USCC
    kind: AffiliationKind
    started_on: date
    ended_on: date | None = Field(default=None, description="Omitted or null: still ongoing")


class AffiliationUpdate(BaseModel):
    """Close an affiliation (or reopen it with null)."""

    model_config = ConfigDict(extra="forbid")

    ended_on: date | None


class AffiliationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    expert_id: str
    organisation_uscc: str
    organisation_id: str | None
    kind: str
    started_on: date
    ended_on: date | None
    recorded_by: str
    recorded_at: datetime
