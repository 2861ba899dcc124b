"""Tables of the providers service: the social-forces library (社会力量库)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from libs.common.db import make_registry
from libs.common.events import EventTables

registry = make_registry()
metadata = registry.metadata
event_tables = EventTables.define(metadata)


class ProvidersTable(SQLModel, registry=registry):
    """Base of every table this service owns (its own metadata, its own database)."""


class Organisation(ProvidersTable, table=True):
    """A social force (社会力量) in the provincial library.

    `status` follows credit's decisions only (admitted, rejected, suspended, exited,
    blacklisted); `status_version` is credit's decision counter, so a late or replayed
    decision never overwrites a newer one.
    """

    __tablename__ = "organisation"

    id: str = Field(primary_key=True, max_length=36)
    uscc: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=50)
    region_code: str = Field(max_length=12, index=True)
    service_regions: list[str] = Field(sa_column=Column(JSON, nullable=False))
    services: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    qualifications: dict[str, bool] = Field(sa_column=Column(JSON, nullable=False))
    pack: str = Field(max_length=40)
    status: str = Field(default="pending", max_length=20, index=True)
    status_version: int = Field(default=0)
    status_reason: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
