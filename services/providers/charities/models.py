"""Tables of charities (慈善组织) and the resources they offer (慈善资源)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime
from sqlmodel import Field

from services.providers.models import ProvidersTable


class Charity(ProvidersTable, table=True):
    """A charity organisation offering resources to recipients."""

    __tablename__ = "charity"

    id: str = Field(primary_key=True, max_length=36)
    uscc: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=200)
    # 慈善组织登记/认定 number and the authority that issued it.
    charity_registration: str = Field(max_length=60)
    registration_authority: str | None = Field(default=None, max_length=200)
    region_code: str = Field(max_length=12, index=True)
    status: str = Field(default="active", max_length=20, index=True)  # active | inactive
    version: int = Field(default=1)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class Resource(ProvidersTable, table=True):
    """A resource a charity offers (慈善资源): funds, goods, volunteer hours or services.

    Quantities are integers in the resource's unit (funds in fen, 分, so money is exact).
    `remaining` follows matching's allocation events; `version` counts changes.
    status: offered | withdrawn | exhausted | expired.
    """

    __tablename__ = "resource"

    id: str = Field(primary_key=True, max_length=36)
    charity_id: str = Field(max_length=36, foreign_key="charity.id", index=True)
    kind: str = Field(max_length=20, index=True)  # funds | goods | volunteer_hours | services
    title: str = Field(max_length=200)
    service_codes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    regions: list[str] = Field(sa_column=Column(JSON, nullable=False))
    target_categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    quantity: int = Field(sa_type=BigInteger)
    remaining: int = Field(sa_type=BigInteger)
    unit: str = Field(max_length=20)
    valid_from: date = Field(sa_type=Date)
    valid_until: date = Field(sa_type=Date, index=True)
    status: str = Field(default="offered", max_length=20, index=True)
    status_reason: str | None = Field(default=None, max_length=500)
    version: int = Field(default=1)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class ResourceRegion(ProvidersTable, table=True):
    """One division code a resource may serve (search index of `regions`)."""

    __tablename__ = "resource_region"

    resource_id: str = Field(
        primary_key=True, max_length=36, foreign_key="resource.id", ondelete="CASCADE"
    )
    code: str = Field(primary_key=True, max_length=12, index=True)


class ResourceService(ProvidersTable, table=True):
    """One catalogue item a resource can serve (search index of `service_codes`)."""

    __tablename__ = "resource_service"

    resource_id: str = Field(
        primary_key=True, max_length=36, foreign_key="resource.id", ondelete="CASCADE"
    )
    code: str = Field(primary_key=True, max_length=60, index=True)


class ResourceMovement(ProvidersTable, table=True):
    """One change to a resource's remaining quantity, from a matching event (kept as history).

    `allocation_id` is matching's id: an allocation is taken once and released once.
    """

    __tablename__ = "resource_movement"

    id: str = Field(primary_key=True, max_length=36)
    resource_id: str = Field(max_length=36, foreign_key="resource.id", index=True)
    allocation_id: str = Field(max_length=36, index=True)
    delta: int = Field(sa_type=BigInteger)  # negative when allocated, positive when released
    reason: str = Field(max_length=40)  # allocated | released
    event_id: str = Field(max_length=64)
    at: datetime = Field(sa_type=DateTime(timezone=True))
