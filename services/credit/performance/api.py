"""HTTP routes of admission overrides, evaluations, surveys and credit scores.

"Now" comes from the app's clock (`app.state.clock`, else the runtime's, else the system
clock), so tests step over months and windows without sleeping.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from libs.common.auth import Principal, Role, require_roles
from libs.common.clock import Clock, clock_of
from libs.common.errors import invalid
from libs.common.feed import FeedPage, SinceQuery
from libs.common.pagination import Page, PageDep
from libs.common.ratelimit import RateLimited
from libs.common.service import RuntimeDep
from services.credit.performance import service
from services.credit.performance.schemas import (
    EvaluationCreate,
    EvaluationPublic,
    EvaluationPublished,
    EvaluationResult,
    EvaluationSort,
    EvaluationState,
    OverrideCreate,
    OverrideDecision,
    OverridePublic,
    PartScore,
    RecomputeReport,
    RecomputeRequest,
    ScoreDetail,
    ScorePublic,
    ScoreSort,
    SurveyCreate,
    SurveyPublic,
)
from services.credit.public import api as public_api
from services.credit.public.models import EVALUATIONS

router = APIRouter()

Operator = Annotated[Principal, Depends(require_roles(Role.operator))]
Official = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]
Purchaser = Annotated[Principal, Depends(require_roles(Role.purchaser))]
Evaluator = Annotated[Principal, Depends(require_roles(Role.evaluator))]
EvaluationReader = Annotated[
    Principal,
    Depends(require_roles(Role.operator, Role.purchaser, Role.evaluator, Role.organisation)),
]
ScoreReader = Annotated[
    Principal, Depends(require_roles(Role.operator, Role.purchaser, Role.organisation))
]
Region = Annotated[str | None, Query(pattern=r"^\d{1,12}$")]


async def _now(request: Request) -> datetime:
    state = request.app.state
    clock: Clock | None = getattr(state, "clock", None)
    return (clock or clock_of(state.runtime))()


Now = Annotated[datetime, Depends(_now)]


def _override_public(outcome: service.OverrideOutcome) -> OverridePublic:
    out = OverridePublic.model_validate(outcome.override)
    out.status = outcome.status
    out.decision_review_id = outcome.review.id if outcome.review is not None else None
    return out


# ------------------------------------------------------------------------------ overrides


@router.post(
    "/admissions/{organisation_id}/overrides",
    status_code=status.HTTP_201_CREATED,
    response_model=OverridePublic,
    tags=["admissions"],
)
async def propose_override(
    organisation_id: str, body: OverrideCreate, runtime: RuntimeDep, actor: Operator, now: Now
) -> OverridePublic:
    """Propose to override the admission outcome (reason ≥ 20 characters). Takes effect only
    when a different operator confirms it (四眼原则); 422 citing the ban when it would admit
    a banned organisation."""
    async with runtime.unit_of_work() as uow:
        override = await service.propose_override(
            uow=uow, organisation_id=organisation_id, data=body, actor=actor, now=now
        )
    return OverridePublic.model_validate(override)


@router.get(
    "/admissions/{organisation_id}/overrides",
    response_model=Page[OverridePublic],
    tags=["admissions"],
)
async def list_overrides(
    organisation_id: str, runtime: RuntimeDep, actor: Official, page: PageDep
) -> Page[OverridePublic]:
    """Every override of an organisation's admission, newest first, with both operators."""
    rows, total = await service.list_overrides(
        db=runtime.db,
        organisation_id=organisation_id,
        actor=actor,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([OverridePublic.model_validate(r) for r in rows], total=total, page=page)


@router.get("/overrides/{override_id}", response_model=OverridePublic, tags=["admissions"])
async def get_override(override_id: str, runtime: RuntimeDep, actor: Official) -> OverridePublic:
    return OverridePublic.model_validate(
        await service.get_override(db=runtime.db, override_id=override_id, actor=actor)
    )


@router.post("/overrides/{override_id}/confirm", response_model=OverridePublic, tags=["admissions"])
async def confirm_override(
    override_id: str,
    runtime: RuntimeDep,
    actor: Operator,
    now: Now,
    body: OverrideDecision | None = None,
) -> OverridePublic:
    """A second operator confirms: the outcome takes effect and is announced
    (`sa.credit.organisation.admitted|rejected`). The proposer themself: 403."""
    async with runtime.unit_of_work() as uow:
        outcome = await service.decide_override(
            uow=uow,
            override_id=override_id,
            confirm=True,
            note=body.note if body else None,
            actor=actor,
            now=now,
        )
    return _override_public(outcome)


@router.post("/overrides/{override_id}/reject", response_model=OverridePublic, tags=["admissions"])
async def reject_override(
    override_id: str,
    runtime: RuntimeDep,
    actor: Operator,
    now: Now,
    body: OverrideDecision | None = None,
) -> OverridePublic:
    """A second operator rejects the proposal; nothing changes. The proposer themself: 403."""
    async with runtime.unit_of_work() as uow:
        outcome = await service.decide_override(
            uow=uow,
            override_id=override_id,
            confirm=False,
            note=body.note if body else None,
            actor=actor,
            now=now,
        )
    return _override_public(outcome)


# ------------------------------------------------------------------------------ evaluations


@router.post(
    "/evaluations",
    status_code=status.HTTP_201_CREATED,
    response_model=EvaluationPublic,
    tags=["evaluations"],
)
async def open_evaluation(
    body: EvaluationCreate, runtime: RuntimeDep, actor: Official, now: Now
) -> EvaluationPublic:
    """Open the evaluation of a contract period (one per contract and period: 409)."""
    async with runtime.unit_of_work() as uow:
        return await service.open_evaluation(uow=uow, data=body, actor=actor, now=now)


@router.get("/evaluations", response_model=Page[EvaluationPublic], tags=["evaluations"])
async def list_evaluations(
    runtime: RuntimeDep,
    actor: EvaluationReader,
    page: PageDep,
    organisation_id: Annotated[str | None, Query(max_length=36)] = None,
    contract_id: Annotated[str | None, Query(max_length=36)] = None,
    period: Annotated[str | None, Query(max_length=10)] = None,
    state: EvaluationState | None = None,
    result: EvaluationResult | None = None,
    region: Region = None,
    sort: EvaluationSort = "-created_at",
) -> Page[EvaluationPublic]:
    """Evaluations in the caller's region (an organisation: its own)."""
    items, total = await service.list_evaluations(
        db=runtime.db,
        actor=actor,
        organisation_id=organisation_id,
        contract_id=contract_id,
        period=period,
        state=state,
        result=result,
        region=region,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of(items, total=total, page=page)


@router.get("/evaluations/{evaluation_id}", response_model=EvaluationPublic, tags=["evaluations"])
async def get_evaluation(
    evaluation_id: str, runtime: RuntimeDep, actor: EvaluationReader
) -> EvaluationPublic:
    return await service.get_evaluation(db=runtime.db, evaluation_id=evaluation_id, actor=actor)


@router.put(
    "/evaluations/{evaluation_id}/purchaser-score",
    response_model=EvaluationPublic,
    tags=["evaluations"],
)
async def set_purchaser_score(
    evaluation_id: str, body: PartScore, runtime: RuntimeDep, actor: Purchaser
) -> EvaluationPublic:
    """The purchaser's score (购买主体评价), 0–100, while the evaluation is open."""
    async with runtime.unit_of_work() as uow:
        return await service.set_part_score(
            uow=uow, evaluation_id=evaluation_id, part="purchaser", data=body, actor=actor
        )


@router.put(
    "/evaluations/{evaluation_id}/third-party-score",
    response_model=EvaluationPublic,
    tags=["evaluations"],
)
async def set_third_party_score(
    evaluation_id: str, body: PartScore, runtime: RuntimeDep, actor: Evaluator
) -> EvaluationPublic:
    """The third-party evaluator's score (第三方评价), 0–100, while the evaluation is open."""
    async with runtime.unit_of_work() as uow:
        return await service.set_part_score(
            uow=uow, evaluation_id=evaluation_id, part="third_party", data=body, actor=actor
        )


@router.post(
    "/evaluations/{evaluation_id}/survey-responses",
    status_code=status.HTTP_201_CREATED,
    response_model=SurveyPublic,
    tags=["evaluations"],
)
async def add_survey_response(
    evaluation_id: str, body: SurveyCreate, runtime: RuntimeDep, actor: Official, now: Now
) -> SurveyPublic:
    """Record a recipient's satisfaction answer: 422 (naming `recipient_ref`) unless the
    recipient was served under the contract; 409 for a second answer."""
    async with runtime.unit_of_work() as uow:
        response = await service.add_survey_response(
            uow=uow, evaluation_id=evaluation_id, data=body, actor=actor, now=now
        )
    return SurveyPublic.model_validate(response)


@router.post(
    "/evaluations/{evaluation_id}/publish",
    response_model=EvaluationPublic,
    tags=["evaluations"],
)
async def publish_evaluation(
    evaluation_id: str, runtime: RuntimeDep, actor: Official, now: Now
) -> EvaluationPublic:
    """Publish once the purchaser's score, the third party's and enough answers exist (409
    naming what is missing). Emits `sa.credit.evaluation.recorded`; unqualified also orders
    rectification and, when repeated, records a violation."""
    async with runtime.unit_of_work() as uow:
        done = await service.publish_evaluation(
            uow=uow, evaluation_id=evaluation_id, actor=actor, now=now
        )
    out = service.evaluation_to_public(done.evaluation, done.pack)
    out.rectification_ordered = done.rectification_ordered
    out.violation_id = done.violation.id if done.violation is not None else None
    return out


@router.get(
    "/public/evaluations",
    response_model=Page[EvaluationPublished] | FeedPage[EvaluationPublished],
    tags=["public"],
)
async def public_evaluations(
    runtime: RuntimeDep,
    _limited: RateLimited,
    page: PageDep,
    organisation_id: Annotated[str | None, Query(max_length=36)] = None,
    region: Region = None,
    period: Annotated[str | None, Query(max_length=10)] = None,
    since: SinceQuery = None,
) -> Page[EvaluationPublished] | FeedPage[EvaluationPublished]:
    """Published evaluations (评价结果向社会公开): no login, no recipient refs.
    `?since=<cursor>` follows the changes instead (services/credit/public)."""
    if since is not None:
        return await public_api.feed(
            runtime, EVALUATIONS, EvaluationPublished, since, page.limit, region=region
        )
    items, total = await service.public_evaluations(
        db=runtime.db,
        organisation_id=organisation_id,
        region=region,
        period=period,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of(items, total=total, page=page)


# ------------------------------------------------------------------------------ scores


@router.get("/scores", response_model=Page[ScorePublic], tags=["scores"])
async def list_scores(
    runtime: RuntimeDep,
    actor: ScoreReader,
    page: PageDep,
    grade: Annotated[str | None, Query(max_length=10)] = None,
    region: Region = None,
    min_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    sort: ScoreSort = "-score",
) -> Page[ScorePublic]:
    """Current scores and grades in the caller's region (an organisation: its own)."""
    rows, total = await service.list_scores(
        db=runtime.db,
        actor=actor,
        grade=grade,
        region=region,
        min_score=min_score,
        max_score=max_score,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([ScorePublic.model_validate(r) for r in rows], total=total, page=page)


@router.get("/scores/{organisation_id}", response_model=ScoreDetail, tags=["scores"])
async def get_score(
    organisation_id: str, runtime: RuntimeDep, actor: ScoreReader, now: Now
) -> ScoreDetail:
    """The score and grade with every change explained (reason, cause, parts)."""
    return await service.score_detail(
        db=runtime.db, organisation_id=organisation_id, actor=actor, now=now
    )


@router.post("/scores/recompute", response_model=RecomputeReport, tags=["scores"])
async def recompute_scores(
    runtime: RuntimeDep, actor: Operator, now: Now, body: RecomputeRequest | None = None
) -> RecomputeReport:
    """Recompute every score in the operator's region (or a sub-region), in batches, with a
    progress log; changed scores are recorded and announced like any other change."""
    region = (body.region if body and body.region else "") or actor.region
    if not region.startswith(actor.region):
        raise invalid("body.region", f"outside your region {actor.region!r}")
    return await service.recompute_all(
        db=runtime.db,
        uow_factory=runtime.unit_of_work,
        now=now,
        region=region,
        batch_size=body.batch_size if body else 1000,
        reason=f"full recompute by {actor.subject}",
    )
