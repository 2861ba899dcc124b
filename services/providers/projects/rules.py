"""Policy rules of purchasing projects (项目库) and the budget cap (pure: no I/O).

Each refusal is a `FieldError` plus the clause it comes from (`Citation.cite()` of the pack),
so the problem body can quote the policy:

- service items must be in the province catalogue (服务清单) and never on the negative list
  (不得购买事项, Jilin 吉民发〔2020〕44号 §三(二));
- the contract term is at most `default_max_months` (normally 12), or `stable_max_months`
  (36) for a stable recurring service with a secured budget (Jilin §四(三)2–3);
- the fund source must be one the pack allows for the items' kind of work (经费来源);
- the purchasing method must be one of the pack's five methods; qualification requirements
  must be the pack's admission conditions;
- the year's approved budgets of a region may not exceed floor(base × ratio) of the central
  + provincial special funds recorded for it (Jilin §五, 2 %).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal

from libs.common.errors import FieldError, InvalidInput, RuleViolation
from libs.common.policy import Citation, PolicyPack

# ------------------------------------------------------------------------- state machine

#: Who may move a project where by hand; market states follow matching's events only.
MANUAL_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "approve": ("draft",),
    "publish": ("approved",),
    # Before award: afterwards a contract exists and ends through matching (terminated).
    "cancel": ("draft", "approved", "published", "tendered"),
    "update": ("draft",),
}

#: States in which the project's budget is held in its ledger (reserved on approval).
HOLDS_RESERVATION: frozenset[str] = frozenset(
    {"approved", "published", "tendered", "awarded", "in_service", "closed"}
)

#: The market lifecycle, in order. Matching's events move a project forward only, so a late
#: event (one overtaken by a later one) never drags it back; the one way back is a failed or
#: cancelled tender of the project's current tender, which reopens it as published.
MARKET_RANK: dict[str, int] = {
    "published": 0,
    "tendered": 1,
    "awarded": 2,
    "in_service": 3,
    "closed": 4,
}


@dataclass
class Refusals:
    """Field errors and the distinct clauses behind them, in the order found."""

    errors: list[FieldError] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)

    def add(self, path: str, reason: str, *clauses: str) -> None:
        self.errors.append(FieldError(path, reason))
        for clause in clauses:
            if clause not in self.clauses:
                self.clauses.append(clause)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self, detail: str) -> None:
        """RuleViolation (422) when a clause refused; plain InvalidInput otherwise."""
        if not self.errors:
            return
        cls = RuleViolation if self.clauses else InvalidInput
        raise cls(
            detail=detail,
            errors=list(self.errors),
            extra={"rules": list(self.clauses)} if self.clauses else {},
        )


def _distinct_cites(citations: Sequence[Citation]) -> list[str]:
    return list(dict.fromkeys(c.cite() for c in citations))


def catalogue_clauses(pack: PolicyPack) -> list[str]:
    """Where the province's catalogue (服务清单) is set out: its items' distinct sources."""
    return _distinct_cites([i.source for i in pack.catalogue])


# ------------------------------------------------------------------------- items


def item_refusals(pack: PolicyPack, service_codes: Sequence[str], out: Refusals) -> None:
    """Negative-list entries cite their own clause; anything else outside the catalogue
    cites the catalogue."""
    for i, code in enumerate(service_codes):
        path = f"body.service_codes.{i}"
        entry = pack.negative_entry(code)
        if entry is not None:
            clause = entry.source.cite()
            out.add(
                path,
                f"{code!r} may not be bought as a service: {entry.description_zh} "
                f"(不得购买事项, {clause})",
                clause,
            )
        elif pack.catalogue_item(code) is None:
            clauses = catalogue_clauses(pack)
            out.add(
                path,
                f"{code!r} is not in the catalogue of purchasable social-assistance services "
                f"of the {pack.province} pack (服务清单, {'; '.join(clauses)})",
                *clauses,
            )


# ------------------------------------------------------------------------- term


def term_end_limit(start: date, months: int) -> date:
    """The last day (inclusive) of a term of `months` months beginning on `start`.

    The term ends the day before the same day `months` later: 12 months from 2027-01-01 end
    on 2027-12-31. When that day does not exist (from 01-31 one month on; from 02-29 a year
    on) the term runs through the end of the shorter month.
    """
    total = start.month - 1 + months
    year, month = start.year + total // 12, total % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if start.day > last:
        return date(year, month, last)
    return date(year, month, start.day) - timedelta(days=1)


def term_refusals(
    pack: PolicyPack,
    *,
    period_start: date,
    period_end: date,
    stable_recurring: bool,
    budget_secured: bool,
    out: Refusals,
) -> None:
    """合同履行期限: ≤ default_max_months, or ≤ stable_max_months when the service is stable
    and recurring AND its budget is secured (在预算保障的前提下)."""
    if period_end < period_start:
        out.add("body.period_end", f"the period ends ({period_end}) before it starts")
        return
    term = pack.contract_term
    default_end = term_end_limit(period_start, term.default_max_months)
    if period_end <= default_end:
        return
    default_clause = term.source.cite()
    stable_clause = (term.stable_source or term.source).cite()
    stable_end = term_end_limit(period_start, term.stable_max_months)
    if stable_recurring and budget_secured:
        if period_end <= stable_end:
            return
        out.add(
            "body.period_end",
            f"{period_start}..{period_end} is longer than {term.stable_max_months} months, the "
            f"most even for a stable recurring service with a secured budget (latest end "
            f"{stable_end}; {stable_clause})",
            stable_clause,
        )
        return
    missing = [
        name
        for name, met in (
            ("stable_recurring (购买内容相对固定、连续性强)", stable_recurring),
            ("budget_secured (预算保障)", budget_secured),
        )
        if not met
    ]
    clauses = [default_clause]
    if period_end <= stable_end:
        clauses.append(stable_clause)
    out.add(
        "body.period_end",
        f"{period_start}..{period_end} is longer than {term.default_max_months} months "
        f"(latest end {default_end}; {default_clause}); up to {term.stable_max_months} months "
        f"only for a stable recurring service with a secured budget; not met: "
        f"{', '.join(missing)}",
        *clauses,
    )


# ------------------------------------------------------------------------- money, method


def fund_source_refusals(
    pack: PolicyPack, *, fund_source: str, service_codes: Sequence[str], out: Refusals
) -> None:
    """经费来源: the source must be the pack's and apply to every item's kind of work."""
    source = next((s for s in pack.funding_sources if s.code == fund_source), None)
    if source is None:
        allowed = ", ".join(s.code for s in pack.funding_sources) or "none"
        out.add(
            "body.fund_source",
            f"{fund_source!r} is not a funding source of the {pack.province} pack; "
            f"allowed: {allowed}",
            *_distinct_cites([s.source for s in pack.funding_sources]),
        )
        return
    if source.applies_to == "any":
        return
    for code in service_codes:
        item = pack.catalogue_item(code)
        if item is not None and item.kind != source.applies_to:
            clause = source.source.cite()
            out.add(
                "body.fund_source",
                f"{source.name_zh} ({fund_source}) pays for {source.applies_to} work only; "
                f"{code!r} is {item.kind} work ({clause})",
                clause,
            )


def method_refusals(pack: PolicyPack, *, purchasing_method: str, out: Refusals) -> None:
    if pack.purchasing_method(purchasing_method) is None:
        allowed = ", ".join(m.code for m in pack.purchasing_methods)
        out.add(
            "body.purchasing_method",
            f"{purchasing_method!r} is not a purchasing method of the {pack.province} pack; "
            f"allowed: {allowed}",
            *_distinct_cites([m.source for m in pack.purchasing_methods]),
        )


def qualification_refusals(
    pack: PolicyPack, *, qualification_requirements: Sequence[str], out: Refusals
) -> None:
    for i, code in enumerate(qualification_requirements):
        if pack.admission_condition(code) is None:
            allowed = ", ".join(c.code for c in pack.admission_conditions)
            out.add(
                f"body.qualification_requirements.{i}",
                f"{code!r} is not an admission condition of the {pack.province} pack; "
                f"allowed: {allowed}",
            )


def project_refusals(
    pack: PolicyPack,
    *,
    service_codes: Sequence[str],
    fund_source: str,
    period_start: date,
    period_end: date,
    stable_recurring: bool,
    budget_secured: bool,
    purchasing_method: str,
    qualification_requirements: Sequence[str],
) -> Refusals:
    """Every rule a project must meet under `pack`, all refusals at once."""
    out = Refusals()
    item_refusals(pack, service_codes, out)
    term_refusals(
        pack,
        period_start=period_start,
        period_end=period_end,
        stable_recurring=stable_recurring,
        budget_secured=budget_secured,
        out=out,
    )
    fund_source_refusals(pack, fund_source=fund_source, service_codes=service_codes, out=out)
    method_refusals(pack, purchasing_method=purchasing_method, out=out)
    qualification_refusals(pack, qualification_requirements=qualification_requirements, out=out)
    return out


# ------------------------------------------------------------------------- budget cap


def cap_ratio(pack: PolicyPack) -> Decimal | None:
    return pack.budget_cap.ratio if pack.budget_cap is not None else None


def cap_for(pack: PolicyPack, base_fen: int) -> int | None:
    """floor(base × ratio) in fen; None when the pack sets no cap (the ledger only tracks).

    Decimal arithmetic: 0.02 as a float is not exact, and a cap one fen too high would let
    an over-budget project through.
    """
    ratio = cap_ratio(pack)
    if ratio is None:
        return None
    return int((Decimal(base_fen) * ratio).to_integral_value(rounding=ROUND_FLOOR))


def fits_cap(*, cap_fen: int, reserved_fen: int, requested_fen: int) -> bool:
    """The reservation condition, as the ledger UPDATE states it: reserved + amount ≤ cap."""
    return reserved_fen + requested_fen <= cap_fen


def cap_refusal(
    pack: PolicyPack,
    *,
    region_code: str,
    year: int,
    base_fen: int,
    cap_fen: int,
    reserved_fen: int,
    requested_fen: int,
) -> RuleViolation:
    """The 2 % cap refuses an approval: the clause and the figures, in fen."""
    assert pack.budget_cap is not None
    clause = pack.budget_cap.source.cite()
    available = max(cap_fen - reserved_fen, 0)
    reason = (
        f"approving {requested_fen} fen would bring the {year} purchasing budget of "
        f"{region_code} to {reserved_fen + requested_fen} fen, over its cap of {cap_fen} fen "
        f"({pack.budget_cap.ratio} of {base_fen} fen of {pack.budget_cap.basis}); "
        f"{available} fen remain ({clause})"
    )
    return RuleViolation(
        detail="The project's budget exceeds what the region may still spend this year "
        "under the purchasing budget cap (购买服务经费总额度上限).",
        errors=[FieldError("project.budget_fen", reason)],
        extra={
            "rules": [clause],
            "region_code": region_code,
            "year": year,
            "base_fen": base_fen,
            "cap_fen": cap_fen,
            "reserved_fen": reserved_fen,
            "requested_fen": requested_fen,
            "available_fen": available,
        },
    )


def no_funds_refusal(pack: PolicyPack, *, region_code: str, year: int) -> RuleViolation:
    """No special funds recorded for the region and year: the cap is 0, nothing can pass."""
    assert pack.budget_cap is not None
    clause = pack.budget_cap.source.cite()
    reason = (
        f"no central or provincial special social-assistance funds are recorded for "
        f"{region_code} in {year}; the purchasing budget may be at most "
        f"{pack.budget_cap.ratio} of them ({clause}); record the allocations first "
        f"(POST /funds/allocations)"
    )
    return RuleViolation(
        detail="No fund ledger with recorded special funds for the project's region and year.",
        errors=[FieldError("project.budget_fen", reason)],
        extra={
            "rules": [clause],
            "region_code": region_code,
            "year": year,
            "base_fen": 0,
            "cap_fen": 0,
        },
    )


def market_target(verb: str) -> str | None:
    """The state a matching event moves a project to (None: not a project event)."""
    return {
        "tender.published": "tendered",
        "tender.failed": "published",
        "tender.cancelled": "published",
        "award.made": "awarded",
        "contract.signed": "in_service",
        "contract.completed": "closed",
        "contract.terminated": "closed",
    }.get(verb)
