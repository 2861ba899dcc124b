"""Contract rules (合同), pure: term limits at their exact boundaries, the 10 % amendment cap
(政府采购法 第四十九条) to the fen, the state machine, subcontracting and acceptance periods."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.policy import load_pack
from services.matching.contracts import rules

JILIN = load_pack("jilin")
ZHEJIANG = load_pack("zhejiang")
HAINAN = load_pack("hainan")

TERM = "吉民发〔2020〕44号 §四(三)2"  # 合同履行期限一般不超过1年
STABLE = "吉民发〔2020〕44号 §四(三)3"  # 稳定项目 ≤ 3 年
LAW_49 = "中华人民共和国政府采购法 第四十九条"
START = date(2027, 1, 1)


def term(end: date, *, stable: bool = False, secured: bool = False, pack: Any = JILIN) -> list:
    return rules.term_refusals(
        pack, period_start=START, period_end=end, stable_recurring=stable, budget_secured=secured
    )


def cites(refusals: list[rules.Refusal]) -> list[str]:
    return [c for r in refusals for c in r.cites()]


# ------------------------------------------------------------------------------- term limits


def test_twelve_months_exactly_is_allowed_and_one_day_more_is_refused_with_the_clause() -> None:
    assert term(date(2027, 12, 31)) == []
    over = term(date(2028, 1, 1))
    assert [r.field for r in over] == ["body.period_end"]
    assert TERM in cites(over)
    assert "stable_recurring" in over[0].reason and "budget_secured" in over[0].reason


def test_thirty_six_months_need_a_stable_recurring_service_and_a_secured_budget() -> None:
    end36 = date(2029, 12, 31)
    assert term(end36, stable=True, secured=True) == []
    # Either condition alone is not enough (在预算保障的前提下 … 相对固定、连续性强).
    for stable, secured in ((True, False), (False, True), (False, False)):
        refused = term(end36, stable=stable, secured=secured)
        assert refused, (stable, secured)
        assert TERM in cites(refused) and STABLE in cites(refused)
    missing = term(end36, stable=True, secured=False)[0].reason
    assert "budget_secured" in missing and "stable_recurring (" not in missing


def test_thirty_six_months_and_one_day_is_refused_even_when_stable_and_secured() -> None:
    refused = term(date(2030, 1, 1), stable=True, secured=True)
    assert cites(refused) == [STABLE]


def test_other_provinces_cite_their_own_term_clause() -> None:
    refused = term(date(2028, 1, 1), pack=ZHEJIANG)
    assert cites(refused) == ["财政部令第102号 第二十四条"]


def test_a_period_ending_before_it_starts_is_plain_invalid_input() -> None:
    refused = term(START - timedelta(days=1))
    assert [r.field for r in refused] == ["body.period_end"] and cites(refused) == []


@pytest.mark.parametrize(
    ("start", "months", "last"),
    [
        (date(2027, 1, 1), 12, date(2027, 12, 31)),
        (date(2027, 3, 15), 12, date(2028, 3, 14)),
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2027, 1, 1), 36, date(2029, 12, 31)),
    ],
)
def test_term_end_limit(start: date, months: int, last: date) -> None:
    assert rules.term_end_limit(start, months) == last


def test_the_contract_period_must_lie_inside_the_projects() -> None:
    inside = rules.project_period_refusals(
        period_start=START,
        period_end=date(2027, 12, 31),
        project_start=START,
        project_end=date(2027, 12, 31),
    )
    assert inside == []
    outside = rules.project_period_refusals(
        period_start=START - timedelta(days=1),
        period_end=date(2028, 1, 1),
        project_start=START,
        project_end=date(2027, 12, 31),
    )
    assert [r.field for r in outside] == ["body.period_start", "body.period_end"]


# --------------------------------------------------------------------------- amendments (10 %)


def test_amendments_exactly_at_ten_percent_are_allowed_and_one_fen_over_refused() -> None:
    original = 1_000_000
    assert (
        rules.amendment_refusal(original_value_fen=original, previous_deltas=[], delta_fen=100_000)
        is None
    )
    over = rules.amendment_refusal(
        original_value_fen=original, previous_deltas=[], delta_fen=100_001
    )
    assert over is not None and over.field == "body.delta_fen"
    assert over.cites() == [LAW_49]


def test_the_cap_is_cumulative_and_counts_decreases_by_their_amount() -> None:
    original = 1_000_000
    previous = [60_000, -30_000]  # 90,000 of change already made
    assert (
        rules.amendment_refusal(
            original_value_fen=original, previous_deltas=previous, delta_fen=10_000
        )
        is None
    )
    refused = rules.amendment_refusal(
        original_value_fen=original, previous_deltas=previous, delta_fen=-10_001
    )
    assert refused is not None and "at most 10000 fen more" in refused.reason
    assert rules.amendment_headroom_fen(original, previous) == 10_000


def test_ten_percent_of_an_odd_value_is_not_rounded_up() -> None:
    # 10 % of 1,000,005 fen is 100,000.5 fen: 100,000 fits, 100,001 does not.
    assert (
        rules.amendment_refusal(original_value_fen=1_000_005, previous_deltas=[], delta_fen=100_000)
        is None
    )
    assert rules.amendment_refusal(
        original_value_fen=1_000_005, previous_deltas=[], delta_fen=100_001
    )


@given(
    original=st.integers(min_value=1, max_value=10**12),
    previous=st.lists(st.integers(min_value=-(10**10), max_value=10**10), max_size=5),
    delta=st.integers(min_value=-(10**11), max_value=10**11),
)
def test_the_cap_matches_exact_rational_arithmetic(
    original: int, previous: list[int], delta: int
) -> None:
    from fractions import Fraction

    allowed = Fraction(sum(abs(d) for d in previous) + abs(delta)) <= Fraction(original, 10)
    refusal = rules.amendment_refusal(
        original_value_fen=original, previous_deltas=previous, delta_fen=delta
    )
    assert (refusal is None) == allowed


def test_capacity_changes_stay_on_contracted_items_and_never_go_below_zero() -> None:
    after, refused = rules.capacity_after({"care": 10}, {"care": -10}, ["care", "counselling"])
    assert after == {"care": 0} and refused == []
    after, refused = rules.capacity_after({"care": 10}, {"counselling": 5}, ["care", "counselling"])
    assert after == {"care": 10, "counselling": 5} and refused == []
    _, refused = rules.capacity_after({"care": 10}, {"care": -11, "rehab": 1}, ["care"])
    assert [r.field for r in refused] == [
        "body.capacity_changes.care",
        "body.capacity_changes.rehab",
    ]


# ------------------------------------------------------------------------------ state machine

ALL_MOVES = [
    ("pending", "sign", "active"),
    ("pending", "refuse", "refused"),
    ("pending", "terminate", "terminated"),
    ("active", "pause", "paused"),
    ("active", "complete", "completed"),
    ("active", "terminate", "terminated"),
    ("paused", "resume", "active"),
    ("paused", "complete", "completed"),
    ("paused", "terminate", "terminated"),
]


@pytest.mark.parametrize(("state", "action", "target"), ALL_MOVES)
def test_allowed_transitions(state: str, action: str, target: str) -> None:
    assert rules.next_state(state, action) == target


@pytest.mark.parametrize("state", rules.CONTRACT_STATES)
@pytest.mark.parametrize("action", sorted(rules.TRANSITIONS))
def test_every_other_transition_is_refused(state: str, action: str) -> None:
    if (state, action) in {(s, a) for s, a, _ in ALL_MOVES}:
        return
    with pytest.raises(rules.InvalidTransition):
        rules.next_state(state, action)


def test_final_states_allow_nothing() -> None:
    for state in rules.FINAL_STATES:
        for action in rules.TRANSITIONS:
            with pytest.raises(rules.InvalidTransition):
                rules.next_state(state, action)


def test_credit_decisions_map_to_pause_resume_and_terminate() -> None:
    assert rules.credit_action("suspended") == "pause"
    assert rules.credit_action("reinstated") == "resume"
    assert rules.credit_action("exited") == "terminate"
    assert rules.credit_action("blacklisted") == "terminate"
    assert rules.credit_action("admitted") is None
    assert rules.states_hit_by("terminate") == {"pending", "active", "paused"}
    assert rules.states_hit_by("pause") == {"active"}


# -------------------------------------------------------------------------- subcontracting


def test_no_subcontracting_is_always_the_first_obligation_once() -> None:
    assert rules.obligations_with_defaults([]) == ["no_subcontracting"]
    assert rules.obligations_with_defaults(["monthly_report", "no_subcontracting"]) == [
        "no_subcontracting",
        "monthly_report",
    ]


@pytest.mark.parametrize(
    ("pack", "clause"),
    [
        (JILIN, "吉民发〔2020〕44号 §四(四)2"),
        (ZHEJIANG, "浙民助〔2018〕117号 §二(一)5"),
        (HAINAN, "海南省贯彻实施意见 §二(七)"),
    ],
)
def test_a_delivery_by_another_organisation_cites_the_provinces_ban_on_subcontracting(
    pack: Any, clause: str
) -> None:
    assert rules.delivery_refusal(pack, holder="org-a", deliverer="org-a") is None
    refused = rules.delivery_refusal(pack, holder="org-a", deliverer="org-b")
    assert refused is not None and refused.cites() == [clause]
    assert "转包" in refused.reason
    # The cited document is one the pack declares as a source.
    assert rules.subcontracting_clause(pack).doc in pack.sources


def test_the_amendment_law_is_a_source_of_every_pack() -> None:
    for pack in (JILIN, ZHEJIANG, HAINAN):
        assert rules.AMENDMENT_CLAUSE.doc in pack.sources


# -------------------------------------------------------------------- delivery and acceptance


def test_delivery_dates_inside_the_period_and_not_in_the_future() -> None:
    kw = {"period_start": START, "period_end": date(2027, 12, 31), "today": date(2027, 6, 1)}
    assert rules.delivery_date_refusals(date(2027, 6, 1), **kw) == []
    assert rules.delivery_date_refusals(date(2027, 6, 2), **kw)
    assert rules.delivery_date_refusals(date(2026, 12, 31), **kw)


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("2027-02", date(2027, 2, 1), date(2027, 2, 28)),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ("2027-Q1", date(2027, 1, 1), date(2027, 3, 31)),
        ("2027-Q4", date(2027, 10, 1), date(2027, 12, 31)),
    ],
)
def test_period_range(period: str, first: date, last: date) -> None:
    assert rules.period_range(period) == (first, last)


@pytest.mark.parametrize("bad", ["2027-13", "2027-Q5", "2027-1", "27-01", "2027Q1"])
def test_bad_periods_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        rules.period_range(bad)


def test_acceptance_period_must_overlap_the_contract_and_have_begun() -> None:
    kw = {"period_start": START, "period_end": date(2027, 12, 31), "today": date(2027, 4, 1)}
    assert rules.acceptance_period_refusals("2027-Q1", **kw) == []
    assert rules.acceptance_period_refusals("2027-04", **kw) == []
    assert rules.acceptance_period_refusals("2027-05", **kw)  # not begun
    assert rules.acceptance_period_refusals("2026-12", **kw)  # before the contract


def test_completion_after_the_period_or_with_a_qualified_acceptance() -> None:
    end = date(2027, 12, 31)
    assert not rules.may_complete(period_end=end, today=end, qualified_acceptance=False)
    assert rules.may_complete(
        period_end=end, today=end + timedelta(days=1), qualified_acceptance=False
    )
    assert rules.may_complete(period_end=end, today=date(2027, 6, 1), qualified_acceptance=True)
