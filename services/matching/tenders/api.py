"""HTTP routes of the matching service: tenders (采购) and sealed bids (密封投标).

- `POST /tenders` (purchaser, operator): draft a tender of a published project;
- `POST /tenders/{id}/publish`: open the bid window (draws invited suppliers, starts the
  single-source publicity); `POST /tenders/{id}/cancel`; `POST /tenders/{id}/open` (开标);
- `GET /tenders`, `GET /tenders/{id}`: the public notice;
- `POST /tenders/{id}/bids`, `PUT|DELETE|GET /tenders/{id}/bids/mine` (organisation);
- `GET /tenders/{id}/bids`: before opening only a count; `GET /tenders/{id}/bids/{bid_id}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.pagination import Page, PageDep
from libs.common.policy.schema import PurchasingMethodCode
from libs.common.service import RuntimeDep
from services.matching.tenders import service
from services.matching.tenders.schemas import (
    BidIn,
    BidMine,
    BidOpened,
    BidsSummary,
    OpeningResult,
    TenderCancel,
    TenderCreate,
    TenderPublic,
)

router = APIRouter(prefix="/tenders", tags=["tenders"])

Purchasing = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]
Bidder = Annotated[Principal, Depends(require_roles(Role.organisation))]


async def current_time(request: Request) -> datetime:
    """Now, from the app's clock (tests replace `app.state.clock`)."""
    return service.clock_of(request.app.state)()


async def bid_seal(runtime: RuntimeDep) -> service.BidSeal:
    return service.seal_of(runtime)


Now = Annotated[datetime, Depends(current_time)]
SealDep = Annotated[service.BidSeal, Depends(bid_seal)]
TenderState = Literal["draft", "bidding", "evaluating", "awarded", "failed", "cancelled"]
TenderSort = Literal["created_at", "-created_at", "bid_deadline", "-bid_deadline"]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TenderPublic)
async def create_tender(
    body: TenderCreate, runtime: RuntimeDep, actor: Purchasing, now: Now
) -> TenderPublic:
    """Draft a tender. Refusals name the field and, for procurement rules, the clause
    (`rules`): bid window, weights and the price band, invitations, method change."""
    async with runtime.unit_of_work() as uow:
        tender = await service.create_tender(uow=uow, data=body, actor=actor, now=now)
    return service.to_public(tender, actor=actor, now=now)


@router.get("", response_model=Page[TenderPublic])
async def list_tenders(
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    page: PageDep,
    now: Now,
    state: TenderState | None = None,
    method: PurchasingMethodCode | None = None,
    project_id: Annotated[str | None, Query(max_length=36)] = None,
    region: Annotated[str | None, Query(pattern=r"^[0-9]{2,12}$")] = None,
    sort: TenderSort = "-created_at",
) -> Page[TenderPublic]:
    """Tenders: purchasers and operators see their region (drafts included); everyone else
    sees published notices anywhere, optionally within `region`."""
    rows, total = await service.list_tenders(
        db=runtime.db,
        actor=actor,
        state=state,
        method=method,
        project_id=project_id,
        region=region,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
    )
    items = [service.to_public(t, actor=actor, now=now) for t in rows]
    return Page.of(items, total=total, page=page)


@router.get("/{tender_id}", response_model=TenderPublic)
async def get_tender(
    tender_id: str, runtime: RuntimeDep, actor: CurrentPrincipal, now: Now
) -> TenderPublic:
    tender = await service.get_tender(db=runtime.db, tender_id=tender_id, actor=actor)
    return service.to_public(tender, actor=actor, now=now)


@router.post("/{tender_id}/publish", response_model=TenderPublic)
async def publish_tender(
    tender_id: str, runtime: RuntimeDep, actor: Purchasing, now: Now
) -> TenderPublic:
    """Publish (发布采购公告) and open the bid window: state `bidding`."""
    async with runtime.unit_of_work() as uow:
        tender = await service.publish_tender(uow=uow, tender_id=tender_id, actor=actor, now=now)
    return service.to_public(tender, actor=actor, now=now)


