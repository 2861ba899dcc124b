"""HTTP routes of the matching service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.matching import rules, service
from services.matching.schemas import (
    AllocationResult,
    Eligibility,
    Explanation,
    MatchPublic,
    UnmatchedNeed,
)

router = APIRouter()

Allocator = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]


@router.post("/allocations/run", response_model=AllocationResult, tags=["allocations"])
async def run_allocation(runtime: RuntimeDep, actor: Allocator) -> AllocationResult:
    """Assign open needs in the caller's region to eligible providers, now."""
    async with runtime.unit_of_work() as uow:
        run, matches, unassigned = await service.run_allocation(uow=uow, actor=actor)
    return AllocationResult(
        run_id=run.id,
        matched=len(matches),
        matches=[MatchPublic.model_validate(m) for m in matches],
        unmatched=[UnmatchedNeed(need_id=u.need_id, reason=u.reason) for u in unassigned],
    )


@router.get("/matches", response_model=Page[MatchPublic], tags=["matches"])
async def list_matches(
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    page: PageDep,
    need_id: Annotated[str | None, Query(max_length=36)] = None,
    organisation_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[MatchPublic]:
    rows, total = await service.list_matches(
        db=runtime.db,
        actor=actor,
        need_id=need_id,
        organisation_id=organisation_id,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([MatchPublic.model_validate(m) for m in rows], total=total, page=page)


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
    """Why this provider — or, for an unmatched need, why not."""
    need, match = await service.explain(db=runtime.db, need_id=need_id, actor=actor)
    return Explanation(
        need_id=need.need_id,
        status=need.status,
        organisation_id=match.organisation_id if match else None,
        explanation=match.explanation if match else None,
        reason=None
        if match
        else (need.last_unmatched_reason or "not yet considered by an allocation run"),
    )
