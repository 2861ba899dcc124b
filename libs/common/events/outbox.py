"""Transactional outbox and inbox tables, and the relay that publishes the outbox.

A use case writes its events to `event_outbox` in the same transaction as its state change;
the relay publishes them with `Nats-Msg-Id` = event id and marks them published. A crash
between commit and publish leaves the row unpublished (it goes out after restart); a crash
between publish and marking republishes the same id, which JetStream drops as a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import faults
from libs.common.db import Database, DriverInsert
from libs.common.events.bus import EventBus
from libs.common.events.envelope import Event, decode_json, encode_json
from libs.common.events.publish import PublishBatch

log = logging.getLogger(__name__)

#: Batches one `publish_pending()` call may move before it returns (so a stop request is
#: heard between calls).
PIPELINE_BATCHES = 8

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a log.
_SeqType = BigInteger().with_variant(Integer(), "sqlite")


# One statement builder per table object (a service's tables are defined once).
_OUTBOX_INSERTS: dict[int, DriverInsert] = {}
_INBOX_CLAIMS: dict[int, DriverInsert] = {}


def _outbox_insert(outbox: Table) -> DriverInsert:
    found = _OUTBOX_INSERTS.get(id(outbox))
    if found is None or found.table is not outbox:
        found = DriverInsert(outbox, ["event_id", "nats_subject", "headers", "body", "created_at"])
        _OUTBOX_INSERTS[id(outbox)] = found
    return found


def _inbox_claim(inbox: Table) -> DriverInsert:
    found = _INBOX_CLAIMS.get(id(inbox))
    if found is None or found.table is not inbox:
        found = DriverInsert(
            inbox,
            ["consumer", "event_id", "handled_at"],
            do_nothing_on_conflict=["consumer", "event_id"],
            returning="event_id",
        )
        _INBOX_CLAIMS[id(inbox)] = found
    return found


@dataclass(frozen=True)
class _Sent:
    """One batch of outbox rows on its way: their sequences, in publishing order."""

    seqs: list[int]
    batch: PublishBatch


@dataclass(frozen=True)
class EventTables:
    """The outbox and inbox tables, declared in one service's own metadata."""

    outbox: Table
    inbox: Table

    @classmethod
    def define(cls, metadata: MetaData) -> EventTables:
        outbox = Table(
            "event_outbox",
            metadata,
            Column("seq", _SeqType, primary_key=True, autoincrement=True),
            Column("event_id", String(64), nullable=False, unique=True),
            Column("nats_subject", String(255), nullable=False),
            Column("headers", Text, nullable=False),
            Column("body", LargeBinary, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("published_at", DateTime(timezone=True), nullable=True),
            Column("attempts", Integer, nullable=False, server_default="0"),
            Column("last_error", Text, nullable=True),
        )
        Index(
            "ix_event_outbox_pending",
            outbox.c.seq,
            sqlite_where=outbox.c.published_at.is_(None),
            postgresql_where=outbox.c.published_at.is_(None),
        )
        inbox = Table(
            "event_inbox",
            metadata,
            Column("consumer", String(100), nullable=False),
            Column("event_id", String(64), nullable=False),
            Column("handled_at", DateTime(timezone=True), nullable=False),
            PrimaryKeyConstraint("consumer", "event_id"),
        )
        return cls(outbox=outbox, inbox=inbox)

    async def append(self, session: AsyncSession, events: Sequence[Event]) -> None:
        """Write events to the outbox inside the caller's transaction."""
        if not events:
            return
        now = datetime.now(UTC)
        await _outbox_insert(self.outbox).execute(
            session,
            [
                (e.id, e.nats_subject, encode_json(e.headers()).decode(), e.body(), now)
                for e in events
            ],
        )

    async def claim(
        self, session: AsyncSession, consumer: str, event_ids: Sequence[str]
    ) -> set[str]:
        """Record events as handled by `consumer`; return the ids that were new.

        The primary key makes this idempotent: a redelivered event conflicts and is not
        returned, so its effect is not applied twice (no check-then-insert race).
        """
        if not event_ids:
            return set()
        now = datetime.now(UTC)
        new = await _inbox_claim(self.inbox).execute(
            session, [(consumer, event_id, now) for event_id in event_ids]
        )
        return set(new)

    async def pending_count(self, session: AsyncSession) -> int:
        from sqlalchemy import func

        result = await session.execute(
            select(func.count())
            .select_from(self.outbox)
            .where(self.outbox.c.published_at.is_(None))
        )
        return int(result.scalar_one())


class OutboxRelay:
    """Publishes unpublished outbox rows in order, pipelined, and marks them published."""

    def __init__(
        self,
        *,
        db: Database,
        tables: EventTables,
        bus: EventBus,
        telemetry: Any | None = None,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        publish_timeout: float = 10.0,
    ) -> None:
        self.db = db
        self.tables = tables
        self.bus = bus
        self.telemetry = telemetry
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self._stopping = False
        self.published_total = 0

    def notify(self) -> None:
        """Called after a commit that wrote events, so they go out without waiting a poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        backoff = self.poll_interval
        while not self._stopping:
            # Clear before reading the outbox: a commit that lands while we publish sets the
            # flag again, so its events go out at once instead of after a full poll.
            self._wake.clear()
            try:
                published = await self.publish_pending()
                backoff = self.poll_interval
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay: publish failed; retrying", exc_info=True)
                published = 0
                backoff = min(backoff * 2, 10.0)
            if published >= self.batch_size:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

    async def publish_pending(self) -> int:
        """Publish what is pending, up to `PIPELINE_BATCHES` batches; return how many rows
        were marked published."""
        t = self.tables.outbox
        query = (
            select(t.c.seq, t.c.event_id, t.c.nats_subject, t.c.headers, t.c.body)
            .where(t.c.published_at.is_(None))
            .order_by(t.c.seq)
            .limit(self.batch_size)
        )
        if self.db.is_sqlite:
            return await self._publish_pipelined(query)
        return await self._publish_skip_locked(query.with_for_update(skip_locked=True))

    async def _publish_skip_locked(self, query: Any) -> int:
        """PostgreSQL: replicas share the outbox, and SKIP LOCKED splits the rows between
        them. It also splits them between two transactions of this relay: while batch k
        waits for its acknowledgements, holding its rows' locks, batch k+1 is read (past
        those locked rows) and sent; then k is marked and committed. Each batch is marked in
        the transaction that locked it; one that fails or is cut short rolls back and its
        rows go again next time (JetStream drops the duplicates by `Nats-Msg-Id`)."""
        total = 0
        batches: list[asyncio.Task[int]] = []
        try:
            for _ in range(PIPELINE_BATCHES):
                sent: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                batches.append(asyncio.create_task(self._locked_batch(query, sent)))
                try:
                    read = await asyncio.shield(sent)  # read, locked and sent (or none read)
                finally:
                    if len(batches) > 1:  # the batch before: its acks, its marks, its commit
                        total += await batches.pop(0)
                if read < self.batch_size:
                    break
            total += await batches.pop()
        finally:
            for batch in batches:  # an error or a cancellation above: roll them back
                batch.cancel()
            for batch in batches:
                with contextlib.suppress(BaseException):
                    await batch
        return total

    async def _locked_batch(self, query: Any, sent: asyncio.Future[int]) -> int:
        """One batch in its own transaction: lock and read it, send it, tell `sent` how
        many rows were read, then wait for the acknowledgements and mark the rows."""
        try:
            async with self.db.session() as session, session.begin():
                rows = (await session.execute(query)).all()
                if not rows:
                    sent.set_result(0)
                    return 0
                outgoing = await self._send(rows)
                sent.set_result(len(rows))
                done, failed = await self._acked(outgoing)
                faults.hit("relay.after_publish")
                await self._mark(session, done, failed)
            return len(done)
        except BaseException as exc:
            if not sent.done():
                sent.set_exception(exc)
            raise

    async def _publish_pipelined(self, query: Any) -> int:
        """SQLite (one relay per database): while batch k's acknowledgements come back,
        batch k+1 is read and sent; batch k is then marked in a short write transaction.
        Reads take no writer lock; rows still in flight are skipped by their sequence.

        A row whose publish failed is retried on the next call, so it may reach the stream
        after rows written later (as a redelivery may reach a consumer late): consumers
        order by the versions and times events carry, never by arrival alone."""
        t = self.tables.outbox
        total = 0
        in_flight: _Sent | None = None
        after: int | None = None
        for _ in range(PIPELINE_BATCHES):
            page = query if after is None else query.where(t.c.seq > after)
            async with self.db.session() as session:
                rows = (await session.execute(page)).all()
            sent = await self._send(rows) if rows else None
            if in_flight is not None:
                total += await self._settle(in_flight)
            in_flight = sent
            if len(rows) < self.batch_size:
                break
            after = rows[-1].seq
        if in_flight is not None:
            total += await self._settle(in_flight)
        return total

    async def _settle(self, sent: _Sent) -> int:
        done, failed = await self._acked(sent)
        faults.hit("relay.after_publish")
        async with self.db.write_session() as session:
            await self._mark(session, done, failed)
            await session.commit()
        return len(done)

    async def _mark(self, session: AsyncSession, done: list[int], failed: dict[int, str]) -> None:
        t = self.tables.outbox
        if done:
            await session.execute(
                update(t).where(t.c.seq.in_(done)).values(published_at=datetime.now(UTC))
            )
        for seq, error in failed.items():
            await session.execute(
                update(t)
                .where(t.c.seq == seq)
                .values(attempts=t.c.attempts + 1, last_error=error[:2000])
            )

    async def _send(self, rows: Sequence[Any]) -> _Sent:
        """Publish every row, pipelined; the rows' sequences and their acknowledgements."""
        messages = []
        for row in rows:
            headers: dict[str, str] = decode_json(row.headers)
            headers = self._with_producer_span(row.nats_subject, row.event_id, headers)
            messages.append((row.nats_subject, row.body, headers))
        batch = await self.bus.publisher.publish(messages)
        return _Sent([row.seq for row in rows], batch)

    async def _acked(self, sent: _Sent) -> tuple[list[int], dict[int, str]]:
        """Wait for the acknowledgements: the sequences stored, and those that failed (a
        refusal, or no acknowledgement within `publish_timeout`)."""
        errors = await sent.batch.wait(self.publish_timeout)
        if errors:
            done = [seq for i, seq in enumerate(sent.seqs) if i not in errors]
            failed = {sent.seqs[i]: error for i, error in errors.items()}
            log.warning(
                "outbox relay: %d of %d publishes failed, first: %s",
                len(failed),
                len(sent.seqs),
                next(iter(failed.values())),
            )
        else:
            done, failed = list(sent.seqs), {}  # stored, duplicate or not
        self.published_total += len(done)
        return done, failed

    def _with_producer_span(
        self, subject: str, event_id: str, headers: dict[str, str]
    ) -> dict[str, str]:
        if self.telemetry is None or not self.telemetry.records:
            # Nobody records spans: the stored traceparent (the request's) travels as is.
            return headers
        from libs.common.telemetry import producer_span

        with producer_span(
            self.telemetry, subject=subject, message_id=event_id, parent_headers=headers
        ) as (_span, trace_headers):
            return {**headers, **trace_headers}
