"""PRC working days (工作日) for administrative time limits (限时办理) and tender deadlines.

Which days are worked in mainland China is set each year by the State Council's notice on
public holidays (国务院办公厅关于放假安排的通知): statutory holidays (法定节假日) plus the
adjusted working days (调休上班日, usually a Saturday or Sunday) that pay for the bridging days.
The `chinese-calendar` library tracks those notices; version 1.11 knows 2004 to 2026 and raises
`NotImplementedError` for any other year.

A deadline in a year nobody has told us about is an explicit error (`UnknownCalendarYear`),
never a silent Monday-to-Friday guess: a guessed due date that falls inside Spring Festival
would make an intake look overdue (or not) for a reason no one could explain. A policy pack
can supply a year's official list before the library knows it (`WorkdayCalendar.extra_*`).

Counting convention (期限从次日起算): the day of receipt does not count; the first working day
*after* it is day 1. `add_workdays(start, n)` is the n-th working day after `start`, and the
time limit runs out at the end of that day. This is how administrative time limits are counted
(行政许可法 第八十二条: 期限以工作日计算，不含法定节假日; 民法典 第二百零一条: 开始的当日不计入).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import chinese_calendar

__all__ = [
    "UnknownCalendarYear",
    "WorkdayCalendar",
    "default_calendar",
]


class UnknownCalendarYear(LookupError):
    """The calendar has no official holiday list for the year of a date.

    Raised instead of guessing, so a deadline is never computed from weekdays alone. Fix it by
    upgrading `chinese-calendar` once it covers the year, or by giving the pack the year's
    State Council holiday list (`WorkdayCalendar(extra_years=..., extra_holidays=..., ...)`).
    """

    def __init__(self, year: int) -> None:
        super().__init__(
            f"no official working-day calendar for {year}: upgrade chinese-calendar or supply "
            f"the year's State Council holiday list (extra_years / extra_holidays / "
            f"extra_workdays)"
        )
        self.year = year


@dataclass(frozen=True)
class WorkdayCalendar:
    """PRC working days: the `chinese-calendar` data plus optional pack-supplied dates.

    A date is decided, in this order:

    1. in `extra_workdays` → working (e.g. an adjusted Saturday, 调休上班);
    2. in `extra_holidays` → off (法定节假日 or bridging day);
    3. its year in `extra_years` → Monday to Friday working: the pack declares that its two
       lists are the *complete* notice for that year, so every other day is an ordinary one;
    4. otherwise `chinese-calendar` decides, and a year it lacks raises `UnknownCalendarYear`.

    Rules 1 and 2 also apply in years the library knows, so a pack can correct a late change
    to a notice without waiting for a library release. A listed date in a year that neither
    the library nor `extra_years` covers still raises: a partial list says nothing about the
    other days of that year.
    """

    extra_holidays: frozenset[dt.date] = frozenset()
    extra_workdays: frozenset[dt.date] = frozenset()
    extra_years: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        clash = self.extra_holidays & self.extra_workdays
        if clash:
            days = ", ".join(d.isoformat() for d in sorted(clash))
            raise ValueError(f"dates both holiday and working day: {days}")
        for d in self.extra_holidays | self.extra_workdays:
            _check_date(d)

    def _covers(self, year: int) -> bool:
        if year in self.extra_years:
            return True
        try:
            chinese_calendar.is_workday(dt.date(year, 6, 1))
        except NotImplementedError:
            return False
        return True

    def known_through(self, today: dt.date) -> dt.date:
        """The last day up to which every date from `today` on has an official calendar
        (31 December of the last year covered without a gap); the day before `today` when
        its own year is not covered. Deadlines reaching past it are refused."""
        year = today.year
        if not self._covers(year):
            return today - dt.timedelta(days=1)
        while year < dt.MAXYEAR and self._covers(year + 1):
            year += 1
        return dt.date(year, 12, 31)

    def is_workday(self, d: dt.date) -> bool:
        """True when `d` is a working day (工作日) in mainland China."""
        _check_date(d)
        if not self._covers(d.year):
            raise UnknownCalendarYear(d.year)
        if d in self.extra_workdays:
            return True
        if d in self.extra_holidays:
            return False
        if d.year in self.extra_years:
            return d.weekday() < 5
        return bool(chinese_calendar.is_workday(d))

    def add_workdays(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after `start` (n ≥ 1): the due date of an n-working-day limit.

        The day of receipt never counts, even when it is a working day (期限从次日起算): an
        application received on a Wednesday with a 1-working-day limit is due on Thursday,
        and one received on a Saturday is due on the Monday after. Raises
        `UnknownCalendarYear` if the count reaches a year without an official calendar.
        """
        _check_date(start)
        if n < 1:
            raise ValueError(f"n must be ≥ 1 working day, got {n}")
        day, counted = start, 0
        while counted < n:
            day += dt.timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return day

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after `start` up to and including `end`; 0 when `end` <= `start`.

        The inverse of `add_workdays`: `workdays_between(d, add_workdays(d, n)) == n`.
        """
        _check_date(start)
        _check_date(end)
        day, counted = start, 0
        while day < end:
            day += dt.timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return counted

    def is_overdue(self, due: dt.date, today: dt.date) -> bool:
        """True once `today` is past `due`: the due date itself is still in time."""
        _check_date(due)
        _check_date(today)
        return today > due


def _check_date(d: object) -> None:
    # datetime is a subclass of date: a UTC timestamp would silently name the wrong day in
    # China (before 08:00 CST), and it never equals a listed date. Callers convert first.
    if isinstance(d, dt.datetime) or not isinstance(d, dt.date):
        raise TypeError(f"expected a date (the day in China), got {type(d).__name__}")


_DEFAULT = WorkdayCalendar()


def default_calendar() -> WorkdayCalendar:
    """The calendar of `chinese-calendar` alone, without pack-supplied years."""
    return _DEFAULT
