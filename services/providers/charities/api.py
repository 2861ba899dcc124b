"""HTTP routes of charities (慈善组织) and their resources (慈善资源): `/charities`, `/resources`.

Operators and charities register charities and offer or withdraw resources; any
authenticated principal may read and search, seeing what reaches its region (404 otherwise).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.clock import today_in_china
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.providers.charities import service
from services.providers.charities.schemas import (
    CharityCreate,
    CharityPublic,
    CharityRegistered,
    CharityStatus,
    MovementPublic,
    ResourceCreate,
    ResourceKind,
    ResourcePublic,
    ResourceSort,
    ResourceStatus,
    ResourceWithdraw,
)

router = APIRouter(tags=["charities"])

Manager = Annotated[Principal, Depends(require_roles(Role.operator, Role.charity))]
RegionQuery = Query(
    pattern=r"^(\d{2}|\d{4}|\d{6}|\d{9}|\d{12})$",
    description="Division code or prefix (2, 4, 6, 9 or 12 digits)",
)


# --------------------------------------------------------------------------------------------
# Charities
# --------------------------------------------------------------------------------------------


@router.post("/charities", status_code=status.HTTP_201_CREATED, response_model=CharityRegistered)
async def register_charity(
    body: CharityCreate, runtime: RuntimeDep, actor: Manager
) -> CharityRegistered:
    """Register a charity (credit code and charity registration number); emits
    `sa.providers.charity.registered`. 409 with `existing_id` for a known credit code."""
    async with runtime.unit_of_work() as uow:
        charity = await service.register_charity(uow=uow, data=body, actor=actor)
    return CharityRegistered.model_validate(charity)


@router.get("/charities/{charity_id}", response_model=CharityPublic)
async def get_charity(
    charity_id: str, runtime: RuntimeDep, actor: CurrentPrincipal
) -> CharityPublic:
    """One charity; 404 outside the caller's province."""
    charity = await service.get_charity(db=runtime.db, charity_id=charity_id, actor=actor)
    return CharityPublic.model_validate(charity)


@router.get("/charities", response_model=Page[CharityPublic])
async def list_charities(
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    page: PageDep,
    region: Annotated[str | None, RegionQuery] = None,
    status_: Annotated[list[CharityStatus] | None, Query(alias="status")] = None,
) -> Page[CharityPublic]:
    """Charities registered inside `region`, oldest first."""
    rows, total = await service.list_charities(
        db=runtime.db,
        actor=actor,
        region=region,
        statuses=tuple(status_ or ()),
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([CharityPublic.model_validate(c) for c in rows], total=total, page=page)


@router.post(
    "/charities/{charity_id}/resources",
    status_code=status.HTTP_201_CREATED,
    response_model=ResourcePublic,
)
async def offer_resource(
    charity_id: str, body: ResourceCreate, runtime: RuntimeDep, actor: Manager
) -> ResourcePublic:
    """Offer a resource (status offered, remaining = quantity); emits
    `sa.providers.resource.offered`. Off-catalogue items, unknown categories, regions outside
    the province are 422 naming the index; negative-list items are refused citing the clause."""
    async with runtime.unit_of_work() as uow:
        resource = await service.offer_resource(
            uow=uow,
            charity_id=charity_id,
            data=body,
            actor=actor,
            today=today_in_china(),
        )
    return ResourcePublic.model_validate(resource)


# --------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------


@router.post("/resources/{resource_id}/withdraw", response_model=ResourcePublic)
async def withdraw_resource(
    resource_id: str, body: ResourceWithdraw, runtime: RuntimeDep, actor: Manager
) -> ResourcePublic:
    """Withdraw an offered or exhausted resource; emits `sa.providers.resource.withdrawn`.
    409 when it is already withdrawn."""
    async with runtime.unit_of_work() as uow:
        resource = await service.withdraw_resource(
            uow=uow, resource_id=resource_id, reason=body.reason, actor=actor
        )
    return ResourcePublic.model_validate(resource)


@router.get("/resources/{resource_id}", response_model=ResourcePublic)
async def get_resource(
    resource_id: str, runtime: RuntimeDep, actor: CurrentPrincipal
) -> ResourcePublic:
    resource = await service.get_resource(db=runtime.db, resource_id=resource_id, actor=actor)
    return ResourcePublic.model_validate(resource)


@router.get("/resources/{resource_id}/movements", response_model=Page[MovementPublic])
async def list_movements(
    resource_id: str, runtime: RuntimeDep, actor: CurrentPrincipal, page: PageDep
) -> Page[MovementPublic]:
    """How the remaining quantity moved with matching's allocations, oldest first."""
    rows, total = await service.list_movements(
        db=runtime.db,
        resource_id=resource_id,
        actor=actor,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([MovementPublic.model_validate(m) for m in rows], total=total, page=page)


@router.get("/resources", response_model=Page[ResourcePublic])
async def search_resources(
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(
            pattern=r"^(\d{2}|\d{4}|\d{6}|\d{9}|\d{12})$",
            description="Resources serving an area that covers this code or lies inside it",
        ),
    ] = None,
    service_code: Annotated[
        str | None, Query(alias="service", max_length=60, description="Catalogue item code")
    ] = None,
    category: Annotated[
        str | None, Query(max_length=40, description="Target recipient category")
    ] = None,
    kind: Annotated[list[ResourceKind] | None, Query(description="Repeatable")] = None,
    status_: Annotated[
        list[ResourceStatus] | None,
        Query(alias="status", description="Repeatable; default: offered"),
    ] = None,
    charity_id: Annotated[str | None, Query(max_length=36)] = None,
    available_on: Annotated[
        date | None, Query(description="A date inside the validity window")
    ] = None,
    min_remaining: Annotated[int | None, Query(ge=0)] = None,
    sort: ResourceSort = "-created_at",
) -> Page[ResourcePublic]:
    """Search resources reaching the caller's region. Every filter runs in the database on
    the index tables; pages are stable (the id breaks ties)."""
    rows, total = await service.search_resources(
        db=runtime.db,
        actor=actor,
        search=service.ResourceSearch(
            region=region,
            service=service_code,
            category=category,
            kinds=tuple(kind or ()),
            statuses=tuple(status_ or ("offered",)),
            charity_id=charity_id,
            available_on=available_on,
            min_remaining=min_remaining,
            sort=sort,
        ),
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([ResourcePublic.model_validate(r) for r in rows], total=total, page=page)
