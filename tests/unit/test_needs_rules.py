"""Needs rules (services.needs.rules): self-care tiers, reassessment, need lifecycle, guardian,
intake due dates, one-time notice and township staffing — all pure, with the real packs."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from libs.common.policy import PolicyPack, load_pack
from libs.common.validators import age_on
from libs.common.workdays import UnknownCalendarYear, default_calendar
from services.needs import rules
from tests.strategies import china_today, make_resident_id

JILIN = load_pack("jilin")
ZHEJIANG = load_pack("zhejiang")
HAINAN = load_pack("hainan")
ACTIVITIES = rules.SELF_CARE_ACTIVITIES


# -- Self-care ability of 特困人员 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("unmet", "tier"),
    [
        (0, "self_care"),  # all six met → 生活自理
        (1, "partly_lost"),
        (3, "partly_lost"),  # 3项以下(含3项) → 部分丧失
        (4, "fully_lost"),  # 4项以上(含4项) → 完全丧失
        (6, "fully_lost"),
    ],
)
def test_self_care_tier_at_the_boundaries(unmet: int, tier: str) -> None:
    assert rules.self_care_tier(ACTIVITIES[:unmet]) == tier
    answers = {a: i >= unmet for i, a in enumerate(ACTIVITIES)}
    assert rules.self_care_from_answers(answers) == tier


@given(st.sets(st.sampled_from(ACTIVITIES)))
def test_self_care_tier_depends_only_on_how_many(unmet: set[str]) -> None:
    expected = "self_care" if not unmet else "partly_lost" if len(unmet) <= 3 else "fully_lost"
    assert rules.self_care_tier(unmet) == expected


def test_six_activities_in_order() -> None:
    assert ACTIVITIES == (
        "eating",
        "dressing",
        "bed_transfer",
        "toileting",
        "indoor_walking",
        "bathing",
    )


def test_unknown_activity_is_named() -> None:
    with pytest.raises(ValueError, match="swimming"):
        rules.self_care_tier(["eating", "swimming"])


def test_duplicated_activity_is_refused() -> None:
    # Counting "eating" twice would turn 3 unmet into 4 and cross into fully_lost.
    with pytest.raises(ValueError, match="eating"):
        rules.self_care_tier(["eating", "eating", "dressing", "bathing"])


def test_missing_answers_are_listed() -> None:
    answers = {"eating": True, "dressing": False, "toileting": True, "bathing": True}
    with pytest.raises(ValueError, match=r"\['bed_transfer', 'indoor_walking'\]"):
        rules.self_care_from_answers(answers)


def test_unknown_answer_key_is_refused() -> None:
    answers = dict.fromkeys(ACTIVITIES, True) | {"cooking": False}
    with pytest.raises(ValueError, match="cooking"):
        rules.self_care_from_answers(answers)


def test_assessment_kinds() -> None:
    assert rules.ASSESSMENT_KINDS == ("intake", "periodic", "reassessment", "closure")


# -- Reassessment schedule ---------------------------------------------------------------------


@pytest.mark.parametrize("pack", [JILIN, ZHEJIANG, HAINAN], ids=lambda p: p.province)
def test_reassessment_of_tekun_is_yearly_in_every_pack(pack: PolicyPack) -> None:
    due = rules.reassessment_due(pack, categories=["tekun"], assessed_on=date(2026, 3, 9))
    assert due == date(2027, 3, 9)


def test_reassessment_none_without_a_period() -> None:
    # Jilin reviews 特困/低保/低边/children yearly; temporary and medical aid are one-off.
    assert JILIN.time_limits.reassessment_months.get("temporary_aid") is None
    due = rules.reassessment_due(
        JILIN, categories=["temporary_aid", "medical_aid"], assessed_on=date(2026, 3, 9)
    )
    assert due is None
    assert rules.reassessment_due(JILIN, categories=[], assessed_on=date(2026, 3, 9)) is None


def test_reassessment_periodic_category_wins_over_one_off() -> None:
    due = rules.reassessment_due(
        HAINAN, categories=["temporary_aid", "dibao"], assessed_on=date(2026, 1, 15)
    )
    assert due == date(2027, 1, 15)


def test_reassessment_takes_the_earliest_period() -> None:
    limits = ZHEJIANG.time_limits.model_copy(
        update={"reassessment_months": {"tekun": 12, "dibao": 6}}
    )
    pack = ZHEJIANG.model_copy(update={"time_limits": limits})
    due = rules.reassessment_due(pack, categories=["tekun", "dibao"], assessed_on=date(2026, 8, 31))
    assert due == date(2027, 2, 28)  # 6 calendar months; 31 February does not exist


def test_reassessment_month_arithmetic_on_29_february() -> None:
    due = rules.reassessment_due(ZHEJIANG, categories=["tekun"], assessed_on=date(2024, 2, 29))
    assert due == date(2025, 2, 28)


def test_reassessment_unknown_category_is_an_error() -> None:
    with pytest.raises(ValueError, match="rare_disease"):
        # Hainan's pack has no 罕见病 category.
        rules.reassessment_due(HAINAN, categories=["rare_disease"], assessed_on=date(2026, 1, 1))


# -- Need item lifecycle -------------------------------------------------------------------------

ALLOWED = {
    ("open", "matched"),
    ("open", "cancelled"),
    ("open", "expired"),
    ("matched", "in_service"),
    ("matched", "open"),
    ("matched", "matched"),
    ("matched", "cancelled"),
    ("in_service", "fulfilled"),
    ("in_service", "cancelled"),
    ("in_service", "matched"),
}
ALL_PAIRS = list(itertools.product(rules.NEED_STATUSES, repeat=2))


def test_need_statuses() -> None:
    assert rules.NEED_STATUSES == (
        "open",
        "matched",
        "in_service",
        "fulfilled",
        "cancelled",
        "expired",
    )
    assert set(rules.NEED_TRANSITIONS) == set(rules.NEED_STATUSES)


@pytest.mark.parametrize(("current", "new"), sorted(ALLOWED))
def test_allowed_transitions(current: str, new: str) -> None:
    assert rules.can_transition(current, new)
    rules.check_transition(current, new)


@pytest.mark.parametrize(("current", "new"), [p for p in ALL_PAIRS if p not in ALLOWED])
def test_every_other_transition_is_refused(current: str, new: str) -> None:
    assert not rules.can_transition(current, new)
    with pytest.raises(rules.InvalidTransition):
        rules.check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new", "reason"),
    [
        ("fulfilled", "open", "final"),
        ("cancelled", "matched", "final"),
        ("expired", "open", "final"),
        ("open", "in_service", "allowed from 'open'"),
        ("in_service", "open", "allowed from 'in_service'"),
        ("open", "closed", "unknown need status 'closed'"),
        ("done", "open", "unknown need status 'done'"),
    ],
)
def test_refusals_say_why(current: str, new: str, reason: str) -> None:
    with pytest.raises(rules.InvalidTransition, match=reason) as info:
        rules.check_transition(current, new)
    assert isinstance(info.value, ValueError)
    assert (info.value.current, info.value.new) == (current, new)


@pytest.mark.parametrize("status", ["fulfilled", "cancelled", "expired"])
def test_terminal_statuses_go_nowhere(status: str) -> None:
    assert status in rules.TERMINAL_STATUSES
    assert not any(rules.can_transition(status, new) for new in rules.NEED_STATUSES)


@pytest.mark.parametrize(
    ("current", "event", "new_provider", "after"),
    [
        ("open", "need.matched", True, "matched"),
        ("matched", "need.matched", True, "matched"),  # redelivered event: no change
        ("matched", "need.reassigned", True, "matched"),  # another provider takes it
        ("matched", "need.reassigned", False, "open"),  # provider gone, back to the pool
        ("in_service", "need.reassigned", True, "matched"),  # takeover plan names one
        ("matched", "service.delivered", True, "in_service"),
        ("in_service", "service.delivered", True, "in_service"),  # monthly deliveries
    ],
)
def test_status_after_event(current: str, event: str, new_provider: bool, after: str) -> None:
    assert rules.status_after_event(current, event, new_provider=new_provider) == after


@pytest.mark.parametrize(
    ("current", "event", "new_provider"),
    [
        ("in_service", "need.reassigned", False),  # never dropped back to open
        ("open", "service.delivered", True),  # nobody was matched
        ("open", "need.reassigned", True),
        ("in_service", "need.matched", True),  # a new provider comes as need.reassigned
        ("fulfilled", "service.delivered", True),
        ("cancelled", "need.matched", True),
    ],
)
def test_status_after_event_refused(current: str, event: str, new_provider: bool) -> None:
    with pytest.raises(rules.InvalidTransition):
        rules.status_after_event(current, event, new_provider=new_provider)


def test_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match=r"need\.created"):
        rules.status_after_event("open", "need.created")


# -- Guardian of a child under 14 -------------------------------------------------------------

BORN = date(2012, 6, 15)
FOURTEENTH = date(2026, 6, 15)


def _child_id(born: date = BORN) -> str:
    body = f"220102{born:%Y%m%d}123"
    number = body + ric.calc_check_digit(body + "0")  # stdnum ignores the placeholder digit
    assert number == make_resident_id("220102", born, 123)
    return number


def test_guardian_needed_until_the_14th_birthday() -> None:
    child = _child_id()
    day_before = FOURTEENTH - timedelta(days=1)
    assert age_on(child, day_before) == 13
    assert rules.needs_guardian(child, on=day_before)
    assert age_on(child, FOURTEENTH) == 14
    assert not rules.needs_guardian(child, on=FOURTEENTH)


def test_guardian_errors_field_paths() -> None:
    child, on = _child_id(), FOURTEENTH - timedelta(days=1)
    missing = rules.guardian_errors(
        id_number=child, on=on, has_guardian=False, guardian_consent=False
    )
    assert [e.field for e in missing] == ["body.guardian"]
    no_consent = rules.guardian_errors(
        id_number=child, on=on, has_guardian=True, guardian_consent=False
    )
    assert [e.field for e in no_consent] == ["body.guardian.consent"]
    ok = rules.guardian_errors(id_number=child, on=on, has_guardian=True, guardian_consent=True)
    assert ok == []


def test_no_guardian_needed_from_14() -> None:
    errors = rules.guardian_errors(
        id_number=_child_id(), on=FOURTEENTH, has_guardian=False, guardian_consent=False
    )
    assert errors == []


def test_guardian_rule_refuses_an_invalid_id() -> None:
    bad = _child_id()[:-1] + ("0" if _child_id()[-1] != "0" else "1")
    with pytest.raises(ValueError, match="check digit"):
        rules.needs_guardian(bad, on=FOURTEENTH)


def _fourteenth_birthday(born: date) -> date:
    try:
        return born.replace(year=born.year + 14)
    except ValueError:  # born 29 February, 14 years later is a common year → 1 March
        return date(born.year + 14, 3, 1)


@given(
    born=st.dates(min_value=date(1990, 1, 1), max_value=china_today()),
    sequence=st.integers(min_value=0, max_value=999),
)
def test_guardian_boundary_property(born: date, sequence: int) -> None:
    number = make_resident_id("330102", born, sequence)
    birthday = _fourteenth_birthday(born)
    assert rules.needs_guardian(number, on=birthday - timedelta(days=1))
    assert not rules.needs_guardian(number, on=birthday)


# -- Single-window intake ---------------------------------------------------------------------


@pytest.mark.parametrize("pack", [JILIN, ZHEJIANG, HAINAN], ids=lambda p: p.province)
def test_intake_due_across_national_day_2026(pack: PolicyPack) -> None:
    assert pack.time_limits.intake_working_days == 3
    # Received Wed 09-30; 10-01..07 off; Thu 10-08 → 1, Fri 10-09 → 2, Sat 10-10 (调休) → 3.
    due = rules.intake_due(pack, received_on=date(2026, 9, 30), calendar=default_calendar())
    assert due == date(2026, 10, 10)


def test_intake_due_in_a_plain_week() -> None:
    # Mon 03-09 → Tue 1, Wed 2, Thu 3.
    due = rules.intake_due(ZHEJIANG, received_on=date(2026, 3, 9), calendar=default_calendar())
    assert due == date(2026, 3, 12)


def test_intake_due_in_an_unknown_year_is_an_error() -> None:
    with pytest.raises(UnknownCalendarYear):
        rules.intake_due(JILIN, received_on=date(2026, 12, 30), calendar=default_calendar())


def test_missing_documents_all_at_once_in_required_order() -> None:
    required = ["id_card", "household_register", "income_proof", "medical_record", "photo"]
    provided = {"photo", "id_card", "unrelated"}
    assert rules.missing_documents(required, provided) == [
        "household_register",
        "income_proof",
        "medical_record",
    ]
    assert rules.missing_documents(required, required) == []
    assert rules.missing_documents(["a", "b", "a"], []) == ["a", "b"]


@given(
    required=st.lists(st.sampled_from("abcdefgh"), unique=True),
    provided=st.sets(st.sampled_from("abcdefgh")),
)
def test_missing_documents_property(required: list[str], provided: set[str]) -> None:
    missing = rules.missing_documents(required, provided)
    assert missing == [d for d in required if d not in provided]


# -- Township staffing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipients", "workers"),
    [(0, 1), (499, 1), (500, 2), (1000, 2), (1001, 3), (1500, 3), (1501, 4)],
)
def test_zhejiang_staffing(recipients: int, workers: int) -> None:
    assert rules.required_staff(ZHEJIANG, recipients) == workers


@pytest.mark.parametrize(("recipients", "staff"), [(0, 2), (1500, 3), (1501, 4), (3000, 4)])
def test_hainan_two_plus_n(recipients: int, staff: int) -> None:
    assert rules.required_staff(HAINAN, recipients) == staff


def test_jilin_has_no_staffing_rule() -> None:
    assert JILIN.staffing is None
    assert rules.required_staff(JILIN, 1200) is None
    assert rules.staffing_gap(JILIN, recipients=1200, staff=0) == 0


def test_staffing_gap() -> None:
    assert rules.staffing_gap(ZHEJIANG, recipients=1001, staff=2) == 1
    assert rules.staffing_gap(ZHEJIANG, recipients=499, staff=2) == 0  # never negative
    assert rules.staffing_gap(HAINAN, recipients=1501, staff=2) == 2


@pytest.mark.parametrize("pack", [JILIN, ZHEJIANG, HAINAN], ids=lambda p: p.province)
def test_negative_counts_are_refused(pack: PolicyPack) -> None:
    with pytest.raises(ValueError, match="recipients"):
        rules.required_staff(pack, -1)
    with pytest.raises(ValueError, match="staff"):
        rules.staffing_gap(pack, recipients=10, staff=-1)


def test_existing_rules_unchanged() -> None:
    assert rules.mask_name("张三丰") == "张**"
    assert rules.service_errors(ZHEJIANG, "care") == []
    assert [e.field for e in rules.category_errors(HAINAN, ["tekun", "tekun"])] == [
        "body.categories"
    ]


def test_bulk_opened_need_has_exactly_the_need_tables_columns() -> None:
    import dataclasses

    from services.needs.models import Need, OpenedNeed

    columns = set(Need.__table__.columns.keys())  # type: ignore[attr-defined]
    assert {f.name for f in dataclasses.fields(OpenedNeed)} == columns
