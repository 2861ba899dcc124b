"""Rules of violations and sanctions (失信惩戒), pure: working-day windows across holidays,
the half-open ban period and its end date, the minimum publication period before credit
repair, the status sanctions impose, and how a local setting is cited."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.policy import calendar_for, load_pack
from libs.common.workdays import UnknownCalendarYear
from services.credit.sanctions import rules

JILIN = load_pack("jilin")
ZHEJIANG = load_pack("zhejiang")
CALENDAR = calendar_for(JILIN)


# ------------------------------------------------------------------------------ windows


def test_response_window_counts_working_days_across_national_day() -> None:
    # Notified Wed 2026-09-30 (does not count); 10-01..07 off; Thu 10-08 → 1, Fri 10-09 → 2,
    # Sat 10-10 调休上班 → 3, Mon 10-12 … Fri 10-16 → 4–8, Mon 10-19 → 9, Tue 10-20 → 10.
    assert JILIN.sanctions.response_window_working_days == 10
    assert rules.response_due(JILIN, CALENDAR, date(2026, 9, 30)) == date(2026, 10, 20)
    # The same ten working days in an ordinary fortnight are fourteen calendar days.
    assert rules.response_due(JILIN, CALENDAR, date(2026, 11, 23)) == date(2026, 12, 7)


def test_response_window_into_an_unknown_year_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnknownCalendarYear):
        rules.response_due(JILIN, CALENDAR, date(2026, 12, 24))


def test_due_day_is_still_in_time_and_the_decision_waits_for_it() -> None:
    due = date(2026, 10, 20)
    assert rules.response_open(today=due, due=due)
    assert not rules.response_open(today=due + timedelta(days=1), due=due)
    # Due process (陈述申辩): no decision on or before the due day…
    assert not rules.decision_open(today=date(2026, 10, 8), due=due, responded=False)
    assert not rules.decision_open(today=due, due=due, responded=False)
    # …unless the organisation has responded; after the due day in any case.
    assert rules.decision_open(today=date(2026, 10, 8), due=due, responded=True)
    assert rules.decision_open(today=due + timedelta(days=1), due=due, responded=False)


@given(
    start=st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 11, 1)),
    days=st.integers(min_value=1, max_value=20),
    offset=st.integers(min_value=0, max_value=45),
)
def test_within_working_days_agrees_with_the_due_date(start: date, days: int, offset: int) -> None:
    today = start + timedelta(days=offset)
    due = CALENDAR.add_workdays(start, days)
    assert rules.within_working_days(CALENDAR, start=start, days=days, today=today) == (
        today <= due
    )


def test_appeal_window_reaching_an_unknown_year_is_still_decided_for_known_days() -> None:
    decided = date(2026, 12, 21)  # 15 working days reach into 2027, which the calendar lacks
    assert rules.appeal_due(JILIN, CALENDAR, decided) is None
    assert rules.within_working_days(CALENDAR, start=decided, days=15, today=date(2026, 12, 31))
    # A window that ends inside the known year has a due date; the day after it is late.
    due = rules.appeal_due(JILIN, CALENDAR, date(2026, 11, 23))
    assert due == date(2026, 12, 14)
    assert rules.within_working_days(CALENDAR, start=date(2026, 11, 23), days=15, today=due)
    assert not rules.within_working_days(
        CALENDAR, start=date(2026, 11, 23), days=15, today=due + timedelta(days=1)
    )


# ------------------------------------------------------------------------------ periods


@pytest.mark.parametrize(
    ("severity", "ends_on"),
    [
        ("minor", date(2027, 11, 23)),
        ("general", date(2028, 11, 23)),
        ("serious", date(2029, 11, 23)),
    ],
)
def test_ban_lasts_one_to_three_years_by_severity(severity: str, ends_on: date) -> None:
    starts = date(2026, 11, 23)
    assert rules.ban_end(JILIN, severity=severity, starts_on=starts) == ends_on  # type: ignore[arg-type]
    assert "中华人民共和国政府采购法 第七十七条" in rules.legal_basis_for(JILIN, "blacklist")


def test_ban_period_is_half_open_ends_on_is_the_first_free_day() -> None:
    starts, ends = date(2026, 11, 23), date(2029, 11, 23)
    assert not rules.in_force_on(starts, ends, starts - timedelta(days=1))
    assert rules.in_force_on(starts, ends, starts)
    assert rules.in_force_on(starts, ends, date(2029, 11, 22))  # the day before: still banned
    assert rules.last_day(ends) == date(2029, 11, 22)
    assert not rules.in_force_on(starts, ends, ends)  # the end date: lifted
    assert rules.in_force_on(starts, None, date(2040, 1, 1))  # exit: no end


def test_months_run_by_calendar_months_even_from_a_leap_day() -> None:
    assert rules.suspension_end(date(2028, 2, 29), 12) == date(2029, 2, 28)
    assert rules.suspension_end(date(2026, 1, 31), 1) == date(2026, 2, 28)


@pytest.mark.parametrize(
    ("severity", "earliest"),
    [
        ("minor", date(2026, 11, 23)),
        ("general", date(2027, 2, 23)),
        ("serious", date(2027, 11, 23)),
    ],
)
def test_repair_only_after_the_minimum_publication_period(severity: str, earliest: date) -> None:
    assert rules.repair_earliest(JILIN, severity=severity, starts_on=date(2026, 11, 23)) == earliest


# ------------------------------------------------------------------------------ status


def test_the_heaviest_sanction_in_force_sets_the_status() -> None:
    assert rules.effective_status("admitted", []) == "admitted"
    assert rules.effective_status("rejected", []) == "rejected"
    assert rules.effective_status("admitted", ["suspended"]) == "suspended"
    assert rules.effective_status("admitted", ["suspended", "blacklisted", "exited"]) == (
        "blacklisted"
    )
    assert rules.effective_status("admitted", ["exited", "suspended"]) == "exited"


def test_a_lighter_sanction_under_a_heavier_one_is_named() -> None:
    assert rules.lighter_than("suspension", ["blacklisted"]) == "blacklisted"
    assert rules.lighter_than("suspension", ["exited", "suspended"]) == "exited"
    assert rules.lighter_than("exit", ["blacklisted"]) == "blacklisted"
    assert rules.lighter_than("blacklist", ["exited", "suspended"]) is None  # escalation
    assert rules.lighter_than("suspension", ["suspended"]) is None
    assert rules.lighter_than("warning", ["blacklisted"]) is None  # no status of its own


# ------------------------------------------------------------------------------ citations


def test_local_settings_are_cited_as_such_never_as_the_document() -> None:
    cite = rules.setting_citation(JILIN, "response_window_working_days")
    assert cite.startswith("sanctions.response_window_working_days = 10")
    assert "本地设置" in cite and "jilin@2026.1" in cite
    assert JILIN.sanctions.source.doc not in cite
    serious = rules.setting_citation(JILIN, "min_publication_months", "serious")
    assert serious.startswith("sanctions.min_publication_months[serious] = 12")
    # A value the document gives is cited by its clause.
    assert not JILIN.sanctions.is_local_setting("joint_punishment")
    assert JILIN.sanctions.source.cite() in rules.setting_citation(JILIN, "joint_punishment")


def test_sanctions_rest_on_the_provinces_clause() -> None:
    assert rules.legal_basis_for(JILIN, "suspension") == ["吉民发〔2020〕44号 §四(四)4"]
    assert rules.legal_basis_for(ZHEJIANG, "exit") == ["民发〔2012〕196号 §三(五)"]
    assert JILIN.sanctions.joint_punishment and not ZHEJIANG.sanctions.joint_punishment


def test_default_deciding_authority_names_the_province_and_region() -> None:
    assert rules.default_authority(JILIN, "") == "吉林省民政厅"
    assert rules.default_authority(JILIN, "22") == "吉林省民政厅"
    assert rules.default_authority(JILIN, "220102") == "吉林省民政部门（行政区划 220102）"
