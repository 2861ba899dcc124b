"""Background job of charity resources: offers whose validity window has ended expire."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from sqlalchemy import update
from sqlmodel import col, select

from libs.common.clock import clock_of, today_in_china
from libs.common.service import PeriodicJob, ServiceRuntime
from services.providers.charities import events
from services.providers.charities.models import Resource

log = logging.getLogger(__name__)

BATCH = 500


async def expire_resources(runtime: ServiceRuntime, *, today: date | None = None) -> int:
    """Mark offers past `valid_until` expired, each with its `resource.expired` event.

    Safe in every replica at once: the conditional UPDATE (still `offered`, same version)
    lets one scan win each resource, and the event is written in the same unit of work.
    """
    today = today or today_in_china(clock_of(runtime))
    expired = 0
    while True:
        async with runtime.db.session() as session:
            ids = (
                (
                    await session.execute(
                        select(Resource.id)
                        .where(col(Resource.status) == "offered", col(Resource.valid_until) < today)
                        .order_by(col(Resource.valid_until), col(Resource.id))
                        .limit(BATCH)
                    )
                )
                .scalars()
                .all()
            )
        if not ids:
            break
        for resource_id in ids:
            async with runtime.unit_of_work() as uow:
                won = await uow.session.execute(
                    update(Resource)
                    .where(col(Resource.id) == resource_id, col(Resource.status) == "offered")
                    .values(
                        status="expired",
                        status_reason="validity window ended",
                        version=Resource.version + 1,
                        updated_at=datetime.now(UTC),
                    )
                )
                if won.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                resource = await uow.session.get(Resource, resource_id, populate_existing=True)
                assert resource is not None
                uow.emit(events.resource_event("expired", resource))
                await uow.commit()
                expired += 1
        if len(ids) < BATCH:
            break
    if expired:
        log.info("resources: %d offer(s) expired", expired)
    return expired


async def _run(runtime: ServiceRuntime) -> None:
    await expire_resources(runtime)


expiry_job = PeriodicJob(name="resource-expiry", interval_seconds=3600, run=_run)
