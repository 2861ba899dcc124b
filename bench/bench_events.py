"""Event-layer throughput: raw JetStream against outbox → relay → idempotent consumer → DB.

All figures come from one run against one private nats-server (JetStream, file storage,
default fsync):

* raw publish: N CloudEvents-shaped messages (~200-byte JSON, `ce-*` headers,
  `Nats-Msg-Id`) pipelined with `js.publish_async`;
* raw fetch+ack: a durable pull consumer fetching 256 at a time, `ack()` each, flush per
  batch, over those N messages; the ceiling for any consumer;
* per database backend, the pipeline's parts one at a time (write through `UnitOfWork`,
  relay-only, consume-only with the per-event `handler` and with the `batch_handler`) and
  then end to end (both handler kinds) with writer, relay and consumer running
  concurrently as tasks in one process: from the first write until the last effect row
  is committed;
* end to end as deployed (`bench.pipeline_procs`): the producing and the consuming service
  in two processes, each with its own database, on uvloop, the consumer with a batch
  handler, then with a handler per event (as every consumer of the platform's services is
  written today: one INSERT per event, each a round trip to the database). On a 2-core
  machine the three busy processes (producer, consumer, nats-server) share the cores, so
  these are the figures to compare with the target; the single-process figures show what
  sharing one core costs.

The end-to-end rate is compared with raw fetch+ack (target ≥ 50 %); each part with its
transport ceiling. Counts are verified afterwards (effects, inbox, outbox pending).
A last end-to-end run is wired as `ServiceRuntime` wires a service: tracing on (exporter
"none", as `sa run` defaults to) with SQLAlchemy instrumentation, a span per message,
over a quarter of the pipeline's event count.

Counts: BENCH_EVENTS_N (or `--n`) raw messages, default 50,000; the pipeline stages use
BENCH_EVENTS_PIPELINE_N, default min(N, 20,000).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NotFoundError
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from bench.common import BenchContext, Figure, console, env_int
from libs.common.db import Database, make_registry
from libs.common.events import (
    ConsumerWorker,
    Event,
    EventBus,
    EventTables,
    OutboxRelay,
    Subscription,
    UnitOfWork,
    new_event,
)
from libs.common.events.bus import StreamSpec
from libs.common.ids import new_id
from libs.common.telemetry import Telemetry, instrument_engine, setup_telemetry

NAME = "events"
DESCRIPTION = "event layer: raw JetStream vs outbox → relay → consumer → DB effect"

DEFAULT_N = 50_000
# In one process the pipeline runs at about 1,000-2,500 events/s on this 2-core machine
# (2026-11), so it gets fewer events than the raw figures to keep `make bench` near 2
# minutes; its rates are steady-state rates all the same. BENCH_EVENTS_PIPELINE_N overrides.
DEFAULT_PIPELINE_N = 20_000
FETCH_BATCH = 256  # raw fetch+ack and the pipeline's consumer use the same batch
TXN_SIZE = 500  # events per writer transaction
RELAY_BATCH = 500  # OutboxRelay default (settings.relay_batch_size)
TARGET_RATIO = 0.5  # end to end vs raw fetch+ack
STAGE_TIMEOUT = 120.0  # seconds before a stage is declared stuck

RAW_STREAM = "BENCHRAW"
RAW_SUBJECT = "bench.raw.need.opened"
PIPE_STREAM = "NEEDS"  # the real platform stream of sa.needs.* events
PIPE_SUBJECTS = ["sa.needs.>"]

# The bench service's tables: the outbox and inbox plus a state table (written by the
# producer's transactions) and an effect table (written by the consumer's handler).
registry = make_registry()
metadata: MetaData = registry.metadata
tables = EventTables.define(metadata)
state = Table(
    "bench_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("need_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
)
effect = Table(
    "bench_effect",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("seq", Integer, nullable=True),
)


def payload(seq: int) -> dict[str, Any]:
    """A ~200-byte event body, shaped like a need being opened."""
    return {
        "need_id": new_id(),  # as the needs service makes them (libs.common.ids)
        "person_ref": f"p-{uuid.uuid4().hex[:16]}",
        "region": "330102",
        "item": "home-care.meals",
        "priority": 2,
        "seq": seq,
        "opened_at": datetime.now(UTC).isoformat(),
    }


def make_event(seq: int) -> Event:
    return new_event(service="needs", entity="need", verb="opened", data=payload(seq))


async def record_effect(uow: UnitOfWork, event: Event) -> None:
    """The per-event handler: one effect row per event, in the batch's transaction."""
    await uow.session.execute(effect.insert().values(event_id=event.id, seq=event.data.get("seq")))


