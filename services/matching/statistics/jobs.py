"""The daily computation as a periodic job: each run computes the closed days not yet
computed (and days a late fact made dirty), after a settling margin past midnight so that
events of the day's last minutes have arrived."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from libs.common.clock import clock_of
from libs.common.service import PeriodicJob, ServiceRuntime
from services.matching.statistics import service

log = logging.getLogger(__name__)

#: A day is computed this long after it closed (China midnight).
SETTLE = timedelta(minutes=15)


async def run_daily(runtime: ServiceRuntime, *, now: datetime | None = None) -> int:
    """Compute what is due; how many days this run computed."""
    now = now or clock_of(runtime)()
    done = await service.compute_due(runtime.db, runtime.unit_of_work, now=now - SETTLE)
    if done:
        log.info("statistics: computed %s", ", ".join(d.isoformat() for d in done))
    return len(done)


async def _run(runtime: ServiceRuntime) -> None:
    await run_daily(runtime)


statistics_job = PeriodicJob(name="matching-statistics-daily", interval_seconds=600, run=_run)
