"""Group commit: concurrent write requests share one transaction.

On SQLite every write transaction costs a writer-lock hold, a BEGIN/COMMIT round trip through
aiosqlite's thread and an fsync; under concurrent load requests queue for the lock. The
`GroupCommitter` takes the requests waiting at a moment and runs them in ONE unit of work,
each inside its own SAVEPOINT: a request that fails rolls back alone (its rows and its
events), the others commit together. A caller is answered only after that commit, so a
success is as durable as with a transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from libs.common.events.uow import UnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[UnitOfWork], Awaitable[Any]]


class GroupCommitter:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], *, max_batch: int = 128) -> None:
        self._uow_factory = uow_factory
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Operation, asyncio.Future[Any]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.operations = 0

    async def submit(self, operation: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run `operation(uow)` in the next group transaction; it must not commit itself."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((operation, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="group-commit")
        return await future

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
            _op, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the service is stopping"))

    async def _run(self) -> None:
        while not self._queue.empty():
            batch = [self._queue.get_nowait()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Operation, asyncio.Future[Any]]]) -> None:
        live = [(op, future) for op, future in batch if not future.done()]
        if not live:
            return
        # Optimistic: every operation in one transaction, its inserts flushed together at
        # the commit. Almost every request succeeds, and this costs one round trip less per
        # request than a savepoint each.
        results: list[Any] = []
        try:
            async with self._uow_factory() as uow:
                for operation, _future in live:
                    results.append(await operation(uow))
                await uow.commit()
        except Exception:
            # Something failed: redo the batch one savepoint per operation, so only the
            # failing ones fail (the first attempt was rolled back as a whole).
            await self._commit_isolated(live)
            return
        self._settle(
            [(future, result) for (_op, future), result in zip(live, results, strict=True)]
        )

    async def _commit_isolated(self, batch: list[tuple[Operation, asyncio.Future[Any]]]) -> None:
        done: list[tuple[asyncio.Future[Any], Any]] = []
        try:
            async with self._uow_factory() as uow:
                for operation, future in batch:
                    if future.done():  # the caller went away before we started
                        continue
                    savepoint = await uow.session.begin_nested()
                    mark = len(uow.events)
                    try:
                        result = await operation(uow)
                        await savepoint.commit()
                    except Exception as exc:
                        if savepoint.is_active:
                            await savepoint.rollback()
                        del uow.events[mark:]  # its events go with its rows
                        future.set_exception(exc)
                        continue
                    done.append((future, result))
                await uow.commit()
        except Exception as exc:
            log.warning("group commit of %d operations failed", len(done), exc_info=True)
            for future, _ in done:
                if not future.done():
                    future.set_exception(exc)
            return
        self._settle(done)

    def _settle(self, done: list[tuple[asyncio.Future[Any], Any]]) -> None:
        self.batches += 1
        self.operations += len(done)
        for future, result in done:
            if not future.done():
                future.set_result(result)