async def record_effects(uow: UnitOfWork, events: Sequence[Event]) -> None:
    """The batch handler: every new event's effect row in one executemany."""
    if events:
        await uow.session.execute(
            effect.insert(), [{"event_id": e.id, "seq": e.data.get("seq")} for e in events]
        )


async def wait_until(
    predicate: Callable[[], bool], *, within: float, interval: float = 0.002
) -> bool:
    """Poll an in-memory predicate (cheap: no I/O) until it holds or `within` s pass."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


async def reset_stream(bus: EventBus, spec: StreamSpec) -> None:
    """Delete and recreate a stream with the platform's stream config (fresh counts)."""
    with contextlib.suppress(NotFoundError):
        await bus.js.delete_stream(spec.name)
    await bus.ensure_streams([spec])


# --------------------------------------------------------------------------- raw JetStream


async def raw_publish(ctx: BenchContext, bus: EventBus, n: int) -> Figure:
    """Pipelined `publish_async` of N prepared messages, all acks awaited."""
    await reset_stream(bus, StreamSpec(RAW_STREAM, ["bench.raw.>"]))
    messages = []
    for i in range(n):
        event = make_event(i)
        messages.append((event.body(), event.headers()))
    js = bus.js
    # Warm up the connection, the async-reply subscription and the stream's first block,
    # then empty the stream so it holds exactly the N timed messages.
    # Own ids: the duplicate window outlives the purge.
    warm = []
    for i in range(1000):
        event = make_event(-i)
        warm.append(await js.publish_async(RAW_SUBJECT, event.body(), headers=event.headers()))
    await asyncio.wait_for(asyncio.gather(*warm), timeout=STAGE_TIMEOUT)
    await js.purge_stream(RAW_STREAM)
    futures: list[asyncio.Future[Any]] = []
    with ctx.measure() as m:
        for body, headers in messages:
            futures.append(await js.publish_async(RAW_SUBJECT, body, headers=headers))
        await asyncio.wait_for(js.publish_async_completed(), timeout=STAGE_TIMEOUT)
    results = await asyncio.gather(*futures, return_exceptions=True)
    errors = sum(isinstance(r, BaseException) for r in results)
    duplicates = sum(bool(getattr(r, "duplicate", False)) for r in results)
    info = await js.stream_info(RAW_STREAM)
    fig = m.figure(
        bench=NAME,
        name="raw publish_async",
        backend="jetstream",
        count=n,
        note="Nats-Msg-Id, ce-* headers",
    )
    if errors or duplicates or info.state.messages != n:
        fig.ok = False
        ctx.fail(
            f"raw publish: {errors} errors, {duplicates} duplicates, "
            f"stream holds {info.state.messages} of {n}"
        )
    return fig


