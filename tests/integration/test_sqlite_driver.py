"""The SQLite driver (`libs.common.sqlite_driver`): one round trip to aiosqlite's thread for
a statement that could wait, none under the write lock; the same results and errors as
SQLAlchemy's own adapter; the loop never waits for a lock nor starves.

SQLite only, whatever DATABASE_URL says: the driver is what `Database` uses for SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from libs.common import sqlite_driver
from libs.common.db import Database

metadata = MetaData()
rows_table = Table(
    "driver_rows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("n", Integer, nullable=True),
)


class Ticker:
    """Counts turns the event loop gives a task that sleeps 1 ms at a time."""

    def __init__(self) -> None:
        self.ticks = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        stop = asyncio.Event()

        async def tick() -> None:
            while not stop.is_set():
                self.ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(tick())
        await asyncio.sleep(0)
        self.ticks = 0
        try:
            yield
        finally:
            stop.set()
            await task


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'driver.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every call queued to an aiosqlite connection's thread, by function name."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    yield calls


async def test_the_database_uses_the_one_hop_driver(db: Database) -> None:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, aiosqlite.Connection)
        assert isinstance(raw.dbapi_connection, sqlite_driver.OneHopConnection)


async def test_reads_and_the_first_write_go_to_the_thread_later_writes_run_inline(
    db: Database, round_trips: list[str]
) -> None:
    async with db.engine.connect() as conn:
        adapter = (await conn.get_raw_connection()).dbapi_connection
        await conn.execute(select(rows_table.c.id))  # BEGIN (deferred) and a read
        round_trips.clear()
        await conn.execute(select(rows_table.c.name))
        assert len(round_trips) == 1, "a read: one round trip"
        await conn.execute(insert(rows_table).values(name="a", n=1))
        assert len(round_trips) == 2, "the first write: one round trip (it may wait)"
        assert adapter.holds_write_lock
        result = await conn.execute(select(rows_table.c.name, rows_table.c.n))
        assert result.all() == [("a", 1)]
        await conn.execute(insert(rows_table), [{"name": "b", "n": 2}, {"name": "c", "n": 3}])
        await conn.exec_driver_sql("UPDATE driver_rows SET n = n + 1")
        assert len(round_trips) == 2, "statements under the write lock run inline"
        await conn.commit()
        assert len(round_trips) == 3, "the commit (and its fsync) on the thread"
        assert not adapter.holds_write_lock
        await conn.execute(select(rows_table.c.n))
        assert len(round_trips) == 5, "a new transaction: BEGIN and the read on the thread"
        await conn.rollback()
    async with db.session() as s:
        assert (
            await s.execute(select(rows_table.c.n).order_by(rows_table.c.n))
        ).scalars().all() == [
            2,
            3,
            4,
        ]


async def test_a_write_session_takes_the_lock_at_begin(
    db: Database, tmp_path: Path, round_trips: list[str]
) -> None:
    other = sqlite3.connect(tmp_path / "driver.db", timeout=0)
    try:
        async with db.write_session() as session:
            await session.execute(select(rows_table.c.id))  # BEGIN IMMEDIATE, then inline
            assert round_trips == ["_run_statement"], round_trips
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # held before this session wrote anything
            await session.execute(insert(rows_table).values(name="w", n=1))
            await session.execute(select(rows_table.c.name))
            assert len(round_trips) == 1, round_trips
            await session.commit()
        other.execute("BEGIN IMMEDIATE")  # released with the commit
        other.rollback()
    finally:
        other.close()


async def test_waiting_for_a_writer_elsewhere_leaves_the_loop_free(
    db: Database, tmp_path: Path
) -> None:
    """The wait for the lock (BEGIN IMMEDIATE, busy_timeout) happens on the thread."""
    other = sqlite3.connect(tmp_path / "driver.db", timeout=0)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO driver_rows (name, n) VALUES ('other', 0)")
    ticker = Ticker()
    asyncio.get_running_loop().call_later(0.3, other.commit)
    try:
        async with ticker.running(), db.write_session() as session:
            await session.execute(insert(rows_table).values(name="mine", n=1))
            await session.commit()
    finally:
        other.close()
    assert ticker.ticks >= 10, ticker.ticks  # the loop ran while we waited 0.3 s
    async with db.session() as s:
        names = (await s.execute(select(rows_table.c.name).order_by(rows_table.c.n))).scalars()
        assert names.all() == ["other", "mine"]


async def test_a_long_run_of_inline_statements_gives_the_loop_turns(db: Database) -> None:
    ticker = Ticker()
    async with ticker.running(), db.write_session() as session:
        started = time.monotonic()
        for i in range(3000):
            await session.execute(insert(rows_table).values(name=f"r{i}", n=i))
        took = time.monotonic() - started
        await session.commit()
    assert took > 4 * sqlite_driver.INLINE_SLICE, "the run was meant to be long"
    # Without the slice the loop would get no turn at all until the commit.
    assert ticker.ticks >= 3, (ticker.ticks, took)


async def test_savepoints_roll_back_alone_under_the_write_lock(db: Database) -> None:
    async with db.write_session() as session:
        await session.execute(insert(rows_table).values(name="kept", n=1))
        nested = await session.begin_nested()
        await session.execute(insert(rows_table).values(name="undone", n=2))
        await nested.rollback()
        with pytest.raises(IntegrityError):  # inline, and only the statement fails
            await session.execute(insert(rows_table).values(name="kept", n=3))
        await session.execute(insert(rows_table).values(name="after", n=4))
        await session.commit()
    async with db.session() as s:
        rows = (await s.execute(select(rows_table.c.name, rows_table.c.n))).all()
    assert sorted(rows) == [("after", 4), ("kept", 1)]


async def test_a_transaction_ended_in_sql_gives_up_the_inline_path(
    db: Database, round_trips: list[str]
) -> None:
    async with db.engine.connect() as conn:
        adapter = (await conn.get_raw_connection()).dbapi_connection
        await conn.execute(insert(rows_table).values(name="a", n=1))
        assert adapter.holds_write_lock
        await conn.exec_driver_sql("COMMIT")
        await conn.exec_driver_sql("BEGIN")
        assert not adapter.holds_write_lock
        round_trips.clear()
        await conn.execute(select(rows_table.c.name))
        assert len(round_trips) == 1, "a read in a new deferred transaction: on the thread"
        await conn.rollback()


@pytest.mark.parametrize(
    ("sql", "effect"),
    [
        ("INSERT INTO t VALUES (1)", True),
        ("  update t set n = 1", True),
        ("DELETE FROM t", True),
        ("REPLACE INTO t VALUES (1)", True),
        ("BEGIN IMMEDIATE", True),
        ("begin exclusive", True),
        ("SELECT * FROM t", None),
        ("WITH x AS (SELECT 1) SELECT * FROM x", None),
        ("SAVEPOINT sa_1", None),
        ("RELEASE SAVEPOINT sa_1", None),
        ("ROLLBACK TO SAVEPOINT sa_1", None),
        ("BEGIN", False),
        ("COMMIT", False),
        ("END", False),
        ("ROLLBACK", False),
    ],
)
def test_lock_effect_of_statements(sql: str, effect: bool | None) -> None:
    assert sqlite_driver._lock_effect(sql) is effect


async def test_results_match_sqlalchemys_own_adapter(tmp_path: Path, db: Database) -> None:
    """The same statements through the stock aiosqlite adapter and through ours."""

    async def scenario(engine) -> list[object]:  # type: ignore[no-untyped-def]
        seen: list[object] = []
        async with engine.begin() as conn:
            one = await conn.execute(insert(rows_table).values(name="x", n=None))
            seen.append(tuple(one.inserted_primary_key))
            many = await conn.execute(
                insert(rows_table), [{"name": f"m{i}", "n": i} for i in range(5)]
            )
            seen.append(many.rowcount)
            changed = await conn.execute(update(rows_table).where(rows_table.c.n >= 2).values(n=0))
            seen.append(changed.rowcount)
            gone = await conn.execute(delete(rows_table).where(rows_table.c.name == "m0"))
            seen.append(gone.rowcount)
            result = await conn.execute(
                select(rows_table.c.id, rows_table.c.name, rows_table.c.n).order_by(rows_table.c.id)
            )
            seen.append(list(result.keys()))
            seen.append([tuple(r) for r in result])
            empty = await conn.execute(select(rows_table).where(rows_table.c.n == 99))
            seen.append((list(empty.keys()), empty.all()))
            totals = await conn.execute(text("SELECT count(*), sum(n) FROM driver_rows"))
            seen.append(totals.one())
            returned = await conn.execute(
                insert(rows_table).values(name="r", n=7).returning(rows_table.c.id, rows_table.c.n)
            )
            seen.append(tuple(returned.one()))
        return seen

    stock = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    try:
        async with stock.begin() as conn:
            await conn.run_sync(metadata.create_all)
        expected = await scenario(stock)
    finally:
        await stock.dispose()
    assert await scenario(db.engine) == expected
    assert expected[1] == 5 and expected[2] == 3  # the scenario does measure something


async def test_errors_are_sqlalchemys_and_the_connection_survives(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execute(insert(rows_table).values(name="dup", n=1))
        await conn.commit()
        with pytest.raises(IntegrityError):
            await conn.execute(insert(rows_table).values(name="dup", n=2))
        await conn.rollback()
        with pytest.raises(OperationalError, match="no such table"):
            await conn.execute(text("SELECT * FROM no_such_table"))
        await conn.rollback()
        rows = (await conn.execute(select(rows_table.c.name, rows_table.c.n))).all()
    assert rows == [("dup", 1)]


async def test_a_slow_read_does_not_block_the_event_loop(db: Database) -> None:
    """A read runs on aiosqlite's thread: the loop keeps serving other tasks."""
    ticker = Ticker()
    slow = text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
        "SELECT count(*) FROM c"
    )
    async with ticker.running(), db.session() as session:
        started = time.monotonic()
        assert (await session.execute(slow)).scalar_one() == 3_000_000
        took = time.monotonic() - started
    assert took > 0.05, "the query was meant to take a while"
    # A statement run on the loop's own thread would leave the ticker at 0 or 1.
    assert ticker.ticks >= 10, (ticker.ticks, took)


async def test_server_side_cursors_still_stream(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(insert(rows_table), [{"name": f"s{i}", "n": i} for i in range(50)])
    async with db.engine.connect() as conn:
        streamed = await conn.stream(select(rows_table.c.n).order_by(rows_table.c.n))
        seen = [row.n async for row in streamed]
    assert seen == list(range(50))


def test_module_refuses_an_aiosqlite_without_the_members_it_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(aiosqlite.Connection, "_execute")
    with pytest.raises(RuntimeError, match="_execute"):
        sqlite_driver.module()
