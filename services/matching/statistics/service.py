"""Daily statistics (统计): facts from events, the daily computation, the reads. No HTTP.

Why here, in the matching service: every figure needs facts of more than one service —
needs opened (needs) against needs matched (matching) for the time to match, budgets held
(providers) against caps (providers) and contracts (matching), satisfaction (credit) and
organisations by grade (credit) in their home region (providers). Services share nothing
but events, so the statistics are one consumer of all four streams keeping small fact
tables, and one job that turns them into per-region daily rows. Matching is where the
market's own facts already are, and it is the service ministries already follow for the
market; a separate statistics service would be the same code plus a deployment.

The day is computed after it closes in China time (`today_in_china`), once: a marker row
per day (`stat_day`) is claimed in the same transaction as the day's rows and events, so
replicas running the job together compute it once. A fact arriving late for a computed day
marks that day dirty; the next run computes it again and announces the rows with a higher
`version`, which consumers use to keep the newest. One window remains on PostgreSQL: a fact
committed while its day is being computed for the first time (the marker row not yet
visible to the consumer) neither makes it into the figures nor marks the day; the job's
settling margin after midnight (jobs.SETTLE) keeps that to facts arriving that late. On
SQLite writers are serialised, so the window does not exist there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common.clock import china_day
from libs.common.db import Database
from libs.common.events import UnitOfWork
from libs.common.regions import sql_inside
from services.matching.statistics import events, rules
from services.matching.statistics.models import (
    StatDaily,
    StatDay,
    StatEvaluation,
    StatLedger,
    StatNeed,
    StatOrganisation,
    StatProject,
)

#: How far back a first run looks for facts, and how many days one run computes.
FIRST_LOOKBACK_DAYS = 62
DAYS_PER_RUN = 31


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------------ marking late facts


async def mark_dirty(
    session: AsyncSession, when: datetime | None, *, onwards: bool = False
) -> None:
    """A fact of `when`'s day arrived: a computed day it changes is computed again.

    `onwards`: the fact changes every later day too (a budget held from that day on).
    """
    if when is None:
        return
    day = china_day(when)
    cond = col(StatDay.day) >= day if onwards else col(StatDay.day) == day
    await session.execute(update(StatDay).where(cond).values(dirty=True))


# ---------------------------------------------------------------------------- computing


async def _facts(session: AsyncSession, day: date) -> dict[str, Any]:
    start, end = rules.day_bounds(day)

    def within(column: Any) -> Any:
        return (column >= start) & (column < end)

    needs = (
        await session.execute(
            select(StatNeed).where(
                col(StatNeed.region_code).is_not(None),
                or_(
                    within(col(StatNeed.opened_at)),
                    within(col(StatNeed.matched_at)),
                    within(col(StatNeed.served_at)),
                    within(col(StatNeed.fulfilled_at)),
                    within(col(StatNeed.cancelled_at)),
                ),
            )
        )
    ).scalars()
    projects = (
        await session.execute(select(StatProject).where(StatProject.budget_year == day.year))
    ).scalars()
    ledgers = (
        await session.execute(select(StatLedger).where(StatLedger.year == day.year))
    ).scalars()
    evaluations = (
        await session.execute(
            select(StatEvaluation).where(within(col(StatEvaluation.published_at)))
        )
    ).scalars()
    organisations = (
        await session.execute(
            select(StatOrganisation).where(col(StatOrganisation.region_code).is_not(None))
        )
    ).scalars()
    return {
        "needs": [
            rules.NeedFact(
                region_code=str(n.region_code),
                opened_at=_aware(n.opened_at),
                matched_at=_aware(n.matched_at),
                served_at=_aware(n.served_at),
                fulfilled_at=_aware(n.fulfilled_at),
                cancelled_at=_aware(n.cancelled_at),
            )
            for n in needs
        ],
        "projects": [
            rules.ProjectFact(
                region_code=p.region_code,
                budget_fen=p.budget_fen,
                approved_at=_aware(p.approved_at),
                cancelled_at=_aware(p.cancelled_at),
                released_fen=p.released_fen,
            )
            for p in projects
        ],
        "ledgers": [
            rules.LedgerFact(region_code=g.region_code, cap_fen=g.cap_fen) for g in ledgers
        ],
        "evaluations": [
            rules.EvaluationFact(
                region_code=e.region_code,
                satisfaction=e.satisfaction,
                published_at=_aware(e.published_at) or start,
            )
            for e in evaluations
        ],
        "organisations": [
            rules.OrganisationFact(region_code=str(o.region_code), status=o.status, grade=o.grade)
            for o in organisations
        ],
    }


async def _claim(uow: UnitOfWork, day: date, now: datetime) -> int | None:
    """Claim the day for this run: its new version, or None when another run has it."""
    session = uow.session
    marker = (
        await session.execute(select(StatDay).where(StatDay.day == day).with_for_update())
    ).scalar_one_or_none()
    if marker is None:
        try:
            async with session.begin_nested():
                session.add(StatDay(day=day, version=1, dirty=False, computed_at=now))
        except IntegrityError:
            return None  # another replica claimed it first
        return 1
    if not marker.dirty:
        return None
    marker.dirty = False
    marker.version += 1
    marker.computed_at = now
    return marker.version


async def compute_day(uow: UnitOfWork, day: date, *, now: datetime) -> list[StatDaily] | None:
    """Compute and announce `day` (the caller commits); None when there was nothing to do."""
    version = await _claim(uow, day, now)
    if version is None:
        return None
    session = uow.session
    aggregates = rules.aggregate(day, **await _facts(session, day))
    await session.execute(delete(StatDaily).where(col(StatDaily.day) == day))
    rows = []
    for region in sorted(aggregates):
        agg = aggregates[region]
        row = StatDaily(
            day=day,
            region_code=region,
            needs_opened=agg.needs_opened,
            needs_matched=agg.needs_matched,
            needs_served=agg.needs_served,
            needs_fulfilled=agg.needs_fulfilled,
            needs_cancelled=agg.needs_cancelled,
            median_minutes_to_match=agg.median_minutes_to_match,
            budget_reserved_fen=agg.budget_reserved_fen,
            cap_fen=agg.cap_fen,
            cap_used=agg.cap_used,
            evaluations=agg.evaluations,
            average_satisfaction=agg.average_satisfaction,
            active_organisations=agg.active_organisations,
            active_by_grade=dict(sorted(agg.active_by_grade.items())),
            version=version,
            computed_at=now,
        )
        session.add(row)
        uow.emit(events.statistics_daily(row))
        rows.append(row)
    return rows


async def _first_fact_day(session: AsyncSession) -> date | None:
    firsts = [
        (await session.execute(select(func.min(column)))).scalar_one_or_none()
        for column in (
            col(StatNeed.opened_at),
            col(StatNeed.matched_at),
            col(StatProject.approved_at),
            col(StatEvaluation.published_at),
        )
    ]
    found = [china_day(f) for f in firsts if f is not None]
    return min(found) if found else None


async def due_days(db: Database, *, today: date) -> list[date]:
    """Days to compute now: closed days never computed (oldest first), then dirty ones."""
    yesterday = today - timedelta(days=1)
    async with db.session() as session:
        last = (await session.execute(select(func.max(col(StatDay.day))))).scalar_one_or_none()
        dirty = list(
            (
                await session.execute(
                    select(col(StatDay.day))
                    .where(col(StatDay.dirty).is_(True))
                    .order_by(col(StatDay.day))
                )
            ).scalars()
        )
        if last is None:
            first = await _first_fact_day(session) or yesterday
            first = max(first, yesterday - timedelta(days=FIRST_LOOKBACK_DAYS))
        else:
            first = last + timedelta(days=1)
    fresh: list[date] = []
    day = first
    while day <= yesterday and len(fresh) < DAYS_PER_RUN:
        fresh.append(day)
        day += timedelta(days=1)
    return fresh + [d for d in dirty if d not in fresh][:DAYS_PER_RUN]


async def compute_due(
    db: Database, uow_factory: Callable[[], UnitOfWork], *, now: datetime
) -> list[date]:
    """Compute every due day, each in its own transaction; the days this run computed."""
    done = []
    for day in await due_days(db, today=china_day(now)):
        async with uow_factory() as uow:
            rows = await compute_day(uow, day, now=now)
            if rows is None:
                continue
            await uow.commit()
        done.append(day)
    return done


# ------------------------------------------------------------------------------- reading


async def list_daily(
    db: Database,
    *,
    region: str | None,
    within: str,
    day_from: date | None,
    day_to: date | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[StatDaily], int]:
    """Rows of `region` exactly, or of every region inside `within`, by day then region."""
    query = select(StatDaily)
    if region is not None:
        query = query.where(StatDaily.region_code == region)
    elif within:
        query = query.where(sql_inside(col(StatDaily.region_code), within))
    if day_from is not None:
        query = query.where(col(StatDaily.day) >= day_from)
    if day_to is not None:
        query = query.where(col(StatDaily.day) <= day_to)
    async with db.session() as session:
        total = (
            await session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        rows = (
            await session.execute(
                query.order_by(col(StatDaily.day), col(StatDaily.region_code))
                .limit(limit)
                .offset(offset)
            )
        ).scalars()
        return list(rows.all()), int(total)
