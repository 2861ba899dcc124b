"""`DriverInsert` (libs.common.db): rows written through the driver read back exactly as
rows written through SQLAlchemy, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    select,
)

from libs.common.db import Database, DriverInsert

metadata = MetaData()
things = Table(
    "driver_things",
    metadata,
    Column("owner", String(20), nullable=False),
    Column("name", String(64), nullable=False),
    Column("note", Text, nullable=True),
    Column("blob", LargeBinary, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("n", Integer, nullable=True),
    PrimaryKeyConstraint("owner", "name"),
)
COLUMNS = ["owner", "name", "note", "blob", "at", "n"]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def read_all(db: Database) -> list[tuple[object, ...]]:
    async with db.session() as s:
        rows = (await s.execute(select(things).order_by(things.c.owner, things.c.name))).all()
    return [tuple(r) for r in rows]


async def test_driver_rows_read_back_as_sqlalchemy_rows(db: Database) -> None:
    base = datetime(2026, 11, 24, 3, 4, 5, 678901, tzinfo=UTC)
    rows = [
        ("a", f"n{i:04d}", None if i % 3 else "备注 é", bytes([i % 256]) * 3, base, i)
        for i in range(10)
    ] + [("a", "later", "x", b"\x00\xff", base + timedelta(days=1), None)]
    async with db.write_session() as s:
        await DriverInsert(things, COLUMNS).execute(s, rows)
        await s.commit()
    # The same rows under another owner, through SQLAlchemy's own executemany.
    async with db.write_session() as s:
        await s.execute(
            things.insert(), [dict(zip(COLUMNS, ("b", *r[1:]), strict=True)) for r in rows]
        )
        await s.commit()
    stored = await read_all(db)
    by_driver = [r[1:] for r in stored if r[0] == "a"]
    by_sqlalchemy = [r[1:] for r in stored if r[0] == "b"]
    assert by_driver == by_sqlalchemy
    assert len(by_driver) == 11
    # Each row's own timestamp, not the previous row's (the converter reuses only repeats).
    later = next(r for r in by_driver if r[0] == "later")
    assert later[3].replace(tzinfo=UTC) == base + timedelta(days=1)


async def test_conflicts_are_skipped_and_only_new_keys_returned_across_statements(
    db: Database,
) -> None:
    claim = DriverInsert(
        things, COLUMNS, do_nothing_on_conflict=["owner", "name"], returning="name"
    )
    assert claim.rows_per_statement == 150  # 900 parameters / 6 columns
    now = datetime.now(UTC)
    first = [("o", f"k{i:04d}", None, b"", now, i) for i in range(0, 400, 2)]
    async with db.write_session() as s:
        assert sorted(await claim.execute(s, first)) == sorted(r[1] for r in first)
        await s.commit()
    # 400 rows in three statements; the 200 already there come back as nothing.
    every = [("o", f"k{i:04d}", None, b"", now, i) for i in range(400)]
    async with db.write_session() as s:
        new = await claim.execute(s, every)
        await s.commit()
    assert sorted(new) == [f"k{i:04d}" for i in range(1, 400, 2)]
    assert len(await read_all(db)) == 400
    async with db.write_session() as s:
        assert await claim.execute(s, []) == []