async def raw_fetch_ack(ctx: BenchContext, bus: EventBus, n: int) -> Figure:
    """A durable pull consumer: fetch 256, ack each, flush per batch, until N are acked."""
    durable = "bench-raw"
    await bus.ensure_pull_consumer(
        stream=RAW_STREAM,
        durable=durable,
        subjects=["bench.raw.>"],
        max_deliver=5,
        ack_wait_seconds=30.0,
        max_ack_pending=FETCH_BATCH * 8,
    )
    psub = await bus.js.pull_subscribe_bind(durable=durable, stream=RAW_STREAM)
    nc = bus.nc
    assert nc is not None
    acked = 0
    idle = 0  # consecutive empty fetches: the stream holds fewer than N
    deadline = time.monotonic() + STAGE_TIMEOUT
    with ctx.measure() as m:
        while acked < n and idle < 5 and time.monotonic() < deadline:
            try:
                msgs = await psub.fetch(FETCH_BATCH, timeout=1.0)
            except NatsTimeoutError:
                idle += 1
                continue
            idle = 0
            for msg in msgs:
                await msg.ack()
            await nc.flush()
            acked += len(msgs)
    await psub.unsubscribe()
    # The server applies flushed acks asynchronously: give it a moment before checking.
    for _ in range(40):
        info = await bus.js.consumer_info(RAW_STREAM, durable)
        if not info.num_ack_pending:
            break
        await asyncio.sleep(0.05)
    fig = m.figure(
        bench=NAME,
        name="raw fetch+ack",
        backend="jetstream",
        count=acked,
        note=f"fetch {FETCH_BATCH}, flush per batch",
    )
    if acked != n or info.num_ack_pending or info.num_pending:
        fig.ok = False
        ctx.fail(
            f"raw fetch+ack: acked {acked} of {n}; consumer has {info.num_pending} pending, "
            f"{info.num_ack_pending} unacknowledged"
        )
    return fig


# --------------------------------------------------------------------------- the pipeline


@dataclass
class Pipeline:
    """One bench service on one database: writer, relay and consumers."""

    db: Database
    bus: EventBus
    relay: OutboxRelay
    backend: str
    telemetry: Telemetry | None = None
    workers: list[ConsumerWorker] = field(default_factory=list)

    @classmethod
    async def open(cls, url: str, bus: EventBus, *, backend: str, traced: bool = False) -> Pipeline:
        """Create the tables on a fresh database; `traced` wires tracing like a service."""
        db = Database(url)
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        telemetry: Telemetry | None = None
        if traced:
            telemetry = setup_telemetry("bench-events", exporter="none")
            instrument_engine(db.engine, telemetry)
        relay = OutboxRelay(
            db=db,
            tables=tables,
            bus=bus,
            telemetry=telemetry,
            batch_size=RELAY_BATCH,
            poll_interval=0.05,
        )
        return cls(db=db, bus=bus, relay=relay, backend=backend, telemetry=telemetry)

    def consumer(self, durable: str, *, batch: bool) -> ConsumerWorker:
        """A ConsumerWorker with the per-event `handler` or the `batch_handler`."""
        sub = (
            Subscription(
                durable=durable,
                stream=PIPE_STREAM,
                subjects=PIPE_SUBJECTS,
                batch_handler=record_effects,
            )
            if batch
            else Subscription(
                durable=durable, stream=PIPE_STREAM, subjects=PIPE_SUBJECTS, handler=record_effect
            )
        )
        worker = ConsumerWorker(
            subscription=sub,
            bus=self.bus,
            tables=tables,
            uow_factory=lambda: self.uow(notify=False),
            telemetry=self.telemetry,
            batch_size=FETCH_BATCH,
            fetch_timeout=0.2,
        )
        self.workers.append(worker)
        return worker

    def uow(self, *, notify: bool) -> UnitOfWork:
        return UnitOfWork(
            db=self.db, tables=tables, on_commit=self.relay.notify if notify else None
        )

    async def write(self, n: int, *, notify: bool) -> None:
        """N events in transactions of TXN_SIZE: one state row and one outbox row each."""
        for start in range(0, n, TXN_SIZE):
            events = [make_event(seq) for seq in range(start, min(start + TXN_SIZE, n))]
            async with self.uow(notify=notify) as uow:
                await uow.session.execute(
                    state.insert(),
                    [{"need_id": e.data["need_id"], "seq": e.data["seq"]} for e in events],
                )
                for event in events:
                    uow.emit(event)
                await uow.commit()

    async def relay_all(self) -> int:
        """Publish the whole outbox with `publish_pending()` until it returns nothing."""
        total = 0
        while published := await self.relay.publish_pending():
            total += published
        return total

    async def counts(self) -> tuple[int, int, int]:
        """(effect rows, inbox rows, outbox rows still pending)."""
        async with self.db.session() as s:
            effects = (await s.execute(select(func.count()).select_from(effect))).scalar_one()
            inbox = (await s.execute(select(func.count()).select_from(tables.inbox))).scalar_one()
            pending = await tables.pending_count(s)
        return int(effects), int(inbox), int(pending)

    async def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.relay.stop()
        if self.telemetry is not None:
            self.telemetry.shutdown()
        await self.db.dispose()


