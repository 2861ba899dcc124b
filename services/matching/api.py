"""HTTP routes of the matching service's allocation.

- `POST /allocations/run` (operator, purchaser) {region_scope?, max_share?}: allocate now;
- `GET /matches` (filters, sort, pagination), `GET /matches/{match_id}`;
- `GET /needs` (operator, purchaser): the needs matching holds — `status=unplaced` lists
  those a takeover could not place (临时接管), reported to the purchaser;
- `GET /needs/{need_id}/explanation`: why this provider, or why not;
- `GET /organisations/{organisation_id}/eligibility`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.clock import clock_of
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.matching import rules, service
from services.matching.allocation.plan import binding_constraints
from services.matching.schemas import (
    AllocationResult,
    AllocationRunIn,
    Eligibility,
    Explanation,
    MatchPublic,
    MatchSort,
    MatchState,
    NeedPublic,
    NeedSort,
    NeedStatus,
    PastMatch,
    UnmatchedCode,
    UnmatchedNeed,
)

router = APIRouter()

Allocator = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]
Id = Annotated[str, Query(max_length=36)]
Region = Annotated[str, Query(pattern=r"^[0-9]{2,12}$")]


async def current_time(request: Request) -> datetime:
    """Now, from the app's clock (tests replace `app.state.clock`)."""
    return clock_of(request.app.state)()


Now = Annotated[datetime, Depends(current_time)]


@router.post("/allocations/run", response_model=AllocationResult, tags=["allocations"])
async def run_allocation(
    runtime: RuntimeDep,
    actor: Allocator,
    now: Now,
    body: Annotated[AllocationRunIn | None, Body()] = None,
) -> AllocationResult:
    """Allocate the open needs of the caller's region (or `region_scope` inside it) now:
    the engine maximises priority × fit under every capacity; each match stores why."""
    body = body or AllocationRunIn()
    report = await service.run_allocation(
        runtime=runtime,
        actor=actor,
        region_scope=body.region_scope,
        max_share=body.max_share,
        now=now,
    )
    return AllocationResult(
        run_id=report.run_id,
        region_scope=report.region_scope,
        matched=report.matched,
        unmatched_count=report.unmatched,
        retried=report.retried,
        matches=[MatchPublic.model_validate(m) for m in report.matches],
        unmatched=[
            UnmatchedNeed(need_id=n, reason_code=code, reason=text)
            for n, code, text in report.unmatched_needs
        ],
        truncated=len(report.matches) < report.matched
        or len(report.unmatched_needs) < report.unmatched,
        seconds={k: round(v, 4) for k, v in report.seconds.items()},
    )


@router.get("/matches", response_model=Page[MatchPublic], tags=["matches"])
async def list_matches(
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    page: PageDep,
    need_id: Id | None = None,
    organisation_id: Id | None = None,
    contract_id: Id | None = None,
    resource_id: Id | None = None,
    state: MatchState | None = None,
    region: Region | None = None,
    service_code: Annotated[str | None, Query(max_length=60)] = None,
    run_id: Id | None = None,
    sort: MatchSort = "-created_at",
) -> Page[MatchPublic]:
    """Matches in the caller's region (an organisation sees its own), newest first."""
    rows, total = await service.list_matches(
        db=runtime.db,
        actor=actor,
        need_id=need_id,
        organisation_id=organisation_id,
        contract_id=contract_id,
        resource_id=resource_id,
        state=state,
        region=region,
        service_code=service_code,
        run_id=run_id,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([MatchPublic.model_validate(m) for m in rows], total=total, page=page)


@router.get("/matches/{match_id}", response_model=MatchPublic, tags=["matches"])
async def get_match(match_id: str, runtime: RuntimeDep, actor: CurrentPrincipal) -> MatchPublic:
    match = await service.get_match(db=runtime.db, match_id=match_id, actor=actor)
    return MatchPublic.model_validate(match)


@router.get("/needs", response_model=Page[NeedPublic], tags=["matches"])
async def list_needs(
    runtime: RuntimeDep,
    actor: Allocator,
    page: PageDep,
    status: NeedStatus | None = None,
    unmatched_code: UnmatchedCode | None = None,
    region: Region | None = None,
    service_code: Annotated[str | None, Query(max_length=60)] = None,
    sort: NeedSort = "opened_at",
) -> Page[NeedPublic]:
    """Needs as matching holds them; `status=unplaced`: what a takeover could not place."""
    rows, total = await service.list_needs(
        db=runtime.db,
        actor=actor,
        status=status,
        unmatched_code=unmatched_code,
        region=region,
        service_code=service_code,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([NeedPublic.model_validate(n) for n in rows], total=total, page=page)


@router.get(
    "/organisations/{organisation_id}/eligibility",
    response_model=Eligibility,
    tags=["organisations"],
)
async def get_eligibility(
    organisation_id: str, runtime: RuntimeDep, _actor: CurrentPrincipal
) -> Eligibility:
    view = await service.eligibility(db=runtime.db, organisation_id=organisation_id)
    return Eligibility(
        organisation_id=view.organisation_id,
        status=view.status,
        registered=view.registered,
        eligible=view.registered and view.status == rules.ELIGIBLE_STATUS,
    )


@router.get("/needs/{need_id}/explanation", response_model=Explanation, tags=["matches"])
async def explain_need(need_id: str, runtime: RuntimeDep, actor: Allocator) -> Explanation:
    """Why this provider (score parts and binding constraints) — or, for an unmatched need,
    why not: no_coverage, capacity_exhausted (with the capacity figures), all_ineligible."""
    need, match, history = await service.explain(db=runtime.db, need_id=need_id, actor=actor)
    past = [PastMatch.model_validate(m) for m in history]
    if match is not None:
        public = MatchPublic.model_validate(match)
        return Explanation(
            need_id=need.need_id,
            status=need.status,
            match_id=match.id,
            organisation_id=match.organisation_id,
            contract_id=match.contract_id,
            resource_id=match.resource_id,
            basis=public.basis,
            score=match.score,
            explanation=match.explanation,
            binding_constraints=binding_constraints(match.explanation),
            reason=None,
            history=past,
        )
    return Explanation(
        need_id=need.need_id,
        status=need.status,
        organisation_id=None,
        explanation=None,
        reason=need.last_unmatched_reason or "not yet considered by an allocation run",
        reason_code=need.unmatched_code,
        why_not=need.unmatched_detail,
        history=past,
    )
