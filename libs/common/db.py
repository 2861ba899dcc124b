"""Database engine and sessions for SQLite (embedded) and PostgreSQL (production).

Async sessions everywhere: a sync Session dependency under FastAPI's thread pool deadlocks at
64 concurrent connections (PITFALLS.md). SQLite allows one writer, so writes in one process
are serialised by an asyncio lock instead of letting connections fight over the file lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import registry as sa_registry

from libs.common import sqlite_driver

# Explicit constraint names so migrations are stable across SQLite and PostgreSQL.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Execution option naming the statement that opens a SQLite transaction ("BEGIN" if unset).
SQLITE_BEGIN_OPTION = "sa_sqlite_begin"


def make_registry() -> sa_registry:
    """A registry (and metadata) of one service's own tables, with the naming convention."""
    return sa_registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def async_url(url: str) -> str:
    """The async-driver form of a database URL (aiosqlite / asyncpg)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return u.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if u.get_backend_name() == "postgresql":
        return u.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database backend {u.get_backend_name()!r}")


def sync_url(url: str) -> str:
    """The sync-driver form of a database URL (sqlite3 / psycopg), for Alembic."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return u.set(drivername="sqlite").render_as_string(hide_password=False)
    if u.get_backend_name() == "postgresql":
        return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database backend {u.get_backend_name()!r}")


class Database:
    """One service's database: engine, session factory, and the SQLite writer lock."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 20,
        max_overflow: int = 20,
        sqlite_synchronous: str = "FULL",
    ) -> None:
        self.url = async_url(url)
        self.is_sqlite = make_url(self.url).get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            # A statement takes one round trip to aiosqlite's thread, or none under the write
            # lock (libs/common/sqlite_driver.py).
            kwargs["module"] = sqlite_driver.module()
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, synchronous=sqlite_synchronous)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: a write session takes the write lock at BEGIN (IMMEDIATE), on aiosqlite's
        # thread, so none of its statements can wait for a lock after that (they run inline,
        # libs/common/sqlite_driver.py) and a read-then-write transaction never fails with
        # SQLITE_BUSY_SNAPSHOT when another process wrote in between.
        self._write_sessionmaker = (
            async_sessionmaker(
                self.engine,
                expire_on_commit=False,
                execution_options={SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"},
            )
            if self.is_sqlite
            else self.sessionmaker
        )
        # Only one writer at a time may hold SQLite; PostgreSQL needs no such lock.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (or for a caller that manages its own transaction)."""
        async with self.sessionmaker() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """A session for a write transaction; the caller commits. Holds the writer lock."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self._write_sessionmaker() as session:
            try:
                yield session
            finally:
                # Whatever the caller did not commit is undone before the lock is released.
                if session.in_transaction():
                    await session.rollback()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine, *, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook issue BEGIN itself (pysqlite's implicit
        # transactions otherwise defer it and break SAVEPOINT handling).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # FULL: a committed row (an outbox event is a person's care) survives power loss.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "BEGIN"))


_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


class DriverInsert:
    """A multi-row INSERT sent straight through the database driver (hot paths only).

    SQLAlchemy's executemany runs its per-row bookkeeping for every row: for the inbox
    claim (INSERT … ON CONFLICT DO NOTHING RETURNING, 256 rows a batch) that cost 12 µs of
    CPU per row on SQLite, where the database itself needs 5.4 µs. Here the statement is
    rendered once per dialect and row count (the dialect's quoting and placeholders), and
    each column's own bind processor still converts its values, so what is stored is what
    SQLAlchemy would have stored; a value repeated from the previous row (a batch's shared
    timestamp) is converted once. Rows are sent in statements of at most `MAX_PARAMS`
    parameters (under SQLite's historical limit of 999).
    """

    MAX_PARAMS = 900

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        do_nothing_on_conflict: Sequence[str] = (),
        returning: str | None = None,
    ) -> None:
        self.table = table
        self.columns = list(columns)
        self.conflict = list(do_nothing_on_conflict)
        self.returning = returning
        self.rows_per_statement = max(1, self.MAX_PARAMS // len(self.columns))
        self._sql: dict[tuple[str, int], str] = {}
        self._processors: dict[str, list[Any]] = {}

    def sql(self, dialect: Dialect, rows: int) -> str:
        key = (dialect.name, rows)
        cached = self._sql.get(key)
        if cached is not None:
            return cached
        quote = dialect.identifier_preparer.quote
        width = len(self.columns)
        if dialect.paramstyle == "numeric_dollar":
            values = ", ".join(
                "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
                for r in range(rows)
            )
        elif dialect.paramstyle in _PLACEHOLDERS:
            one = "(" + ", ".join([_PLACEHOLDERS[dialect.paramstyle]] * width) + ")"
            values = ", ".join([one] * rows)
        else:  # pragma: no cover - every driver we ship is one of the above
            raise NotImplementedError(f"paramstyle {dialect.paramstyle!r}")
        sql = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(self.table)} "
            f"({', '.join(quote(c) for c in self.columns)}) VALUES {values}"
        )
        if self.conflict:
            sql += f" ON CONFLICT ({', '.join(quote(c) for c in self.conflict)}) DO NOTHING"
        if self.returning is not None:
            sql += f" RETURNING {quote(self.returning)}"
        self._sql[key] = sql
        return sql

    def _converters(self, dialect: Dialect) -> list[Any]:
        found = self._processors.get(dialect.name)
        if found is None:
            found = [
                self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in self.columns
            ]
            self._processors[dialect.name] = found
        return found

    def _convert(self, dialect: Dialect, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """The rows' values, flat, each through its column's bind processor."""
        converters = self._converters(dialect)
        if not any(converters):
            return [value for row in rows for value in row]
        flat: list[Any] = []
        last_in: list[Any] = [object()] * len(converters)
        last_out: list[Any] = [None] * len(converters)
        for row in rows:
            for i, value in enumerate(row):
                convert = converters[i]
                if convert is None or value is None:
                    flat.append(value)
                elif value is last_in[i]:
                    flat.append(last_out[i])
                else:
                    last_in[i], last_out[i] = value, convert(value)
                    flat.append(last_out[i])
        return flat

    async def execute(self, session: AsyncSession, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Insert `rows` (tuples in `columns` order) in the session's transaction; the
        `returning` column of each row inserted (all of them without a conflict clause)."""
        if not rows:
            return []
        connection = await session.connection()
        dialect = connection.dialect
        width = len(self.columns)
        flat = self._convert(dialect, rows)
        returned: list[Any] = []
        step = self.rows_per_statement
        for start in range(0, len(rows), step):
            count = min(step, len(rows) - start)
            params = tuple(flat[start * width : (start + count) * width])
            result = await connection.exec_driver_sql(self.sql(dialect, count), params)
            if self.returning is not None:
                returned.extend(row[0] for row in result)
        return returned
