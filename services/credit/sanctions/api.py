"""HTTP routes of violations, sanctions, the public dishonesty list, appeals and repair.

"Now" comes from the app's clock (`app.state.clock`, else the runtime's, else the system
clock), so tests step over response windows, appeal windows and ban periods without sleeping.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from libs.common.auth import Principal, Role, require_roles
from libs.common.clock import Clock, clock_of
from libs.common.feed import FeedPage, SinceQuery
from libs.common.pagination import Page, PageDep
from libs.common.ratelimit import RateLimited
from libs.common.service import RuntimeDep
from services.credit.public import api as public_api
from services.credit.public.models import DISHONESTY
from services.credit.sanctions import service
from services.credit.sanctions.rules import Severity
from services.credit.sanctions.schemas import (
    AppealCreate,
    AppealDecision,
    AppealPublic,
    BlacklistCreate,
    BlacklistPublic,
    CreditHistory,
    DecisionCreate,
    DecisionResult,
    DishonestyEntry,
    EntryState,
    RepairCreate,
    RepairDecision,
    RepairPublic,
    SanctionPublic,
    ViolationCreate,
    ViolationKind,
    ViolationPublic,
    ViolationResponse,
    ViolationSort,
    ViolationState,
)

router = APIRouter()

Operator = Annotated[Principal, Depends(require_roles(Role.operator))]
# Violations are reported by purchasers (who manage the contract) and operators.
Reporter = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]
# Officials of the region, and the organisation about itself.
Reader = Annotated[
    Principal, Depends(require_roles(Role.operator, Role.purchaser, Role.organisation))
]
Organisation = Annotated[Principal, Depends(require_roles(Role.organisation))]


async def _now(request: Request) -> datetime:
    state = request.app.state
    clock: Clock | None = getattr(state, "clock", None)
    return (clock or clock_of(state.runtime))()


Now = Annotated[datetime, Depends(_now)]


# ------------------------------------------------------------------------------ violations


@router.post(
    "/violations",
    status_code=status.HTTP_201_CREATED,
    response_model=ViolationPublic,
    tags=["violations"],
)
async def record_violation(
    body: ViolationCreate, runtime: RuntimeDep, actor: Reporter, now: Now
) -> ViolationPublic:
    """Record a violation with evidence; the organisation is notified and may respond for
    the pack's working days (`response_due`). 404 outside the caller's region."""
    async with runtime.unit_of_work() as uow:
        return await service.record_violation(uow=uow, data=body, actor=actor, now=now)


@router.get("/violations", response_model=Page[ViolationPublic], tags=["violations"])
async def list_violations(
    runtime: RuntimeDep,
    actor: Reader,
    page: PageDep,
    now: Now,
    organisation_id: Annotated[str | None, Query(max_length=36)] = None,
    contract_id: Annotated[str | None, Query(max_length=36)] = None,
    state: ViolationState | None = None,
    kind: ViolationKind | None = None,
    severity: Severity | None = None,
    sort: ViolationSort = "-recorded_at",
) -> Page[ViolationPublic]:
    """Violations in the caller's region (an organisation: its own)."""
    items, total = await service.list_violations(
        db=runtime.db,
        actor=actor,
        organisation_id=organisation_id,
        contract_id=contract_id,
        state=state,
        kind=kind,
        severity=severity,
        sort=sort,
        today=service.china_day(now),
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of(items, total=total, page=page)


@router.get("/violations/{violation_id}", response_model=ViolationPublic, tags=["violations"])
async def get_violation(
    violation_id: str, runtime: RuntimeDep, actor: Reader, now: Now
) -> ViolationPublic:
    return await service.get_violation(
        db=runtime.db, violation_id=violation_id, actor=actor, today=service.china_day(now)
    )


@router.post(
    "/violations/{violation_id}/response", response_model=ViolationPublic, tags=["violations"]
)
async def respond_to_violation(
    violation_id: str,
    body: ViolationResponse,
    runtime: RuntimeDep,
    actor: Organisation,
    now: Now,
) -> ViolationPublic:
    """The organisation's statement and defence (陈述申辩), up to and including
    `response_due`; 409 citing the window after it."""
    async with runtime.unit_of_work() as uow:
        return await service.respond(
            uow=uow, violation_id=violation_id, data=body, actor=actor, now=now
        )


@router.post(
    "/violations/{violation_id}/decision", response_model=DecisionResult, tags=["violations"]
)
async def decide_violation(
    violation_id: str, body: DecisionCreate, runtime: RuntimeDep, actor: Operator, now: Now
) -> DecisionResult:
    """Decide: warning, rectification (with `deadline`), suspension (`months`), exit,
    blacklist (ban by severity, 政府采购法 第七十七条) or dismiss. 409 citing the response
    window before `response_due` unless the organisation has responded."""
    async with runtime.unit_of_work() as uow:
        return await service.decide(
            uow=uow, violation_id=violation_id, data=body, actor=actor, now=now
        )


# ------------------------------------------------------------------------------ sanctions


@router.get("/sanctions/{sanction_id}", response_model=SanctionPublic, tags=["sanctions"])
async def get_sanction(sanction_id: str, runtime: RuntimeDep, actor: Reader) -> SanctionPublic:
    sanction, pack = await service.get_sanction(db=runtime.db, sanction_id=sanction_id, actor=actor)
    return service.sanction_to_public(sanction, pack)


@router.post(
    "/sanctions/{sanction_id}/appeals",
    status_code=status.HTTP_201_CREATED,
    response_model=AppealPublic,
    tags=["appeals"],
)
async def file_appeal(
    sanction_id: str, body: AppealCreate, runtime: RuntimeDep, actor: Organisation, now: Now
) -> AppealPublic:
    """Appeal (申诉) within the pack's working days of the decision; 409 citing the window
    after it. One appeal per sanction."""
    async with runtime.unit_of_work() as uow:
        appeal = await service.file_appeal(
            uow=uow, sanction_id=sanction_id, data=body, actor=actor, now=now
        )
    return AppealPublic.model_validate(appeal)


@router.get("/appeals/{appeal_id}", response_model=AppealPublic, tags=["appeals"])
async def get_appeal(appeal_id: str, runtime: RuntimeDep, actor: Reader) -> AppealPublic:
    appeal = await service.get_appeal(db=runtime.db, appeal_id=appeal_id, actor=actor)
    return AppealPublic.model_validate(appeal)


@router.post("/appeals/{appeal_id}/decision", response_model=AppealPublic, tags=["appeals"])
async def decide_appeal(
    appeal_id: str, body: AppealDecision, runtime: RuntimeDep, actor: Operator, now: Now
) -> AppealPublic:
    """Decide an appeal; 403 for the operator who decided the sanction (回避). Upheld: the
    sanction is overturned, its listing leaves the public list, the status is restored."""
    async with runtime.unit_of_work() as uow:
        appeal = await service.decide_appeal(
            uow=uow, appeal_id=appeal_id, data=body, actor=actor, now=now
        )
    return AppealPublic.model_validate(appeal)


# ------------------------------------------------------------------------------ blacklist


@router.post(
    "/blacklist",
    status_code=status.HTTP_201_CREATED,
    response_model=BlacklistPublic,
    tags=["blacklist"],
)
async def blacklist_organisation(
    body: BlacklistCreate, runtime: RuntimeDep, actor: Operator, now: Now
) -> BlacklistPublic:
    """Record a ban decided by an authority outside the platform's violation procedure, for
    the pack's period by severity (政府采购法 第七十七条). Bans decided here go through
    `POST /violations/{id}/decision`."""
    async with runtime.unit_of_work() as uow:
        return await service.blacklist_directly(uow=uow, data=body, actor=actor, now=now)


@router.get("/blacklist", response_model=Page[BlacklistPublic], tags=["blacklist"])
async def list_blacklist(
    runtime: RuntimeDep,
    actor: Reader,
    page: PageDep,
    now: Now,
    state: EntryState | None = None,
    organisation_id: Annotated[str | None, Query(max_length=36)] = None,
    in_force: Annotated[bool, Query(description="Only listings in force today")] = False,
) -> Page[BlacklistPublic]:
    """Blacklist entries of the caller's region in every state, with reasons (login needed:
    reasons may name people). The public sees `/public/dishonesty-list`."""
    items, total = await service.list_blacklist(
        db=runtime.db,
        actor=actor,
        state=state,
        in_force_on=service.china_day(now) if in_force else None,
        organisation_id=organisation_id,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of(items, total=total, page=page)


@router.post(
    "/blacklist/{entry_id}/repairs",
    status_code=status.HTTP_201_CREATED,
    response_model=RepairPublic,
    tags=["repairs"],
)
async def apply_for_repair(
    entry_id: str, body: RepairCreate, runtime: RuntimeDep, actor: Organisation, now: Now
) -> RepairPublic:
    """Apply for credit repair (信用修复); 409 citing the pack before the minimum publication
    period for the listing's severity has passed."""
    async with runtime.unit_of_work() as uow:
        repair = await service.apply_for_repair(
            uow=uow, entry_id=entry_id, data=body, actor=actor, now=now
        )
    return RepairPublic.model_validate(repair)


@router.get("/repairs/{repair_id}", response_model=RepairPublic, tags=["repairs"])
async def get_repair(repair_id: str, runtime: RuntimeDep, actor: Reader) -> RepairPublic:
    repair = await service.get_repair(db=runtime.db, repair_id=repair_id, actor=actor)
    return RepairPublic.model_validate(repair)


@router.post("/repairs/{repair_id}/decision", response_model=RepairPublic, tags=["repairs"])
async def decide_repair(
    repair_id: str, body: RepairDecision, runtime: RuntimeDep, actor: Operator, now: Now
) -> RepairPublic:
    """Approve (the listing is lifted early, the organisation reinstated) or refuse."""
    async with runtime.unit_of_work() as uow:
        repair = await service.decide_repair(
            uow=uow, repair_id=repair_id, data=body, actor=actor, now=now
        )
    return RepairPublic.model_validate(repair)


# ------------------------------------------------------------------------------ public


@router.get(
    "/public/dishonesty-list",
    response_model=Page[DishonestyEntry] | FeedPage[DishonestyEntry],
    tags=["public"],
)
async def dishonesty_list(
    runtime: RuntimeDep,
    _limited: RateLimited,
    page: PageDep,
    now: Now,
    uscc: Annotated[
        str | None, Query(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$", description="Credit code")
    ] = None,
    since: SinceQuery = None,
) -> Page[DishonestyEntry] | FeedPage[DishonestyEntry]:
    """The public dishonesty list (失信名单公示), no login: organisations only — name, credit
    code, violation, legal basis, sanction, period and deciding authority. A listing shows
    from `starts_on` through `last_day`; on `ends_on` it is gone, whether or not the expiry
    job has run. `?since=<cursor>` follows the changes instead (services/credit/public)."""
    if since is not None:
        return await public_api.feed(runtime, DISHONESTY, DishonestyEntry, since, page.limit)
    rows, total = await service.public_list(
        db=runtime.db,
        today=service.china_day(now),
        uscc=uscc,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([service.dishonesty_entry(e) for e in rows], total=total, page=page)


# ------------------------------------------------------------------------------ history


@router.get(
    "/organisations/{organisation_id}/credit-history",
    response_model=CreditHistory,
    tags=["sanctions"],
)
async def credit_history(
    organisation_id: str, runtime: RuntimeDep, actor: Reader, now: Now
) -> CreditHistory:
    """Violations, responses, sanctions, listings, appeals and repairs, oldest first."""
    return await service.credit_history(
        db=runtime.db, organisation_id=organisation_id, actor=actor, now=now
    )
