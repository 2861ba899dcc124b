"""Public routes of the market (信息公开): no login, rate-limited per client address.

Each list is paginated (`limit`, `offset`, newest publication first) and has a change feed:
`?since=<cursor>` (empty to start) returns what changed after the cursor in order of
modification, with the `next_cursor` to ask with next; a follower that keeps asking never
misses a change (libs.common.feed).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel

from libs.common.feed import FeedPage, SinceQuery, decode_cursor, feed_page
from libs.common.pagination import Page, PageDep
from libs.common.ratelimit import RateLimited
from libs.common.service import RuntimeDep
from services.matching.public import service
from services.matching.public.models import ACCEPTANCES, CONTRACTS, RESULTS, TENDERS
from services.matching.public.schemas import (
    AcceptanceNotice,
    ContractNotice,
    RegionQuery,
    ResultsNotice,
    TenderNotice,
)

router = APIRouter(prefix="/public", tags=["public"])

M = TypeVar("M", bound=BaseModel)

TenderQuery = Annotated[str | None, Query(max_length=36, description="Only this tender's")]
StateQuery = Annotated[str | None, Query(max_length=20, pattern=r"^[a-z_]+$")]


async def _serve(
    runtime: Any,
    model: type[M],
    *,
    feed: str,
    page: Any,
    since: str | None,
    region: str | None,
    state: str | None = None,
    tender_id: str | None = None,
) -> Page[M] | FeedPage[M]:
    if since is not None:
        after = decode_cursor(since)
        entries, more = await service.read_feed(
            runtime.db,
            feed=feed,
            after=after,
            limit=page.limit,
            region=region,
            group_key=tender_id,
        )
        return FeedPage[model].model_validate(feed_page(entries, after=after, has_more=more))  # type: ignore[valid-type]
    rows, total = await service.list_feed(
        runtime.db,
        feed=feed,
        limit=page.limit,
        offset=page.offset,
        region=region,
        state=state,
        group_key=tender_id,
    )
    items = [model.model_validate(r.document) for r in rows]
    return Page[model].of(items, total=total, page=page)  # type: ignore[valid-type]


@router.get("/tenders", response_model=Page[TenderNotice] | FeedPage[TenderNotice])
async def public_tenders(
    runtime: RuntimeDep,
    _limited: RateLimited,
    page: PageDep,
    since: SinceQuery = None,
    region: RegionQuery = None,
    state: StateQuery = None,
) -> Page[TenderNotice] | FeedPage[TenderNotice]:
    """Tender notices (采购公告) from publication on, with their outcome (state)."""
    return await _serve(
        runtime, TenderNotice, feed=TENDERS, page=page, since=since, region=region, state=state
    )


@router.get("/results", response_model=Page[ResultsNotice] | FeedPage[ResultsNotice])
async def public_results(
    runtime: RuntimeDep,
    _limited: RateLimited,
    page: PageDep,
    since: SinceQuery = None,
    region: RegionQuery = None,
    tender_id: TenderQuery = None,
) -> Page[ResultsNotice] | FeedPage[ResultsNotice]:
    """Results notices (评审结果公告): every bidder's per-criterion, price and total scores,
    the panel's names, and the awards."""
    return await _serve(
        runtime,
        ResultsNotice,
        feed=RESULTS,
        page=page,
        since=since,
        region=region,
        tender_id=tender_id,
    )


@router.get("/contracts", response_model=Page[ContractNotice] | FeedPage[ContractNotice])
async def public_contracts(
    runtime: RuntimeDep,
    _limited: RateLimited,
    page: PageDep,
    since: SinceQuery = None,
    region: RegionQuery = None,
    state: StateQuery = None,
    tender_id: TenderQuery = None,
) -> Page[ContractNotice] | FeedPage[ContractNotice]:
    """Signed contracts (合同公告) and what became of them."""
    return await _serve(
        runtime,
        ContractNotice,
        feed=CONTRACTS,
        page=page,
        since=since,
        region=region,
        state=state,
        tender_id=tender_id,
    )


@router.get("/acceptances", response_model=Page[AcceptanceNotice] | FeedPage[AcceptanceNotice])
async def public_acceptances(
    runtime: RuntimeDep,
    _limited: RateLimited,
    page: PageDep,
    since: SinceQuery = None,
    region: RegionQuery = None,
    tender_id: TenderQuery = None,
) -> Page[AcceptanceNotice] | FeedPage[AcceptanceNotice]:
    """Acceptance results (履约验收结果): result and counts, nothing about recipients."""
    return await _serve(
        runtime,
        AcceptanceNotice,
        feed=ACCEPTANCES,
        page=page,
        since=since,
        region=region,
        tender_id=tender_id,
    )
