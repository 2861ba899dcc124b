"""Allocation runs: on demand (`POST /allocations/run`) and in micro-batches as needs arrive.

A run goes province by province (provinces never share supply, `locks.py`), under the
province's lock:

1. load: the allocatable needs in scope (open, and unplaced after a takeover) and the supply
   for them, in one read (`supply.py`);
2. solve: the engine (`services.matching.engine.allocate`, exact min-cost flow, partitioned
   by region) in a worker thread, then the plan with explanations (`plan.py`);
3. write: in chunks of `CHUNK` needs, one transaction each — re-check capacity in SQL, insert
   matches and resource allocations, update needs, queue `need.matched` /
   `resource.allocated` in the outbox (`writes.py`); then the unmatched needs' reasons.

The micro-batch (`micro_batch_job`, every `MICRO_BATCH_SECONDS`) runs when needs wait that no
run has considered since they arrived, since supply grew where they live
(`services.matching.reconsider`: a contract signed, grown or resumed, a match ended, charity
units offered or freed) or since the month's capacity began; it runs over all allocatable
needs of their counties (older unmatched needs compete with the new ones on priority); with
none, it does nothing. Every step is
idempotent: a need matched meanwhile is skipped, one whose capacity went elsewhere is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as clock_time
from typing import Any

from sqlalchemy import func, or_, select

from libs.common.clock import china_day, clock_of
from libs.common.ids import new_id
from libs.common.service import PeriodicJob, ServiceRuntime
from libs.common.validators import CHINA_TZ
from services.matching import rules
from services.matching.allocation import locks
from services.matching.allocation.plan import Left, Planned, plan
from services.matching.allocation.supply import NEED, snapshot
from services.matching.allocation.writes import (
    RUN,
    for_writing,
    write_assignments,
    write_unassigned,
)
from services.matching.engine import FairnessCap, allocate

log = logging.getLogger(__name__)

#: Needs per write transaction: big enough to batch, small enough not to hold SQLite's
#: writer for long (other consumers wait meanwhile).
CHUNK = 5000
#: How often the micro-batch looks for needs no run has considered.
MICRO_BATCH_SECONDS = 2.0


@dataclass
class RunReport:
    """What a run did; `matches`/`unmatched` keep the first `keep` of each for the response."""

    run_id: str
    region_scope: str
    requested_by: str
    started_at: datetime
    matched: int = 0
    unmatched: int = 0
    retried: int = 0
    skipped: int = 0
    matches: list[dict[str, Any]] = field(default_factory=list)
    unmatched_needs: list[tuple[str, str, str]] = field(default_factory=list)  # id, code, text
    provinces: list[str] = field(default_factory=list)
    # load / solve (= engine + plan) / write, summed over provinces
    seconds: dict[str, float] = field(
        default_factory=lambda: {
            "load": 0.0,
            "solve": 0.0,
            "engine": 0.0,
            "plan": 0.0,
            "write": 0.0,
        }
    )
    engine: list[dict[str, float | int]] = field(default_factory=list)  # stats per province


async def _provinces(runtime: ServiceRuntime, scopes: Sequence[str]) -> list[str]:
    if all(len(s) >= 2 for s in scopes):
        return sorted({s[:2] for s in scopes})
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(func.substr(NEED.c.region_code, 1, 2))
            .where(NEED.c.status.in_(rules.ALLOCATABLE))
            .distinct()
        )
        return sorted(str(p) for (p,) in rows.all() if p and str(p).isdigit() and len(p) == 2)


def _province_scopes(scopes: Sequence[str], province: str) -> list[str]:
    inside = [s for s in scopes if s.startswith(province)]
    return inside if inside else [province]


async def run_allocation(
    runtime: ServiceRuntime,
    *,
    scopes: Sequence[str],
    requested_by: str,
    now: datetime,
    fairness: FairnessCap | None = None,
    keep: int = 1000,
    chunk: int = CHUNK,
) -> RunReport:
    """Allocate every allocatable need inside `scopes` (division-code prefixes; "" = all)."""
    scopes = sorted(set(scopes)) or [""]
    report = RunReport(
        run_id=new_id(),
        region_scope=rules.common_prefix(scopes),
        requested_by=requested_by[:100],
        started_at=now,
    )
    async with runtime.unit_of_work() as uow:
        await uow.session.execute(
            RUN.insert().values(
                id=report.run_id,
                requested_by=report.requested_by,
                region_scope=report.region_scope,
                matched=0,
                unmatched=0,
                started_at=now,
                finished_at=now,
            )
        )
        await uow.commit()
    environment = runtime.settings.environment
    for province in await _provinces(runtime, scopes):
        report.provinces.append(province)
        async with locks.province_lock(runtime.db, province):
            await _run_province(
                runtime,
                report,
                scopes=_province_scopes(scopes, province),
                now=now,
                environment=environment,
                fairness=fairness,
                keep=keep,
                chunk=chunk,
            )
    async with runtime.unit_of_work() as uow:
        await uow.session.execute(
            RUN.update()
            .where(RUN.c.id == report.run_id)
            .values(matched=report.matched, unmatched=report.unmatched, finished_at=now)
        )
        await uow.commit()
    log.info(
        "allocation run %s (%s, scope %r): %d matched, %d unmatched, %d retried",
        report.run_id,
        requested_by,
        report.region_scope,
        report.matched,
        report.unmatched,
        report.retried,
    )
    return report


def _solve(
    snap: Any, fairness: FairnessCap | None, run_id: str
) -> tuple[list[Planned], list[Left], dict[str, float | int]]:
    t0 = time.perf_counter()
    result = allocate(
        snap.needs, snap.supply.organisations, snap.supply.resources, fairness=fairness
    )
    t1 = time.perf_counter()
    planned, left = plan(snap, result, run_id=run_id)
    stats = dict(result.stats)
    stats.update(engine_seconds=t1 - t0, plan_seconds=time.perf_counter() - t1)
    return planned, left, stats


async def _run_province(
    runtime: ServiceRuntime,
    report: RunReport,
    *,
    scopes: Sequence[str],
    now: datetime,
    environment: str,
    fairness: FairnessCap | None,
    keep: int,
    chunk: int,
) -> None:
    t0 = time.perf_counter()
    async with runtime.db.session() as session:
        snap = await snapshot(session, scopes=scopes, now=now, environment=environment)
    t1 = time.perf_counter()
    report.seconds["load"] += t1 - t0
    if snap.needs:
        planned, left, stats = await asyncio.to_thread(_solve, snap, fairness, report.run_id)
        report.engine.append(stats)
        report.seconds["engine"] += float(stats["engine_seconds"])
        report.seconds["plan"] += float(stats["plan_seconds"])
    else:
        planned, left = (
            [],
            [
                Left(row, rules.UnmatchedCode.invalid_need.value, why, {"reason": "invalid_need"})
                for row, why in snap.invalid
            ],
        )
    t2 = time.perf_counter()
    report.seconds["solve"] += t2 - t1
    planned = for_writing(planned)
    for i in range(0, len(planned), chunk):
        async with runtime.unit_of_work() as uow:
            written = await write_assignments(
                uow, run_id=report.run_id, now=now, planned=planned[i : i + chunk]
            )
            await uow.commit()
        report.matched += len(written.matches)
        report.retried += len(written.retried)
        report.skipped += len(written.skipped)
        room = keep - len(report.matches)
        if room > 0:
            report.matches += written.matches[:room]
    for i in range(0, len(left), chunk):
        part = left[i : i + chunk]
        async with runtime.unit_of_work() as uow:
            await write_unassigned(uow, now=now, left=part)
            await uow.commit()
        report.unmatched += len(part)
        room = keep - len(report.unmatched_needs)
        if room > 0:
            report.unmatched_needs += [(x.row.need_id, x.code, x.text) for x in part[:room]]
    report.seconds["write"] += time.perf_counter() - t2


def month_start(now: datetime) -> datetime:
    """00:00 in China on the first day of `now`'s China month, as UTC: monthly capacity
    (合同月服务能力) starts afresh then."""
    first = china_day(now).replace(day=1)
    return datetime.combine(first, clock_time(0, 0), tzinfo=CHINA_TZ).astimezone(UTC)


async def fresh_counties(runtime: ServiceRuntime, *, now: datetime | None = None) -> list[str]:
    """Counties with allocatable needs that no run has considered since supply last grew
    there (`services.matching.reconsider`) or since this month's capacity began: a need
    left unmatched last month is due again on the 1st, with nobody having to ask."""
    now = now or clock_of(runtime)()
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(func.substr(NEED.c.region_code, 1, 6))
            .where(
                NEED.c.status.in_(rules.ALLOCATABLE),
                or_(NEED.c.considered_at.is_(None), NEED.c.considered_at < month_start(now)),
            )
            .distinct()
        )
        return sorted(str(c) for (c,) in rows.all() if c)


async def micro_batch(runtime: ServiceRuntime, *, now: datetime | None = None) -> RunReport | None:
    """Allocate the counties where needs wait to be considered (None: nowhere): new needs,
    needs whose supply grew, unmatched needs at the start of a month."""
    now = now or clock_of(runtime)()
    counties = await fresh_counties(runtime, now=now)
    if not counties:
        return None
    return await run_allocation(runtime, scopes=counties, requested_by="micro-batch", now=now)


async def _run_micro_batch(runtime: ServiceRuntime) -> None:
    await micro_batch(runtime)


#: Needs are matched continuously as they arrive, for `ServiceRuntime(jobs=)`.
micro_batch_job = PeriodicJob(
    name="allocation-micro-batch", interval_seconds=MICRO_BATCH_SECONDS, run=_run_micro_batch
)
