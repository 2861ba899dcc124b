"""Request and response models of the providers service: the social-forces library."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from libs.common.validators import USCC, DivisionCode, RegionScope

QualificationLevel = Literal[
    "none",
    "assistant_social_worker",  # 助理社会工作师
    "social_worker",  # 社会工作师
    "senior_social_worker",  # 高级社会工作师
]
Education = Literal["below_college", "college", "bachelor", "master", "doctorate"]
OrganisationStatus = Literal[
    "pending", "admitted", "rejected", "suspended", "exited", "blacklisted"
]
OrganisationSort = Literal[
    "name", "-name", "created_at", "-created_at", "credit_score", "-credit_score", "-capacity"
]
# Where the evidence for an admission condition is: a document number or file reference.
EvidenceRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ServiceCapability(BaseModel):
    code: str = Field(min_length=1, max_length=60, description="Catalogue item code, e.g. `care`")
    monthly_capacity: int = Field(
        ge=0, le=1_000_000, description="Units the organisation can serve per month"
    )


# --------------------------------------------------------------------------------------------
# Staff (专业人员)
# --------------------------------------------------------------------------------------------


class StaffCreate(BaseModel):
    """A worker of an organisation. Names are workers' names (not recipients'): stored plain,
    never put in events."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    qualification_level: QualificationLevel = "none"
    education: Education
    social_work_education: bool = Field(
        default=False, description="社会工作教育背景: a degree or diploma in social work"
    )
    dispatched: bool = Field(
        default=False, description="派遣人员: placed in a civil-affairs office or township"
    )


class StaffUpdate(BaseModel):
    """Change a worker; only the fields given change. `active: true` reactivates."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    qualification_level: QualificationLevel | None = None
    education: Education | None = None
    social_work_education: bool | None = None
    dispatched: bool | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> StaffUpdate:
        nulls = [k for k in self.model_fields_set if getattr(self, k) is None]
        if nulls:
            raise ValueError(f"may not be null: {', '.join(sorted(nulls))}")
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self


class StaffPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str
    name: str
    qualification_level: QualificationLevel
    education: Education
    social_work_education: bool
    dispatched: bool
    active: bool
    preferred: bool = Field(
        description="Social-work qualification or education, which the pack prefers (优先考虑)"
    )
    preferred_reason: str
    created_at: datetime
    updated_at: datetime


# --------------------------------------------------------------------------------------------
# Organisations (社会力量)
# --------------------------------------------------------------------------------------------


class OrganisationCreate(BaseModel):
    """Register a social force in the library (社会力量库)."""

    model_config = ConfigDict(extra="forbid")

    uscc: USCC
    name: str = Field(min_length=2, max_length=200)
    kind: str = Field(
        description="Contractor kind code from the province pack, e.g. `social_organisation`"
    )
    registration_authority: str | None = Field(
        default=None, min_length=2, max_length=200, description="登记管理机关"
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
    evidence: dict[str, EvidenceRef] = Field(
        default_factory=dict,
        max_length=50,
        description="Admission condition code → where the evidence is (document number, file)",
    )
    staff: list[StaffCreate] = Field(default_factory=list, max_length=500)


class OrganisationUpdate(BaseModel):
    """Maintain an organisation; only the fields given change.

    Not `status` (nor kind, credit code or place of registration): status follows credit's
    decisions only, so a body naming it is refused like any unknown field.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=2, max_length=200)
    registration_authority: str | None = Field(default=None, min_length=2, max_length=200)
    service_regions: list[RegionScope] | None = Field(default=None, min_length=1, max_length=200)
    services: list[ServiceCapability] | None = Field(default=None, min_length=1, max_length=100)
    qualifications: dict[str, bool] | None = None
    evidence: dict[str, EvidenceRef] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _fields(self) -> OrganisationUpdate:
        # registration_authority may be cleared with null; the others are required data.
        nulls = [
            k
            for k in self.model_fields_set
            if getattr(self, k) is None and k != "registration_authority"
        ]
        if nulls:
            raise ValueError(f"may not be null: {', '.join(sorted(nulls))}")
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class OrganisationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    uscc: str
    name: str
    kind: str
    registration_authority: str | None
    region_code: str
    service_regions: list[str]
    services: list[ServiceCapability]
    qualifications: dict[str, bool]
    evidence: dict[str, str]
    pack: str
    status: str
    status_reason: str | None
    credit_score: float | None
    credit_grade: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class OrganisationRegistered(OrganisationPublic):
    """The registration answer: the organisation and the staff registered with it."""

    staff: list[StaffPublic] = Field(default_factory=list)
