"""HTTP routes of the needs service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.needs import service
from services.needs.schemas import NeedCreate, NeedPublic, RecipientCreate, RecipientPublic

router = APIRouter()

CaseWorker = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]


def personal_data(request: Request) -> service.PersonalData:
    pd: service.PersonalData = request.app.state.personal_data
    return pd


PersonalDataDep = Annotated[service.PersonalData, Depends(personal_data)]


@router.post(
    "/recipients",
    status_code=status.HTTP_201_CREATED,
    response_model=RecipientPublic,
    tags=["recipients"],
)
async def register_recipient(
    body: RecipientCreate, runtime: RuntimeDep, actor: CaseWorker, pd: PersonalDataDep
) -> RecipientPublic:
    """Register a recipient; the same ID number twice is 409 with the existing reference."""
    async with runtime.unit_of_work() as uow:
        recipient = await service.register_recipient(uow=uow, data=body, actor=actor, pd=pd)
    return service.masked(recipient, pd)


@router.get("/recipients/{ref}", response_model=RecipientPublic, tags=["recipients"])
async def get_recipient(
    ref: str, runtime: RuntimeDep, actor: CaseWorker, pd: PersonalDataDep
) -> RecipientPublic:
    recipient = await service.get_recipient(db=runtime.db, ref=ref, actor=actor)
    return service.masked(recipient, pd)


@router.post(
    "/needs", status_code=status.HTTP_201_CREATED, response_model=NeedPublic, tags=["needs"]
)
async def open_need(body: NeedCreate, runtime: RuntimeDep, actor: CaseWorker) -> NeedPublic:
    """Open a need item for a direct service; matching receives `sa.needs.need.opened`."""
    async with runtime.unit_of_work() as uow:
        need = await service.open_need(uow=uow, data=body, actor=actor)
    return NeedPublic.model_validate(need)


@router.get("/needs/{need_id}", response_model=NeedPublic, tags=["needs"])
async def get_need(need_id: str, runtime: RuntimeDep, actor: CurrentPrincipal) -> NeedPublic:
    return NeedPublic.model_validate(
        await service.get_need(db=runtime.db, need_id=need_id, actor=actor)
    )


@router.get("/needs", response_model=Page[NeedPublic], tags=["needs"])
async def list_needs(
    runtime: RuntimeDep,
    actor: CaseWorker,
    page: PageDep,
    status_: Annotated[str | None, Query(alias="status")] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
) -> Page[NeedPublic]:
    rows, total = await service.list_needs(
        db=runtime.db,
        actor=actor,
        status=status_,
        region=region,
        limit=page.limit,
        offset=page.offset,
    )
    return Page(
        items=[NeedPublic.model_validate(n) for n in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
