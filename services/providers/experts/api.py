"""HTTP routes of the expert library (专家库): `/experts`.

Platform operators keep the library; purchasers may read it. Contact details are masked in
every response. Outside the caller's region an expert reads as absent (404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from libs.common.auth import Principal, Role, require_roles
from libs.common.clock import today_in_china
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.providers.experts import service
from services.providers.experts.schemas import (
    AffiliationCreate,
    AffiliationPublic,
    AffiliationUpdate,
    ExpertCreate,
    ExpertPublic,
    ExpertStatus,
    ExpertUpdate,
)
from services.providers.settings import ProvidersSettings

router = APIRouter(prefix="/experts", tags=["experts"])

Operator = Annotated[Principal, Depends(require_roles(Role.operator))]
Reader = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]


async def expert_contacts(request: Request) -> service.ExpertContactsCipher:
    """The contact-details cipher, built once from the service's data keys.

    Kept on `app.state` so the key ring is parsed once per app, not per request.
    """
    state = request.app.state
    contacts: service.ExpertContactsCipher | None = getattr(state, "expert_contacts", None)
    if contacts is None:
        settings = state.runtime.settings
        if not isinstance(settings, ProvidersSettings):
            raise RuntimeError("the experts routes need ProvidersSettings (data_keys)")
        contacts = service.ExpertContactsCipher.from_data_keys(settings.data_keys)
        state.expert_contacts = contacts
    return contacts


ContactsDep = Annotated[service.ExpertContactsCipher, Depends(expert_contacts)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ExpertPublic)
async def register_expert(
    body: ExpertCreate, runtime: RuntimeDep, actor: Operator, contacts: ContactsDep
) -> ExpertPublic:
    """Enter an expert; 422 names each unknown field by its index (`body.fields.1`)."""
    async with runtime.unit_of_work() as uow:
        expert = await service.register_expert(uow=uow, data=body, actor=actor, contacts=contacts)
    return service.to_public(expert, contacts)


@router.get("/{expert_id}", response_model=ExpertPublic)
async def get_expert(
    expert_id: str, runtime: RuntimeDep, actor: Reader, contacts: ContactsDep
) -> ExpertPublic:
    expert = await service.get_expert(db=runtime.db, expert_id=expert_id, actor=actor)
    return service.to_public(expert, contacts)


@router.get("", response_model=Page[ExpertPublic])
async def list_experts(
    runtime: RuntimeDep,
    actor: Reader,
    page: PageDep,
    contacts: ContactsDep,
    field: Annotated[
        str | None, Query(max_length=60, description="Catalogue item, evaluation, finance, law")
    ] = None,
    region: Annotated[
        str | None, Query(pattern=r"^\d{2,12}$", description="Experts registered inside it")
    ] = None,
    available: Annotated[
        bool | None, Query(description="true: can be drawn for a panel today")
    ] = None,
    status_: Annotated[ExpertStatus | None, Query(alias="status")] = None,
    sort: Annotated[
        str, Query(pattern=r"^-?(name|created_at)$", description="name, -name, created_at, …")
    ] = "name",
) -> Page[ExpertPublic]:
    rows, total = await service.list_experts(
        db=runtime.db,
        actor=actor,
        field=field,
        region=region,
        available=available,
        status=status_,
        sort=sort,
        today=today_in_china(),
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([service.to_public(e, contacts) for e in rows], total=total, page=page)


@router.patch("/{expert_id}", response_model=ExpertPublic)
async def update_expert(
    expert_id: str,
    body: ExpertUpdate,
    runtime: RuntimeDep,
    actor: Operator,
    contacts: ContactsDep,
) -> ExpertPublic:
    """Change fields, title, availability, status or contacts (a key given in `contacts`
    replaces that detail, null clears it)."""
    async with runtime.unit_of_work() as uow:
        expert = await service.update_expert(
            uow=uow, expert_id=expert_id, data=body, actor=actor, contacts=contacts
        )
    return service.to_public(expert, contacts)


@router.post(
    "/{expert_id}/affiliations",
    status_code=status.HTTP_201_CREATED,
    response_model=AffiliationPublic,
)
async def add_affiliation(
    expert_id: str, body: AffiliationCreate, runtime: RuntimeDep, actor: Operator
) -> AffiliationPublic:
    """Record employment, directorship or shareholding with an organisation, for recusal."""
    async with runtime.unit_of_work() as uow:
        affiliation = await service.add_affiliation(
            uow=uow, expert_id=expert_id, data=body, actor=actor
        )
    return AffiliationPublic.model_validate(affiliation)


@router.get("/{expert_id}/affiliations", response_model=Page[AffiliationPublic])
async def list_affiliations(
    expert_id: str, runtime: RuntimeDep, actor: Reader, page: PageDep
) -> Page[AffiliationPublic]:
    """The expert's affiliations, oldest first."""
    rows, total = await service.list_affiliations(
        db=runtime.db, expert_id=expert_id, actor=actor, limit=page.limit, offset=page.offset
    )
    return Page.of([AffiliationPublic.model_validate(a) for a in rows], total=total, page=page)


@router.patch("/{expert_id}/affiliations/{affiliation_id}", response_model=AffiliationPublic)
async def end_affiliation(
    expert_id: str,
    affiliation_id: str,
    body: AffiliationUpdate,
    runtime: RuntimeDep,
    actor: Operator,
) -> AffiliationPublic:
    """Set the end date (null reopens); 422 when it would precede the start."""
    async with runtime.unit_of_work() as uow:
        affiliation = await service.end_affiliation(
            uow=uow,
            expert_id=expert_id,
            affiliation_id=affiliation_id,
            ended_on=body.ended_on,
            actor=actor,
        )
    return AffiliationPublic.model_validate(affiliation)