async def stop_task(task: asyncio.Task[Any], grace: float = 5.0) -> None:
    """Let a worker task finish its current round after `stop()`, else cancel it."""
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=grace)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def verify(ctx: BenchContext, pipe: Pipeline, want: int, label: str, fig: Figure) -> None:
    """Effect and inbox rows == `want`, nothing left in the outbox; a FAIL line if not."""
    effects, inbox, pending = await pipe.counts()
    fig.extra.update(effects=effects, inbox=inbox, outbox_pending=pending)
    if (effects, inbox, pending) != (want, want, 0):
        fig.ok = False
        ctx.fail(
            f"{label} ({pipe.backend}): effects {effects} (want {want}), inbox {inbox} "
            f"(want {want}), outbox pending {pending} (want 0)"
        )


async def consume_only(
    ctx: BenchContext, pipe: Pipeline, n: int, *, durable: str, batch: bool
) -> Figure:
    """One new durable consumer over the N events already in the stream."""
    worker = pipe.consumer(durable, batch=batch)
    await worker.start()
    task = asyncio.create_task(worker.run(), name=f"bench-{durable}")
    with ctx.measure() as m:
        done = await wait_until(
            lambda: worker.handled_total >= n or task.done(), within=STAGE_TIMEOUT
        )
    worker.stop()
    await stop_task(task)
    label = "  part: consume, batch_handler" if batch else "  part: consume"
    if not done:
        ctx.fail(f"{label.strip()} ({pipe.backend}): stuck at {worker.handled_total}/{n}")
    return m.figure(
        bench=NAME,
        name=label,
        backend=pipe.backend,
        count=worker.handled_total,
        unit="ev",
        note=f"fetch {FETCH_BATCH}, "
        + ("1 effect INSERT / batch" if batch else "1 effect INSERT / event"),
    )


async def pipeline_parts(ctx: BenchContext, bus: EventBus, backend: str, n: int) -> list[Figure]:
    """Write, relay and consume one after another, so each part's own rate shows.

    The stream is consumed twice, by two durables: per-event handler, then batch handler.
    Each claims its own inbox rows and writes its own effects, so both counts end at 2N.
    """
    await reset_stream(bus, StreamSpec(PIPE_STREAM, PIPE_SUBJECTS))
    figures: list[Figure] = []
    async with ctx.fresh_database(backend, "parts") as url:
        pipe = await Pipeline.open(url, bus, backend=backend)
        try:
            with ctx.measure() as m:
                await pipe.write(n, notify=False)
            figures.append(
                m.figure(
                    bench=NAME,
                    name="  part: write (UoW)",
                    backend=backend,
                    count=n,
                    unit="ev",
                    note=f"{TXN_SIZE} ev + state rows / commit",
                )
            )
            with ctx.measure() as m:
                relayed = await pipe.relay_all()
            figures.append(
                m.figure(
                    bench=NAME,
                    name="  part: relay",
                    backend=backend,
                    count=relayed,
                    unit="ev",
                    note=f"publish_pending(), batch {RELAY_BATCH}",
                )
            )
            figures.append(await consume_only(ctx, pipe, n, durable="bench-parts", batch=False))
            figures.append(
                await consume_only(ctx, pipe, n, durable="bench-parts-batch", batch=True)
            )
            await verify(ctx, pipe, 2 * n, "pipeline parts", figures[-1])
        finally:
            await pipe.close()
    return figures


