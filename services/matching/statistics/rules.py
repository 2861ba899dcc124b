"""Pure functions of the daily statistics: days in China time, regions, the aggregates.

A day is a calendar day in Asia/Shanghai. A region is an administrative division at the
province, city or county level (2, 4, 6 digits); a fact located deeper (a village need)
counts in each of its enclosing regions, and every region's figures are computed from the
facts themselves (a median cannot be added up from its parts).

Spend against the cap: what approved projects hold in their ledgers at the end of the day
(`budget_reserved_fen`, the projects of the day's year, less what cancellations released)
against the ledgers' caps (`cap_fen`: 2 % of the year's central and provincial special
social-assistance funds, 吉民发〔2020〕44号 §五, as the providers service computed it for
the region's pack; None where the pack has no cap).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from libs.common.validators import CHINA_TZ

#: Region levels aggregated: province, city, county.
LEVELS = (2, 4, 6)
#: The market status of an organisation that counts as active.
ACTIVE_STATUS = "admitted"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a China day, in UTC."""
    start = datetime.combine(day, time(0, 0), tzinfo=CHINA_TZ).astimezone(UTC)
    return start, start + timedelta(days=1)


def regions_of(code: str | None) -> list[str]:
    """The province, city and county containing `code` (as far as the code goes)."""
    if not code:
        return []
    return [code[:n] for n in LEVELS if len(code) >= n]


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


@dataclass(frozen=True)
class NeedFact:
    region_code: str
    opened_at: datetime | None
    matched_at: datetime | None
    served_at: datetime | None
    fulfilled_at: datetime | None
    cancelled_at: datetime | None


@dataclass(frozen=True)
class ProjectFact:
    region_code: str
    budget_fen: int
    approved_at: datetime | None
    cancelled_at: datetime | None
    released_fen: int


@dataclass(frozen=True)
class LedgerFact:
    region_code: str
    cap_fen: int | None


@dataclass(frozen=True)
class EvaluationFact:
    region_code: str
    satisfaction: float | None
    published_at: datetime


@dataclass(frozen=True)
class OrganisationFact:
    region_code: str
    status: str
    grade: str | None


@dataclass
class Aggregate:
    """One region's figures for one day."""

    needs_opened: int = 0
    needs_matched: int = 0
    needs_served: int = 0
    needs_fulfilled: int = 0
    needs_cancelled: int = 0
    minutes_to_match: list[float] = field(default_factory=list)
    budget_reserved_fen: int = 0
    cap_fen: int | None = None
    satisfactions: list[float] = field(default_factory=list)
    evaluations: int = 0
    active_by_grade: Counter[str] = field(default_factory=Counter)

    @property
    def median_minutes_to_match(self) -> float | None:
        return median(self.minutes_to_match)

    @property
    def average_satisfaction(self) -> float | None:
        if not self.satisfactions:
            return None
        return round(sum(self.satisfactions) / len(self.satisfactions), 4)

    @property
    def active_organisations(self) -> int:
        return sum(self.active_by_grade.values())

    @property
    def cap_used(self) -> float | None:
        if not self.cap_fen:
            return None
        return round(self.budget_reserved_fen / self.cap_fen, 4)


def _within(value: datetime | None, start: datetime, end: datetime) -> bool:
    if value is None:
        return False
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return start <= aware < end


def _before(value: datetime | None, end: datetime) -> bool:
    if value is None:
        return False
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware < end


def aggregate(
    day: date,
    *,
    needs: Iterable[NeedFact],
    projects: Iterable[ProjectFact],
    ledgers: Iterable[LedgerFact],
    evaluations: Iterable[EvaluationFact],
    organisations: Iterable[OrganisationFact],
) -> dict[str, Aggregate]:
    """Every region's figures for `day`; a region appears when any fact lies in it.

    `projects` and `ledgers` are those of the day's year; `organisations` as they stand.
    """
    start, end = day_bounds(day)
    out: dict[str, Aggregate] = defaultdict(Aggregate)
    for n in needs:
        regions = regions_of(n.region_code)
        opened = _within(n.opened_at, start, end)
        matched = _within(n.matched_at, start, end)
        for r in regions:
            agg = out[r]
            agg.needs_opened += opened
            agg.needs_matched += matched
            agg.needs_served += _within(n.served_at, start, end)
            agg.needs_fulfilled += _within(n.fulfilled_at, start, end)
            agg.needs_cancelled += _within(n.cancelled_at, start, end)
            if matched and n.opened_at is not None and n.matched_at is not None:
                minutes = (n.matched_at - n.opened_at).total_seconds() / 60
                agg.minutes_to_match.append(max(minutes, 0.0))
    for p in projects:
        if not _before(p.approved_at, end):
            continue
        held = p.budget_fen - (p.released_fen if _before(p.cancelled_at, end) else 0)
        for r in regions_of(p.region_code):
            out[r].budget_reserved_fen += max(held, 0)
    for ledger in ledgers:
        if ledger.cap_fen is None:
            continue
        for r in regions_of(ledger.region_code):
            agg = out[r]
            agg.cap_fen = (agg.cap_fen or 0) + ledger.cap_fen
    for ev in evaluations:
        if not _within(ev.published_at, start, end):
            continue
        for r in regions_of(ev.region_code):
            out[r].evaluations += 1
            if ev.satisfaction is not None:
                out[r].satisfactions.append(ev.satisfaction)
    for org in organisations:
        if org.status != ACTIVE_STATUS:
            continue
        for r in regions_of(org.region_code):
            out[r].active_by_grade[org.grade or "ungraded"] += 1
    return dict(out)
