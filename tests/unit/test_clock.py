"""The shared clock helpers: China's calendar day of an instant, and today from a clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from libs.common.clock import FrozenClock, china_day, today_in_china


def test_china_day_turns_at_16_00_utc() -> None:
    assert china_day(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)) == date(2026, 12, 31)
    assert china_day(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == date(2027, 1, 1)


def test_a_naive_time_is_utc_as_sqlite_returns_it() -> None:
    assert china_day(datetime(2026, 12, 31, 16, 0)) == date(2027, 1, 1)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_china_day_is_the_utc_plus_8_date_whatever_the_offset(naive: datetime) -> None:
    moment = naive.replace(tzinfo=UTC)
    expected = (naive + timedelta(hours=8)).date()
    assert china_day(moment) == expected
    assert china_day(moment.astimezone(timezone(timedelta(hours=-5)))) == expected


def test_today_in_china_reads_the_given_clock() -> None:
    clock = FrozenClock(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    assert today_in_china(clock) == date(2026, 12, 1)
