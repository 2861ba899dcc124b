"""The event pipeline as it runs in production: producer and consumer in separate processes.

A producing service (e.g. needs) writes state + outbox in one transaction and its relay
publishes; a consuming service (e.g. matching) claims each event in its inbox and writes
its effect in the same transaction. They are different processes with different
databases, so the end-to-end figure here runs them that way:

    python -m bench.pipeline_procs produce DB_URL NATS_URL N
    python -m bench.pipeline_procs consume DB_URL NATS_URL N [--per-event]

Each prints one JSON line with wall-clock timestamps; `run_two_process_pipeline` starts
both against one nats-server and reports N / (last effect committed − first write).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.bench_events import effect, make_event, metadata, state, tables
from libs.common.db import Database
from libs.common.events import (
    ConsumerWorker,
    Event,
    EventBus,
    OutboxRelay,
    Subscription,
    UnitOfWork,
)

TXN_SIZE = 500
FETCH_BATCH = 256
DURABLE = "bench-pipeline"

# The same tables and events as the in-process pipeline figures (bench_events), so the
# one- and two-process results measure the same work.
_event = make_event


async def _open(db_url: str, nats_url: str, name: str) -> tuple[Database, EventBus]:
    db = Database(db_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    bus = EventBus(nats_url, name=name)
    await bus.connect()
    await bus.ensure_streams()
    return db, bus


async def produce(db_url: str, nats_url: str, n: int) -> dict[str, Any]:
    db, bus = await _open(db_url, nats_url, "bench-producer")
    relay = OutboxRelay(db=db, tables=tables, bus=bus, batch_size=500, poll_interval=0.01)
    relay_task = asyncio.create_task(relay.run())
    started = time.time()
    cpu_started = time.process_time()
    for start in range(0, n, TXN_SIZE):
        events = [_event(i) for i in range(start, min(start + TXN_SIZE, n))]
        async with UnitOfWork(db=db, tables=tables, on_commit=relay.notify) as uow:
            await uow.session.execute(
                state.insert(),
                [{"need_id": e.data["need_id"], "seq": e.data["seq"]} for e in events],
            )
            for e in events:
                uow.emit(e)
            await uow.commit()
    written = time.time()
    while relay.published_total < n:  # noqa: ASYNC110 - polls a counter, 5 ms resolution
        await asyncio.sleep(0.005)
    published = time.time()
    cpu = time.process_time() - cpu_started
    relay.stop()
    await relay_task
    await bus.close()
    await db.dispose()
    return {"started": started, "written": written, "published": published, "cpu": cpu}


async def _effects_batch(uow: UnitOfWork, events: Sequence[Event]) -> None:
    if events:
        await uow.session.execute(
            effect.insert(), [{"event_id": e.id, "seq": e.data["seq"]} for e in events]
        )


async def _effect_one(uow: UnitOfWork, event: Event) -> None:
    await uow.session.execute(effect.insert().values(event_id=event.id, seq=event.data["seq"]))


async def consume(db_url: str, nats_url: str, n: int, *, per_event: bool) -> dict[str, Any]:
    db, bus = await _open(db_url, nats_url, "bench-consumer")
    worker = ConsumerWorker(
        subscription=Subscription(
            durable=DURABLE,
            stream="NEEDS",
            subjects=["sa.needs.>"],
            handler=_effect_one if per_event else None,
            batch_handler=None if per_event else _effects_batch,
        ),
        bus=bus,
        tables=tables,
        uow_factory=lambda: UnitOfWork(db=db, tables=tables),
        batch_size=FETCH_BATCH,
        fetch_timeout=0.2,
    )
    await worker.start()
    print(json.dumps({"ready": True}), flush=True)
    task = asyncio.create_task(worker.run())
    first: float | None = None
    cpu_started = time.process_time()
    while worker.handled_total < n:
        if first is None and worker.handled_total:
            first = time.time()
        await asyncio.sleep(0.002)
    done = time.time()
    cpu = time.process_time() - cpu_started  # from ready, idle wait for the first included
    worker.stop()
    await task
    async with db.session() as s:
        effects = (await s.execute(select(func.count()).select_from(effect))).scalar_one()
        inbox = (await s.execute(select(func.count()).select_from(tables.inbox))).scalar_one()
    await bus.close()
    await db.dispose()
    return {"first": first, "done": done, "effects": effects, "inbox": inbox, "cpu": cpu}


@dataclass
class TwoProcessResult:
    n: int
    seconds: float
    rate: float
    producer: dict[str, Any]
    consumer: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.consumer.get("effects") == self.n and self.consumer.get("inbox") == self.n


def run_two_process_pipeline(
    *,
    workdir: Path,
    nats_url: str,
    n: int,
    per_event: bool = False,
    db_urls: tuple[str, str] | None = None,
) -> TwoProcessResult:
    """Start the consumer, then the producer, each in its own process; wait for both."""
    producer_db, consumer_db = db_urls or (
        f"sqlite+aiosqlite:///{workdir / 'producer.db'}",
        f"sqlite+aiosqlite:///{workdir / 'consumer.db'}",
    )
    cmd = [sys.executable, "-m", "bench.pipeline_procs"]
    consumer = subprocess.Popen(
        [*cmd, "consume", consumer_db, nats_url, str(n), *(["--per-event"] if per_event else [])],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert consumer.stdout is not None
    ready = consumer.stdout.readline()
    if not ready:
        raise RuntimeError("bench consumer did not start")
    producer = subprocess.run(
        [*cmd, "produce", producer_db, nats_url, str(n)], capture_output=True, text=True, check=True
    )
    out, _ = consumer.communicate(timeout=600)
    prod = json.loads(producer.stdout.strip().splitlines()[-1])
    cons = json.loads(out.strip().splitlines()[-1])
    seconds = cons["done"] - prod["started"]
    return TwoProcessResult(n=n, seconds=seconds, rate=n / seconds, producer=prod, consumer=cons)


def main(argv: Sequence[str]) -> None:
    import uvloop  # as the services run (libs.common.service.serve)

    from libs.common.service import tune_gc

    tune_gc()
    mode, db_url, nats_url, n = argv[0], argv[1], argv[2], int(argv[3])
    if mode == "produce":
        result = uvloop.run(produce(db_url, nats_url, n))
    elif mode == "consume":
        result = uvloop.run(consume(db_url, nats_url, n, per_event="--per-event" in argv))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
