"""Hypothesis strategies for Chinese identifiers and division codes, shared by all tests.

Everything generated is valid for `libs.common.validators`: counties come from the bundled
division table and check characters are computed by python-stdnum.
"""

from __future__ import annotations

import datetime

from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from libs.common.validators import CHINA_TZ, EARLIEST_BIRTH_DATE, counties_within

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""Characters of a unified social credit code (GB 32100: no I, O, S, V, Z)."""

USCC_AUTHORITIES = "123456789ANY"
"""First characters of a credit code: the registering authority (登记管理部门)."""


def china_today() -> datetime.date:
    """Today's date in China, the reference the validators use for "not in the future"."""
    return datetime.datetime.now(CHINA_TZ).date()


def make_resident_id(county: str, born: datetime.date, sequence: int) -> str:
    """Assemble a resident ID (居民身份证号) from its parts, check digit by python-stdnum."""
    body = f"{county}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")  # the last character is ignored


def make_uscc(body: str) -> str:
    """Append the check character (python-stdnum) to the first 17 characters of a USCC."""
    return body + uscc.calc_check_digit(body)


def county_codes(province: str | None = None) -> st.SearchStrategy[str]:
    """6-digit county codes (县级) from the bundled table, optionally of one province."""
    codes = counties_within(province or "")
    if not codes:
        raise ValueError(f"no counties in province {province!r}")
    return st.sampled_from(codes)


def division_codes(province: str | None = None) -> st.SearchStrategy[str]:
    """County (6), township (9) or village (12) codes whose county is in the table."""
    suffixes = st.one_of(st.just(""), st.from_regex(r"[0-9]{3}|[0-9]{6}", fullmatch=True))
    return st.builds(str.__add__, county_codes(province), suffixes)


def birth_dates(
    min_value: datetime.date = EARLIEST_BIRTH_DATE, max_value: datetime.date | None = None
) -> st.SearchStrategy[datetime.date]:
    """Real birth dates between 1900-01-01 and today in China (inclusive)."""
    return st.dates(min_value=min_value, max_value=max_value or china_today())


def resident_ids(
    province: str | None = None, born: st.SearchStrategy[datetime.date] | None = None
) -> st.SearchStrategy[str]:
    """Valid 18-character resident IDs: a table county, a real birth date, a sequence number
    and the GB 11643 check digit (0-9 or X)."""
    return st.builds(
        make_resident_id,
        county_codes(province),
        born if born is not None else birth_dates(),
        st.integers(min_value=0, max_value=999),
    )


def usccs() -> st.SearchStrategy[str]:
    """Valid unified social credit codes (统一社会信用代码), including the letter authorities
    A, N and Y, with a table county as registering region."""
    body = st.tuples(
        st.sampled_from(USCC_AUTHORITIES),
        st.sampled_from("0123456789"),
        county_codes(),
        st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9),
    ).map("".join)
    return body.map(make_uscc)
