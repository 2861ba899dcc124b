"""Tables of the needs service: recipients (救助对象) and their need items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from libs.common.db import make_registry
from libs.common.events import EventTables

registry = make_registry()
metadata = registry.metadata
event_tables = EventTables.define(metadata)


class NeedsTable(SQLModel, registry=registry):
    """Base of every table this service owns."""


class Recipient(NeedsTable, table=True):
    """A person receiving social assistance (救助对象).

    Direct identifiers are stored only encrypted (`*_enc`, AES-GCM tokens carrying their key
    id); `id_number_index` is a keyed blind index that finds a duplicate registration without
    decrypting anything. `ref` is pseudonymous: the only identifier that leaves this service.
    """

    __tablename__ = "recipient"

    ref: str = Field(primary_key=True, max_length=36)
    region_code: str = Field(max_length=12, index=True)
    categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    id_number_enc: str = Field(max_length=200)
    id_number_index: str = Field(max_length=64, unique=True)
    name_enc: str = Field(max_length=400)
    phone_enc: str | None = Field(default=None, max_length=200)
    address_enc: str | None = Field(default=None, max_length=1000)
    status: str = Field(default="active", max_length=20, index=True)
    household_size: int | None = Field(default=None)
    disability_level: str | None = Field(default=None, max_length=20)
    self_care_tier: str | None = Field(default=None, max_length=20)
    # Guardian (监护人) of a minor: identifiers sealed like the recipient's own.
    guardian_name_enc: str | None = Field(default=None, max_length=400)
    guardian_phone_enc: str | None = Field(default=None, max_length=200)
    guardian_relation: str | None = Field(default=None, max_length=40)
    version: int = Field(default=1)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class Need(NeedsTable, table=True):
    """One need item open for matching: a catalogue service a recipient needs (需求项)."""

    __tablename__ = "need"

    id: str = Field(primary_key=True, max_length=36)
    recipient_ref: str = Field(max_length=36, index=True, foreign_key="recipient.ref")
    region_code: str = Field(max_length=12, index=True)
    service_code: str = Field(max_length=60)
    urgency: int
    categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # How much service: e.g. 20 hours a month for 6 months (from the assessment).
    quantity: int | None = Field(default=None)
    unit: str | None = Field(default=None, max_length=20)
    period_months: int | None = Field(default=None)
    assessment_id: str | None = Field(default=None, max_length=36, index=True)
    status_reason: str | None = Field(default=None, max_length=500)
    status: str = Field(default="open", max_length=20, index=True)
    matched_organisation_id: str | None = Field(default=None, max_length=36)
    match_id: str | None = Field(default=None, max_length=36)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


@dataclass(slots=True)
class OpenedNeed:
    """A need item inserted in bulk by `open_needs`: its columns, without an ORM object.

    Building a mapped `Need` costs about 32 µs (SQLModel and SQLAlchemy instrumentation),
    as much as the rest of inserting it; this costs 0.4 µs. Fields are `Need`'s columns
    (a unit test keeps them equal).
    """

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
    status_reason: str | None
    status: str
    matched_organisation_id: str | None
    match_id: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class ConsentRecord(NeedsTable, table=True):
    """Consent to process a recipient's data for a purpose (given or withdrawn, and when)."""

    __tablename__ = "consent_record"

    id: str = Field(primary_key=True, max_length=36)
    recipient_ref: str = Field(max_length=36, index=True, foreign_key="recipient.ref")
    purpose: str = Field(max_length=200)
    basis: str = Field(max_length=40)
    given: bool
    given_by: str = Field(max_length=20)  # recipient | guardian
    recorded_by: str = Field(max_length=100)
    recorded_at: datetime = Field(sa_type=DateTime(timezone=True))


class RecipientChange(NeedsTable, table=True):
    """History of a recipient: one row per changed field (old → new, who, when).

    Personal fields keep their sealed (encrypted) values here too: the history is no
    back door to the plain data.
    """

    __tablename__ = "recipient_change"

    id: str = Field(primary_key=True, max_length=36)
    recipient_ref: str = Field(max_length=36, index=True, foreign_key="recipient.ref")
    version: int
    field_name: str = Field(max_length=60)
    old_value: str | None = Field(default=None, max_length=2000)
    new_value: str | None = Field(default=None, max_length=2000)
    sealed: bool = Field(default=False)
    changed_by: str = Field(max_length=100)
    changed_at: datetime = Field(sa_type=DateTime(timezone=True))


class PersonalDataAccess(NeedsTable, table=True):
    """Audit of every read of unmasked personal data (who, when, which recipient, why).

    Append-only: database triggers refuse UPDATE and DELETE on this table.
    """

    __tablename__ = "personal_data_access"

    id: str = Field(primary_key=True, max_length=36)
    recipient_ref: str = Field(max_length=36, index=True)
    accessed_by: str = Field(max_length=100)
    role: str = Field(max_length=20)
    region: str = Field(max_length=12)
    purpose: str = Field(max_length=300)
    fields: list[str] = Field(sa_column=Column(JSON, nullable=False))
    accessed_at: datetime = Field(sa_type=DateTime(timezone=True))
