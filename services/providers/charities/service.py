"""Use cases of charities (慈善组织) and their resources (慈善资源): register, offer, withdraw,
read, search. No HTTP here.

A resource's service codes, regions and target categories are kept twice: as JSON on the
resource (what the charity declared, in order) and as one row each in `resource_service`,
`resource_region` and `resource_category`, the index search runs on; both are written in one
transaction. `remaining` changes only through matching's allocation events (`events.py`).

Who sees what:
- charities are public bodies (慈善组织信息公开) whose resources may serve anywhere in their
  province, so a principal sees the charities of its own province (and a charity itself);
- a resource is seen by principals whose region one of its regions covers or lies inside,
  by those of the area its charity is registered in (they manage it), and by its charity;
- a charity principal (org_id = the charity's id) manages its own resources; an operator
  manages those of charities registered in its region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, union_all
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from libs.common import regions
from libs.common.auth import Principal, Role
from libs.common.db import Database
from libs.common.errors import Conflict, Forbidden, NotFound, invalid
from libs.common.events import UnitOfWork
from libs.common.ids import new_id
from libs.common.pagination import fetch_page
from libs.common.policy import PolicyPack, pack_for_region
from services.providers.charities import events, rules
from services.providers.charities.models import (
    Charity,
    Resource,
    ResourceCategory,
    ResourceMovement,
    ResourceRegion,
    ResourceService,
)
from services.providers.charities.schemas import CharityCreate, ResourceCreate

IndexRow = ResourceRegion | ResourceService | ResourceCategory


def _pack(region_code: str) -> PolicyPack:
    try:
        return pack_for_region(region_code)
    except LookupError as exc:
        raise invalid("body.region_code", str(exc)) from exc


def _own(actor: Principal, charity_id: str) -> bool:
    return actor.role == Role.charity and actor.org_id == charity_id


# --------------------------------------------------------------------------------------------
# Charities
# --------------------------------------------------------------------------------------------


async def register_charity(*, uow: UnitOfWork, data: CharityCreate, actor: Principal) -> Charity:
    """Register a charity; emit `registered`. A charity registering itself keeps its account's
    org_id as its id, so that account manages it from then on. 409 on a known credit code."""
    actor.require_region(data.region_code)
    _pack(data.region_code)  # a province without a pack cannot offer anything
    existing = (
        await uow.session.execute(select(col(Charity.id)).where(col(Charity.uscc) == data.uscc))
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            detail="A charity with this credit code is already registered.",
            extra={"existing_id": existing},
        )
    charity_id = actor.org_id if actor.role == Role.charity and actor.org_id else new_id()
    if len(charity_id) > 36:
        raise invalid("token.org_id", "a charity's id has at most 36 characters")
    if await uow.session.get(Charity, charity_id) is not None:
        raise Conflict(
            detail="This account's charity is already registered.",
            extra={"existing_id": charity_id},
        )
    now = datetime.now(UTC)
    charity = Charity(
        id=charity_id,
        uscc=data.uscc,
        name=data.name,
        charity_registration=data.charity_registration,
        registration_authority=data.registration_authority,
        region_code=data.region_code,
        status="active",
        version=1,
        created_by=actor.subject,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(charity)
    uow.emit(events.charity_registered(charity))
    try:
        await uow.commit()
    except IntegrityError as exc:  # a concurrent registration of the same code won the race
        raise Conflict(detail="A charity with this credit code is already registered.") from exc
    return charity


def charity_visible(charity: Charity, actor: Principal) -> bool:
    """A charity of the caller's province (where its resources may serve), or itself."""
    return _own(actor, charity.id) or regions.overlaps(charity.region_code[:2], actor.region)


async def get_charity(*, db: Database, charity_id: str, actor: Principal) -> Charity:
    async with db.session() as session:
        charity = await session.get(Charity, charity_id)
    if charity is None or not charity_visible(charity, actor):
        raise NotFound(detail=f"No charity {charity_id}.")
    return charity


