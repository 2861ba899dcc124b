"""Use cases of the matching service's allocation (no HTTP here): runs, matches, the needs
matching holds, explanations and eligibility. The machinery is `services.matching.allocation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from libs.common.auth import Principal, Role
from libs.common.db import Database
from libs.common.errors import FieldError, Forbidden, NotFound
from libs.common.pagination import fetch_page
from libs.common.regions import sql_inside
from libs.common.service import ServiceRuntime
from services.matching.allocation.runs import RunReport
from services.matching.allocation.runs import run_allocation as run
from services.matching.engine import FairnessCap
from services.matching.models import Match, NeedView, OrganisationView

MATCH_SORTS: dict[str, Sequence[Any]] = {
    "-created_at": (col(Match.created_at).desc(), col(Match.id)),
    "created_at": (col(Match.created_at), col(Match.id)),
    "-score": (col(Match.score).desc(), col(Match.id)),
    "score": (col(Match.score), col(Match.id)),
}
NEED_SORTS: dict[str, Sequence[Any]] = {
    "opened_at": (col(NeedView.opened_at), col(NeedView.need_id)),
    "-opened_at": (col(NeedView.opened_at).desc(), col(NeedView.need_id)),
    "-urgency": (
        col(NeedView.urgency).desc(),
        col(NeedView.opened_at),
        col(NeedView.need_id),
    ),
}


async def run_allocation(
    *,
    runtime: ServiceRuntime,
    actor: Principal,
    region_scope: str | None,
    max_share: float | None,
    now: datetime,
) -> RunReport:
    """Allocate every allocatable need in `region_scope` (default: the caller's region)."""
    scope = actor.region if region_scope is None else region_scope
    if not actor.covers(scope):
        raise Forbidden(
            detail=f"Region {scope} is outside your region {actor.region or '(all)'}.",
            errors=[FieldError("body.region_scope", "outside the caller's region")],
        )
    fairness = FairnessCap(max_share) if max_share is not None else None
    return await run(
        runtime,
        scopes=[scope],
        requested_by=actor.subject,
        now=now,
        fairness=fairness,
    )


def _region(query: Any, column: Any, prefix: str) -> Any:
    """`column` starts with `prefix`, as an index range."""
    return query.where(sql_inside(column, prefix)) if prefix else query


def _may_read(actor: Principal, match: Match) -> bool:
    if not actor.covers(match.region_code):
        return False
    return actor.role != Role.organisation or match.organisation_id == actor.org_id


async def list_matches(
    *,
    db: Database,
    actor: Principal,
    need_id: str | None = None,
    organisation_id: str | None = None,
    contract_id: str | None = None,
    resource_id: str | None = None,
    state: str | None = None,
    region: str | None = None,
    service_code: str | None = None,
    run_id: str | None = None,
    sort: str = "-created_at",
    limit: int,
    offset: int,
) -> tuple[Sequence[Match], int]:
    """Matches in the caller's region (an organisation: its own), filtered."""
    query = _region(select(Match), col(Match.region_code), actor.region)
    if actor.org_id:
        query = query.where(Match.organisation_id == actor.org_id)
    if region:
        query = _region(query, col(Match.region_code), region)
    for column, value in (
        (Match.need_id, need_id),
        (Match.organisation_id, organisation_id),
        (Match.contract_id, contract_id),
        (Match.resource_id, resource_id),
        (Match.state, state),
        (Match.service_code, service_code),
        (Match.run_id, run_id),
    ):
        if value is not None:
            query = query.where(col(column) == value)
    async with db.session() as session:
        return await fetch_page(
            session, query, order_by=MATCH_SORTS[sort], limit=limit, offset=offset
        )


async def get_match(*, db: Database, match_id: str, actor: Principal) -> Match:
    async with db.session() as session:
        match = await session.get(Match, match_id)
    if match is None or not _may_read(actor, match):
        raise NotFound(detail=f"No match {match_id}.")
    return match


async def list_needs(
    *,
    db: Database,
    actor: Principal,
    status: str | None,
    unmatched_code: str | None,
    region: str | None,
    service_code: str | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[Sequence[NeedView], int]:
    """Needs matching holds in the caller's region: `status=unplaced` lists those a takeover
    could not place (临时接管), `status=open&unmatched_code=…` why the others wait."""
    query = _region(select(NeedView), col(NeedView.region_code), actor.region)
    if region:
        query = _region(query, col(NeedView.region_code), region)
    for column, value in (
        (NeedView.status, status),
        (NeedView.unmatched_code, unmatched_code),
        (NeedView.service_code, service_code),
    ):
        if value is not None:
            query = query.where(col(column) == value)
    async with db.session() as session:
        return await fetch_page(
            session, query, order_by=NEED_SORTS[sort], limit=limit, offset=offset
        )


async def eligibility(*, db: Database, organisation_id: str) -> OrganisationView:
    async with db.session() as session:
        view = await session.get(OrganisationView, organisation_id)
    if view is None:
        raise NotFound(detail=f"Matching knows no organisation {organisation_id} yet.")
    return view


async def explain(
    *, db: Database, need_id: str, actor: Principal
) -> tuple[NeedView, Match | None, list[Match]]:
    """The need, its active match (None: unmatched) and its earlier matches, newest first."""
    async with db.session() as session:
        need = await session.get(NeedView, need_id)
        if need is None or not actor.covers(need.region_code):
            raise NotFound(detail=f"No need {need_id} known to matching.")
        rows = (
            await session.execute(
                select(Match)
                .where(Match.need_id == need_id)
                .order_by(col(Match.created_at).desc(), col(Match.id))
            )
        ).scalars()
        matches = list(rows.all())
    active = next((m for m in matches if m.state == "active"), None)
    return need, active, [m for m in matches if m is not active]
