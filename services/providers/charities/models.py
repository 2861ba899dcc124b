"""Tables of charities (慈善组织) and the resources they offer (慈善资源)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime, Index, UniqueConstraint
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
    # Search always filters on status (default: offered), so the sort indexes lead with it
    # and end with a sort key: a page in that order is read straight off the index. Searches
    # through the index tables reach resources by id: `ix_resource_search_by_id` holds every
    # column a filter tests, so the wide row (JSON lists) is read only for the page itself;
    # (charity_id, id) gives a charity's resource ids from the index alone.
    __table_args__ = (
        Index("ix_resource_status_created_at", "status", "created_at"),
        Index("ix_resource_status_valid_until_valid_from", "status", "valid_until", "valid_from"),
        Index("ix_resource_status_remaining", "status", "remaining"),
        Index("ix_resource_status_title", "status", "title"),
        Index(
            "ix_resource_search_by_id",
            "id",
            "status",
            "kind",
            "valid_until",
            "valid_from",
            "remaining",
            "created_at",
            "charity_id",
        ),
        Index("ix_resource_charity_id_id", "charity_id", "id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    charity_id: str = Field(max_length=36, foreign_key="charity.id")
    kind: str = Field(max_length=20, index=True)  # funds | goods | volunteer_hours | services
    title: str = Field(max_length=200)
    service_codes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    regions: list[str] = Field(sa_column=Column(JSON, nullable=False))
    target_categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    quantity: int = Field(sa_type=BigInteger)
    remaining: int = Field(sa_type=BigInteger)
    unit: str = Field(max_length=20)
    valid_from: date = Field(sa_type=Date)
    valid_until: date = Field(sa_type=Date)
    status: str = Field(default="offered", max_length=20)
    status_reason: str | None = Field(default=None, max_length=500)
    version: int = Field(default=1)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class ResourceRegion(ProvidersTable, table=True):
    """One division code a resource may serve (search index of `regions`)."""

    __tablename__ = "resource_region"
    # (code, resource_id): search reads the ids of a code from the index alone.
    __table_args__ = (Index("ix_resource_region_code_resource_id", "code", "resource_id"),)

    resource_id: str = Field(
        primary_key=True, max_length=36, foreign_key="resource.id", ondelete="CASCADE"
    )
    code: str = Field(primary_key=True, max_length=12)


class ResourceService(ProvidersTable, table=True):
    """One catalogue item a resource can serve (search index of `service_codes`)."""

    __tablename__ = "resource_service"
    # (code, resource_id): search reads the ids of a code from the index alone.
    __table_args__ = (Index("ix_resource_service_code_resource_id", "code", "resource_id"),)

    resource_id: str = Field(
        primary_key=True, max_length=36, foreign_key="resource.id", ondelete="CASCADE"
    )
    code: str = Field(primary_key=True, max_length=60)


class ResourceCategory(ProvidersTable, table=True):
    """One recipient category a resource targets (search index of `target_categories`)."""

    __tablename__ = "resource_category"
    # (code, resource_id): search reads the ids of a code from the index alone.
    __table_args__ = (Index("ix_resource_category_code_resource_id", "code", "resource_id"),)

    resource_id: str = Field(
        primary_key=True, max_length=36, foreign_key="resource.id", ondelete="CASCADE"
    )
    code: str = Field(primary_key=True, max_length=40)


class ResourceMovement(ProvidersTable, table=True):
    """One change to a resource's remaining quantity, from a matching event (kept as history).

    `allocation_id` is matching's id: an allocation is taken once and released once, which
    the unique (allocation_id, reason) enforces even against two replicas racing.
    """

    __tablename__ = "resource_movement"
    __table_args__ = (UniqueConstraint("allocation_id", "reason"),)

    id: str = Field(primary_key=True, max_length=36)
    resource_id: str = Field(max_length=36, foreign_key="resource.id", index=True)
    allocation_id: str = Field(max_length=36)
    delta: int = Field(sa_type=BigInteger)  # negative when allocated, positive when released
    reason: str = Field(max_length=40)  # allocated | released
    event_id: str = Field(max_length=64)
    at: datetime = Field(sa_type=DateTime(timezone=True))
