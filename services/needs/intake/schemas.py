"""Request and response models of single-window intake (一门受理).

Models that take the applicant's name hide inputs from validation errors, so a name never
lands in an error message or a log line.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from libs.common.validators import validate_division_code

Channel = Literal["window", "online", "grid_worker"]  # 窗口 / 网上 / 网格员代报
IntakeStatus = Literal["received", "routed", "completed", "rejected"]
CHANNELS: tuple[str, ...] = ("window", "online", "grid_worker")
INTAKE_STATUSES: tuple[str, ...] = ("received", "routed", "completed", "rejected")


def validate_window_code(code: str) -> str:
    """A township (乡级, 9 digits) or village (村级, 12 digits) division code.

    An intake is received at a township window (乡镇/街道 一门受理窗口) or reported from a
    village by a grid worker; a county code alone does not say which window is answerable.
    """
    text = validate_division_code(code)
    if len(text) < 9:
        raise ValueError("the window's township (9 digits) or village (12 digits) code is needed")
    return text


WindowCode = Annotated[
    str,
    AfterValidator(validate_window_code),
    Field(description="9-digit township or 12-digit village division code of the window"),
]
Document = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(description="A document (材料) by code or name, e.g. id_card / 户口簿"),
]
Requested = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=60),
    Field(description="A catalogue service code or an assistance kind"),
]
Department = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(description="Code or name of the handling department (承办部门)"),
]


def _no_repeats(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"listed more than once: {repeated}")
    return values


class IntakeCreate(BaseModel):
    """An application as the first-contact official records it (首问负责)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    region_code: WindowCode
    channel: Channel
    received_on: date | None = Field(
        default=None,
        description="Day of receipt in China; defaults to today. Counting starts the next day.",
    )
    applicant_recipient_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=36,
        description="The applicant's recipient reference, when already registered",
    )
    applicant_name: str | None = Field(default=None, min_length=1, max_length=50)
    requested: Annotated[list[Requested], AfterValidator(_no_repeats)] = Field(
        min_length=1, max_length=20
    )
    required_documents: Annotated[list[Document], AfterValidator(_no_repeats)] = Field(
        default_factory=list, max_length=50
    )
    provided_documents: list[Document] = Field(default_factory=list, max_length=50)


class DocumentsAdd(BaseModel):
    """Documents the applicant brought since the notice (补正材料)."""

    model_config = ConfigDict(extra="forbid")

    documents: list[Document] = Field(min_length=1, max_length=50)


class IntakeRoute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routed_to: Department


class IntakeReject(BaseModel):
    """Refusal to accept (不予受理) must say why."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=300)


class IntakePublic(BaseModel):
    """An intake as case workers see it: the applicant's name masked."""

    id: str
    region_code: str
    channel: str
    received_by: str
    received_on: date
    applicant_recipient_ref: str | None
    applicant_name_masked: str | None
    requested: list[str]
    required_documents: list[str]
    provided_documents: list[str]
    missing_documents: list[str]
    notice: str = Field(description="一次性告知: every missing document at once, in order")
    routed_to: str | None
    status: str
    rejection_reason: str | None
    due_on: date
    overdue: bool
    overdue_notified_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
