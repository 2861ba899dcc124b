"""SQLite under asyncio without a thread round trip per statement where none is needed.

SQLAlchemy's aiosqlite adapter makes three or four round trips to aiosqlite's connection
thread for every statement: open a cursor, execute, fetch the rows (a query), close the
cursor. Each round trip wakes two threads, about 45 µs of wall time on our 2-core machines,
against 2 µs for a small statement itself (PITFALLS.md: plain sqlite3 inserts 43,000
rows/s). A consumer handling an event with a few statements spent most of its time waking
threads. This driver keeps aiosqlite's thread and SQLAlchemy's adapter, and changes where
a statement runs:

* **On the thread, in one round trip** (`OneHopCursor`): execute, fetch every row, close,
  as one call; description, rows, rowcount and lastrowid come back together. Every
  statement that could wait goes this way: a read, the first write of a transaction
  (which may wait up to `busy_timeout` for another process's writer), BEGIN IMMEDIATE.
  Commit and rollback (the fsync) always do.
* **Inline, on the loop's thread**, once the transaction holds SQLite's write lock (it has
  run BEGIN IMMEDIATE or a write): SQLite has one writer, so nothing can then make a
  statement of this transaction wait for a lock, and in WAL mode readers never block it;
  what is left is the statement's own CPU work, microseconds for what our services do in
  a write transaction. So that a long run of such statements cannot starve the loop, the
  connection yields to it once every `INLINE_SLICE` seconds of inline work.

The lock is tracked per connection: set after BEGIN IMMEDIATE/EXCLUSIVE or a successful
INSERT, UPDATE, DELETE or REPLACE inside a transaction; cleared by commit, rollback, or any
COMMIT/END/ROLLBACK/BEGIN statement; and a statement runs inline only while sqlite3 says a
transaction is open. Misreading a statement can only send it to the thread, never inline
without the lock.

It relies on two members of aiosqlite's `Connection` that are not public (`_execute`, the
queue to its thread, and `_conn`, the sqlite3 connection); aiosqlite is pinned, and
`module()` refuses a version without them so a change shows at start-up, not under load.
The sqlite3 connection is opened with `check_same_thread=False` (`Database` passes it):
its statements are serialised by the adapter, never concurrent.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, Sequence[Any], int, int | None]

REQUIRED = ("_execute", "_conn")  # members of aiosqlite.Connection this module uses
INLINE_SLICE = 0.005  # seconds of inline statements before the loop gets a turn

_TAKES_LOCK = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")
_ENDS_TRANSACTION = ("COMMIT", "END", "ROLLBACK", "BEGIN")


def _lock_effect(operation: str) -> bool | None:
    """True: a successful `operation` inside a transaction holds the write lock; False: it
    ends or restarts the transaction; None: neither."""
    head = operation.lstrip()[:16].upper()
    if head.startswith(_TAKES_LOCK):
        return True
    if head.startswith(_ENDS_TRANSACTION) and not head.startswith("ROLLBACK TO"):
        return False
    return None


def _run_statement(
    conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> _Outcome:
    """The whole statement, rows included (on aiosqlite's thread or inline)."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else ()
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor: one round trip to aiosqlite's thread per statement, or none
    while its transaction holds the write lock."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # Not the base __init__: it opens an aiosqlite cursor (a round trip) up front.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None  # nothing is left open once execute() returns

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._run(operation, parameters, False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._run(operation, seq_of_parameters, True)

    def _run(self, operation: str, parameters: Any, many: bool) -> None:
        connection: OneHopConnection = self._adapt_connection  # type: ignore[assignment]
        try:
            outcome = await_(connection.run(operation, parameters, many))
        except Exception as error:
            connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection adapter, knowing whether its transaction holds
    SQLite's write lock."""

    __slots__ = ("_holds_write_lock", "_inline_since")
    _cursor_cls = OneHopCursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._holds_write_lock = False
        self._inline_since = 0.0  # when the loop last had a turn during inline work

    @property
    def holds_write_lock(self) -> bool:
        """Whether statements of the open transaction run inline (for tests and logs)."""
        return self._holds_write_lock and self._connection._conn.in_transaction

    async def run(self, operation: str, parameters: Any, many: bool) -> _Outcome:
        """Run one statement where it belongs (see the module docstring)."""
        raw: sqlite3.Connection = self._connection._conn
        effect = _lock_effect(operation)
        if self._may_run_inline(raw, effect):
            if time.monotonic() - self._inline_since > INLINE_SLICE:
                await asyncio.sleep(0)  # a long run of inline statements: let others in
                self._inline_since = time.monotonic()
            if self._may_run_inline(raw, effect):  # still, after that turn
                return _run_statement(raw, operation, parameters, many)
        self._holds_write_lock = False
        async with self._execute_mutex:
            outcome: _Outcome = await self._connection._execute(
                _run_statement, raw, operation, parameters, many
            )
        if effect and raw.in_transaction:
            self._holds_write_lock = True
            self._inline_since = time.monotonic()
        return outcome

    def _may_run_inline(self, raw: sqlite3.Connection, effect: bool | None) -> bool:
        return (
            self._holds_write_lock
            and raw.in_transaction
            and effect is not False
            # A statement of this connection still on the thread (two tasks sharing one
            # connection, which SQLAlchemy forbids but the adapter's mutex tolerates): queue
            # behind it there rather than touch the connection from two threads at once.
            and not self._execute_mutex.locked()
        )

    def commit(self) -> None:
        self._holds_write_lock = False
        super().commit()

    def rollback(self) -> None:
        self._holds_write_lock = False
        super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI shim, handing out `OneHopConnection`s."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        creator_fn = kw.pop("async_creator_fn", None)
        connection = creator_fn(*arg, **kw) if creator_fn else self.aiosqlite.connect(*arg, **kw)
        if not creator_fn:
            connection._thread.daemon = True  # as SQLAlchemy's shim: never hold up exit
        return OneHopConnection(self, await_(connection))


def module() -> OneHopDBAPI:
    """The DBAPI module to give `create_async_engine(..., module=...)` for sqlite+aiosqlite."""
    missing = [name for name in REQUIRED if not hasattr(aiosqlite.Connection, name)]
    if missing:
        raise RuntimeError(
            f"aiosqlite {aiosqlite.__version__} lacks {', '.join(missing)}: "
            "libs/common/sqlite_driver.py needs updating for it"
        )
    return OneHopDBAPI(aiosqlite, sqlite3)
