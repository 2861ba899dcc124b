"""HTTP routes of purchasing projects (`/projects`, 项目库) and fund ledgers (`/funds`).

Amounts are integer fen. Project responses carry `ETag: "<version>"`; PATCH, approve, publish
and cancel accept `If-Match: "<version>"` and answer 412 when the project has moved on.
A transition the state machine does not allow is 409 with the current state.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status

from libs.common.auth import Principal, Role, require_roles
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.providers.projects import service
from services.providers.projects.models import Project
from services.providers.projects.schemas import (
    AllocationCreate,
    AllocationPublic,
    AllocationRecorded,
    FundingSourceCode,
    LedgerDetail,
    LedgerPublic,
    ProjectCancel,
    ProjectCreate,
    ProjectPublic,
    ProjectState,
    ProjectUpdate,
    TransitionPublic,
)

router = APIRouter(tags=["projects and funds"])

# Purchasers (county bureaus, townships) and platform operators run projects and funds.
Purchasing = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='The project version it was read at, e.g. "3"'),
]
SORT_PATTERN = r"^-?(created_at|updated_at|budget|period_start|title)$"


def _project(project: Project, response: Response) -> ProjectPublic:
    response.headers["ETag"] = f'"{project.version}"'
    return ProjectPublic.model_validate(project)


# ------------------------------------------------------------------------------ funds


@router.post(
    "/funds/allocations",
    status_code=status.HTTP_201_CREATED,
    response_model=AllocationRecorded,
    responses={200: {"description": "Already recorded (same document): nothing changed"}},
)
async def record_allocation(
    body: AllocationCreate, runtime: RuntimeDep, actor: Purchasing, response: Response
) -> AllocationRecorded:
    """Record central or provincial special social-assistance funds for a region and year.

    Idempotent on (region_code, year, source, document): a repeat answers 200 with the
    allocation recorded first; the same key with another amount is 409.
    """
    async with runtime.unit_of_work() as uow:
        allocation, ledger, created = await service.record_allocation(
            uow=uow, data=body, actor=actor
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return AllocationRecorded(
        allocation=AllocationPublic.model_validate(allocation),
        ledger=service.ledger_public(ledger),
        replayed=not created,
    )


@router.get("/funds/{region_code}/{year}", response_model=LedgerDetail)
async def get_ledger(
    runtime: RuntimeDep,
    actor: Purchasing,
    region_code: Annotated[str, Path(pattern=r"^\d{6}(\d{3}){0,2}$")],
    year: Annotated[int, Path(ge=2000, le=2100)],
) -> LedgerDetail:
    """A ledger with its base, cap, reserved and available amounts and its allocations."""
    ledger, allocations = await service.get_ledger(
        db=runtime.db, region_code=region_code, year=year, actor=actor
    )
    return LedgerDetail(
        **service.ledger_public(ledger).model_dump(),
        allocations=[AllocationPublic.model_validate(a) for a in allocations],
    )


@router.get("/funds", response_model=Page[LedgerPublic])
async def list_ledgers(
    runtime: RuntimeDep,
    actor: Purchasing,
    page: PageDep,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> Page[LedgerPublic]:
    """Ledgers in the caller's region (and `region` prefix), by region code then year."""
    rows, total = await service.list_ledgers(
        db=runtime.db, actor=actor, region=region, year=year, limit=page.limit, offset=page.offset
    )
    return Page.of([service.ledger_public(r) for r in rows], total=total, page=page)


# ------------------------------------------------------------------------------ projects


@router.post("/projects", status_code=status.HTTP_201_CREATED, response_model=ProjectPublic)
async def create_project(
    body: ProjectCreate, runtime: RuntimeDep, actor: Purchasing, response: Response
) -> ProjectPublic:
    """Create a draft project; negative-list and off-catalogue items, over-long terms, a fund
    source or method the pack does not allow are refused with their clauses (422)."""
    async with runtime.unit_of_work() as uow:
        project = await service.create_project(uow=uow, data=body, actor=actor)
    response.headers["Location"] = f"/projects/{project.id}"
    return _project(project, response)


