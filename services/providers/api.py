"""HTTP routes of the providers service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.providers import service
from services.providers.schemas import OrganisationCreate, OrganisationPublic

router = APIRouter(prefix="/organisations", tags=["organisations"])

Registrar = Annotated[Principal, Depends(require_roles(Role.operator, Role.organisation))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrganisationPublic)
async def register_organisation(
    body: OrganisationCreate, runtime: RuntimeDep, actor: Registrar
) -> OrganisationPublic:
    """Register a social force; credit reviews its admission from the event."""
    async with runtime.unit_of_work() as uow:
        org = await service.register_organisation(uow=uow, data=body, actor=actor)
    return OrganisationPublic.model_validate(org)


@router.get("/{organisation_id}", response_model=OrganisationPublic)
async def get_organisation(
    organisation_id: str, runtime: RuntimeDep, actor: CurrentPrincipal
) -> OrganisationPublic:
    org = await service.get_organisation(
        db=runtime.db, organisation_id=organisation_id, actor=actor
    )
    return OrganisationPublic.model_validate(org)


@router.get("", response_model=Page[OrganisationPublic])
async def list_organisations(
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    page: PageDep,
    status_: Annotated[str | None, Query(alias="status")] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
    service_code: Annotated[str | None, Query(alias="service")] = None,
) -> Page[OrganisationPublic]:
    rows, total = await service.list_organisations(
        db=runtime.db,
        actor=actor,
        status=status_,
        region=region,
        service=service_code,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([OrganisationPublic.model_validate(o) for o in rows], total=total, page=page)
