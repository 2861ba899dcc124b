"""Group commit: concurrent write requests share one transaction.

On SQLite every write transaction costs a writer-lock hold, a BEGIN/COMMIT round trip through
aiosqlite's thread and an fsync; under concurrent load requests queue for the lock. The
`GroupCommitter` takes the requests waiting at a moment and runs them in ONE unit of work.
A caller is answered only after that commit, so a success is as durable as with a
transaction of its own.

Two kinds of request:

* `submit(operation)`: any `operation(uow)`; the operations of a group run one after the
  other in the shared transaction.
* `submit_item(batch, item)`: one item for a `BatchOperation`, which receives every waiting
  item of the group at once (`batch(uow, items)`), so a hot path can read what all of them
  need with one query and write all rows with one statement, instead of a round trip
  through the database thread per request. It returns one result per item, in order; an
  item it refuses (bad input) gets an exception instead, and must have written and
  emitted nothing.

If anything raises out of the shared transaction, it is rolled back whole and the group is
redone one request per SAVEPOINT (an item alone in its batch): only the failing ones fail.

Trace context: the worker runs in an empty context, not in the context of whichever
request happened to start it (else every event of its groups would join that request's
trace). An `operation` runs in its caller's trace context, captured at submission. A batch
operation serves several callers at once, so an event it emits for an item takes the
item's own trace (e.g. `current_traceparent()` stored in the item by the caller);
without one it carries none, never another request's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from opentelemetry import context as otel_context

from libs.common.events.uow import UnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")
ItemT = TypeVar("ItemT")
Operation = Callable[[UnitOfWork], Awaitable[Any]]
#: `batch(uow, items)` → one result (or the exception refusing it) per item, in order.
BatchOperation = Callable[[UnitOfWork, Sequence[Any]], Awaitable[Sequence[Any]]]


@dataclass
class _Request(Generic[T]):
    future: asyncio.Future[T]
    operation: Operation | None = None  # submit()
    batch: BatchOperation | None = None  # submit_item()
    item: Any = None
    # The caller's trace context, current while its `operation` runs.
    trace: otel_context.Context | None = None


class GroupCommitter:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], *, max_batch: int = 128) -> None:
        self._uow_factory = uow_factory
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Request[Any]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.operations = 0

    async def submit(self, operation: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run `operation(uow)` in the next group transaction; it must not commit itself."""
        request = _Request(self._future(), operation=operation, trace=otel_context.get_current())
        return await self._enqueue(request)

    async def submit_item(self, batch: BatchOperation, item: Any) -> Any:
        """Hand `item` to `batch` in the next group transaction; its result, or raise the
        exception `batch` gave for it."""
        return await self._enqueue(_Request(self._future(), batch=batch, item=item))

    @staticmethod
    def _future() -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, request: _Request[T]) -> T:
        self._queue.put_nowait(request)
        if self._worker is None or self._worker.done():
            # A fresh context: not the trace (nor any other context variable) of this caller.
            self._worker = asyncio.create_task(
                self._run(), name="group-commit", context=contextvars.Context()
            )
        return await request.future

    async def close(self, *, grace: float = 5.0) -> None:
        """Let the batch in hand commit (up to `grace` seconds); refuse what is left."""
        if self._worker is not None and not self._worker.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), timeout=grace)
            except TimeoutError:
                self._worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._worker
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if not request.future.done():
                request.future.set_exception(RuntimeError("the service is stopping"))

    async def _run(self) -> None:
        while not self._queue.empty():
            group = [self._queue.get_nowait()]
            while len(group) < self.max_batch and not self._queue.empty():
                group.append(self._queue.get_nowait())
            await self._commit(group)

    async def _commit(self, group: list[_Request[Any]]) -> None:
        live = [r for r in group if not r.future.done()]
        if not live:
            return
        # Optimistic: every request in one transaction. Almost every request succeeds, and
        # this costs one round trip less per request than a savepoint each.
        outcomes: dict[int, Any] = {}  # id(request) → result or refusing exception
        try:
            async with self._uow_factory() as uow:
                for run in _runs(live):
                    outcomes.update(await _execute(uow, run))
                await uow.commit()
        except Exception:
            # Something failed: redo the group one savepoint per request, so only the
            # failing ones fail (the first attempt was rolled back as a whole).
            await self._commit_isolated(live)
            return
        self._settle([(r.future, outcomes[id(r)]) for r in live])

    async def _commit_isolated(self, group: list[_Request[Any]]) -> None:
        done: list[tuple[asyncio.Future[Any], Any]] = []
        try:
            async with self._uow_factory() as uow:
                for request in group:
                    if request.future.done():  # the caller went away before we started
                        continue
                    savepoint = await uow.session.begin_nested()
                    mark = len(uow.events)
                    try:
                        outcome = (await _execute(uow, [request]))[id(request)]
                        await savepoint.commit()
                    except Exception as exc:
                        if savepoint.is_active:
                            await savepoint.rollback()
                        del uow.events[mark:]  # its events go with its rows
                        request.future.set_exception(exc)
                        continue
                    done.append((request.future, outcome))
                await uow.commit()
        except Exception as exc:
            log.warning("group commit of %d requests failed", len(done), exc_info=True)
            for future, _ in done:
                if not future.done():
                    future.set_exception(exc)
            return
        self._settle(done)

    def _settle(self, done: list[tuple[asyncio.Future[Any], Any]]) -> None:
        self.batches += 1
        for future, outcome in done:
            if isinstance(outcome, _Refused):
                if not future.done():
                    future.set_exception(outcome.error)
                continue
            self.operations += 1  # committed
            if not future.done():
                future.set_result(outcome)


@dataclass(frozen=True)
class _Refused:
    """A batch operation's refusal of one item (its rows and events were never written)."""

    error: BaseException


def _runs(requests: list[_Request[Any]]) -> list[list[_Request[Any]]]:
    """Consecutive requests for the same batch operation, as one run each (order kept)."""
    runs: list[list[_Request[Any]]] = []
    for r in requests:
        if runs and r.batch is not None and runs[-1][-1].batch is r.batch:
            runs[-1].append(r)
        else:
            runs.append([r])
    return runs


async def _execute(uow: UnitOfWork, run: list[_Request[Any]]) -> dict[int, Any]:
    """Outcomes of one run: an operation alone, or a batch operation's items together."""
    first = run[0]
    if first.operation is not None:
        token = otel_context.attach(first.trace) if first.trace is not None else None
        try:
            return {id(first): await first.operation(uow)}
        finally:
            if token is not None:
                otel_context.detach(token)
    assert first.batch is not None
    results = await first.batch(uow, [r.item for r in run])
    if len(results) != len(run):
        raise RuntimeError(f"batch operation returned {len(results)} results for {len(run)}")
    return {
        id(r): _Refused(res) if isinstance(res, BaseException) else res
        for r, res in zip(run, results, strict=True)
    }