@router.get("/projects/{project_id}", response_model=ProjectPublic)
async def get_project(
    project_id: str, runtime: RuntimeDep, actor: Purchasing, response: Response
) -> ProjectPublic:
    project = await service.get_project(db=runtime.db, project_id=project_id, actor=actor)
    return _project(project, response)


@router.get("/projects/{project_id}/history", response_model=list[TransitionPublic])
async def project_history(
    project_id: str, runtime: RuntimeDep, actor: Purchasing
) -> list[TransitionPublic]:
    """Every state change: who (or which event) moved the project, when and why."""
    rows = await service.project_history(db=runtime.db, project_id=project_id, actor=actor)
    return [TransitionPublic.model_validate(r) for r in rows]


@router.get("/projects", response_model=Page[ProjectPublic])
async def list_projects(
    runtime: RuntimeDep,
    actor: Purchasing,
    page: PageDep,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
    state: ProjectState | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="Budget year")] = None,
    service_code: Annotated[
        str | None, Query(alias="service", pattern=r"^[a-z][a-z0-9_]{0,59}$")
    ] = None,
    fund_source: FundingSourceCode | None = None,
    sort: Annotated[
        str, Query(pattern=SORT_PATTERN, description="Key, `-key` for descending; id breaks ties")
    ] = "-created_at",
) -> Page[ProjectPublic]:
    rows, total = await service.list_projects(
        db=runtime.db,
        actor=actor,
        region=region,
        state=state,
        year=year,
        service=service_code,
        fund_source=fund_source,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([ProjectPublic.model_validate(p) for p in rows], total=total, page=page)


@router.patch("/projects/{project_id}", response_model=ProjectPublic)
async def update_project(
    project_id: str,
    body: ProjectUpdate,
    runtime: RuntimeDep,
    actor: Purchasing,
    response: Response,
    if_match: IfMatch = None,
) -> ProjectPublic:
    """Change a draft (409 once approved; 412 on a stale If-Match)."""
    expected = service.parse_if_match(if_match)
    async with runtime.unit_of_work() as uow:
        project = await service.update_project(
            uow=uow, project_id=project_id, changes=body, actor=actor, if_match=expected
        )
    return _project(project, response)


@router.post("/projects/{project_id}/approve", response_model=ProjectPublic)
async def approve_project(
    project_id: str,
    runtime: RuntimeDep,
    actor: Purchasing,
    response: Response,
    if_match: IfMatch = None,
) -> ProjectPublic:
    """Approve a draft and reserve its budget in the ledger; 422 with the budget-cap clause
    and the figures when it does not fit (the ledger stays unchanged)."""
    expected = service.parse_if_match(if_match)
    async with runtime.unit_of_work() as uow:
        project = await service.approve_project(
            uow=uow, project_id=project_id, actor=actor, if_match=expected
        )
    return _project(project, response)


@router.post("/projects/{project_id}/publish", response_model=ProjectPublic)
async def publish_project(
    project_id: str,
    runtime: RuntimeDep,
    actor: Purchasing,
    response: Response,
    if_match: IfMatch = None,
) -> ProjectPublic:
    """Publish an approved project: `sa.providers.project.published` opens a tender."""
    expected = service.parse_if_match(if_match)
    async with runtime.unit_of_work() as uow:
        project = await service.publish_project(
            uow=uow, project_id=project_id, actor=actor, if_match=expected
        )
    return _project(project, response)


@router.post("/projects/{project_id}/cancel", response_model=ProjectPublic)
async def cancel_project(
    project_id: str,
    body: ProjectCancel,
    runtime: RuntimeDep,
    actor: Purchasing,
    response: Response,
    if_match: IfMatch = None,
) -> ProjectPublic:
    """Cancel before award (reason required); a reserved budget goes back to the ledger."""
    expected = service.parse_if_match(if_match)
    async with runtime.unit_of_work() as uow:
        project = await service.cancel_project(
            uow=uow, project_id=project_id, reason=body.reason, actor=actor, if_match=expected
        )
    return _project(project, response)
