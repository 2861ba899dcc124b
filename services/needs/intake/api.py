"""HTTP routes of single-window intake (一门受理): `/intakes`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from libs.common.auth import Principal, Role, require_roles
from libs.common.crypto import FieldCipher
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.needs.intake import service
from services.needs.intake.schemas import (
    DocumentsAdd,
    IntakeCreate,
    IntakePublic,
    IntakeReject,
    IntakeRoute,
)

router = APIRouter(prefix="/intakes", tags=["intakes"])

# Township windows are run by the purchasing civil-affairs side and platform operators.
CaseWorker = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]


def applicant_cipher(request: Request) -> FieldCipher:
    # The needs service's personal-data cipher; the context keeps intake tokens apart.
    cipher: FieldCipher = request.app.state.personal_data.cipher
    return cipher


CipherDep = Annotated[FieldCipher, Depends(applicant_cipher)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=IntakePublic)
async def receive_intake(
    body: IntakeCreate, runtime: RuntimeDep, actor: CaseWorker, cipher: CipherDep
) -> IntakePublic:
    """Record an application; the answer carries `due_on`, `missing_documents` and the
    one-time notice (一次性告知). 422 when the working-day calendar lacks the year."""
    async with runtime.unit_of_work() as uow:
        intake = await service.receive_intake(uow=uow, data=body, actor=actor, cipher=cipher)
    return service.to_public(intake, cipher=cipher, today=service.china_today())


@router.get("/{intake_id}", response_model=IntakePublic)
async def get_intake(
    intake_id: str, runtime: RuntimeDep, actor: CaseWorker, cipher: CipherDep
) -> IntakePublic:
    """One intake (applicant's name masked); 404 outside the caller's region."""
    intake = await service.get_intake(db=runtime.db, intake_id=intake_id, actor=actor)
    return service.to_public(intake, cipher=cipher, today=service.china_today())


@router.get("", response_model=Page[IntakePublic])
async def list_intakes(
    runtime: RuntimeDep,
    actor: CaseWorker,
    page: PageDep,
    cipher: CipherDep,
    status_: Annotated[
        str | None, Query(alias="status", pattern="^(received|routed|completed|rejected)$")
    ] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
    overdue: Annotated[
        bool | None, Query(description="true: open and past due; false: all others")
    ] = None,
) -> Page[IntakePublic]:
    """Intakes in the caller's region, oldest due date first."""
    today = service.china_today()
    rows, total = await service.list_intakes(
        db=runtime.db,
        actor=actor,
        status=status_,
        region=region,
        overdue=overdue,
        today=today,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of(
        [service.to_public(i, cipher=cipher, today=today) for i in rows], total=total, page=page
    )


@router.post("/{intake_id}/documents", response_model=IntakePublic)
async def add_documents(
    intake_id: str, body: DocumentsAdd, runtime: RuntimeDep, actor: CaseWorker, cipher: CipherDep
) -> IntakePublic:
    """Add documents the applicant brought; returns the recomputed one-time notice."""
    async with runtime.unit_of_work() as uow:
        intake = await service.add_documents(
            uow=uow, intake_id=intake_id, documents=body.documents, actor=actor
        )
    return service.to_public(intake, cipher=cipher, today=service.china_today())


@router.post("/{intake_id}/route", response_model=IntakePublic)
async def route_intake(
    intake_id: str, body: IntakeRoute, runtime: RuntimeDep, actor: CaseWorker, cipher: CipherDep
) -> IntakePublic:
    """Route to the handling department (转办); the first-contact official stays recorded."""
    async with runtime.unit_of_work() as uow:
        intake = await service.route_intake(
            uow=uow, intake_id=intake_id, routed_to=body.routed_to, actor=actor
        )
    return service.to_public(intake, cipher=cipher, today=service.china_today())


@router.post("/{intake_id}/complete", response_model=IntakePublic)
async def complete_intake(
    intake_id: str, runtime: RuntimeDep, actor: CaseWorker, cipher: CipherDep
) -> IntakePublic:
    """Close as handled (办结); 409 while the one-time notice still lists documents."""
    async with runtime.unit_of_work() as uow:
        intake = await service.complete_intake(uow=uow, intake_id=intake_id, actor=actor)
    return service.to_public(intake, cipher=cipher, today=service.china_today())


@router.post("/{intake_id}/reject", response_model=IntakePublic)
async def reject_intake(
    intake_id: str, body: IntakeReject, runtime: RuntimeDep, actor: CaseWorker, cipher: CipherDep
) -> IntakePublic:
    """Refuse to accept (不予受理), with the reason."""
    async with runtime.unit_of_work() as uow:
        intake = await service.reject_intake(
            uow=uow, intake_id=intake_id, reason=body.reason, actor=actor
        )
    return service.to_public(intake, cipher=cipher, today=service.china_today())
