"""The SQLite driver (`libs.common.sqlite_driver`): one round trip to aiosqlite's thread per
statement, the same results and errors as SQLAlchemy's own adapter, and still off the loop.

SQLite only, whatever DATABASE_URL says: the driver is what `Database` uses for SQLite."""

from __future__ import annotations

import asyncio
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


async def test_one_round_trip_per_statement(db: Database, round_trips: list[str]) -> None:
    async with db.engine.connect() as conn, conn.begin():
        round_trips.clear()  # connection checkout and BEGIN are not under test
        await conn.execute(insert(rows_table).values(name="a", n=1))
        assert len(round_trips) == 1, round_trips
        result = await conn.execute(select(rows_table.c.name, rows_table.c.n))
        assert result.all() == [("a", 1)]
        assert len(round_trips) == 2, round_trips
        await conn.execute(insert(rows_table), [{"name": "b", "n": 2}, {"name": "c", "n": 3}])
        assert len(round_trips) == 3, round_trips
        await conn.exec_driver_sql("UPDATE driver_rows SET n = n + 1")
        assert len(round_trips) == 4, round_trips


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


async def test_a_slow_statement_does_not_block_the_event_loop(db: Database) -> None:
    """The statement runs on aiosqlite's thread: the loop keeps serving other tasks."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    slow = text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
        "SELECT count(*) FROM c"
    )
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    async with db.session() as session:
        started = time.monotonic()
        before = ticks
        assert (await session.execute(slow)).scalar_one() == 3_000_000
        took = time.monotonic() - started
        during = ticks - before
    stop.set()
    await task
    assert took > 0.05, "the query was meant to take a while"
    # A statement run on the loop's own thread would leave the ticker at 0 or 1.
    assert during >= 10, (during, took)


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
