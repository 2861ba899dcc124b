"""Use cases of the matching service (no HTTP here)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import col, select

from libs.common.auth import Principal
from libs.common.db import Database
from libs.common.errors import NotFound
from libs.common.events import UnitOfWork
from libs.common.pagination import fetch_page
from services.matching import events, rules
from services.matching.models import AllocationRun, Match, NeedView, OrganisationView


def current_period(now: datetime) -> str:
    return now.strftime("%Y-%m")


async def run_allocation(
    *, uow: UnitOfWork, actor: Principal, now: datetime | None = None
) -> tuple[AllocationRun, list[Match], list[rules.Unassigned]]:
    """Assign every open need in the caller's region to an eligible provider."""
    now = now or datetime.now(UTC)
    period = current_period(now)
    session = uow.session
    query = select(NeedView).where(NeedView.status == "open")
    if actor.region:
        query = query.where(col(NeedView.region_code).startswith(actor.region))
    need_rows = (await session.execute(query)).scalars().all()
    orgs = (
        (
            await session.execute(
                select(OrganisationView).where(col(OrganisationView.registered).is_(True))
            )
        )
        .scalars()
        .all()
    )
    used = {
        (org_id, service): int(count)
        for org_id, service, count in (
            await session.execute(
                select(Match.organisation_id, Match.service_code, func.count())
                .where(Match.period == period)
                .group_by(Match.organisation_id, Match.service_code)
            )
        ).all()
    }
    providers = {
        o.organisation_id: rules.Provider(
            organisation_id=o.organisation_id,
            status=o.status,
            service_regions=o.service_regions,
            capacity_left={
                code: cap - used.get((o.organisation_id, code), 0)
                for code, cap in o.capacities.items()
            },
        )
        for o in orgs
    }
    by_id = {n.need_id: n for n in need_rows}
    assigned, unassigned = rules.allocate(
        [
            rules.OpenNeed(n.need_id, n.region_code, n.service_code, n.urgency, n.opened_at)
            for n in need_rows
        ],
        providers,
    )
    run = AllocationRun(
        id=str(uuid.uuid4()),
        requested_by=actor.subject,
        region_scope=actor.region,
        matched=len(assigned),
        unmatched=len(unassigned),
        started_at=now,
        finished_at=datetime.now(UTC),
    )
    session.add(run)
    matches = []
    for a in assigned:
        need = by_id[a.need_id]
        match = Match(
            id=str(uuid.uuid4()),
            need_id=need.need_id,
            organisation_id=a.organisation_id,
            recipient_ref=need.recipient_ref,
            region_code=need.region_code,
            service_code=need.service_code,
            period=period,
            score=a.score,
            explanation=a.explanation,
            run_id=run.id,
            created_at=now,
        )
        need.status = "matched"
        need.last_unmatched_reason = None
        session.add(match)
        matches.append(match)
        uow.emit(events.need_matched(match))
    for u in unassigned:
        by_id[u.need_id].last_unmatched_reason = u.reason
    await uow.commit()
    return run, matches, unassigned


async def eligibility(*, db: Database, organisation_id: str) -> OrganisationView:
    async with db.session() as session:
        view = await session.get(OrganisationView, organisation_id)
    if view is None:
        raise NotFound(detail=f"Matching knows no organisation {organisation_id} yet.")
    return view


async def list_matches(
    *,
    db: Database,
    actor: Principal,
    need_id: str | None,
    organisation_id: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Match], int]:
    query = select(Match)
    if actor.region:
        query = query.where(col(Match.region_code).startswith(actor.region))
    if actor.org_id:
        query = query.where(Match.organisation_id == actor.org_id)
    if need_id:
        query = query.where(Match.need_id == need_id)
    if organisation_id:
        query = query.where(Match.organisation_id == organisation_id)
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[col(Match.created_at).desc(), Match.id],
            limit=limit,
            offset=offset,
        )


async def explain(*, db: Database, need_id: str, actor: Principal) -> tuple[NeedView, Match | None]:
    async with db.session() as session:
        need = await session.get(NeedView, need_id)
        if need is None or not actor.covers(need.region_code):
            raise NotFound(detail=f"No need {need_id} known to matching.")
        match = (
            await session.execute(select(Match).where(Match.need_id == need_id))
        ).scalar_one_or_none()
    return need, match