async def list_charities(
    *,
    db: Database,
    actor: Principal,
    region: str | None,
    statuses: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[list[Charity], int]:
    """Charities registered inside `region`, of the caller's province, oldest first."""
    query: Select[Any] = select(Charity)
    if actor.region:
        scope = regions.sql_inside(col(Charity.region_code), actor.region[:2])
        if actor.role == Role.charity and actor.org_id:
            scope = scope | (col(Charity.id) == actor.org_id)
        query = query.where(scope)
    if region:
        query = query.where(regions.sql_inside(col(Charity.region_code), region))
    if statuses:
        query = query.where(col(Charity.status).in_(statuses))
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[col(Charity.created_at), col(Charity.id)],
            limit=limit,
            offset=offset,
        )


def _require_manager(charity: Charity, actor: Principal) -> None:
    """The charity itself, or an operator of the region it is registered in. Others who can
    see the charity get 403; those who cannot, 404 (existence does not leak)."""
    if _own(actor, charity.id) or (
        actor.role == Role.operator and actor.covers(charity.region_code)
    ):
        return
    if not charity_visible(charity, actor):
        raise NotFound(detail=f"No charity {charity.id}.")
    raise Forbidden(
        detail="Only the charity itself or an operator of its region may manage its resources."
    )


# --------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------


def index_rows(resource: Resource) -> list[IndexRow]:
    """The search index rows of a resource (one per region, service code and category).

    Whoever writes resources (this module, a seeding script, a benchmark) writes these in the
    same transaction, or search will not find the resource.
    """
    rows: list[IndexRow] = [
        ResourceRegion(resource_id=resource.id, code=c) for c in resource.regions
    ]
    rows += [ResourceService(resource_id=resource.id, code=c) for c in resource.service_codes]
    rows += [ResourceCategory(resource_id=resource.id, code=c) for c in resource.target_categories]
    return rows


async def offer_resource(
    *,
    uow: UnitOfWork,
    charity_id: str,
    data: ResourceCreate,
    actor: Principal,
    today: date,
) -> Resource:
    """Offer a resource under the charity's province pack: status offered, remaining =
    quantity, index rows, `offered` event. Refusals name each field (with its index) and, for
    negative-list items, cite the clause."""
    charity = await uow.session.get(Charity, charity_id)
    if charity is None:
        raise NotFound(detail=f"No charity {charity_id}.")
    _require_manager(charity, actor)
    if charity.status != "active":
        raise Conflict(
            detail=f"The charity is {charity.status}; it cannot offer resources.",
            extra={"charity_status": charity.status},
        )
    refusals = rules.offer_refusals(
        _pack(charity.region_code),
        kind=data.kind,
        service_codes=data.service_codes,
        regions=data.regions,
        target_categories=data.target_categories,
        quantity=data.quantity,
        unit=data.unit,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        today=today,
    )
    if refusals:
        raise refusals.error("The offer does not meet the province's rules; see `errors`.")
    now = datetime.now(UTC)
    resource = Resource(
        id=new_id(),
        charity_id=charity.id,
        kind=data.kind,
        title=data.title,
        service_codes=list(data.service_codes),
        regions=list(data.regions),
        target_categories=list(data.target_categories),
        quantity=data.quantity,
        remaining=data.quantity,
        unit=data.unit,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        status="offered",
        version=1,
        created_by=actor.subject,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(resource)
    await uow.session.flush()  # the resource first: the index rows reference it
    uow.session.add_all(index_rows(resource))
    uow.emit(events.resource_event("offered", resource))
    await uow.commit()
    return resource


async def withdraw_resource(
    *, uow: UnitOfWork, resource_id: str, reason: str, actor: Principal
) -> Resource:
    """Withdraw an offered or exhausted resource (with the reason); emit `withdrawn`.
    409 when it is already withdrawn or expired."""
    resource = (
        await uow.session.execute(
            select(Resource).where(col(Resource.id) == resource_id).with_for_update()
        )
    ).scalar_one_or_none()
    charity = None if resource is None else await uow.session.get(Charity, resource.charity_id)
    if resource is None or charity is None or not _resource_visible(resource, charity, actor):
        raise NotFound(detail=f"No resource {resource_id}.")
    _require_manager(charity, actor)
    if resource.status not in rules.WITHDRAWABLE:
        raise Conflict(
            detail=f"The resource is {resource.status}; only an offered or exhausted resource "
            "can be withdrawn.",
            extra={"resource_status": resource.status},
        )
    resource.status = "withdrawn"
    resource.status_reason = reason
    resource.version += 1
    resource.updated_at = datetime.now(UTC)
    uow.emit(events.resource_event("withdrawn", resource, reason=reason))
    await uow.commit()
    return resource


def _resource_visible(resource: Resource, charity: Charity, actor: Principal) -> bool:
    return (
        _own(actor, resource.charity_id)
        or rules.reaches(resource.regions, actor.region)
        or actor.covers(charity.region_code)
    )


async def get_resource(*, db: Database, resource_id: str, actor: Principal) -> Resource:
    async with db.session() as session:
        resource = await session.get(Resource, resource_id)
        charity = None if resource is None else await session.get(Charity, resource.charity_id)
    if resource is None or charity is None or not _resource_visible(resource, charity, actor):
        raise NotFound(detail=f"No resource {resource_id}.")
    return resource


async def list_movements(
    *, db: Database, resource_id: str, actor: Principal, limit: int, offset: int
) -> tuple[list[ResourceMovement], int]:
    """The resource's movements, oldest first."""
    await get_resource(db=db, resource_id=resource_id, actor=actor)
    query = select(ResourceMovement).where(col(ResourceMovement.resource_id) == resource_id)
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[col(ResourceMovement.at), col(ResourceMovement.id)],
            limit=limit,
            offset=offset,
        )


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------
#
# Filters through an index table (region, service, category, the caller's region) can be
# written two ways, with the same meaning:
#   - `resource.id IN (ids from the index table)`: the database reads the matching index rows
#     first and looks the resources up by id; cheap when few match;
#   - a correlated `EXISTS` probe on the index table's primary key (resource_id, code): the
#     database walks resources in the order asked for (an index leading with status and the
#     sort key) and stops after one page; cheap when many match.
# The total always uses IN for the filter expected to be most selective and EXISTS for the
# rest (one ephemeral list instead of several). The page uses the same form when few match,
# and EXISTS throughout when many do, so a broad search (a province, a common service) reads
# one page of the sort index instead of every match.

