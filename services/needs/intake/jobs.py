"""Background job of single-window intake: the overdue scan (限时办理 超期提醒)."""

from __future__ import annotations

import logging
from datetime import date

from libs.common.service import PeriodicJob, ServiceRuntime
from services.needs.intake import service

log = logging.getLogger(__name__)


async def scan_overdue(runtime: ServiceRuntime, *, today: date | None = None) -> int:
    """Notify every open intake past its due date once; return how many this scan notified.

    Safe in every replica at once: each intake is marked and its event written in one unit
    of work by a conditional UPDATE (`service.mark_overdue`), so an intake another scan has
    just notified is skipped, not notified again. Needs no working-day calendar, so a year
    the calendar does not know yet cannot stop the scan.
    """
    today = today or service.china_today()
    notified = 0
    for intake_id in await service.overdue_candidates(db=runtime.db, today=today):
        async with runtime.unit_of_work() as uow:
            if await service.mark_overdue(uow=uow, intake_id=intake_id, today=today):
                notified += 1
    if notified:
        log.info("intake overdue scan: %d intake(s) notified", notified)
    return notified


async def _run_overdue_scan(runtime: ServiceRuntime) -> None:
    # PeriodicJob.run returns None; the count is for callers such as tests and the CLI.
    await scan_overdue(runtime)


overdue_job = PeriodicJob(name="intake-overdue", interval_seconds=60, run=_run_overdue_scan)
