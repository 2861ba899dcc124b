"""Rules of the expert library (专家库), pure: no I/O.

- An expert's fields (专业领域) are items of the province's service catalogue, or one of the
  general fields a review panel needs: evaluation (评估), finance (财务) and law (法律).
- Recusal (回避): an expert who, within the three years before a procurement, was employed by
  (劳动关系), a director or supervisor of (董事、监事), or a shareholder of a bidder must not
  review that bidder's bid.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date
from typing import Protocol, TypeVar

from libs.common.errors import FieldError
from libs.common.policy import Citation, PolicyPack

# Fields beyond the catalogue: the expertise a review panel (评审委员会) needs besides the
# services themselves.
GENERAL_FIELDS: tuple[str, ...] = ("evaluation", "finance", "law")

AFFILIATION_KINDS: tuple[str, ...] = ("employment", "directorship", "shareholding")

RECUSAL_YEARS = 3

# The national rule on review experts; the provincial packs defer to national procurement
# rules and do not repeat it. Not in policy/: quote from the national text, check before
# publishing. The text names controlling shareholders (控股股东); the library records any
# shareholding and recuses on all of them, the stricter reading.
RECUSAL_SOURCE = Citation(
    doc="财库〔2016〕198号",
    section="第十六条",
    quote="参加采购活动前三年内，与供应商存在劳动关系，或者担任过供应商的董事、监事，"
    "或者是供应商的控股股东或实际控制人",
)


def field_errors(
    pack: PolicyPack, fields: Sequence[str], *, at: str = "body.fields"
) -> list[FieldError]:
    """One error per unknown or repeated field, naming its index (`body.fields.2`)."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, code in enumerate(fields):
        if code in seen:
            errors.append(FieldError(f"{at}.{i}", f"{code!r} is listed twice"))
        elif code not in GENERAL_FIELDS and pack.catalogue_item(code) is None:
            allowed = ", ".join(GENERAL_FIELDS)
            errors.append(
                FieldError(
                    f"{at}.{i}",
                    f"{code!r} is neither an item of the {pack.province} catalogue "
                    f"nor one of {allowed}",
                )
            )
        seen.add(code)
    return errors


def period_errors(
    started_on: date, ended_on: date | None, *, at: str = "body.ended_on"
) -> list[FieldError]:
    """An affiliation cannot end before it started."""
    if ended_on is not None and ended_on < started_on:
        return [FieldError(at, f"ends on {ended_on.isoformat()}, before it starts on {started_on}")]
    return []


def available_on(
    *, available: bool, unavailable_until: date | None, status: str, day: date
) -> bool:
    """Whether an expert can be drawn for a panel on `day`.

    `available` is the standing switch; `unavailable_until` a temporary absence that
    includes that date (available again the day after); a retired expert never is.
    """
    if status != "active" or not available:
        return False
    return unavailable_until is None or unavailable_until < day


def years_before(day: date, years: int) -> date:
    """The same calendar date `years` earlier; 29 February falls back to 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 Feb in a leap year, the earlier year not one
        return day.replace(year=day.year - years, day=28)


class Affiliation(Protocol):
    """What the recusal rule reads of an affiliation (the table row fits)."""

    @property
    def organisation_uscc(self) -> str: ...

    @property
    def organisation_id(self) -> str | None: ...

    @property
    def kind(self) -> str: ...

    @property
    def started_on(self) -> date: ...

    @property
    def ended_on(self) -> date | None: ...


A = TypeVar("A", bound=Affiliation)


def recusal_conflicts(
    affiliations: Iterable[A],
    bidders: Collection[str],
    on: date,
    years: int = RECUSAL_YEARS,
) -> list[A]:
    """The affiliations that require the expert to recuse from reviewing `bidders` on `on`.

    `bidders` holds credit codes or library organisation ids (either matches). An
    affiliation counts when it ties the expert to a bidder at any time in the `years`
    before `on`: it began on or before `on` and is still open or ended on or after the
    date `years` before `on`. One that ended more than `years` before does not count
    (财库〔2016〕198号 第十六条); one that only begins after `on` did not exist then.
    """
    cutoff = years_before(on, years)
    wanted = set(bidders)
    return [
        a
        for a in affiliations
        if a.kind in AFFILIATION_KINDS
        and (
            a.organisation_uscc in wanted
            or (a.organisation_id is not None and a.organisation_id in wanted)
        )
        and a.started_on <= on
        and (a.ended_on is None or a.ended_on >= cutoff)
    ]
