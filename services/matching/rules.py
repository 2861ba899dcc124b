"""Allocation rules of the matching service (pure: no I/O, no clock of their own).

What counts as supply, what a need may take, how "this month" and a division-code scope are
read, and the clauses the temporary takeover plan (临时接管预案) rests on. The optimisation
itself is the engine's (`services.matching.engine`); the use cases that feed it and store
its answers are in `services.matching.allocation`.

Supply (DESIGN §2, issue 6 item 6):

* an organisation under a contract that is `active` and in its period (合同履行期限), whose
  standing in credit is `admitted`, for each item of the contract: `monthly_capacity[item]`
  minus the active matches made under that contract this month;
* a charity resource (慈善资源) `offered` and valid today, its remaining quantity minus the
  units matching has allocated that providers have not yet counted, serving recipients of
  one of its target categories;
* the walking skeleton's *registered capacity* (an organisation's own offer, no contract)
  only while no contract has ever been signed and never in production: it lets the embedded
  demo run before any tender; each such match says so (`basis: registered_capacity`).

Suspended, exited and blacklisted organisations never receive a need; their paused (or
terminated, still in period) contracts still count as coverage, so an unmatched need can say
"all candidates are ineligible" rather than "nobody covers it".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from enum import StrEnum

from libs.common.clock import china_day as china_today
from libs.common.policy import Citation

#: Standing that may receive needs (credit's admission decision).
ELIGIBLE_STATUS = "admitted"
#: Standing by which credit bars an organisation from the market.
BARRED_STATUSES = frozenset({"suspended", "exited", "blacklisted"})
#: Need statuses a run allocates: open, and unplaced after a failed takeover.
ALLOCATABLE = ("open", "unplaced")
#: Contract states that supply capacity, and those that still count as (ineligible) coverage.
SUPPLYING_STATE = "active"
COVERING_STATES = ("active", "paused", "terminated")
#: Need statuses matching keeps: the needs service owns the lifecycle, this is its echo.
NEED_STATUSES = ("open", "matched", "unplaced", "cancelled")

#: Longest text kept as a need's `last_unmatched_reason` (the column's size).
REASON_MAX = 1000


class Basis(StrEnum):
    """What a match stands on."""

    contract = "contract"  # an active purchase contract (政府购买服务合同)
    charity_resource = "charity_resource"  # a charity's resource offer (慈善资源)
    registered_capacity = "registered_capacity"  # walking skeleton only (see module doc)


class UnmatchedCode(StrEnum):
    """Why a need is not matched (the engine's reasons, plus what a run itself decides)."""

    no_coverage = "no_coverage"
    capacity_exhausted = "capacity_exhausted"
    all_ineligible = "all_ineligible"
    #: The need's region or urgency cannot be allocated (bad data from an event).
    invalid_need = "invalid_need"


# ------------------------------------------------------------------------------ time, scope


def period_of(now: datetime) -> str:
    """The month a match counts against (`YYYY-MM`, China time): monthly capacity resets on
    the first day of each Chinese calendar month."""
    return china_today(now).strftime("%Y-%m")


def aware(moment: datetime) -> datetime:
    """A stored timestamp as an aware datetime (SQLite hands naive UTC values back)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def engine_region(region_code: str) -> str | None:
    """The 12-digit code the engine places a need by; a county (6) or township (9) code is
    filled with zeros (no village or township is that code, so only coverage of the wider
    area matches it). None when it is not a 6-, 9- or 12-digit code."""
    code = region_code.strip()
    if not (code.isascii() and code.isdigit()) or len(code) not in (6, 9, 12):
        return None
    return code.ljust(12, "0")


def covering_prefixes(regions: Iterable[str]) -> tuple[str, ...]:
    """The usable coverage prefixes of a contract or resource (2–12 digits), in order."""
    out = []
    for r in regions:
        code = str(r).strip()
        if code.isascii() and code.isdigit() and 2 <= len(code) <= 12:
            out.append(code)
    return tuple(dict.fromkeys(out))


def overlaps_scope(prefixes: Iterable[str], scopes: Sequence[str]) -> bool:
    """Whether an area given by prefixes overlaps any of the scopes ("" is everywhere)."""
    return any(p.startswith(s) or s.startswith(p) for p in prefixes for s in scopes)


def in_scope(region_code: str, scopes: Sequence[str]) -> bool:
    return any(region_code.startswith(s) for s in scopes)


def common_prefix(scopes: Sequence[str]) -> str:
    """The narrowest area containing every scope (what a run's `region_scope` records)."""
    if not scopes:
        return ""
    first, last = min(scopes), max(scopes)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


# ------------------------------------------------------------------------------ supply


def contract_in_force(state: str, period_start: date, period_end: date, today: date) -> bool:
    """An active contract within its period supplies capacity (合同履行期限)."""
    return state == SUPPLYING_STATE and period_start <= today <= period_end


def contract_covers(state: str, period_start: date, period_end: date, today: date) -> bool:
    """A contract that counts as coverage today, eligible or not: in its period and active,
    paused (its organisation suspended) or terminated (exited, blacklisted)."""
    return state in COVERING_STATES and period_start <= today <= period_end


def organisation_eligible(status: str | None) -> bool:
    return status == ELIGIBLE_STATUS


def capacity_left(
    service_codes: Iterable[str], monthly: Mapping[str, int], used: Mapping[str, int]
) -> dict[str, int]:
    """Per item of a contract: monthly capacity minus this month's active matches (≥ 0)."""
    return {
        s: max(0, int(monthly.get(s, 0)) - int(used.get(s, 0)))
        for s in dict.fromkeys(service_codes)
        if s in monthly
    }


def resource_usable(status: str, valid_from: date, valid_until: date, today: date) -> bool:
    """A resource serves needs while offered and inside its validity window."""
    return status == "offered" and valid_from <= today <= valid_until


def resource_left(remaining: int, unconfirmed: int) -> int:
    """Providers' remaining figure minus matching's allocations it has not counted yet."""
    return max(0, int(remaining) - int(unconfirmed))


def uses_registered_capacity(*, environment: str, contracts_exist: bool) -> bool:
    """The walking skeleton's supply: only before any contract exists, never in production."""
    return environment != "production" and not contracts_exist


def reason_text(code: str, text: str) -> str:
    """`code: text`, cut to the column (the code first, so it is never cut off)."""
    full = f"{code}: {text}"
    return full if len(full) <= REASON_MAX else full[: REASON_MAX - 1] + "…"


# ------------------------------------------------------------------------------ takeover

_JILIN_2018 = Citation(
    doc="吉民发〔2018〕21号",
    section="二(六)",
    quote="建立承接主体退出机制，制定临时接管预案。在承接主体发生不能按合同约定提供服务的情形时，及时启动预案",
)
_JILIN_2020 = Citation(
    doc="吉民发〔2020〕44号",
    section="四(四)3",
    quote="购买主体应建立承接主体退出机制，制定临时接管预案，在承接主体发生不能按合同约定提供服务的情形时，及时启动预案",
)
#: Where each province asks for the temporary takeover plan (临时接管预案), by province code.
TAKEOVER_CLAUSES: Mapping[str, tuple[Citation, ...]] = {
    "22": (_JILIN_2018, _JILIN_2020),
    "33": (
        Citation(
            doc="浙民助〔2018〕117号",
            section="二(一)5",
            quote="要建立承接主体退出机制，制定临时接管预案",
        ),
    ),
    "46": (
        Citation(
            doc="海南省贯彻实施意见",
            section="二(七)",
            quote="要建立承接主体退出机制，制定临时接管预案。在承接主体发生不能按合同约定提供服务的情形时，及时启动预案",
        ),
    ),
}


def takeover_clauses(region_code: str) -> tuple[Citation, ...]:
    """The takeover-plan clauses of the region's province (none known: empty)."""
    return TAKEOVER_CLAUSES.get(region_code[:2], ())


def takeover_rules(region_code: str) -> list[str]:
    return [c.cite() for c in takeover_clauses(region_code)]


def takeover_reason(contract_id: str, state: str, state_reason: str | None) -> str:
    """Why a need is taken over: its contract stopped (paused or terminated), and why."""
    why = f"contract {contract_id} {state}"
    return f"{why}: {state_reason}" if state_reason else why
