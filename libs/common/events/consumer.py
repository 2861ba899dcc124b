"""Durable pull consumers with explicit ack, an idempotent inbox, backoff and dead letters.

Per fetched batch: one transaction claims the batch's event ids in the inbox (the primary
key turns redeliveries into no-ops) and applies every new event's effect, then the batch is
acked. If anything in the batch fails, the batch is retried one message at a time so a
single bad message cannot hold up the others: transient failures are nak'ed with backoff,
invalid messages (and the last allowed delivery) go to the dead-letter stream with the
error, then are terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError

from libs.common import faults
from libs.common.errors import AppError
from libs.common.events.bus import ADVISORY_STREAM, DLQ_PREFIX, DLQ_STREAM, EventBus
from libs.common.events.envelope import MSG_ID_HEADER, Event, InvalidEnvelope
from libs.common.events.outbox import EventTables
from libs.common.events.uow import UnitOfWork

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, Event], Awaitable[None]]
BatchHandler = Callable[[UnitOfWork, Sequence[Event]], Awaitable[None]]


class PermanentError(Exception):
    """The event can never be handled (bad data): dead-letter it now, do not retry."""


@dataclass(frozen=True)
class Subscription:
    """What one durable consumer listens to and how it applies events.

    `handler` applies one event. A high-volume consumer may give `batch_handler` instead:
    it receives every new event of a fetched batch at once, so it can write them with one
    statement (a round trip per event is what limits a consumer on SQLite).
    """

    durable: str
    stream: str
    subjects: Sequence[str]
    handler: Handler | None = None
    batch_handler: BatchHandler | None = None

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.batch_handler is None):
            raise ValueError(f"{self.durable}: give exactly one of handler or batch_handler")


def _header_safe(text: str, limit: int = 2000) -> str:
    # NATS headers are single lines.
    return " ".join(text.split())[:limit]


def dead_letter_subject(durable: str) -> str:
    return f"{DLQ_PREFIX}.{durable}"


class _PullLoop:
    """Fetch batches from a bound pull subscription until stopped.

    With `prefetch`, the next fetch is requested as soon as a batch arrives, so its
    messages travel while this batch is being applied (batches are still handled one at a
    time, in order). `stop()` lets the batch in hand finish (its acks included) and cuts
    short an idle wait; messages a cancelled prefetch had received stay unacked and are
    redelivered after `ack_wait`.
    """

    fetch_batch: int = 128
    fetch_timeout: float = 1.0
    prefetch: bool = False
    name: str = "pull-loop"

    def __init__(self) -> None:
        self._psub: Any = None
        self._stopping = False
        self._fetching: asyncio.Future[Any] | None = None

    async def start(self) -> None:
        raise NotImplementedError

    async def handle_batch(self, msgs: Sequence[Msg]) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stopping = True
        if self._fetching is not None and not self._fetching.done():
            self._fetching.cancel()

    def _fetch(self) -> asyncio.Future[Any]:
        self._fetching = asyncio.ensure_future(
            self._psub.fetch(self.fetch_batch, timeout=self.fetch_timeout)
        )
        return self._fetching

    async def run(self) -> None:
        if self._psub is None:
            await self.start()
        ahead: asyncio.Future[Any] | None = None
        try:
            while not self._stopping:
                fetching, ahead = ahead or self._fetch(), None
                try:
                    msgs = await fetching
                except (NatsTimeoutError, TimeoutError):
                    continue  # nothing waiting: fetch() raises instead of returning []
                except asyncio.CancelledError:
                    if self._stopping:
                        return  # stop() interrupted an idle wait
                    raise
                except Exception:
                    log.warning("%s: fetch failed; retrying", self.name, exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                if self.prefetch and len(msgs) >= self.fetch_batch:
                    ahead = self._fetch()  # a full batch: more is likely waiting
                await self.handle_batch(msgs)
        finally:
            if ahead is not None and not ahead.done():
                ahead.cancel()
            if ahead is not None:
                with contextlib.suppress(BaseException):
                    await ahead


class ConsumerWorker(_PullLoop):
    def __init__(
        self,
        *,
        subscription: Subscription,
        bus: EventBus,
        tables: EventTables,
        uow_factory: Callable[[], UnitOfWork],
        telemetry: Any | None = None,
        batch_size: int = 128,
        max_deliver: int = 5,
        ack_wait_seconds: float = 30.0,
        backoff_base_seconds: float = 0.5,
        backoff_max_seconds: float = 30.0,
        fetch_timeout: float = 1.0,
        prefetch: bool = True,
    ) -> None:
        super().__init__()
        self.prefetch = prefetch
        self.sub = subscription
        self.name = subscription.durable
        self.fetch_batch = batch_size
        self.bus = bus
        self.tables = tables
        self.uow_factory = uow_factory
        self.telemetry = telemetry
        self.batch_size = batch_size
        self.max_deliver = max_deliver
        self.ack_wait_seconds = ack_wait_seconds
        self.backoff_base = backoff_base_seconds
        self.backoff_max = backoff_max_seconds
        self.fetch_timeout = fetch_timeout
        self.handled_total = 0
        self.dead_lettered_total = 0

    @property
    def durable(self) -> str:
        return self.sub.durable

    async def start(self) -> None:
        await self.bus.ensure_pull_consumer(
            stream=self.sub.stream,
            durable=self.durable,
            subjects=self.sub.subjects,
            max_deliver=self.max_deliver,
            ack_wait_seconds=self.ack_wait_seconds,
            # Well above the fetch batch (PITFALLS: default 1,000 caps throughput).
            max_ack_pending=max(1000, self.batch_size * 8),
        )
        self._psub = await self.bus.js.pull_subscribe_bind(
            durable=self.durable, stream=self.sub.stream
        )

    async def handle_batch(self, msgs: Sequence[Msg]) -> None:
        await self.process_batch(msgs)

    async def process_batch(self, msgs: Sequence[Msg]) -> None:
        items: list[tuple[Msg, Event]] = []
        for msg in msgs:
            try:
                items.append((msg, Event.from_nats(msg.headers, msg.data)))
            except InvalidEnvelope as exc:
                await self._dead_letter(msg, None, f"invalid envelope: {exc}")
                await msg.term()
        if items:
            try:
                await self._apply(items)
            except Exception:
                if len(items) > 1:
                    log.info("%s: batch of %d failed; isolating", self.durable, len(items))
                for msg, event in items:
                    try:
                        await self._apply([(msg, event)])
                    except Exception as exc:
                        await self._fail(msg, event, exc)
        if self.bus.nc is not None:
            await self.bus.nc.flush()  # acks are fire-and-forget until flushed

    async def _apply(self, items: Sequence[tuple[Msg, Event]]) -> None:
        async with self.uow_factory() as uow:
            new = await self.tables.claim(uow.session, self.durable, [e.id for _, e in items])
            fresh: list[tuple[Msg, Event]] = []
            for msg, event in items:
                if event.id in new:  # else: a redelivery after a crash before ack
                    fresh.append((msg, event))
                    new.discard(event.id)  # the same id twice in one batch: apply once
            if self.sub.batch_handler is not None:
                await self._handle_batch(uow, fresh)
            else:
                for msg, event in fresh:
                    await self._handle(uow, msg, event)
            await uow.commit()
        faults.hit(faults.CONSUMER_AFTER_COMMIT)
        for msg, _ in items:
            await msg.ack()
        self.handled_total += len(items)

    async def _handle(self, uow: UnitOfWork, msg: Msg, event: Event) -> None:
        assert self.sub.handler is not None
        if self.telemetry is None:
            await self.sub.handler(uow, event)
            return
        with self._span(msg, event):
            await self.sub.handler(uow, event)

    async def _handle_batch(self, uow: UnitOfWork, items: Sequence[tuple[Msg, Event]]) -> None:
        assert self.sub.batch_handler is not None
        if items and self.telemetry is not None:
            # One CONSUMER span per event keeps each event's trace whole; the batch write
            # itself runs once, after them.
            for msg, event in items:
                with self._span(msg, event):
                    pass
        await self.sub.batch_handler(uow, [e for _, e in items])

    def _span(self, msg: Msg, event: Event) -> Any:
        from libs.common.telemetry import consumer_span

        assert self.telemetry is not None
        return consumer_span(
            self.telemetry,
            subject=msg.subject,
            message_id=event.id,
            headers=dict(msg.headers or {}),
            consumer=self.durable,
        )

    def backoff(self, delivered: int) -> float:
        return float(min(self.backoff_base * (2 ** max(delivered - 1, 0)), self.backoff_max))

    async def _fail(self, msg: Msg, event: Event, exc: BaseException) -> None:
        delivered = msg.metadata.num_delivered
        permanent = isinstance(exc, PermanentError | AppError)
        reason = f"{type(exc).__name__}: {exc}"
        if permanent or delivered >= self.max_deliver:
            log.error(
                "%s: dead-lettering event %s (%s) after %d deliveries: %s",
                self.durable,
                event.id,
                event.type,
                delivered,
                reason,
            )
            await self._dead_letter(msg, event, reason)
            await msg.term()
        else:
            delay = self.backoff(delivered)
            log.warning(
                "%s: event %s failed (delivery %d/%d), retry in %.1fs: %s",
                self.durable,
                event.id,
                delivered,
                self.max_deliver,
                delay,
                reason,
            )
            await msg.nak(delay=delay)

    async def _dead_letter(self, msg: Msg, event: Event | None, reason: str) -> None:
        meta = msg.metadata
        key = event.id if event is not None else f"seq-{meta.stream}-{meta.sequence.stream}"
        headers = {k: v for k, v in (msg.headers or {}).items() if k != MSG_ID_HEADER}
        headers.update(
            {
                "sa-dlq-reason": _header_safe(reason),
                "sa-dlq-consumer": self.durable,
                "sa-dlq-subject": msg.subject,
                "sa-dlq-stream": meta.stream,
                "sa-dlq-stream-seq": str(meta.sequence.stream),
                "sa-dlq-deliveries": str(meta.num_delivered),
                MSG_ID_HEADER: f"dlq:{self.durable}:{key}",
            }
        )
        # Awaited: the message is terminated only once the dead-letter stream holds it.
        await self.bus.js.publish(
            dead_letter_subject(self.durable), msg.data, headers=headers, stream=DLQ_STREAM
        )
        self.dead_lettered_total += 1


class MaxDeliveriesWatcher(_PullLoop):
    """Dead-letters messages that ran out of deliveries without a recorded failure.

    A consumer that crashes (or hangs past ack_wait) on every delivery never reaches its
    own dead-letter path; JetStream then drops the message after max_deliver and emits a
    MAX_DELIVERIES advisory, which the ADVISORIES stream keeps. This worker turns each such
    advisory for this service's consumers into a dead letter, so nothing vanishes silently.
    """

    fetch_batch = 32

    def __init__(self, *, bus: EventBus, service: str, streams_by_durable: dict[str, str]) -> None:
        super().__init__()
        self.bus = bus
        self.durable = self.name = f"{service}-max-deliveries"
        self.streams_by_durable = streams_by_durable

    async def start(self) -> None:
        subjects = [
            f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{durable}"
            for durable, stream in self.streams_by_durable.items()
        ]
        await self.bus.ensure_pull_consumer(
            stream=ADVISORY_STREAM,
            durable=self.durable,
            subjects=subjects,
            max_deliver=20,
            ack_wait_seconds=30.0,
            max_ack_pending=1000,
        )
        self._psub = await self.bus.js.pull_subscribe_bind(
            durable=self.durable, stream=ADVISORY_STREAM
        )

    async def handle_batch(self, msgs: Sequence[Msg]) -> None:
        for msg in msgs:
            try:
                await self.handle(msg)
                await msg.ack()
            except Exception:
                log.warning("%s: advisory not handled yet", self.durable, exc_info=True)
                await msg.nak(delay=2.0)

    async def handle(self, msg: Msg) -> None:
        advisory = json.loads(msg.data)
        stream, durable, seq = advisory["stream"], advisory["consumer"], int(advisory["stream_seq"])
        original = await self.bus.js.get_msg(stream, seq)
        headers = {k: v for k, v in (original.headers or {}).items() if k != MSG_ID_HEADER}
        key = headers.get("ce-id") or f"seq-{stream}-{seq}"
        headers.update(
            {
                "sa-dlq-reason": "delivery limit reached without a recorded handler error "
                "(the consumer crashed or timed out on every delivery)",
                "sa-dlq-consumer": durable,
                "sa-dlq-subject": original.subject or "",
                "sa-dlq-stream": stream,
                "sa-dlq-stream-seq": str(seq),
                "sa-dlq-deliveries": str(advisory.get("deliveries", "")),
                # Same id as the consumer's own dead letter: never listed twice.
                MSG_ID_HEADER: f"dlq:{durable}:{key}",
            }
        )
        await self.bus.js.publish(
            dead_letter_subject(durable), original.data or b"", headers=headers, stream=DLQ_STREAM
        )
