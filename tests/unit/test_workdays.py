"""PRC working days (libs.common.workdays): holidays, adjusted workdays, unknown years."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.workdays import UnknownCalendarYear, WorkdayCalendar, default_calendar

CAL = default_calendar()

# 2027 as a pack would supply it before chinese-calendar knows the year. Only New Year's Day
# (元旦, always 1 January, a Friday in 2027) is listed: test data, not the State Council notice.
NEW_YEAR_2027 = date(2027, 1, 1)
CAL_2027 = WorkdayCalendar(extra_years=frozenset({2027}), extra_holidays=frozenset({NEW_YEAR_2027}))


# -- National Day 2026 (国庆节): 10-01..10-07 off, Saturday 10-10 worked (调休上班) ------------


@pytest.mark.parametrize("day", [date(2026, 10, d) for d in range(1, 8)])
def test_national_day_week_2026_is_off(day: date) -> None:
    assert not CAL.is_workday(day)


def test_adjusted_saturday_2026_10_10_is_a_working_day() -> None:
    assert date(2026, 10, 10).weekday() == 5  # a Saturday
    assert CAL.is_workday(date(2026, 10, 10))
    assert not CAL.is_workday(date(2026, 10, 11))  # the Sunday after is an ordinary rest day


def test_three_working_days_across_national_day_2026() -> None:
    # Received Wed 2026-09-30 (does not count: 期限从次日起算).
    # 10-01 Thu .. 10-07 Wed: holiday, not counted.
    # 10-08 Thu → 1, 10-09 Fri → 2, 10-10 Sat (adjusted working day) → 3.
    assert CAL.add_workdays(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert CAL.workdays_between(date(2026, 9, 30), date(2026, 10, 10)) == 3
    # A weekday-only count would have said Mon 2026-10-05, in the middle of the holiday.
    assert CAL.add_workdays(date(2026, 9, 30), 4) == date(2026, 10, 12)  # skips Sun 10-11


def test_plain_week() -> None:
    # Mon 2026-03-09 + 5 working days: Tue 10, Wed 11, Thu 12, Fri 13, (Sat, Sun), Mon 16.
    assert CAL.add_workdays(date(2026, 3, 9), 5) == date(2026, 3, 16)
    assert CAL.add_workdays(date(2026, 3, 9), 1) == date(2026, 3, 10)
    assert CAL.workdays_between(date(2026, 3, 9), date(2026, 3, 16)) == 5


def test_received_on_a_weekend_counts_from_the_next_working_day() -> None:
    assert CAL.add_workdays(date(2026, 3, 14), 1) == date(2026, 3, 16)  # Sat → Mon


def test_workdays_between_is_zero_when_end_not_after_start() -> None:
    assert CAL.workdays_between(date(2026, 3, 16), date(2026, 3, 16)) == 0
    assert CAL.workdays_between(date(2026, 3, 16), date(2026, 3, 9)) == 0


@pytest.mark.parametrize("n", [0, -1])
def test_add_workdays_needs_at_least_one(n: int) -> None:
    with pytest.raises(ValueError, match="≥ 1"):
        CAL.add_workdays(date(2026, 3, 9), n)


def test_is_overdue_only_after_the_due_date() -> None:
    due = date(2026, 10, 10)
    assert not CAL.is_overdue(due, date(2026, 10, 9))
    assert not CAL.is_overdue(due, due)  # the due date itself is still in time
    assert CAL.is_overdue(due, date(2026, 10, 11))


def test_datetime_is_refused() -> None:
    # A UTC timestamp could name the previous day in China; callers convert explicitly.
    with pytest.raises(TypeError, match="date"):
        CAL.is_workday(datetime(2026, 3, 9, 12, 0))


# -- Years the library does not know ----------------------------------------------------------


def test_unknown_year_is_an_explicit_error() -> None:
    with pytest.raises(UnknownCalendarYear, match="2027") as info:
        CAL.is_workday(date(2027, 1, 4))
    assert info.value.year == 2027
    assert isinstance(info.value, LookupError)


def test_a_deadline_running_into_an_unknown_year_is_an_error() -> None:
    # Thu 2026-12-31 is day 1; day 2 would be in 2027.
    assert CAL.add_workdays(date(2026, 12, 30), 1) == date(2026, 12, 31)
    with pytest.raises(UnknownCalendarYear):
        CAL.add_workdays(date(2026, 12, 30), 2)


def test_year_before_the_library_is_an_error() -> None:
    with pytest.raises(UnknownCalendarYear):
        CAL.is_workday(date(2003, 6, 2))


def test_pack_supplied_year() -> None:
    assert CAL_2027.is_workday(date(2027, 1, 4))  # Monday
    assert not CAL_2027.is_workday(NEW_YEAR_2027)  # listed holiday (a Friday)
    assert not CAL_2027.is_workday(date(2027, 1, 2))  # ordinary Saturday
    # Thu 2026-12-31 (library) → 1; Fri 01-01 off; Sat, Sun; Mon 2027-01-04 → 2.
    assert CAL_2027.add_workdays(date(2026, 12, 30), 2) == date(2027, 1, 4)
    assert CAL_2027.workdays_between(date(2026, 12, 30), date(2027, 1, 4)) == 2


def test_pack_supplied_adjusted_workday() -> None:
    sunday = date(2027, 1, 3)
    cal = WorkdayCalendar(extra_years=frozenset({2027}), extra_workdays=frozenset({sunday}))
    assert cal.is_workday(sunday)


def test_listed_dates_without_the_year_declared_still_raise() -> None:
    # A partial list says nothing about the other days of 2027.
    cal = WorkdayCalendar(extra_holidays=frozenset({NEW_YEAR_2027}))
    with pytest.raises(UnknownCalendarYear):
        cal.is_workday(NEW_YEAR_2027)
    with pytest.raises(UnknownCalendarYear):
        cal.is_workday(date(2027, 1, 4))


def test_extras_override_a_known_year() -> None:
    # A late change to a notice can be applied without a library release.
    cal = WorkdayCalendar(
        extra_holidays=frozenset({date(2026, 3, 9)}),
        extra_workdays=frozenset({date(2026, 10, 7)}),
    )
    assert not cal.is_workday(date(2026, 3, 9))
    assert cal.is_workday(date(2026, 10, 7))
    assert cal.is_workday(date(2026, 3, 10))  # everything else still from the library


def test_a_date_cannot_be_both_holiday_and_workday() -> None:
    day = date(2027, 1, 1)
    with pytest.raises(ValueError, match="2027-01-01"):
        WorkdayCalendar(extra_holidays=frozenset({day}), extra_workdays=frozenset({day}))


# -- Properties -------------------------------------------------------------------------------

# Up to 30 working days (about six weeks) after 2026-11-01 stays inside 2026, the last year
# chinese-calendar 1.11 knows; later starts would (rightly) raise UnknownCalendarYear.
_KNOWN_DATES = st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 11, 1))


@given(start=_KNOWN_DATES, n=st.integers(min_value=1, max_value=30))
def test_add_workdays_properties(start: date, n: int) -> None:
    due = CAL.add_workdays(start, n)
    assert due > start
    assert CAL.is_workday(due)
    assert CAL.workdays_between(start, due) == n
    # No working day is skipped: the day before the due date has only n - 1 behind it.
    assert CAL.workdays_between(start, due - timedelta(days=1)) == n - 1


@given(start=_KNOWN_DATES, n=st.integers(min_value=1, max_value=29))
def test_add_workdays_is_monotonic(start: date, n: int) -> None:
    assert CAL.add_workdays(start, n) < CAL.add_workdays(start, n + 1)


def test_known_through_runs_to_the_last_covered_year_without_a_gap() -> None:
    assert CAL.known_through(date(2026, 11, 24)) == date(2026, 12, 31)
    # A pack's list for 2027 extends it; a gap year (2028 missing) stops it at 2027.
    extended = WorkdayCalendar(extra_years=frozenset({2027, 2029}))
    assert extended.known_through(date(2026, 11, 24)) == date(2027, 12, 31)
    # Seen from inside a year nobody knows: nothing ahead is known.
    assert CAL.known_through(date(2027, 1, 5)) == date(2027, 1, 4)


def test_calendar_horizons_warn_45_days_ahead() -> None:
    from libs.common.policy import available_packs, calendar_horizons

    early = calendar_horizons(date(2026, 11, 15))
    assert {h.province for h in early} == set(available_packs())
    assert all(h.known_through == date(2026, 12, 31) for h in early)
    assert [h.days_left for h in early] == [46] * len(early)
    assert not any(h.running_out for h in early)
    late = calendar_horizons(date(2026, 11, 17))  # 44 days left
    assert all(h.running_out for h in late)
    assert "2026-12-31" in late[0].warning() and "holiday_calendar" in late[0].warning()
