"""HTTP routes of evaluation: panels (评标委员会), score sheets, evaluation (综合评分法),
results (评审结果) and awards (中标/成交).

- Purchasers and operators of the tender's region draw the panel, read it and its audit,
  run the evaluation and may exclude an offered award. Outside their region a tender or an
  award reads as absent (404).
- Experts act as themselves: the token's subject is the library expert id; only members of
  the tender's panel read its opened bids and file score sheets.
- The organisation offered an award (token `org_id`) accepts or refuses it.
- The results notice is public: any signed-in caller may read it once it exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.clock import clock_of
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.matching.evaluation import service
from services.matching.evaluation.schemas import (
    AwardDecision,
    AwardOutcome,
    AwardPublic,
    PanelAudit,
    PanelBid,
    PanelBids,
    PanelPublic,
    ResultsPublic,
    ScoreSheetIn,
    ScoreSheetPublic,
    ScoreSheetUpdate,
)

router = APIRouter()

Purchaser = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]
Expert = Annotated[Principal, Depends(require_roles(Role.expert))]
Organisation = Annotated[Principal, Depends(require_roles(Role.organisation))]
AwardReader = Annotated[
    Principal, Depends(require_roles(Role.operator, Role.purchaser, Role.organisation))
]


def current_time(request: Request) -> datetime:
    """Now, from the app's shared clock (`app.state.clock`, libs.common.clock)."""
    return clock_of(request.app.state)()


Now = Annotated[datetime, Depends(current_time)]


# ------------------------------------------------------------------------------------ panels


@router.post(
    "/tenders/{tender_id}/panel",
    status_code=status.HTTP_201_CREATED,
    response_model=PanelPublic,
    tags=["panels"],
)
async def draw_panel(
    tender_id: str, runtime: RuntimeDep, actor: Purchaser, now: Now
) -> PanelPublic:
    """Draw the evaluation panel at random, with recusal (回避); 409 names how many experts
    are needed and how many were found when too few are eligible."""
    async with runtime.unit_of_work() as uow:
        view = await service.draw_panel(uow=uow, tender_id=tender_id, actor=actor, now=now)
    return service.panel_public(view)


@router.get("/tenders/{tender_id}/panel", response_model=PanelPublic, tags=["panels"])
async def get_panel(tender_id: str, runtime: RuntimeDep, actor: Purchaser) -> PanelPublic:
    view = await service.get_panel(db=runtime.db, tender_id=tender_id, actor=actor)
    return service.panel_public(view)


@router.get("/tenders/{tender_id}/panel/audit", response_model=PanelAudit, tags=["panels"])
async def audit_panel(tender_id: str, runtime: RuntimeDep, actor: Purchaser) -> PanelAudit:
    """Re-run the draw from the stored seed and candidates; `reproduced` says it matches."""
    panel, replayed = await service.audit_panel(db=runtime.db, tender_id=tender_id, actor=actor)
    return PanelAudit(
        tender_id=panel.tender_id,
        seed=panel.seed,
        size=panel.size,
        candidates=list(panel.candidates),
        excluded=[str(e["expert_id"]) for e in panel.excluded],
        recorded_members=list(panel.members),
        replayed_members=replayed,
        reproduced=replayed == list(panel.members),
    )


@router.get("/tenders/{tender_id}/panel/bids", response_model=PanelBids, tags=["panels"])
async def panel_bids(tender_id: str, runtime: RuntimeDep, actor: Expert, now: Now) -> PanelBids:
    """The opened bids for panel members, with each bidder's credit score and recipients'
    satisfaction for the past-performance criterion; after the deadline only."""
    tender, rows = await service.panel_bids(
        db=runtime.db, tender_id=tender_id, actor=actor, now=now
    )
    return PanelBids(
        tender_id=tender.id,
        criteria=service.criteria_public(tender),
        items=[
            PanelBid(
                bid_id=r.bid.id,
                organisation_id=r.bid.organisation_id,
                organisation_name=r.organisation.name if r.organisation else None,
                state=r.bid.state,
                price_fen=r.bid.price_fen,
                invalid_reason=r.bid.invalid_reason,
                content=r.bid.content,
                credit_score=r.organisation.credit_score if r.organisation else None,
                credit_grade=r.organisation.credit_grade if r.organisation else None,
                satisfaction=r.organisation.satisfaction if r.organisation else None,
                scored_by_me=r.scored_by_me,
            )
            for r in rows
        ],
    )


# ------------------------------------------------------------------------------ score sheets