# Walk the sort index when at least DENSE_TOTAL resources match and at least DENSE_RATIO
# per row the page reaches (offset + limit): the walk then stops early.
DENSE_TOTAL = 1000
DENSE_RATIO = 10


@dataclass(frozen=True)
class _IndexFilter:
    """One filter through an index table, in both forms; `rank` orders expected selectivity."""

    rank: int
    ids: ColumnElement[bool]  # resource.id IN (...)
    probe: ColumnElement[bool]  # EXISTS (...) correlated on resource.id


def _region_filter(scope: str) -> _IndexFilter:
    """Resources with a region covering `scope` or inside it: the SQL of `rules.reaches`."""
    code, rid = col(ResourceRegion.code), col(ResourceRegion.resource_id)
    ids = union_all(
        select(rid).where(code.in_(regions.region_prefixes(scope))),
        select(rid).where(regions.sql_inside(code, scope)),
    )
    probe = select(rid).where(rid == col(Resource.id), regions.sql_reaching(code, scope)).exists()
    # A county or smaller is a small share of the library; a province or prefecture is not.
    return _IndexFilter(0 if len(scope) >= 6 else 4, col(Resource.id).in_(ids), probe)


def _code_filter(
    table: type[ResourceService] | type[ResourceCategory], code: str, rank: int
) -> _IndexFilter:
    rid = col(table.resource_id)
    return _IndexFilter(
        rank,
        col(Resource.id).in_(select(rid).where(col(table.code) == code)),
        select(rid).where(rid == col(Resource.id), col(table.code) == code).exists(),
    )


def _visibility_filter(actor: Principal) -> _IndexFilter:
    """What a region-scoped caller sees: resources reaching its region, those of charities
    registered in it (it manages them), and, for a charity, its own."""
    scope = actor.region
    code, rid = col(ResourceRegion.code), col(ResourceRegion.resource_id)
    charities = select(col(Charity.id)).where(regions.sql_inside(col(Charity.region_code), scope))
    id_parts: list[Any] = [
        select(rid).where(code.in_(regions.region_prefixes(scope))),
        select(rid).where(regions.sql_inside(code, scope)),
        select(col(Resource.id)).where(col(Resource.charity_id).in_(charities)),
    ]
    probes: list[ColumnElement[bool]] = [
        select(rid).where(rid == col(Resource.id), regions.sql_reaching(code, scope)).exists(),
        col(Resource.charity_id).in_(charities),
    ]
    if actor.role == Role.charity and actor.org_id:
        id_parts.append(select(col(Resource.id)).where(col(Resource.charity_id) == actor.org_id))
        probes.append(col(Resource.charity_id) == actor.org_id)
    rank = 1 if len(scope) >= 6 else 5
    return _IndexFilter(rank, col(Resource.id).in_(union_all(*id_parts)), or_(*probes))


