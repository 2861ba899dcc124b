"""Rules of contracts (政府购买服务合同), amendments, delivery and acceptance: pure, no I/O.

- Term (合同履行期限): at most the pack's `default_max_months` (12), or `stable_max_months`
  (36) for a service that is stable and recurring *and* has a secured budget (在预算保障的前提下
  … 购买内容相对固定、连续性强; Jilin 吉民发〔2020〕44号 §四(三)2–3, elsewhere 财政部令第102号
  第二十四条 — the pack's `contract_term.source` / `stable_source`). The contract's period
  must also lie inside its project's period.
- Subcontracting (转包) is forbidden: every contract carries the obligation
  `no_subcontracting` (严禁服务转包: 吉民发〔2020〕44号 §四(四)2; 吉民发〔2018〕21号 §二(六);
  浙民助〔2018〕117号 §二(一)5; 海南省贯彻实施意见 §二(七)), and only the organisation
  holding a match may record service under it.
- Amendments (补充合同): the value changes of all amendments together, counted as absolute
  amounts, may not exceed 10 % of the original value (中华人民共和国政府采购法 第四十九条:
  所有补充合同的采购金额不得超过原合同采购金额的百分之十). Exactly 10 % is allowed.
- States: pending → active → completed | terminated; active ⇄ paused while credit suspends
  the organisation; pending → refused when the organisation will not sign (拒签).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from libs.common.policy import Citation, PolicyPack

# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One reason a request is refused: the field at fault, why, and the clause if a rule."""

    field: str
    reason: str
    rules: tuple[Citation, ...] = ()

    def cites(self) -> list[str]:
        return [c.cite() for c in self.rules]


# --------------------------------------------------------------------------------------------
# State machine
# --------------------------------------------------------------------------------------------

CONTRACT_STATES: tuple[str, ...] = (
    "pending",  # 待签订: drawn up from an accepted award, waiting for the organisation
    "active",  # 履行中: signed
    "paused",  # 暂停履行: credit suspended the organisation
    "completed",  # 履行完毕
    "terminated",  # 终止: by the purchaser, or credit's exit / blacklist decision
    "refused",  # 拒签: the organisation would not sign; the award goes to the next-ranked
)
FINAL_STATES: frozenset[str] = frozenset({"completed", "terminated", "refused"})

#: action → (states it may start from, state it leads to). Anything else is a 409.
TRANSITIONS: Mapping[str, tuple[frozenset[str], str]] = {
    "sign": (frozenset({"pending"}), "active"),
    "refuse": (frozenset({"pending"}), "refused"),
    "pause": (frozenset({"active"}), "paused"),
    "resume": (frozenset({"paused"}), "active"),
    "complete": (frozenset({"active", "paused"}), "completed"),
    "terminate": (frozenset({"pending", "active", "paused"}), "terminated"),
}
#: A supplementary contract is made while the contract is being performed (合同履行中).
AMENDABLE_STATES: frozenset[str] = frozenset({"active", "paused"})
#: Service may be recorded only while the contract is in force.
DELIVERABLE_STATES: frozenset[str] = frozenset({"active"})
#: States whose contract is public (合同应当依法予以公告, 吉民发〔2020〕44号 §四(三)4): signed.
ANNOUNCED_STATES: frozenset[str] = frozenset({"active", "paused", "completed", "terminated"})


class InvalidTransition(ValueError):
    """A contract cannot take `action` from `state` (e.g. sign a completed contract)."""

    def __init__(self, state: str, action: str) -> None:
        sources = TRANSITIONS[action][0] if action in TRANSITIONS else frozenset()
        allowed = ", ".join(sorted(sources)) or "nowhere"
        super().__init__(f"a {state} contract cannot be {action}ed here; allowed from: {allowed}")
        self.state = state
        self.action = action


def next_state(state: str, action: str) -> str:
    """The state after `action`; raises `InvalidTransition` outside the state machine."""
    if action not in TRANSITIONS:
        raise ValueError(f"unknown contract action {action!r}")
    sources, target = TRANSITIONS[action]
    if state not in sources:
        raise InvalidTransition(state, action)
    return target


#: Credit decision (`sa.credit.organisation.<verb>`) → what it does to the organisation's
#: contracts. Suspension pauses, reinstatement resumes, exit and blacklist terminate
#: (退出机制; 终止合同执行, 吉民发〔2020〕44号 §四(四)3–4).
CREDIT_ACTIONS: Mapping[str, str] = {
    "suspended": "pause",
    "reinstated": "resume",
    "exited": "terminate",
    "blacklisted": "terminate",
}


def credit_action(verb: str) -> str | None:
    return CREDIT_ACTIONS.get(verb)


def states_hit_by(action: str) -> frozenset[str]:
    """The contract states a credit decision's action applies to."""
    return TRANSITIONS[action][0]


# --------------------------------------------------------------------------------------------
# Obligations and subcontracting (严禁服务转包)
# --------------------------------------------------------------------------------------------

