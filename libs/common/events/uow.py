"""Unit of work: one write transaction that commits state and outbox events together."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import faults
from libs.common.clock import Clock, system_now
from libs.common.db import Database
from libs.common.events.envelope import Event
from libs.common.events.outbox import EventTables


class UnitOfWork:
    """`async with runtime.unit_of_work() as uow: ...; uow.emit(e); await uow.commit()`.

    Leaving the block without `commit()` rolls everything back, events included.
    """

    session: AsyncSession

    def __init__(
        self,
        *,
        db: Database,
        tables: EventTables,
        on_commit: Callable[[], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        # The runtime's clock, so an event handler dates its effects as the service does
        # (a test's frozen clock included) instead of reading the system time.
        self.clock: Clock = clock or system_now
        self._db = db
        self._tables = tables
        self._on_commit = on_commit
        self._cm: Any = None
        self.events: list[Event] = []
        self.committed = False

    async def __aenter__(self) -> UnitOfWork:
        self._cm = self._db.write_session()
        self.session = await self._cm.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._cm.__aexit__(exc_type, exc, tb)

    def emit(self, event: Event) -> None:
        """Queue an event for the outbox; it is written in the same commit as the state."""
        if not event.trace:
            from libs.common.telemetry import current_traceparent

            trace = current_traceparent()
            if trace:
                event = dataclasses.replace(event, trace=trace)
        self.events.append(event)

    async def commit(self) -> None:
        await self._tables.append(self.session, self.events)
        await self.session.commit()
        self.committed = True
        faults.hit(faults.OUTBOX_AFTER_COMMIT)
        if self.events and self._on_commit is not None:
            self._on_commit()
