"""Background job of sanctions: periods end by themselves (期满自动解除).

A ban's listing leaves the public list and the ban lifts on its end date (`ends_on`, the
first free day); a suspension ends the same way. The list and the admission check filter by
date themselves, so a late or stopped job never shows a listing past its period; the job
makes the state, the status and the events follow.
"""

from __future__ import annotations

import logging
from datetime import datetime

from libs.common.clock import clock_of
from libs.common.service import PeriodicJob, ServiceRuntime
from services.credit.sanctions import service

log = logging.getLogger(__name__)


async def expire_listings(runtime: ServiceRuntime, *, now: datetime | None = None) -> int:
    """Expire every listing whose period is over; return how many this scan expired.

    Safe in every replica at once: each listing is re-read under its organisation's lock
    (`service.expire_listing`), so one another scan has just expired is skipped.
    """
    now = now or clock_of(runtime)()
    expired = 0
    for entry_id in await service.due_expiries(db=runtime.db, today=service.china_day(now)):
        async with runtime.unit_of_work() as uow:
            if await service.expire_listing(uow=uow, entry_id=entry_id, now=now):
                expired += 1
    if expired:
        log.info("sanctions: %d listing(s) expired", expired)
    return expired


async def end_suspensions(runtime: ServiceRuntime, *, now: datetime | None = None) -> int:
    """End every suspension whose months are over; return how many this scan ended."""
    now = now or clock_of(runtime)()
    ended = 0
    for sanction_id in await service.due_suspension_ends(
        db=runtime.db, today=service.china_day(now)
    ):
        async with runtime.unit_of_work() as uow:
            if await service.end_suspension(uow=uow, sanction_id=sanction_id, now=now):
                ended += 1
    if ended:
        log.info("sanctions: %d suspension(s) ended", ended)
    return ended


async def run_periods(runtime: ServiceRuntime, *, now: datetime | None = None) -> int:
    """Both scans with one "now"; how many periods ended."""
    now = now or clock_of(runtime)()
    return await expire_listings(runtime, now=now) + await end_suspensions(runtime, now=now)


async def _run(runtime: ServiceRuntime) -> None:
    # PeriodicJob.run returns None; the count is for callers such as tests.
    await run_periods(runtime)


#: Days are what matter; every 5 minutes keeps the state within minutes of midnight.
periods_job = PeriodicJob(name="credit-sanction-periods", interval_seconds=300, run=_run)
jobs = [periods_job]
