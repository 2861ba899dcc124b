"""Group commit against a real database: concurrent requests share transactions, batch
operations see every waiting item at once, and a failure costs only the failing request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from libs.common.events import UnitOfWork, new_event
from libs.common.events.group import GroupCommitter
from tests.support.eventkit import Kit, effect

pytestmark = pytest.mark.usefixtures("nats_url")


@pytest.fixture
async def kit(database_url: str, nats_url: str) -> AsyncIterator[Kit]:
    k = await Kit(database_url, nats_url).open()
    yield k
    await k.close()


BREAKS = 1313


class Refused(ValueError):
    pass


class Recorder:
    """A batch operation writing one effect row and one event per accepted item.

    Negative items are refused (bad input: nothing written); the item `BREAKS` breaks the
    statement for the whole batch (a database error), the way a constraint would.
    """

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    async def __call__(self, uow: UnitOfWork, items: Sequence[int]) -> list[Any]:
        self.calls.append(list(items))
        if BREAKS in items:
            raise RuntimeError("the statement failed for the whole batch")
        accepted = [i for i in items if i >= 0]
        if accepted:
            await uow.session.execute(
                effect.insert(), [{"event_id": f"e{i}", "value": i} for i in accepted]
            )
            for i in accepted:
                uow.emit(new_event(service="needs", entity="need", verb="opened", data={"v": i}))
        return [i * 10 if i >= 0 else Refused(f"item {i} refused") for i in items]


async def outcomes(group: GroupCommitter, op: Recorder, items: Sequence[int]) -> list[Any]:
    return await asyncio.gather(*(group.submit_item(op, i) for i in items), return_exceptions=True)


async def test_waiting_items_reach_the_batch_operation_together(kit: Kit) -> None:
    group, op = GroupCommitter(kit.uow), Recorder()
    results = await outcomes(group, op, range(40))
    assert results == [i * 10 for i in range(40)]
    assert len(op.calls) < 40 and sum(len(c) for c in op.calls) == 40
    assert max(len(c) for c in op.calls) > 1  # items really shared a call
    assert sorted(v for _, v in await kit.effects()) == list(range(40))
    assert await kit.pending() == 40  # one outbox event per item, same commits
    assert group.operations == 40 and group.batches == len(op.calls)


async def test_a_refused_item_fails_alone_and_writes_nothing(kit: Kit) -> None:
    group, op = GroupCommitter(kit.uow), Recorder()
    results = await outcomes(group, op, [1, -1, 2, -2, 3])
    assert results[0::2] == [10, 20, 30]
    assert all(isinstance(r, Refused) for r in results[1::2])
    assert sorted(v for _, v in await kit.effects()) == [1, 2, 3]
    assert await kit.pending() == 3
    assert group.operations == 3


async def test_a_batch_that_raises_is_redone_one_item_at_a_time(kit: Kit) -> None:
    group, op = GroupCommitter(kit.uow), Recorder()
    results = await outcomes(group, op, [5, BREAKS, 6, -7, 8])
    assert results[0] == 50 and results[2] == 60 and results[4] == 80
    assert isinstance(results[1], RuntimeError)  # the database error, for its item only
    assert isinstance(results[3], Refused)
    # The shared attempt was rolled back whole, then each item ran alone in a savepoint.
    assert [5] in op.calls and [BREAKS] in op.calls and [8] in op.calls
    assert sorted(v for _, v in await kit.effects()) == [5, 6, 8]
    assert await kit.pending() == 3  # no event of the failed or refused items


async def test_operations_and_batch_items_share_one_group(kit: Kit) -> None:
    group, op = GroupCommitter(kit.uow), Recorder()

    async def plain(uow: UnitOfWork) -> str:
        await uow.session.execute(effect.insert().values(event_id="plain", value=100))
        return "plain"

    results = await asyncio.gather(
        group.submit_item(op, 1), group.submit(plain), group.submit_item(op, 2)
    )
    assert results == [10, "plain", 20]
    assert sorted(v for _, v in await kit.effects()) == [1, 2, 100]
    assert group.batches == 1  # all three waited together and committed once


def caller_context(trace_id: int) -> Any:
    """An OTel context whose current span belongs to trace `trace_id`."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    span = NonRecordingSpan(
        SpanContext(trace_id=trace_id, span_id=trace_id, is_remote=False, trace_flags=TraceFlags(1))
    )
    return trace.set_span_in_context(span)


async def stored_trace_ids(kit: Kit) -> dict[int, str | None]:
    """Outbox events by their `v`: the trace id of their traceparent, if any."""
    import json

    from sqlalchemy import select

    from tests.support.eventkit import tables

    async with kit.db.session() as s:
        rows = (await s.execute(select(tables.outbox.c.headers, tables.outbox.c.body))).all()
    out: dict[int, str | None] = {}
    for headers, body in rows:
        parent = json.loads(headers).get("traceparent")
        out[json.loads(body)["v"]] = parent.split("-")[1] if parent else None
    return out


async def test_each_operation_runs_in_its_callers_trace_and_batches_in_none(kit: Kit) -> None:
    """The worker task is started by one caller; no other caller's events may join its trace."""
    from opentelemetry import context as otel_context

    group, op = GroupCommitter(kit.uow), Recorder()

    def emitter(v: int) -> Any:
        async def operation(uow: UnitOfWork) -> int:
            uow.emit(new_event(service="needs", entity="need", verb="opened", data={"v": v}))
            return v

        return operation

    async def call(v: int, trace_id: int, *, batch: bool = False) -> Any:
        token = otel_context.attach(caller_context(trace_id))
        try:
            if batch:
                return await group.submit_item(op, v)
            return await group.submit(emitter(v))
        finally:
            otel_context.detach(token)

    results = await asyncio.gather(
        call(1001, 0xA1), call(1002, 0xA2), call(7, 0xA3, batch=True), call(1004, 0xA4)
    )
    assert results == [1001, 1002, 70, 1004]
    assert group.batches == 1  # they did share the worker and its transaction
    traces = await stored_trace_ids(kit)
    assert traces == {
        1001: f"{0xA1:032x}",
        1002: f"{0xA2:032x}",
        7: None,  # a batch item's event carries the item's own trace or none: not 0xA1's
        1004: f"{0xA4:032x}",
    }