async def pipeline_end_to_end(
    ctx: BenchContext,
    bus: EventBus,
    backend: str,
    n: int,
    *,
    batch: bool = False,
    traced: bool = False,
) -> Figure:
    """Writer, relay and consumer concurrently: first write → last effect committed."""
    await reset_stream(bus, StreamSpec(PIPE_STREAM, PIPE_SUBJECTS))
    label = (
        "pipeline end to end"
        + (", batch_handler" if batch else "")
        + (", traced" if traced else "")
    )
    async with ctx.fresh_database(backend, "e2e") as url:
        pipe = await Pipeline.open(url, bus, backend=backend, traced=traced)
        try:
            worker = pipe.consumer("bench-e2e", batch=batch)
            await worker.start()  # creating the durable consumer is set-up, not timed
            with ctx.measure() as m:
                writer = asyncio.create_task(pipe.write(n, notify=True), name="bench-writer")
                relay = asyncio.create_task(pipe.relay.run(), name="bench-relay")
                consumer = asyncio.create_task(worker.run(), name="bench-consumer")
                tasks = (writer, relay, consumer)
                done = await wait_until(
                    lambda: (
                        worker.handled_total >= n or any(t.done() and t.exception() for t in tasks)
                    ),
                    within=STAGE_TIMEOUT,
                )
            pipe.relay.stop()
            worker.stop()
            for task in tasks:
                await stop_task(task)
            fig = m.figure(
                bench=NAME,
                name=label,
                backend=backend,
                count=worker.handled_total,
                unit="ev",
                note="spans + SQL instrumentation" if traced else "outbox→JetStream→effect",
            )
            if not done:
                errors = [repr(t.exception()) for t in tasks if t.done() and t.exception()]
                ctx.fail(
                    f"{label} ({backend}): {worker.handled_total}/{n} handled "
                    f"before timeout; task errors: {errors or 'none'}"
                )
            await verify(ctx, pipe, n, label, fig)
            return fig
        finally:
            await pipe.close()


# --------------------------------------------------------------------------- entry point


async def pipeline_two_processes(
    ctx: BenchContext, bus: EventBus, backend: str, n: int, *, per_event: bool = False
) -> Figure:
    """End to end as deployed: the producing and the consuming service in separate processes
    (each with its own database, on uvloop), consumer with a batch handler or, with
    `per_event`, a handler per event (how the platform's own consumers are written)."""
    from bench.pipeline_procs import run_two_process_pipeline

    await reset_stream(bus, StreamSpec(PIPE_STREAM, PIPE_SUBJECTS))
    async with (
        ctx.fresh_database(backend, "producer") as producer_url,
        ctx.fresh_database(backend, "consumer") as consumer_url,
    ):
        with ctx.measure() as m:
            result = await asyncio.to_thread(
                run_two_process_pipeline,
                workdir=ctx.tmp,
                nats_url=ctx.nats().url,
                n=n,
                db_urls=(producer_url, consumer_url),
                per_event=per_event,
            )
    fig = m.figure(
        bench=NAME,
        name="pipeline end to end, 2 processes" + (", handler" if per_event else ""),
        backend=backend,
        count=n,
        unit="ev",
        note="producing + consuming service, "
        + ("handler per event, 1 INSERT each" if per_event else "batch_handler"),
    )
    fig.seconds = result.seconds  # first write → last effect committed, from the processes
    fig.ok = result.ok
    fig.extra.update(
        producer_written_s=round(result.producer["written"] - result.producer["started"], 3),
        producer_published_s=round(result.producer["published"] - result.producer["started"], 3),
        consumer_effects=result.consumer["effects"],
        consumer_inbox=result.consumer["inbox"],
        # CPU per event of each process (µs): what the two cores are shared out on.
        producer_cpu_us_per_event=round(result.producer["cpu"] / n * 1e6, 1),
        consumer_cpu_us_per_event=round(result.consumer["cpu"] / n * 1e6, 1),
    )
    fig.note += (
        f"; CPU/event: producer {fig.extra['producer_cpu_us_per_event']:.0f} µs, "
        f"consumer {fig.extra['consumer_cpu_us_per_event']:.0f} µs"
    )
    if not result.ok:
        ctx.fail(f"{fig.name} ({backend}): {result.consumer}")
    return fig