@router.post("/{tender_id}/cancel", response_model=TenderPublic)
async def cancel_tender(
    tender_id: str, body: TenderCancel, runtime: RuntimeDep, actor: Purchasing, now: Now
) -> TenderPublic:
    async with runtime.unit_of_work() as uow:
        tender = await service.cancel_tender(
            uow=uow, tender_id=tender_id, actor=actor, reason=body.reason, now=now
        )
    return service.to_public(tender, actor=actor, now=now)


@router.post("/{tender_id}/open", response_model=OpeningResult)
async def open_bids(
    tender_id: str, runtime: RuntimeDep, actor: Purchasing, now: Now, seal: SealDep
) -> OpeningResult:
    """Open the bids (开标) at or after the deadline: evaluating, or failed with the clause."""
    async with runtime.unit_of_work() as uow:
        opening = await service.open_bids(
            uow=uow, tender_id=tender_id, actor=actor, seal=seal, now=now
        )
    return OpeningResult(
        tender=service.to_public(opening.tender, actor=actor, now=now),
        valid=opening.valid,
        invalid=opening.invalid,
        rule=opening.rule,
    )


@router.post("/{tender_id}/bids", status_code=status.HTTP_201_CREATED, response_model=BidMine)
async def submit_bid(
    tender_id: str, body: BidIn, runtime: RuntimeDep, actor: Bidder, now: Now, seal: SealDep
) -> BidMine:
    """Submit a sealed bid for the caller's organisation (one per organisation)."""
    async with runtime.unit_of_work() as uow:
        bid = await service.submit_bid(
            uow=uow, tender_id=tender_id, actor=actor, body=body, seal=seal, now=now
        )
    return service.to_mine(bid, seal)


@router.put("/{tender_id}/bids/mine", response_model=BidMine)
async def replace_bid(
    tender_id: str, body: BidIn, runtime: RuntimeDep, actor: Bidder, now: Now, seal: SealDep
) -> BidMine:
    async with runtime.unit_of_work() as uow:
        bid = await service.replace_bid(
            uow=uow, tender_id=tender_id, actor=actor, body=body, seal=seal, now=now
        )
    return service.to_mine(bid, seal)


@router.delete("/{tender_id}/bids/mine", response_model=BidMine)
async def withdraw_bid(
    tender_id: str, runtime: RuntimeDep, actor: Bidder, now: Now, seal: SealDep
) -> BidMine:
    async with runtime.unit_of_work() as uow:
        bid = await service.withdraw_bid(uow=uow, tender_id=tender_id, actor=actor, now=now)
    return service.to_mine(bid, seal)


@router.get("/{tender_id}/bids/mine", response_model=BidMine)
async def my_bid(tender_id: str, runtime: RuntimeDep, actor: Bidder, seal: SealDep) -> BidMine:
    """The caller's own bid, price and content included, at any time."""
    bid = await service.my_bid(db=runtime.db, tender_id=tender_id, actor=actor)
    return service.to_mine(bid, seal)


@router.get("/{tender_id}/bids", response_model=BidsSummary)
async def list_bids(tender_id: str, runtime: RuntimeDep, actor: CurrentPrincipal) -> BidsSummary:
    """Before opening: only how many bids are in. After opening: every opened bid."""
    return await service.bids_of(db=runtime.db, tender_id=tender_id, actor=actor)


@router.get("/{tender_id}/bids/{bid_id}", response_model=BidMine | BidOpened)
async def get_bid(
    tender_id: str, bid_id: str, runtime: RuntimeDep, actor: CurrentPrincipal, seal: SealDep
) -> BidMine | BidOpened:
    """A bid: sealed to everyone but its bidder until opening (403)."""
    return await service.get_bid(
        db=runtime.db, tender_id=tender_id, bid_id=bid_id, actor=actor, seal=seal
    )
