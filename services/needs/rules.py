"""Needs rules (pure): what a recipient and a need item must satisfy under the pack."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Literal

from dateutil.relativedelta import relativedelta

from libs.common.errors import FieldError
from libs.common.policy import PolicyPack
from libs.common.validators import age_on
from libs.common.workdays import WorkdayCalendar


def category_errors(pack: PolicyPack, categories: Sequence[str]) -> list[FieldError]:
    errors = []
    for i, code in enumerate(categories):
        if pack.category(code) is None:
            known = ", ".join(c.code for c in pack.recipient_categories)
            errors.append(
                FieldError(
                    f"body.categories.{i}", f"{code!r} is not a {pack.province} category ({known})"
                )
            )
    if len(set(categories)) != len(categories):
        errors.append(FieldError("body.categories", "categories repeat"))
    return errors


def service_errors(pack: PolicyPack, service_code: str) -> list[FieldError]:
    """A need item must be a direct service (服务性工作) of the province catalogue."""
    item = pack.catalogue_item(service_code)
    if item is None:
        return [
            FieldError(
                "body.service_code", f"{service_code!r} is not in the {pack.province} catalogue"
            )
        ]
    if item.kind != "direct":
        return [
            FieldError(
                "body.service_code",
                f"{service_code!r} is administrative work, not a direct service for a person "
                f"({item.source.cite()})",
            )
        ]
    return []


def mask_name(name: str) -> str:
    """张三丰 → 张**: keep the family name only."""
    return name[:1] + "*" * max(len(name) - 1, 1)


# ============================================================================================
# Assessments (需求评估)
# ============================================================================================

#: The six activities of daily living in the self-care assessment of 特困人员
#: (特困人员生活自理能力评估), in the order the national rule lists them.
SELF_CARE_ACTIVITIES: tuple[str, ...] = (
    "eating",  # 自主吃饭
    "dressing",  # 自主穿衣
    "bed_transfer",  # 自主上下床
    "toileting",  # 自主如厕
    "indoor_walking",  # 室内自主行走
    "bathing",  # 自主洗澡
)

#: 生活自理 / 部分丧失生活自理能力 / 完全丧失生活自理能力.
SelfCareTier = Literal["self_care", "partly_lost", "fully_lost"]

#: Unmet activities from which a person counts as having fully lost self-care ability.
FULLY_LOST_FROM = 4

#: 初次评估 (at intake), 定期评估, 复核评估 (after a change or when due), 结案评估.
ASSESSMENT_KINDS: tuple[str, ...] = ("intake", "periodic", "reassessment", "closure")


def self_care_tier(unmet: Collection[str]) -> SelfCareTier:
    """Self-care tier (生活自理能力等级) of a 特困人员 from the activities they cannot do alone.

    All six met → 生活自理 (`self_care`); 1–3 unmet (含3项) → 部分丧失生活自理能力
    (`partly_lost`); 4 or more unmet (含4项) → 完全丧失生活自理能力 (`fully_lost`).

    Source: national practice, not the five policy documents. The six indicators and the
    3/4 boundary are the Ministry of Civil Affairs' 特困人员认定办法 (民发〔2016〕178号,
    revised as 民发〔2021〕43号), article on 生活自理能力评估. The five documents only name the
    assessment as purchasable work: 吉民发〔2020〕44号 §附件 (需求评估: 对特困人员生活自理能力…
    开展评估) and 浙民助〔2018〕117号 §附件 (特困人员自理能力评估).

    Unknown or repeated activity names raise ValueError naming them: counting a typo or a
    duplicate as an unmet activity would move a person across a tier boundary.
    """
    names = list(unmet)
    unknown = sorted({a for a in names if a not in SELF_CARE_ACTIVITIES})
    if unknown:
        raise ValueError(
            f"unknown self-care activities {unknown}; expected some of {list(SELF_CARE_ACTIVITIES)}"
        )
    repeated = sorted({a for a in names if names.count(a) > 1})
    if repeated:
        raise ValueError(f"self-care activities listed more than once: {repeated}")
    if not names:
        return "self_care"
    if len(names) < FULLY_LOST_FROM:
        return "partly_lost"
    return "fully_lost"


def self_care_from_answers(answers: Mapping[str, bool]) -> SelfCareTier:
    """Self-care tier from the assessor's answers: `answers[activity]` is True when the
    person can do it alone (指标能够达到). All six activities must be answered: a missing
    answer is not "can do", so it raises ValueError listing the missing ones (in the order of
    `SELF_CARE_ACTIVITIES`). Source: as `self_care_tier`.
    """
    missing = [a for a in SELF_CARE_ACTIVITIES if a not in answers]
    if missing:
        raise ValueError(f"self-care answers missing for {missing}")
    return self_care_tier([a for a, can in answers.items() if not can])


def reassessment_due(
    pack: PolicyPack, *, categories: Sequence[str], assessed_on: date
) -> date | None:
    """When the next reassessment (复核评估) of a recipient is due, or None.

    The earliest `assessed_on + reassessment_months[category]` over the recipient's categories
    (the shortest review period wins, so no category's review is missed); None when none of
    the categories has a period. Month arithmetic is calendar months (dateutil relativedelta):
    assessed on 31 January with a 1-month period → 28/29 February; 29 February + 12 months →
    28 February.

    Source: the documents require 动态管理 of recipients (吉民发〔2018〕21号 §三(一);
    海南省贯彻实施意见 §三(三)) but set no period; `pack.time_limits.reassessment_months` is a
    local setting (see the pack's `time_limits.note`). A category the pack does not know
    raises ValueError: it is a caller bug (`category_errors` catches user input first), not
    "no period".
    """
    unknown = [c for c in categories if pack.category(c) is None]
    if unknown:
        raise ValueError(f"categories {unknown} are not {pack.province} categories")
    periods = pack.time_limits.reassessment_months
    dues = [assessed_on + relativedelta(months=periods[c]) for c in categories if c in periods]
    return min(dues, default=None)


# ============================================================================================
# Need item lifecycle (需求状态)
# ============================================================================================

NeedStatus = Literal["open", "matched", "in_service", "fulfilled", "cancelled", "expired"]
NEED_STATUSES: tuple[str, ...] = (
    "open",  # 待匹配: assessed, waiting for a provider
    "matched",  # 已匹配: a provider (承接主体) is assigned, service not yet delivered
    "in_service",  # 服务中: at least one delivery recorded
    "fulfilled",  # 已满足: the need was met
    "cancelled",  # 已取消: withdrawn (recipient left, need no longer exists, closure)
    "expired",  # 已过期: the need's period ended before anyone was matched
)
TERMINAL_STATUSES: frozenset[str] = frozenset({"fulfilled", "cancelled", "expired"})

#: Allowed moves. Reassignment (need.reassigned, 更换承接主体) is decided as follows:
#: * matched → matched: the need moves to another provider before service began; the status
#:   stays, the provider changes (the only self-transition in the table).
#: * matched → open: the provider is gone (withdrew, exited, banned) and nobody takes over;
#:   the need goes back to the pool for matching.
#: * in_service → matched: the provider stops during service and the purchaser's temporary
#:   takeover plan (临时接管预案) names a new one; the need is `matched` again until the new
#:   provider's first service.delivered. A need in service never drops back to `open`: the
#:   documents require the plan to start at once so the recipient's rights are not affected
#:   (吉民发〔2020〕44号 §四(四)3; 吉民发〔2018〕21号 §二(六); 浙民助〔2018〕117号 §二(一)5;
#:   海南省贯彻实施意见 §二(七)).
#: `expired` is reachable only from `open`: once matched, ending is fulfilment or cancellation.
NEED_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "open": frozenset({"matched", "cancelled", "expired"}),
    "matched": frozenset({"in_service", "open", "matched", "cancelled"}),
    "in_service": frozenset({"fulfilled", "cancelled", "matched"}),
    "fulfilled": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}


class InvalidTransition(ValueError):
    """A need item cannot move from `current` to `new` (e.g. fulfilled → open).

    `reason` overrides the default explanation (used when an event, not the table, refuses).
    """

    def __init__(self, current: str, new: str, reason: str | None = None) -> None:
        why = reason if reason is not None else _refusal_reason(current, new)
        super().__init__(f"need cannot go from {current!r} to {new!r}: {why}")
        self.current = current
        self.new = new


def _refusal_reason(current: str, new: str) -> str:
    if current not in NEED_TRANSITIONS:
        return f"unknown need status {current!r}"
    if new not in NEED_TRANSITIONS:
        return f"unknown need status {new!r}"
    allowed = sorted(NEED_TRANSITIONS[current])
    if not allowed:
        return f"{current!r} is final"
    return f"allowed from {current!r}: {', '.join(allowed)}"


def can_transition(current: str, new: str) -> bool:
    """True when a need item may move from `current` to `new` (see `NEED_TRANSITIONS`)."""
    return new in NEED_TRANSITIONS.get(current, frozenset())


def check_transition(current: str, new: str) -> None:
    """Raise `InvalidTransition` unless a need item may move from `current` to `new`.

    Source: platform lifecycle (DESIGN, needs service); the reassignment rules follow the
    temporary takeover plan (临时接管预案, 吉民发〔2020〕44号 §四(四)3).
    """
    if not can_transition(current, new):
        raise InvalidTransition(current, new)


#: Events from matching and delivery that move a need item: event → (statuses it may arrive
#: in, status it leads to). A status equal to the target makes the event a no-op (a
#: redelivered need.matched, the next monthly service.delivered).
NEED_EVENT_MOVES: Mapping[str, tuple[frozenset[str], str]] = {
    "need.matched": (frozenset({"open", "matched"}), "matched"),
    "need.reassigned": (frozenset({"matched", "in_service"}), "matched"),
    "service.delivered": (frozenset({"matched", "in_service"}), "in_service"),
}


def status_after_event(current: str, event_type: str, *, new_provider: bool = True) -> str:
    """The need status after a matching or delivery event; raises `InvalidTransition`.

    * `need.matched`: open → matched. On a need already matched it is a redelivered event and
      changes nothing; on a need in service it is refused, since a late or duplicated match
      must not pull a need back out of service (a change of provider is `need.reassigned`).
    * `need.reassigned`: matched → matched and in_service → matched when the event names a
      new provider (`new_provider`); matched → open when it does not. in_service without a
      new provider is refused: the takeover plan must name one (see `NEED_TRANSITIONS`).
      On an open need there is nothing to reassign.
    * `service.delivered`: matched → in_service; further deliveries leave in_service as is.

    Every move is also checked against `NEED_TRANSITIONS`. Handlers still de-duplicate events
    by id; this only says where a status may go.
    """
    if event_type not in NEED_EVENT_MOVES:
        raise ValueError(f"event {event_type!r} does not move a need item")
    sources, new = NEED_EVENT_MOVES[event_type]
    if event_type == "need.reassigned" and not new_provider:
        new = "open"
    if current not in sources:
        raise InvalidTransition(
            current, new, f"{event_type} applies only to {', '.join(sorted(sources))} needs"
        )
    if current == new and event_type != "need.reassigned":
        return current
    check_transition(current, new)
    return new


# ============================================================================================
# Guardian of a child recipient (监护人)
# ============================================================================================

#: Under this age (周岁) a recipient is registered only with a guardian who consents.
GUARDIAN_AGE = 14


def needs_guardian(id_number: str, *, on: date) -> bool:
    """True when the holder of `id_number` is under 14 full years (不满十四周岁) on `on`.

    The age is counted from the birth date in the resident ID (`age_on`): 13 the day before
    the 14th birthday, 14 on the birthday itself. ValueError if the ID is invalid.

    Source: national law, not the five policy documents: 个人信息保护法 第三十一条 (processing
    the personal information of a child under 14 needs the consent of a parent or other
    guardian, 监护人同意) and 第二十八条 (it is sensitive personal information). Registering a
    recipient processes exactly that information.
    """
    return age_on(id_number, on) < GUARDIAN_AGE


def guardian_errors(
    *, id_number: str, on: date, has_guardian: bool, guardian_consent: bool
) -> list[FieldError]:
    """Field errors when a child recipient lacks a guardian (监护人) or the guardian's consent.

    Empty for a recipient aged 14 or over (a guardian may still be recorded, e.g. for an adult
    without full capacity). Without a guardian only `body.guardian` is reported: consent is
    part of the guardian record, and its reason says consent is needed too. ValueError if the
    ID is invalid (validate it first). Source: as `needs_guardian`.
    """
    if not needs_guardian(id_number, on=on):
        return []
    if not has_guardian:
        return [
            FieldError(
                "body.guardian",
                f"a recipient under {GUARDIAN_AGE} needs a guardian (监护人) who consents to "
                "registration (个人信息保护法 第三十一条)",
            )
        ]
    if not guardian_consent:
        return [
            FieldError(
                "body.guardian.consent",
                f"the guardian of a recipient under {GUARDIAN_AGE} must consent to "
                "registration (监护人同意, 个人信息保护法 第三十一条)",
            )
        ]
    return []


# ============================================================================================
# Single-window intake (一门受理、限时办理、一次性告知)
# ============================================================================================


def intake_due(pack: PolicyPack, *, received_on: date, calendar: WorkdayCalendar) -> date:
    """Due date of an application received at the single window (一门受理): the
    `pack.time_limits.intake_working_days`-th PRC working day after `received_on` (the day of
    receipt does not count; see `libs.common.workdays`).

    Source: 限时办理 — 吉民发〔2018〕21号 §三(二), 浙民助〔2018〕117号 §二(二)1,
    海南省贯彻实施意见 §三(一); none sets a number, so `intake_working_days` is a local
    setting of each pack. Raises `UnknownCalendarYear` when the count reaches a year without
    an official calendar.
    """
    return calendar.add_workdays(received_on, pack.time_limits.intake_working_days)


def missing_documents(required: Sequence[str], provided: Collection[str]) -> list[str]:
    """Every required document not provided, in the required order, each once.

    The one-time notice (一次性告知) tells the applicant everything missing at once, so they
    come back only once (Zhejiang 最多跑一次). Source: 吉民发〔2018〕21号 §三(二),
    浙民助〔2018〕117号 §二(二)1, 海南省贯彻实施意见 §三(一).
    """
    have = set(provided)
    seen: set[str] = set()
    missing: list[str] = []
    for doc in required:
        if doc not in have and doc not in seen:
            missing.append(doc)
        seen.add(doc)
    return missing


# ============================================================================================
# Township staffing (乡镇（街道）社会救助经办人员配备)
# ============================================================================================


def required_staff(pack: PolicyPack, recipients: int) -> int | None:
    """Staff a township (乡镇/街道) with `recipients` recipients must have under the pack, or
    None when the pack has no staffing rule (Jilin's documents set none).

    Zhejiang (浙民助〔2018〕117号 §二(二)2): purchased workers, 0–499 → 1, 500–1000 → 2, above
    1000 one more per further 500 (the 500 is a local setting for "适当增加"). Hainan "2+N"
    (海南省贯彻实施意见 §三(二)): 2 full-time staff plus one per 1,500 recipients or part of
    them. Negative counts raise ValueError.
    """
    if pack.staffing is None:
        if recipients < 0:
            raise ValueError(f"recipients must be ≥ 0, got {recipients}")
        return None
    return pack.staffing.required_workers(recipients)


def staffing_gap(pack: PolicyPack, *, recipients: int, staff: int) -> int:
    """How many more staff the township needs (≥ 0); 0 when the pack has no staffing rule.

    Source: as `required_staff`.
    """
    if staff < 0:
        raise ValueError(f"staff must be ≥ 0, got {staff}")
    required = required_staff(pack, recipients)
    return 0 if required is None else max(required - staff, 0)