def _percent(fig: Figure) -> str:
    return "?" if fig.ratio is None else f"{fig.ratio * 100:.0f} %"


def resolve_n(ctx: BenchContext) -> tuple[int, int]:
    """(raw message count, pipeline event count)."""
    n = ctx.n_override or env_int("BENCH_EVENTS_N", DEFAULT_N)
    return n, env_int("BENCH_EVENTS_PIPELINE_N", min(n, DEFAULT_PIPELINE_N))


async def run(ctx: BenchContext) -> list[Figure]:
    """All event-layer figures, raw JetStream first, then each database backend."""
    n, pipe_n = resolve_n(ctx)
    server = ctx.nats()
    bus = EventBus(server.url, name="bench-events")
    await bus.connect()
    figures: list[Figure] = []
    try:
        await bus.ensure_streams()
        console.print(
            f"[dim]events: raw N={n:,}, pipeline N={pipe_n:,}, nats-server {server.url} "
            f"(JetStream file store, default fsync), SQLite synchronous=FULL[/]"
        )
        pub = await raw_publish(ctx, bus, n)
        fetch = await raw_fetch_ack(ctx, bus, n)
        figures += [pub, fetch]
        for backend in ctx.database_backends():
            parts = await pipeline_parts(ctx, bus, backend, pipe_n)
            _write, relay, consume, consume_batch = parts
            relay.compare_to(pub)
            consume.compare_to(fetch)
            consume_batch.compare_to(fetch)
            e2e = await pipeline_end_to_end(ctx, bus, backend, pipe_n)
            e2e.compare_to(fetch, target=TARGET_RATIO)
            e2e_batch = await pipeline_end_to_end(ctx, bus, backend, pipe_n, batch=True)
            e2e_batch.compare_to(fetch, target=TARGET_RATIO)
            e2e_procs = await pipeline_two_processes(ctx, bus, backend, pipe_n)
            e2e_procs.compare_to(fetch, target=TARGET_RATIO)
            e2e_procs_each = await pipeline_two_processes(ctx, bus, backend, pipe_n, per_event=True)
            e2e_procs_each.compare_to(fetch, target=TARGET_RATIO)
            # A quarter of the events: the slowest run, and only its ratio to the untraced
            # run matters.
            traced = await pipeline_end_to_end(ctx, bus, backend, max(pipe_n // 4, 1), traced=True)
            traced.compare_to(fetch)
            bottleneck = min(parts[:3], key=lambda f: f.rate)
            e2e.extra["slowest_part"] = bottleneck.name.strip()
            figures += [e2e, e2e_batch, e2e_procs, e2e_procs_each, traced, *parts]
            console.print(
                f"events ({backend}), end to end against raw fetch+ack (target ≥ "
                f"{TARGET_RATIO * 100:.0f} %): as deployed (2 processes) "
                f"{_percent(e2e_procs)} with the batch handler, {_percent(e2e_procs_each)} "
                f"with a handler per event; in one process {_percent(e2e_batch)} and "
                f"{_percent(e2e)}; slowest part {bottleneck.name.strip()} at "
                f"{bottleneck.rate:,.0f} ev/s"
            )
    finally:
        await bus.close()
    return figures


__all__ = ["DESCRIPTION", "NAME", "run"]
