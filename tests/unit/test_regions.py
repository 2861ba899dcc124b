"""The SQL forms of the region predicates select exactly what the Python forms say, on a
real SQLite database (digit strings, any collation)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Connection, MetaData, String, Table, create_engine, insert, select

from libs.common.regions import (
    PREFIX_LENGTHS,
    region_prefixes,
    sql_inside,
    sql_reaching,
    starts_with,
)

metadata = MetaData()
codes = Table("codes", metadata, Column("code", String(12), primary_key=True))

# Few digits, so prefixes and nines (the upper-bound edge) collide often.
digits = st.text(alphabet="0129", min_size=1, max_size=1)
region_code = st.sampled_from(PREFIX_LENGTHS).flatmap(
    lambda n: st.lists(digits, min_size=n, max_size=n).map("".join)
)


@pytest.fixture(scope="module")
def conn() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.connect() as c:
        yield c


def selected(conn: Connection, where: object, rows: set[str]) -> set[str]:
    conn.execute(codes.delete())
    if rows:
        conn.execute(insert(codes), [{"code": r} for r in rows])
    return {r for (r,) in conn.execute(select(codes.c.code).where(where))}  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(rows=st.sets(region_code, max_size=25), prefix=region_code | st.just(""))
def test_sql_inside_is_starts_with(conn: Connection, rows: set[str], prefix: str) -> None:
    want = {r for r in rows if not prefix or starts_with(r, prefix)}
    assert selected(conn, sql_inside(codes.c.code, prefix), rows) == want


@settings(max_examples=150, deadline=None)
@given(rows=st.sets(region_code, max_size=25), scope=region_code)
def test_sql_reaching_is_cover_or_inside(conn: Connection, rows: set[str], scope: str) -> None:
    want = {r for r in rows if r in region_prefixes(scope) or starts_with(r, scope)}
    assert selected(conn, sql_reaching(codes.c.code, scope), rows) == want


def test_all_nines_has_no_upper_bound() -> None:
    assert "<" not in str(sql_inside(codes.c.code, "99"))
