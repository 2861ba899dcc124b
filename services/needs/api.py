"""HTTP routes of the needs service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from libs.common.telemetry import current_traceparent
from services.needs import service
from services.needs.schemas import (
    AccessRecordPublic,
    ConsentPublic,
    ConsentRecordIn,
    NeedCancel,
    NeedCreate,
    NeedPublic,
    PersonalDataPublic,
    RecipientChangePublic,
    RecipientCreate,
    RecipientPublic,
    RecipientUpdate,
)

router = APIRouter()

CaseWorker = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]


async def personal_data(request: Request) -> service.PersonalData:
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


@router.get("/recipients", response_model=Page[RecipientPublic], tags=["recipients"])
async def list_recipients(
    runtime: RuntimeDep,
    actor: CaseWorker,
    page: PageDep,
    pd: PersonalDataDep,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^(active|inactive)$")] = None,
) -> Page[RecipientPublic]:
    """Recipients in the caller's region (masked), filtered and paginated."""
    rows, total = await service.list_recipients(
        db=runtime.db,
        actor=actor,
        region=region,
        category=category,
        status=status_,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([service.masked(r, pd) for r in rows], total=total, page=page)


@router.patch("/recipients/{ref}", response_model=RecipientPublic, tags=["recipients"])
async def update_recipient(
    ref: str, body: RecipientUpdate, runtime: RuntimeDep, actor: CaseWorker, pd: PersonalDataDep
) -> RecipientPublic:
    """Change a recipient; each changed field is kept in the history."""
    async with runtime.unit_of_work() as uow:
        recipient = await service.update_recipient(uow=uow, ref=ref, data=body, actor=actor, pd=pd)
    return service.masked(recipient, pd)


@router.get(
    "/recipients/{ref}/history", response_model=list[RecipientChangePublic], tags=["recipients"]
)
async def recipient_history(
    ref: str, runtime: RuntimeDep, actor: CaseWorker
) -> list[RecipientChangePublic]:
    """Changes, oldest first; personal fields show as sealed, never in clear."""
    rows = await service.recipient_history(db=runtime.db, ref=ref, actor=actor)
    return [
        RecipientChangePublic(
            version=r.version,
            field_name=r.field_name,
            old_value="(sealed)" if r.sealed and r.old_value else r.old_value,
            new_value="(sealed)" if r.sealed and r.new_value else r.new_value,
            changed_by=r.changed_by,
            changed_at=r.changed_at,
        )
        for r in rows
    ]


@router.get(
    "/recipients/{ref}/personal-data", response_model=PersonalDataPublic, tags=["recipients"]
)
async def reveal_personal_data(
    ref: str,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    pd: PersonalDataDep,
    purpose: Annotated[
        str, Query(min_length=5, max_length=300, description="Why the unmasked data is needed")
    ],
) -> PersonalDataPublic:
    """Unmasked identifiers, for case workers with a stated purpose; every read is audited."""
    async with runtime.unit_of_work() as uow:
        return await service.reveal_personal_data(
            uow=uow, ref=ref, actor=actor, purpose=purpose, pd=pd
        )


@router.post(
    "/recipients/{ref}/consents",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentPublic,
    tags=["recipients"],
)
async def record_consent(
    ref: str, body: ConsentRecordIn, runtime: RuntimeDep, actor: CaseWorker
) -> ConsentPublic:
    """Record consent given or withdrawn (a withdrawal is a new record; history stays)."""
    async with runtime.unit_of_work() as uow:
        record = await service.record_consent(uow=uow, ref=ref, data=body, actor=actor)
    return ConsentPublic.model_validate(record)


@router.get("/recipients/{ref}/consents", response_model=list[ConsentPublic], tags=["recipients"])
async def list_consents(ref: str, runtime: RuntimeDep, actor: CaseWorker) -> list[ConsentPublic]:
    rows = await service.consents(db=runtime.db, ref=ref, actor=actor)
    return [ConsentPublic.model_validate(r) for r in rows]


@router.get("/audit/personal-data", response_model=Page[AccessRecordPublic], tags=["audit"])
async def personal_data_access_log(
    runtime: RuntimeDep,
    _actor: Annotated[Principal, Depends(require_roles(Role.operator))],
    page: PageDep,
    recipient_ref: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[AccessRecordPublic]:
    """Who read whose unmasked data, when and why (newest first)."""
    rows, total = await service.access_log(
        db=runtime.db, recipient_ref=recipient_ref, limit=page.limit, offset=page.offset
    )
    return Page.of([AccessRecordPublic.model_validate(r) for r in rows], total=total, page=page)


@router.post(
    "/needs", status_code=status.HTTP_201_CREATED, response_model=NeedPublic, tags=["needs"]
)
async def open_need(body: NeedCreate, runtime: RuntimeDep, actor: CaseWorker) -> NeedPublic:
    """Open a need item for a direct service; matching receives `sa.needs.need.opened`."""
    # Concurrent openings share one transaction (group commit); each is answered only
    # after that commit, and one that fails rolls back alone.
    request = service.NeedRequest(body, actor, current_traceparent())
    need = await runtime.group.submit_item(service.open_needs, request)
    return NeedPublic.model_validate(need)


@router.post("/needs/{need_id}/cancel", response_model=NeedPublic, tags=["needs"])
async def cancel_need(
    need_id: str, body: NeedCancel, runtime: RuntimeDep, actor: CaseWorker
) -> NeedPublic:
    """Cancel a need item that is not yet fulfilled; matching receives `need.cancelled`."""
    async with runtime.unit_of_work() as uow:
        need = await service.cancel_need(uow=uow, need_id=need_id, reason=body.reason, actor=actor)
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
    return Page.of([NeedPublic.model_validate(n) for n in rows], total=total, page=page)