NO_SUBCONTRACTING = "no_subcontracting"
_QUOTE = (
    "承接主体应主动接受购买主体的监管，健全财务报告制度，保证服务数量、质量和效果，严禁服务转包"
)
#: Where each province forbids subcontracting; the packs carry no clause of their own for it.
SUBCONTRACTING_CLAUSES: Mapping[str, Citation] = {
    "jilin": Citation(doc="吉民发〔2020〕44号", section="四(四)2", quote=_QUOTE),
    "zhejiang": Citation(doc="浙民助〔2018〕117号", section="二(一)5", quote=_QUOTE),
    "hainan": Citation(doc="海南省贯彻实施意见", section="二(七)", quote=_QUOTE),
}


def subcontracting_clause(pack: PolicyPack) -> Citation:
    """The clause of the pack's province that forbids subcontracting (严禁服务转包)."""
    return SUBCONTRACTING_CLAUSES[pack.province]


def obligations_with_defaults(obligations: Iterable[str]) -> list[str]:
    """The contract's obligations, always with `no_subcontracting` first, without repeats."""
    return list(dict.fromkeys([NO_SUBCONTRACTING, *obligations]))


def delivery_refusal(pack: PolicyPack, *, holder: str | None, deliverer: str) -> Refusal | None:
    """Only the organisation holding the match may record its service: anyone else would be
    serving someone else's contract — a transfer or subcontract (转包), which is forbidden."""
    if holder == deliverer:
        return None
    clause = subcontracting_clause(pack)
    return Refusal(
        "path.match_id",
        "this match is held by another organisation; recording service under it would be a "
        f"transfer or subcontract of the contract (严禁服务转包, {clause.cite()})",
        (clause,),
    )


# --------------------------------------------------------------------------------------------
# Term (合同履行期限)
# --------------------------------------------------------------------------------------------


def term_end_limit(start: date, months: int) -> date:
    """The last day (inclusive) of a term of `months` months beginning on `start`.

    12 months from 2027-01-01 end on 2027-12-31; from 2027-03-15 on 2028-03-14. When the day
    does not exist `months` later (from 01-31, from 02-29) the term runs through the end of
    the shorter month.
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
) -> list[Refusal]:
    """≤ default_max_months; ≤ stable_max_months only when stable, recurring AND secured."""
    if period_end < period_start:
        return [Refusal("body.period_end", f"the period ends ({period_end}) before it starts")]
    term = pack.contract_term
    default_end = term_end_limit(period_start, term.default_max_months)
    if period_end <= default_end:
        return []
    stable_rule = term.stable_source or term.source
    stable_end = term_end_limit(period_start, term.stable_max_months)
    if stable_recurring and budget_secured:
        if period_end <= stable_end:
            return []
        return [
            Refusal(
                "body.period_end",
                f"{period_start}..{period_end} is longer than {term.stable_max_months} months, "
                f"the most even for a stable recurring service with a secured budget (latest "
                f"end {stable_end}; {stable_rule.cite()})",
                (stable_rule,),
            )
        ]
    missing = [
        name
        for name, met in (
            ("stable_recurring (购买内容相对固定、连续性强)", stable_recurring),
            ("budget_secured (预算保障)", budget_secured),
        )
        if not met
    ]
    cited = [term.source]
    if period_end <= stable_end and stable_rule.cite() != term.source.cite():
        cited.append(stable_rule)  # the longer term was possible, had the conditions held
    return [
        Refusal(
            "body.period_end",
            f"{period_start}..{period_end} is longer than {term.default_max_months} months "
            f"(latest end {default_end}; {term.source.cite()}); up to "
            f"{term.stable_max_months} months only for a stable recurring service with a "
            f"secured budget, which the project is not: {', '.join(missing)}",
            tuple(cited),
        )
    ]


def project_period_refusals(
    *, period_start: date, period_end: date, project_start: date, project_end: date
) -> list[Refusal]:
    """The contract's period must lie inside its project's (the project set the term)."""
    out: list[Refusal] = []
    if period_start < project_start:
        out.append(
            Refusal(
                "body.period_start",
                f"starts {period_start}, before the project's period "
                f"({project_start}..{project_end})",
            )
        )
    if period_end > project_end:
        out.append(
            Refusal(
                "body.period_end",
                f"ends {period_end}, after the project's period ({project_start}..{project_end})",
            )
        )
    return out


def capacity_refusals(
    capacity: Mapping[str, int], service_codes: Sequence[str], *, path: str
) -> list[Refusal]:
    """Monthly capacity is given per contracted item, in whole units ≥ 1."""
    out: list[Refusal] = []
    if not capacity:
        out.append(Refusal(path, "give the monthly capacity of at least one contracted item"))
    for code, units in capacity.items():
        if code not in service_codes:
            out.append(
                Refusal(
                    f"{path}.{code}",
                    f"{code!r} is not an item of the tender ({', '.join(service_codes)})",
                )
            )
        elif units < 1:
            out.append(Refusal(f"{path}.{code}", "monthly capacity must be at least 1 unit"))
    return out


def region_refusals(regions: Sequence[str], tender_region: str) -> list[Refusal]:
    """The contract serves inside the tender's region only."""
    return [
        Refusal(f"body.regions.{i}", f"{r} lies outside the tender's region {tender_region}")
        for i, r in enumerate(regions)
        if not r.startswith(tender_region)
    ]


