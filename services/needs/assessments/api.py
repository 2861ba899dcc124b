"""HTTP routes of assessments."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from libs.common.auth import Principal, Role, require_roles
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.needs.assessments import service
from services.needs.assessments.schemas import AssessmentCreate, AssessmentPublic

router = APIRouter(prefix="/assessments", tags=["assessments"])

Assessor = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AssessmentPublic)
async def record_assessment(
    body: AssessmentCreate, runtime: RuntimeDep, actor: Assessor
) -> AssessmentPublic:
    """Record an assessment; each need found opens a need item (`sa.needs.need.opened`)."""
    async with runtime.unit_of_work() as uow:
        assessment = await service.record_assessment(uow=uow, data=body, actor=actor)
    return AssessmentPublic.model_validate(assessment)


@router.get("/{assessment_id}", response_model=AssessmentPublic)
async def get_assessment(
    assessment_id: str, runtime: RuntimeDep, actor: Assessor
) -> AssessmentPublic:
    return AssessmentPublic.model_validate(
        await service.get_assessment(db=runtime.db, assessment_id=assessment_id, actor=actor)
    )


@router.get("", response_model=Page[AssessmentPublic])
async def list_assessments(
    runtime: RuntimeDep,
    actor: Assessor,
    page: PageDep,
    recipient_ref: Annotated[str | None, Query(max_length=36)] = None,
    due_before: Annotated[date | None, Query(description="Reassessments due on or before")] = None,
) -> Page[AssessmentPublic]:
    rows, total = await service.list_assessments(
        db=runtime.db,
        actor=actor,
        recipient_ref=recipient_ref,
        due_before=due_before,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([AssessmentPublic.model_validate(a) for a in rows], total=total, page=page)