@router.post(
    "/tenders/{tender_id}/scores",
    status_code=status.HTTP_201_CREATED,
    response_model=ScoreSheetPublic,
    tags=["panels"],
)
async def submit_scores(
    tender_id: str, body: ScoreSheetIn, runtime: RuntimeDep, actor: Expert, now: Now
) -> ScoreSheetPublic:
    """A panel member's scores of one valid bid, every criterion 0–100; 409 on a second."""
    async with runtime.unit_of_work() as uow:
        sheet = await service.submit_sheet(
            uow=uow, tender_id=tender_id, data=body, actor=actor, now=now
        )
    return service.sheet_public(sheet)


@router.put(
    "/tenders/{tender_id}/scores/{bid_id}", response_model=ScoreSheetPublic, tags=["panels"]
)
async def correct_scores(
    tender_id: str,
    bid_id: str,
    body: ScoreSheetUpdate,
    runtime: RuntimeDep,
    actor: Expert,
    now: Now,
) -> ScoreSheetPublic:
    """Correct one's own sheet; refused (409) once the results are computed."""
    async with runtime.unit_of_work() as uow:
        sheet = await service.correct_sheet(
            uow=uow, tender_id=tender_id, bid_id=bid_id, scores=body.scores, actor=actor, now=now
        )
    return service.sheet_public(sheet)


# --------------------------------------------------------------------------------- results


@router.post("/tenders/{tender_id}/evaluate", response_model=ResultsPublic, tags=["results"])
async def evaluate(
    tender_id: str, runtime: RuntimeDep, actor: Purchaser, now: Now
) -> ResultsPublic:
    """Rank the valid bids (综合评分法) and offer the award to the best-ranked; 409 lists the
    missing score sheets."""
    async with runtime.unit_of_work() as uow:
        await service.evaluate(uow=uow, tender_id=tender_id, actor=actor, now=now)
    return service.results_public(await service.results(db=runtime.db, tender_id=tender_id))


@router.get("/tenders/{tender_id}/results", response_model=ResultsPublic, tags=["results"])
async def get_results(
    tender_id: str, runtime: RuntimeDep, _actor: CurrentPrincipal
) -> ResultsPublic:
    """The results notice: every bidder's per-criterion, price and total scores and rank,
    and the panel's names."""
    return service.results_public(await service.results(db=runtime.db, tender_id=tender_id))


# ----------------------------------------------------------------------------------- awards


@router.get("/tenders/{tender_id}/awards", response_model=Page[AwardPublic], tags=["awards"])
async def list_awards(
    tender_id: str, runtime: RuntimeDep, actor: Purchaser, page: PageDep
) -> Page[AwardPublic]:
    """The succession of offers (递补), in the order made."""
    rows, total = await service.list_awards(
        db=runtime.db, tender_id=tender_id, actor=actor, limit=page.limit, offset=page.offset
    )
    return Page.of([service.award_public(a) for a in rows], total=total, page=page)


@router.get("/awards/{award_id}", response_model=AwardPublic, tags=["awards"])
async def get_award(award_id: str, runtime: RuntimeDep, actor: AwardReader) -> AwardPublic:
    award = await service.get_award(db=runtime.db, award_id=award_id, actor=actor)
    return service.award_public(award)


def _outcome(change: service.AwardChange) -> AwardOutcome:
    return AwardOutcome(
        award=service.award_public(change.award),
        next_award=service.award_public(change.next_award) if change.next_award else None,
        tender_state=change.tender.state,
        tender_state_reason=change.tender.state_reason,
    )


@router.post("/awards/{award_id}/accept", response_model=AwardOutcome, tags=["awards"])
async def accept_award(
    award_id: str, runtime: RuntimeDep, actor: Organisation, now: Now
) -> AwardOutcome:
    """The offered organisation accepts: the tender is awarded. Single source: only after
    the publicity period (公示期)."""
    async with runtime.unit_of_work() as uow:
        change = await service.accept_award(uow=uow, award_id=award_id, actor=actor, now=now)
    return _outcome(change)


@router.post("/awards/{award_id}/refuse", response_model=AwardOutcome, tags=["awards"])
async def refuse_award(
    award_id: str, body: AwardDecision, runtime: RuntimeDep, actor: Organisation, now: Now
) -> AwardOutcome:
    """The offered organisation refuses; the next-ranked gets the offer (or the tender fails)."""
    async with runtime.unit_of_work() as uow:
        change = await service.refuse_award(
            uow=uow, award_id=award_id, reason=body.reason, actor=actor, now=now
        )
    return _outcome(change)


@router.post("/awards/{award_id}/exclude", response_model=AwardOutcome, tags=["awards"])
async def exclude_award(
    award_id: str, body: AwardDecision, runtime: RuntimeDep, actor: Purchaser, now: Now
) -> AwardOutcome:
    """The purchaser excludes the offered organisation, with the reason; the next-ranked gets
    the offer (or the tender fails)."""
    async with runtime.unit_of_work() as uow:
        change = await service.exclude_award(
            uow=uow, award_id=award_id, reason=body.reason, actor=actor, now=now
        )
    return _outcome(change)
