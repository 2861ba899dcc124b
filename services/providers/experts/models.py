"""Tables of the expert library (专家库)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, Date, DateTime
from sqlmodel import Field

from services.providers.models import ProvidersTable


class Expert(ProvidersTable, table=True):
    """An expert who may sit on evaluation panels (评审专家).

    The name is public (results notices name the panel); contact details are sealed like a
    recipient's (AES-GCM tokens with their key id) and masked in responses.
    """

    __tablename__ = "expert"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=100)
    region_code: str = Field(max_length=12, index=True)
    # Catalogue item codes plus `evaluation`, `finance`, `law`.
    fields: list[str] = Field(sa_column=Column(JSON, nullable=False))
    title: str | None = Field(default=None, max_length=100)  # 职称
    phone_enc: str | None = Field(default=None, max_length=200)
    email_enc: str | None = Field(default=None, max_length=400)
    available: bool = Field(default=True, index=True)
    unavailable_until: date | None = Field(default=None, sa_type=Date)
    status: str = Field(default="active", max_length=20, index=True)  # active | retired
    version: int = Field(default=1)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class ExpertField(ProvidersTable, table=True):
    """One field of an expert (search index of `fields`)."""

    __tablename__ = "expert_field"

    expert_id: str = Field(
        primary_key=True, max_length=36, foreign_key="expert.id", ondelete="CASCADE"
    )
    field: str = Field(primary_key=True, max_length=60, index=True)


class ExpertAffiliation(ProvidersTable, table=True):
    """A tie between an expert and an organisation over time, for recusal (回避).

    kind: employment (任职) | directorship (担任董事/理事) | shareholding (持股).
    The organisation is named by its credit code, so ties to organisations outside the
    library are kept too; `organisation_id` is filled when the library knows it.
    """

    __tablename__ = "expert_affiliation"

    id: str = Field(primary_key=True, max_length=36)
    expert_id: str = Field(max_length=36, foreign_key="expert.id", index=True, ondelete="CASCADE")
    organisation_uscc: str = Field(max_length=18, index=True)
    organisation_id: str | None = Field(default=None, max_length=36, index=True)
    kind: str = Field(max_length=20)
    started_on: date = Field(sa_type=Date)
    ended_on: date | None = Field(default=None, sa_type=Date)
    recorded_by: str = Field(max_length=100)
    recorded_at: datetime = Field(sa_type=DateTime(timezone=True))
