"""GET /statistics: daily per-region figures, for ministries, operators and purchasers."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from libs.common.auth import Principal, Role, require_roles
from libs.common.errors import invalid
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.matching.statistics import service
from services.matching.statistics.schemas import DailyStatistics

router = APIRouter(tags=["statistics"])

Reader = Annotated[Principal, Depends(require_roles(Role.ministry, Role.operator, Role.purchaser))]


@router.get("/statistics", response_model=Page[DailyStatistics])
async def statistics(
    runtime: RuntimeDep,
    actor: Reader,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{2}([0-9]{2}([0-9]{2})?)?$", description="Province, city or county"),
    ] = None,
    day_from: Annotated[date | None, Query(alias="from")] = None,
    day_to: Annotated[date | None, Query(alias="to")] = None,
) -> Page[DailyStatistics]:
    """Daily figures of one region (or of every region in yours), by day then region.

    A region outside the caller's is not found (404), like any record there.
    """
    if region is not None:
        actor.require_region(region)
    if day_from is not None and day_to is not None and day_from > day_to:
        raise invalid("query.from", "after `to`")
    rows, total = await service.list_daily(
        runtime.db,
        region=region,
        within=actor.region,
        day_from=day_from,
        day_to=day_to,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([DailyStatistics.model_validate(r) for r in rows], total=total, page=page)
