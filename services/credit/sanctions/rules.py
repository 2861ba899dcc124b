"""Rules of violations and sanctions (失信惩戒), pure: no I/O, no clock.

Every number comes from the pack's `sanctions` section (`SanctionRules`) and every refusal
names where it comes from. Most of those numbers are local settings (本地设置: the documents
ban "在一定期限内" without a length); a local setting is cited as such, never as the
document, and the document's clause is cited for the power to sanction itself
(吉民发〔2020〕44号 §四(四)4; 海南省贯彻实施意见 §二(七); 民发〔2012〕196号 §三(五)) and, for a
ban, 中华人民共和国政府采购法 第七十七条 (1–3 years).

Periods are half-open, ``[starts_on, ends_on)``: ``ends_on`` is the FIRST day the ban or
suspension no longer applies. A three-year ban starting 2026-11-23 has ends_on 2029-11-23; it
binds through 2029-11-22 and is lifted on 2029-11-23 itself (on the end date the ban is over).
Public listings also show ``last_day = ends_on - 1`` so nobody has to know the convention.

Working-day windows (陈述申辩 response window, 申诉 appeal window) run from the day after the
notice or decision (期限从次日起算, see libs/common/workdays.py); the due day itself is still
in time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Literal

from dateutil.relativedelta import relativedelta

from libs.common.policy import PolicyPack
from libs.common.workdays import UnknownCalendarYear, WorkdayCalendar
from services.credit.rules import ban_end, ban_legal_basis

__all__ = [
    "PROVINCE_ZH",
    "RANK",
    "SANCTION_KINDS",
    "SANCTION_STATUS",
    "SEVERITIES",
    "VIOLATION_KINDS",
    "appeal_due",
    "ban_end",
    "ban_legal_basis",
    "decision_open",
    "default_authority",
    "effective_status",
    "in_force_on",
    "last_day",
    "legal_basis_for",
    "lighter_than",
    "repair_earliest",
    "response_due",
    "response_open",
    "setting_citation",
    "suspension_end",
    "within_working_days",
]

ViolationKind = Literal[
    "breach_of_contract",
    "falsification",
    "subcontracting",
    "refusing_to_sign",
    "failure_to_deliver",
    "repeated_unqualified",
]
Severity = Literal["minor", "general", "serious"]
SanctionKind = Literal["warning", "rectification", "suspension", "exit", "blacklist"]
DecisionKind = Literal["warning", "rectification", "suspension", "exit", "blacklist", "dismiss"]

#: 违约失信行为 kinds (issue 7 §4) with their Chinese names, shown on the public list.
VIOLATION_KINDS: dict[str, str] = {
    "breach_of_contract": "违背合同约定",
    "falsification": "弄虚作假",
    "subcontracting": "服务转包",
    "refusing_to_sign": "无正当理由拒绝签订合同",
    "failure_to_deliver": "不能按合同约定提供服务",
    "repeated_unqualified": "绩效评价连续不合格",
}
SEVERITIES: tuple[str, ...] = ("minor", "general", "serious")

#: 处理决定 kinds with their Chinese names.
SANCTION_KINDS: dict[str, str] = {
    "warning": "警告",
    "rectification": "责令限期整改",
    "suspension": "暂停承接资格",
    "exit": "退出（终止承接资格）",
    "blacklist": "列入失信名单，禁止参与政府购买社会救助服务",
}

#: The organisation status a sanction imposes while in force; warnings and rectification
#: orders leave the status as it is.
SANCTION_STATUS: dict[str, str] = {
    "suspension": "suspended",
    "exit": "exited",
    "blacklist": "blacklisted",
}
#: Heavier sanctions win: a ban outlasts a suspension, an exit outlasts a suspension.
RANK: dict[str, int] = {"suspended": 1, "exited": 2, "blacklisted": 3}

#: Severity credit records for a refusal to sign reported by matching, before any decision:
#: a local choice (the operator decides the sanction after due process, and may dismiss).
REFUSAL_SEVERITY: Severity = "general"

PROVINCE_ZH: dict[str, str] = {"jilin": "吉林省", "zhejiang": "浙江省", "hainan": "海南省"}


# ------------------------------------------------------------------------------ citations


def setting_citation(pack: PolicyPack, field: str, severity: str | None = None) -> str:
    """Cite a number of the pack's `sanctions` section.

    A local setting is named as one (with the pack and version) and not attributed to the
    document; a number the document gives is cited by its clause.
    """
    rules = pack.sanctions
    value = getattr(rules, field)
    if severity is not None:
        value = value[severity]
        label = f"sanctions.{field}[{severity}] = {value}"
    else:
        label = f"sanctions.{field} = {value}"
    if rules.is_local_setting(field):
        return f"{label}（本地设置，{pack.province}@{pack.version}，非文件规定）"
    return f"{label}（{rules.source.cite()}）"


def legal_basis_for(pack: PolicyPack, kind: str) -> list[str]:
    """The clauses a sanction of `kind` rests on: the pack's sanctions clause, and for a ban
    also the law's (政府采购法 第七十七条)."""
    if kind == "blacklist":
        return ban_legal_basis(pack)
    return [pack.sanctions.source.cite()]


