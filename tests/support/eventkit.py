"""A minimal service for testing the event layer on its own: one effect table, the outbox
and inbox, a relay and a consumer, on a real database and a real nats-server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from libs.common.db import Database, make_registry
from libs.common.events import (
    ConsumerWorker,
    Event,
    EventBus,
    EventTables,
    OutboxRelay,
    PermanentError,
    Subscription,
    UnitOfWork,
    new_event,
)

registry = make_registry()
metadata: MetaData = registry.metadata
tables = EventTables.define(metadata)
# Not unique on purpose: an effect applied twice shows up as two rows.
effect = Table(
    "effect",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("value", Integer, nullable=True),
)

DURABLE = "kit-consumer"


async def record_effect(uow: UnitOfWork, event: Event) -> None:
    if event.data.get("poison") == "permanent":
        raise PermanentError("payload marked permanently invalid")
    if event.data.get("poison") == "transient":
        raise RuntimeError("downstream unavailable (simulated)")
    await uow.session.execute(
        effect.insert().values(event_id=event.id, value=event.data.get("value"))
    )


async def record_effects(uow: UnitOfWork, events: Sequence[Event]) -> None:
    """The same effect as `record_effect`, written for a whole batch in one statement."""
    for event in events:
        if event.data.get("poison") == "permanent":
            raise PermanentError("payload marked permanently invalid")
    if events:
        await uow.session.execute(
            effect.insert(), [{"event_id": e.id, "value": e.data.get("value")} for e in events]
        )


class Kit:
    def __init__(
        self, database_url: str, nats_url: str, *, batch: bool = False, **worker_opts: Any
    ) -> None:
        self.db = Database(database_url)
        self.bus = EventBus(nats_url, name="kit")
        self.relay = OutboxRelay(db=self.db, tables=tables, bus=self.bus, poll_interval=0.05)
        self.worker = ConsumerWorker(
            subscription=Subscription(
                durable=DURABLE,
                stream="NEEDS",
                subjects=["sa.needs.>"],
                handler=None if batch else record_effect,
                batch_handler=record_effects if batch else None,
            ),
            bus=self.bus,
            tables=tables,
            uow_factory=self.uow,
            fetch_timeout=0.2,
            **worker_opts,
        )

    def uow(self) -> UnitOfWork:
        return UnitOfWork(db=self.db, tables=tables, on_commit=self.relay.notify)

    async def open(self, *, create: bool = True) -> Kit:
        if create:
            async with self.db.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        await self.bus.connect()
        await self.bus.ensure_streams()
        return self

    async def close(self) -> None:
        await self.bus.close()
        await self.db.dispose()

    async def write_event(self, value: int, **extra: Any) -> Event:
        event = new_event(
            service="needs", entity="need", verb="opened", data={"value": value, **extra}
        )
        async with self.uow() as uow:
            uow.emit(event)
            await uow.commit()
        return event

    async def effects(self) -> list[tuple[str, int]]:
        async with self.db.session() as s:
            rows = (await s.execute(select(effect.c.event_id, effect.c.value))).all()
        return [(r[0], r[1]) for r in rows]

    async def pending(self) -> int:
        async with self.db.session() as s:
            return await tables.pending_count(s)

    async def stream_count(self, stream: str = "NEEDS") -> int:
        info = await self.bus.js.stream_info(stream)
        return int(info.state.messages)

    async def inbox_count(self) -> int:
        async with self.db.session() as s:
            return int(
                (await s.execute(select(func.count()).select_from(tables.inbox))).scalar_one()
            )
