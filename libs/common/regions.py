"""Administrative division codes as nested prefixes (行政区划代码): 22 ⊃ 2201 ⊃ 220102 ⊃
220102003 ⊃ 220102003001. Search tests "covers" and "lies inside" with these helpers, in SQL
as equalities and index ranges and in Python with the same predicates."""

from __future__ import annotations

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
