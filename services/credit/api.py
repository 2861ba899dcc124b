"""HTTP routes of the credit service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.credit import service
from services.credit.schemas import AdmissionPublic, BlacklistCreate, BlacklistPublic

router = APIRouter()

Operator = Annotated[Principal, Depends(require_roles(Role.operator))]


@router.get("/admissions/{organisation_id}", response_model=AdmissionPublic, tags=["admissions"])
async def get_admission(
    organisation_id: str, runtime: RuntimeDep, actor: CurrentPrincipal
) -> AdmissionPublic:
    """The latest admission review of an organisation, every condition with its clause."""
    review = await service.latest_admission(
        db=runtime.db, organisation_id=organisation_id, actor=actor
    )
    return AdmissionPublic.model_validate(review)


@router.post(
    "/blacklist",
    status_code=status.HTTP_201_CREATED,
    response_model=BlacklistPublic,
    tags=["blacklist"],
)
async def blacklist_organisation(
    body: BlacklistCreate, runtime: RuntimeDep, actor: Operator
) -> BlacklistPublic:
    """Ban an organisation for the pack's period by severity (政府采购法 第七十七条)."""
    async with runtime.unit_of_work() as uow:
        entry = await service.blacklist_organisation(uow=uow, data=body, actor=actor)
    return BlacklistPublic.model_validate(entry)


@router.get("/blacklist", response_model=Page[BlacklistPublic], tags=["blacklist"])
async def list_blacklist(
    runtime: RuntimeDep,
    page: PageDep,
    in_force: Annotated[bool, Query(description="Only bans in force today")] = False,
) -> Page[BlacklistPublic]:
    """The blacklist is public (失信名单公示): no login needed, no personal data."""
    rows, total = await service.list_blacklist(
        db=runtime.db,
        in_force_on=service.today_in_china() if in_force else None,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([BlacklistPublic.model_validate(r) for r in rows], total=total, page=page)
