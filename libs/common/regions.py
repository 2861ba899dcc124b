"""Administrative division codes as nested prefixes (行政区划代码): 22 ⊃ 2201 ⊃ 220102 ⊃
220102003 ⊃ 220102003001. Search tests "covers" and "lies inside" with these helpers, in SQL
as equalities and index ranges and in Python with the same predicates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, true
from sqlalchemy.sql.elements import ColumnElement

# Province, city, county, township, village.
PREFIX_LENGTHS = (2, 4, 6, 9, 12)


def region_prefixes(code: str) -> list[str]:
    """The areas containing `code`, itself included: 220102003 → 22, 2201, 220102, 220102003.

    An area S covers X exactly when S is one of these (division codes nest by prefix), so a
    search tests coverage with an equality on a handful of values.
    """
    return [code[:n] for n in PREFIX_LENGTHS if n <= len(code)]


def prefix_upper_bound(prefix: str) -> str | None:
    """The least digit string greater than every string starting with `prefix`.

    "2201" → "2202", "2209" → "221", "2299" → "23"; None when `prefix` is all nines (no
    bound). `code >= prefix AND code < bound` selects "starts with prefix" as an index range
    scan, and, being digits only, compares the same under any collation — unlike an upper
    bound such as prefix || '~', whose order against digits depends on the locale.
    """
    stripped = prefix.rstrip("9")
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


def starts_with(code: str, prefix: str) -> bool:
    """The range test `prefix <= code < prefix_upper_bound(prefix)` (digit strings)."""
    upper = prefix_upper_bound(prefix)
    return prefix <= code and (upper is None or code < upper)


def overlaps(a: str, b: str) -> bool:
    """Two areas overlap when one contains the other ("" is the whole country)."""
    return a.startswith(b) or b.startswith(a)


def sql_inside(column: Any, prefix: str) -> ColumnElement[bool]:
    """SQL: `column` lies inside `prefix` (starts with it), as an index range, never a
    leading-wildcard LIKE; digits only, so it compares the same under any collation. True
    for "" (the whole country)."""
    if not prefix:
        return true()
    low: ColumnElement[bool] = column >= prefix
    upper = prefix_upper_bound(prefix)
    return and_(low, column < upper) if upper is not None else low


def sql_reaching(column: Any, scope: str) -> ColumnElement[bool]:
    """SQL: a region code that covers `scope` (one of its few prefixes: an equality) or lies
    inside it (a range) — the areas that reach `scope`."""
    return or_(column.in_(region_prefixes(scope)), sql_inside(column, scope))
