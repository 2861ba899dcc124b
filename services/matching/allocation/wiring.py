"""What allocation adds to the matching service's runtime: consumers and the micro-batch.

Event handlers get `(uow, event)` only; the takeover needs the app's clock and environment,
so `AllocationWiring` is created before the runtime and bound to it once it exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col

from libs.common.clock import clock_of, system_now
from libs.common.events import Event, Subscription, UnitOfWork
from libs.common.service import PeriodicJob, ServiceRuntime
from services.matching.allocation import takeover
from services.matching.allocation.runs import micro_batch_job
from services.matching.library.models import ResourceAllocation

#: The library's consumer of `sa.providers.resource.>` (services.matching.library.events).
RESOURCE_DURABLE = "matching-library-resources"


async def note_resource_movement(uow: UnitOfWork, event: Event) -> None:
    """Providers counted one of our allocations (`movement` {allocation_id, reason}): from
    now on its units are inside providers' `remaining`, so a run must stop subtracting them.

    Applied whatever the projection did with the event (even a stale one): any state of the
    resource at or after this version counts the allocation."""
    movement = event.data.get("movement")
    if not isinstance(movement, dict) or movement.get("reason") != "allocated":
        return
    allocation_id = movement.get("allocation_id")
    if not isinstance(allocation_id, str):
        return
    await uow.session.execute(
        update(ResourceAllocation)
        .where(
            col(ResourceAllocation.id) == allocation_id,
            col(ResourceAllocation.state) == "allocated",
        )
        .values(state="confirmed", updated_at=event.time)
    )


def with_movements(sub: Subscription) -> Subscription:
    """The library's resource consumer, also confirming allocations in the same transaction
    as the remaining figure it updates (so a unit is never counted twice or not at all)."""
    inner = sub.handler
    if inner is None:
        raise ValueError(f"{sub.durable}: expected a per-event handler")

    async def handler(uow: UnitOfWork, event: Event) -> None:
        await inner(uow, event)
        await note_resource_movement(uow, event)

    return dataclasses.replace(sub, handler=handler)


class AllocationWiring:
    """Subscriptions and jobs of allocation, bound to the runtime after it is built."""

    def __init__(self) -> None:
        self.runtime: ServiceRuntime | None = None

    def bind(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime

    def now(self) -> datetime:
        return clock_of(self.runtime)() if self.runtime is not None else system_now()

    def environment(self) -> str:
        return self.runtime.settings.environment if self.runtime is not None else "development"

    def library(self, subscriptions: Sequence[Subscription]) -> list[Subscription]:
        """The library's subscriptions, its resource consumer confirming our allocations."""
        out = [with_movements(s) if s.durable == RESOURCE_DURABLE else s for s in subscriptions]
        if not any(s.durable == RESOURCE_DURABLE for s in subscriptions):
            raise RuntimeError(f"the library no longer has a {RESOURCE_DURABLE} consumer")
        return out

    def subscriptions(self) -> list[Subscription]:
        return [takeover.subscription(self.now, self.environment)]

    def jobs(self) -> list[PeriodicJob]:
        return [micro_batch_job]