SORTS: dict[str, Any] = {
    "-created_at": (col(Resource.created_at).desc(), col(Resource.id).desc()),
    "created_at": (col(Resource.created_at).asc(), col(Resource.id).asc()),
    "valid_until": (col(Resource.valid_until).asc(), col(Resource.id).asc()),
    "-valid_until": (col(Resource.valid_until).desc(), col(Resource.id).desc()),
    "remaining": (col(Resource.remaining).asc(), col(Resource.id).asc()),
    "-remaining": (col(Resource.remaining).desc(), col(Resource.id).desc()),
    "title": (col(Resource.title).asc(), col(Resource.id).asc()),
    "-title": (col(Resource.title).desc(), col(Resource.id).desc()),
}


@dataclass(frozen=True)
class ResourceSearch:
    """Filters of `GET /resources`; every one is applied in SQL."""

    region: str | None = None
    service: str | None = None
    category: str | None = None
    kinds: Sequence[str] = ()
    statuses: Sequence[str] = ("offered",)
    charity_id: str | None = None
    available_on: date | None = None
    min_remaining: int | None = None
    sort: str = "-created_at"


@dataclass(frozen=True)
class SearchPlan:
    """The conditions of a search: on the resource row itself, and through index tables."""

    plain: list[ColumnElement[bool]]
    indexed: list[_IndexFilter]
    order_by: Sequence[Any]

    def where(self, *, dense: bool = False) -> list[ColumnElement[bool]]:
        """All conditions; the most selective index filter as IN unless `dense`."""
        ordered = sorted(self.indexed, key=lambda f: f.rank)
        if dense or not ordered:
            return [*self.plain, *(f.probe for f in ordered)]
        return [*self.plain, ordered[0].ids, *(f.probe for f in ordered[1:])]


def search_plan(search: ResourceSearch, actor: Principal) -> SearchPlan:
    """The conditions of `search` for `actor`; `SearchPlan.where` writes them out."""
    plain: list[ColumnElement[bool]] = []
    indexed: list[_IndexFilter] = []
    # A region filter inside the caller's region already implies what it may see (an area
    # covering or inside the filter overlaps the caller's region too): one probe fewer.
    if actor.region and not (search.region and search.region.startswith(actor.region)):
        indexed.append(_visibility_filter(actor))
    if search.region:
        indexed.append(_region_filter(search.region))
    if search.service:
        indexed.append(_code_filter(ResourceService, search.service, 2))
    if search.category:
        indexed.append(_code_filter(ResourceCategory, search.category, 3))
    if search.statuses:
        plain.append(col(Resource.status).in_(search.statuses))
    if search.kinds:
        plain.append(col(Resource.kind).in_(search.kinds))
    if search.charity_id:
        plain.append(col(Resource.charity_id) == search.charity_id)
    if search.available_on is not None:
        plain.append(col(Resource.valid_from) <= search.available_on)
        plain.append(col(Resource.valid_until) >= search.available_on)
    if search.min_remaining is not None:
        plain.append(col(Resource.remaining) >= search.min_remaining)
    return SearchPlan(plain, indexed, SORTS[search.sort])


async def search_resources(
    *, db: Database, actor: Principal, search: ResourceSearch, limit: int, offset: int
) -> tuple[list[Resource], int]:
    """One page of the resources the caller may see that match every filter, and the total."""
    plan = search_plan(search, actor)
    async with db.session() as session:
        total = int(
            (
                await session.execute(
                    select(func.count()).select_from(Resource).where(*plan.where())
                )
            ).scalar_one()
        )
        if total <= offset:
            return [], total
        dense = total >= DENSE_TOTAL and total >= DENSE_RATIO * (offset + limit)
        page = (
            select(Resource)
            .where(*plan.where(dense=dense))
            .order_by(*plan.order_by)
            .limit(limit)
            .offset(offset)
        )
        rows = (await session.execute(page)).scalars().all()
    return list(rows), total
