"""SQLite under asyncio with one thread round trip per statement.

SQLAlchemy's aiosqlite adapter makes three or four round trips to aiosqlite's connection
thread for every statement: open a cursor, execute, fetch the rows (a query), close the
cursor. Each round trip wakes two threads, about 45 µs of wall time on our 2-core machines,
against 2 µs for the statement itself (PITFALLS.md: plain sqlite3 inserts 43,000 rows/s).
So a consumer handling one event with three statements spent most of its time waking
threads.

`OneHopCursor` runs the whole statement (execute, fetch every row, close) as one call on
the connection's thread and hands back description, rows, rowcount and lastrowid together.
The statement still runs off the event loop, so a long query, an fsync or a wait on another
process's write lock never blocks it. Everything else (connection set-up, commit, rollback,
isolation level, termination, server-side cursors) is SQLAlchemy's aiosqlite adapter as is.

It relies on two members of aiosqlite's `Connection` that are not public (`_execute`, the
queue to its thread, and `_conn`, the sqlite3 connection); aiosqlite is pinned, and
`module()` refuses a version without them so a change shows at start-up, not under load.
"""

from __future__ import annotations

import collections
import sqlite3
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


def _run_statement(
    conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> _Outcome:
    """On the connection's thread: the whole statement, rows included."""
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
    """A client-side cursor whose `execute` is one call on aiosqlite's thread."""

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
        return None  # nothing is open on the thread once execute() returns

    def close(self) -> None:
        self._rows.clear()

    async def _on_thread(self, operation: str, parameters: Any, many: bool) -> _Outcome:
        async with self._adapt_connection._execute_mutex:
            connection = self._connection
            outcome: _Outcome = await connection._execute(
                _run_statement, connection._conn, operation, parameters, many
            )
            return outcome

    def _take(self, outcome: _Outcome) -> None:
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> None:
        try:
            self._take(await_(self._on_thread(operation, parameters, False)))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        try:
            self._take(await_(self._on_thread(operation, seq_of_parameters, True)))
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor  # type: ignore[assignment]


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