# --------------------------------------------------------------------------------------------
# Amendments (补充合同, 政府采购法 第四十九条)
# --------------------------------------------------------------------------------------------

AMENDMENT_CAP_PERCENT = 10
AMENDMENT_CLAUSE = Citation(
    doc="中华人民共和国政府采购法",
    section="第四十九条",
    quote="所有补充合同的采购金额不得超过原合同采购金额的百分之十",
)


def amendment_headroom_fen(original_value_fen: int, previous_deltas: Iterable[int]) -> int:
    """How many fen of change (in absolute terms) amendments may still make."""
    used = sum(abs(d) for d in previous_deltas)
    # Integer arithmetic: 10 % of an odd number of fen is not a whole fen; floor it.
    return original_value_fen * AMENDMENT_CAP_PERCENT // 100 - used


def amendment_refusal(
    *, original_value_fen: int, previous_deltas: Sequence[int], delta_fen: int
) -> Refusal | None:
    """All amendments together may change the value by at most 10 % of the original.

    Increases and decreases both count by their absolute amount: each is a supplementary
    contract (补充合同) whose amount the law caps in total.
    """
    used = sum(abs(d) for d in previous_deltas)
    # 100 × total ≤ 10 × original, exactly, without rounding.
    if 100 * (used + abs(delta_fen)) <= AMENDMENT_CAP_PERCENT * original_value_fen:
        return None
    headroom = max(0, amendment_headroom_fen(original_value_fen, previous_deltas))
    return Refusal(
        "body.delta_fen",
        f"amendments would change the value by {used + abs(delta_fen)} fen in all, more than "
        f"{AMENDMENT_CAP_PERCENT} % of the original {original_value_fen} fen (at most "
        f"{headroom} fen more; {AMENDMENT_CLAUSE.cite()})",
        (AMENDMENT_CLAUSE,),
    )


def capacity_after(
    capacity: Mapping[str, int], changes: Mapping[str, int], service_codes: Sequence[str]
) -> tuple[dict[str, int], list[Refusal]]:
    """Monthly capacity after an amendment's changes (units added or removed per item)."""
    result = dict(capacity)
    out: list[Refusal] = []
    for code, delta in changes.items():
        path = f"body.capacity_changes.{code}"
        if code not in service_codes:
            out.append(Refusal(path, f"{code!r} is not an item of the contract"))
            continue
        units = result.get(code, 0) + delta
        if units < 0:
            out.append(
                Refusal(path, f"would leave {units} units a month; capacity cannot go below 0")
            )
            continue
        result[code] = units
    return result, out


# --------------------------------------------------------------------------------------------
# Delivery and acceptance (服务记录、履约验收)
# --------------------------------------------------------------------------------------------


def delivery_date_refusals(
    delivered_on: date, *, period_start: date, period_end: date, today: date
) -> list[Refusal]:
    """A session is recorded on a day of the contract's period, never in the future."""
    out: list[Refusal] = []
    if delivered_on > today:
        out.append(Refusal("body.delivered_on", f"{delivered_on} is in the future"))
    if not period_start <= delivered_on <= period_end:
        out.append(
            Refusal(
                "body.delivered_on",
                f"{delivered_on} is outside the contract period {period_start}..{period_end}",
            )
        )
    return out


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def period_range(period: str) -> tuple[date, date]:
    """First and last day of an acceptance period: `YYYY-MM` or `YYYY-Qn`; ValueError else."""
    if m := _MONTH.match(period):
        year, month = int(m.group(1)), int(m.group(2))
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    if m := _QUARTER.match(period):
        year, quarter = int(m.group(1)), int(m.group(2))
        first, last = 3 * quarter - 2, 3 * quarter
        return date(year, first, 1), date(year, last, calendar.monthrange(year, last)[1])
    raise ValueError(f"{period!r} is not a period: use YYYY-MM or YYYY-Qn")


def acceptance_period_refusals(
    period: str, *, period_start: date, period_end: date, today: date
) -> list[Refusal]:
    """The period must overlap the contract and have begun (one cannot accept the future)."""
    try:
        first, last = period_range(period)
    except ValueError as exc:
        return [Refusal("body.period", str(exc))]
    out: list[Refusal] = []
    if last < period_start or first > period_end:
        out.append(
            Refusal(
                "body.period",
                f"{period} ({first}..{last}) lies outside the contract period "
                f"{period_start}..{period_end}",
            )
        )
    elif first > today:
        out.append(Refusal("body.period", f"{period} has not begun yet"))
    return out


def may_complete(*, period_end: date, today: date, qualified_acceptance: bool) -> bool:
    """A contract is completed once its period is over, or earlier with a qualified
    acceptance (验收合格)."""
    return today > period_end or qualified_acceptance
