"""The time as a dependency ("now"): the system clock in production, a settable one in tests.

Deadlines, ban periods, appeal windows and working-day counts all read the time; passing a
clock (rather than calling `datetime.now` inside rules) lets a test step over a deadline
without sleeping. An app or runtime carries its clock as `state.clock`; code asks
`clock_of(state)()`. Dates in China are taken in Asia/Shanghai (`today_in_china`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from libs.common.validators import CHINA_TZ

Clock = Callable[[], datetime]


def system_now() -> datetime:
    return datetime.now(UTC)


def clock_of(state: Any) -> Clock:
    """The clock on an app's (or runtime's) state, or the system clock."""
    clock: Clock | None = getattr(state, "clock", None)
    return clock or system_now


def today_in_china(clock: Clock = system_now) -> date:
    return clock().astimezone(CHINA_TZ).date()


def china_day(moment: datetime) -> date:
    """The calendar day in China (UTC+8, no daylight saving) of an instant. A naive value is
    UTC, as SQLite hands stored times back."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(CHINA_TZ).date()


class FrozenClock:
    """A clock that stands still until moved: `clock.advance(days=21)`, `clock.set(...)`."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = now

    def __call__(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now = self._now + (delta if delta is not None else timedelta(**kwargs))
        return self._now
