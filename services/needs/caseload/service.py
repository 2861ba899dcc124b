"""Caseload report (no HTTP): recipients by category, open needs, required staff."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select

from libs.common.db import Database
from libs.common.policy import pack_for_region
from libs.common.validators import division_full_name
from services.needs import rules
from services.needs.models import Need, Recipient

TOWNSHIP_DIGITS = 9  # 乡镇（街道）: the first 9 digits of a 12-digit village code


@dataclass
class TownshipCaseload:
    township: str
    county_name: str | None
    recipients: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    open_needs: int = 0
    required_workers: int | None = None
    staffing_rule: str | None = None


async def caseload(*, db: Database, scope: str) -> list[TownshipCaseload]:
    """Active recipients and open needs per township inside `scope` (a region prefix)."""
    async with db.session() as session:
        people = (
            await session.execute(
                select(Recipient.region_code, Recipient.categories).where(
                    Recipient.status == "active", col(Recipient.region_code).startswith(scope)
                )
            )
        ).all()
        need_town = func.substr(col(Need.region_code), 1, TOWNSHIP_DIGITS)
        open_needs = dict(
            (
                await session.execute(
                    select(need_town, func.count())
                    .where(Need.status == "open", col(Need.region_code).startswith(scope))
                    .group_by(need_town)
                )
            ).all()
        )
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for region_code, categories in people:
        town = region_code[:TOWNSHIP_DIGITS]
        totals[town] += 1
        counts[town].update(categories)
    report = []
    for town in sorted(set(totals) | set(open_needs)):
        pack = pack_for_region(town)
        report.append(
            TownshipCaseload(
                township=town,
                county_name=division_full_name(town),
                recipients=totals[town],
                by_category=dict(sorted(counts[town].items())),
                open_needs=int(open_needs.get(town, 0)),
                required_workers=rules.required_staff(pack, totals[town]),
                staffing_rule=pack.staffing.source.cite() if pack.staffing else None,
            )
        )
    return report