def default_authority(pack: PolicyPack, region: str) -> str:
    """The deciding authority (作出决定的机关) when the operator does not name one."""
    province = PROVINCE_ZH.get(pack.province, pack.province)
    if len(region) <= 2:
        return f"{province}民政厅"
    return f"{province}民政部门（行政区划 {region}）"


# ------------------------------------------------------------------------------ windows


def response_due(pack: PolicyPack, calendar: WorkdayCalendar, notified_on: date) -> date:
    """Last day the organisation may respond (陈述申辩): n working days after notice.

    Raises `UnknownCalendarYear` rather than guessing when the count reaches a year the
    calendar does not know.
    """
    return calendar.add_workdays(notified_on, pack.sanctions.response_window_working_days)


def response_open(*, today: date, due: date) -> bool:
    """The organisation may still respond: the due day itself is in time."""
    return today <= due


def decision_open(*, today: date, due: date, responded: bool) -> bool:
    """Due process (陈述申辩): a decision waits for the response or for the window to close."""
    return responded or today > due


def within_working_days(calendar: WorkdayCalendar, *, start: date, days: int, today: date) -> bool:
    """Whether `today` is at most the `days`-th working day after `start`.

    Counted with the calendar only up to `today`: a window that reaches into a year the
    calendar does not know yet is still decided exactly for every day already passed.
    """
    if today <= start:
        return True
    passed = calendar.workdays_between(start, today)
    return passed < days or (passed == days and calendar.is_workday(today))


def appeal_due(pack: PolicyPack, calendar: WorkdayCalendar, decided_on: date) -> date | None:
    """Last day to appeal (申诉), or None while the calendar cannot count that far yet."""
    try:
        return calendar.add_workdays(decided_on, pack.sanctions.appeal_window_working_days)
    except UnknownCalendarYear:
        return None


# ------------------------------------------------------------------------------ periods


def suspension_end(starts_on: date, months: int) -> date:
    """First day after a suspension of `months` calendar months."""
    return starts_on + relativedelta(months=months)


def last_day(ends_on: date) -> date:
    """The last day a half-open period still applies."""
    return ends_on - timedelta(days=1)


def in_force_on(starts_on: date, ends_on: date | None, today: date) -> bool:
    """Whether a period ``[starts_on, ends_on)`` covers `today` (None: no end)."""
    return starts_on <= today and (ends_on is None or today < ends_on)


def repair_earliest(pack: PolicyPack, *, severity: str, starts_on: date) -> date:
    """First day credit repair (信用修复) may be applied for: after the minimum publication
    period for the severity (general 3 months, serious 12 in the packs)."""
    months = pack.sanctions.min_publication_months[severity]  # type: ignore[index]
    return starts_on + relativedelta(months=months)


# ------------------------------------------------------------------------------ status


def effective_status(base: str, imposed: Iterable[str]) -> str:
    """The organisation's status: the heaviest status imposed by a sanction in force, or
    `base` (its admission standing) when none is."""
    heaviest = max(imposed, key=lambda s: RANK[s], default=None)
    return heaviest if heaviest is not None else base


def lighter_than(kind: str, imposed: Iterable[str]) -> str | None:
    """The heavier status already in force that makes a new sanction of `kind` pointless
    (a suspension of a banned organisation), or None."""
    status = SANCTION_STATUS.get(kind)
    if status is None:
        return None
    heavier = [s for s in imposed if RANK[s] > RANK[status]]
    return max(heavier, key=lambda s: RANK[s], default=None)
