"""Rules of evaluations and credit scores (services/credit/performance/rules.py), pure.

Show items: weights applied (the exact total from the pack's weights), the pass mark and the
grade thresholds at their boundaries, recency weighting, deductions, timely delivery, and the
parts of a score adding up to it.
"""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from libs.common.policy import load_pack, validate_pack
from services.credit.performance import rules
from services.credit.performance.rules import Deduction, EvaluationFact, PastResult

JILIN = load_pack("jilin")
SCORING = JILIN.credit_scoring
TODAY = date(2026, 11, 23)


def terms_sum(result: rules.ScoreResult) -> float:
    return round(sum(result.terms.values()), 2)


# ------------------------------------------------------------------------------ the pack


@pytest.mark.parametrize("name", ["jilin", "zhejiang", "hainan"])
def test_every_pack_has_credit_scoring_marked_local_with_its_clauses(name: str) -> None:
    scoring = load_pack(name).credit_scoring
    assert scoring.base_score == 70
    assert scoring.pass_mark == 60
    assert list(scoring.grade_thresholds) == ["A", "B", "C"]
    assert scoring.lowest_grade == "D"
    # Every number is ours, not the documents': the note says so and cites nothing invented.
    assert {"pass_mark", "grade_thresholds", "base_score", "half_life_months"} <= set(
        scoring.local_settings
    )
    assert scoring.note and "local setting" in scoring.note
    assert scoring.source.doc in load_pack(name).sources
    assert scoring.unqualified_source.doc in load_pack(name).sources


def test_jilin_cites_the_credit_system_of_its_2018_opinion() -> None:
    assert SCORING.source.cite() == "吉民发〔2018〕21号 §一(三)"
    assert SCORING.source.quote is not None and "动态评价的信用体系" in SCORING.source.quote


def test_zhejiang_cites_196_for_unqualified_results() -> None:
    source = load_pack("zhejiang").credit_scoring.unqualified_source
    assert source.cite() == "民发〔2012〕196号 §三(五)"
    assert source.quote is not None and "取消一定时期内" in source.quote


def _raw(name: str) -> dict[str, Any]:
    text = (
        resources.files("libs.common.policy")
        .joinpath("packs", f"{name}.yaml")
        .read_text(encoding="utf-8")
    )
    return copy.deepcopy(yaml.safe_load(text))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grade_thresholds": {"A": 75, "B": 90, "C": 60}}, "strictly decrease"),
        ({"grade_thresholds": {"A": 90, "D": 60}}, "also has a threshold"),
        ({"deductions_by_severity": {"minor": 9, "general": 8, "serious": 20}}, "not decrease"),
        ({"deductions_by_severity": {"minor": 1, "general": 2}}, "exactly minor"),
        ({"local_settings": ["no_such_field"]}, "unknown fields"),
        ({"repeated_unqualified_count": 1}, "greater than or equal to 2"),
    ],
)
def test_bad_credit_scoring_is_rejected(change: dict[str, Any], message: str) -> None:
    data = _raw("jilin")
    data["credit_scoring"].update(change)
    with pytest.raises(ValidationError, match=message):
        validate_pack(data)


# ------------------------------------------------------------------------------ periods


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2026", date(2026, 1, 1), date(2027, 1, 1)),
        ("2026-H2", date(2026, 7, 1), date(2027, 1, 1)),
        ("2026-Q1", date(2026, 1, 1), date(2026, 4, 1)),
        ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026-02", date(2026, 2, 1), date(2026, 3, 1)),
    ],
)
def test_period_bounds(period: str, start: date, end: date) -> None:
    assert rules.period_bounds(period) == (start, end)


@pytest.mark.parametrize("bad", ["26", "2026-13", "2026-Q5", "2026-H3", "2026-1"])
def test_malformed_period_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="period"):
        rules.period_bounds(bad)


def test_period_must_overlap_the_contract() -> None:
    kwargs = {"contract_start": date(2026, 3, 1), "contract_end": date(2026, 12, 31)}
    assert rules.period_within_contract("2026-Q1", **kwargs)  # March is in
    assert not rules.period_within_contract("2026-02", **kwargs)
    assert rules.period_within_contract("2026-12", **kwargs)
    assert not rules.period_within_contract("2027-01", **kwargs)
    assert rules.period_within_contract("2030", contract_start=None, contract_end=None)


# ------------------------------------------------------------------------------ evaluation


def test_satisfaction_is_the_mean_level_times_twenty() -> None:
    assert rules.satisfaction_score([5, 5]) == Decimal("100.00")
    assert rules.satisfaction_score([1]) == Decimal("20.00")
    assert rules.satisfaction_score([5, 4, 4]) == Decimal("86.67")  # 4.333… × 20, half-up
    with pytest.raises(ValueError):
        rules.satisfaction_score([])
    with pytest.raises(ValueError):
        rules.satisfaction_score([6])


def test_weights_applied_exact_total_from_the_pack() -> None:
    """Jilin: purchaser 0.30, recipients 0.40, third party 0.30 (recipients weigh most)."""
    total = rules.evaluation_total(
        JILIN.evaluation_weights,
        SCORING,
        purchaser=80,
        satisfaction=rules.satisfaction_score([5, 4, 4]),
        third_party=70,
    )
    # 0.30 × 80 + 0.40 × 86.67 + 0.30 × 70 = 24 + 34.668 + 21 = 79.668 → 79.67
    assert total.contributions == {
        "purchaser": Decimal("24.0000"),
        "recipients": Decimal("34.6680"),
        "third_party": Decimal("21.0000"),
    }
    assert total.total == Decimal("79.67")
    assert total.result == "qualified"
    # Satisfaction moves the total most: ten points more satisfaction add 4, ten points more
    # from the purchaser 3.
    more_sat = rules.evaluation_total(
        JILIN.evaluation_weights, SCORING, purchaser=80, satisfaction=96.67, third_party=70
    )
    more_purchaser = rules.evaluation_total(
        JILIN.evaluation_weights, SCORING, purchaser=90, satisfaction=86.67, third_party=70
    )
    assert more_sat.total - total.total == Decimal("4.00")
    assert more_purchaser.total - total.total == Decimal("3.00")


@pytest.mark.parametrize(
    ("purchaser", "total", "result"),
    [
        (60, "60.00", "qualified"),  # exactly the pass mark
        (59.99, "60.00", "qualified"),  # 17.997 + 24 + 18 = 59.997 → 60.00 as published
        (59.97, "59.99", "unqualified"),  # 59.991 → 59.99
        (0, "42.00", "unqualified"),
    ],
)
def test_pass_mark_boundary(purchaser: float, total: str, result: str) -> None:
    out = rules.evaluation_total(
        JILIN.evaluation_weights, SCORING, purchaser=purchaser, satisfaction=60, third_party=60
    )
    assert out.total == Decimal(total)
    assert out.result == result


def test_required_responses_is_the_minimum_or_everybody_served() -> None:
    assert rules.required_responses(SCORING, 10) == 3
    assert rules.required_responses(SCORING, 2) == 2
    assert rules.required_responses(SCORING, 0) == 1


def test_two_unqualified_in_a_row_make_a_streak() -> None:
    history = [
        PastResult("new", TODAY, "unqualified"),
        PastResult("old", date(2026, 5, 1), "unqualified"),
    ]
    assert rules.unqualified_streak(SCORING, today=TODAY, history=history) == ["old", "new"]


def test_a_qualified_result_breaks_the_streak() -> None:
    history = [
        PastResult("new", TODAY, "unqualified"),
        PastResult("mid", date(2026, 8, 1), "qualified"),
        PastResult("old", date(2026, 5, 1), "unqualified"),
    ]
    assert rules.unqualified_streak(SCORING, today=TODAY, history=history) is None


def test_a_result_outside_the_window_does_not_count() -> None:
    history = [
        PastResult("new", TODAY, "unqualified"),
        PastResult("old", date(2024, 11, 23), "unqualified"),  # exactly 24 months: out
    ]
    assert rules.unqualified_streak(SCORING, today=TODAY, history=history) is None
    history[1] = PastResult("old", date(2024, 11, 24), "unqualified")
    assert rules.unqualified_streak(SCORING, today=TODAY, history=history) == ["old", "new"]


def test_results_already_counted_start_a_new_streak() -> None:
    history = [
        PastResult("third", TODAY, "unqualified"),
        PastResult("second", date(2026, 8, 1), "unqualified"),
        PastResult("first", date(2026, 5, 1), "unqualified"),
    ]
    counted = {"second", "first"}
    assert rules.unqualified_streak(SCORING, today=TODAY, history=history, counted=counted) is None
    fourth = [PastResult("fourth", TODAY, "unqualified"), *history]
    assert rules.unqualified_streak(SCORING, today=TODAY, history=fourth, counted=counted) == [
        "third",
        "fourth",
    ]


# ------------------------------------------------------------------------------ grades


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        (100.0, "A"),
        (90.0, "A"),
        (89.99, "B"),
        (75.0, "B"),
        (74.99, "C"),
        (60.0, "C"),
        (59.99, "D"),
        (0.0, "D"),
    ],
)
def test_grade_thresholds_at_the_boundaries(score: float, grade: str) -> None:
    assert rules.grade_of(SCORING, score) == grade


# ------------------------------------------------------------------------------ score


def test_new_organisation_starts_at_the_base() -> None:
    result = rules.compute_score(JILIN, today=TODAY, evaluations=[])
    assert result.score == 70.0 and result.grade == "C"
    assert result.terms == {
        "evaluations": 70.0,
        "violations": 0.0,
        "timely_delivery": 0.0,
        "clamp": 0.0,
    }
    assert "吉民发〔2018〕21号 §一(三)" in result.parts["rules"]


def test_one_fresh_evaluation_pulls_the_score_from_the_base() -> None:
    # (70 × 0.25 + 90 × 1) / 1.25 = 86
    result = rules.compute_score(JILIN, today=TODAY, evaluations=[EvaluationFact("e", 90.0, TODAY)])
    assert result.score == 86.0 and result.grade == "B"
    assert terms_sum(result) == result.score


def test_an_evaluation_a_half_life_old_weighs_half() -> None:
    old = date(2025, 11, 23)  # 12 whole months
    assert rules.months_between(old, TODAY) == 12
    result = rules.compute_score(JILIN, today=TODAY, evaluations=[EvaluationFact("e", 90.0, old)])
    # (17.5 + 0.5 × 90) / 0.75 = 83.33
    assert result.score == 83.33
    assert result.parts["evaluations"]["newest"][0]["weight"] == 0.5


def test_recent_evaluations_weigh_more() -> None:
    recent_good = [
        EvaluationFact("new", 95.0, TODAY),
        EvaluationFact("old", 50.0, date(2024, 11, 1)),
    ]
    recent_bad = [
        EvaluationFact("new", 50.0, TODAY),
        EvaluationFact("old", 95.0, date(2024, 11, 1)),
    ]
    good = rules.compute_score(JILIN, today=TODAY, evaluations=recent_good)
    bad = rules.compute_score(JILIN, today=TODAY, evaluations=recent_bad)
    assert good.score > bad.score
    assert terms_sum(good) == good.score and terms_sum(bad) == bad.score


def test_decided_violations_deduct_by_severity_for_the_pack_months() -> None:
    deduction = Deduction("v1", "violation", "general", date(2026, 1, 10))
    result = rules.compute_score(JILIN, today=TODAY, evaluations=[], deductions=[deduction])
    assert result.terms["violations"] == -8.0
    assert result.score == 62.0 and result.grade == "C"
    assert result.parts["violations"][0]["violation_id"] == "v1"
    later = rules.compute_score(
        JILIN, today=date(2029, 1, 10), evaluations=[], deductions=[deduction]
    )
    assert later.terms["violations"] == 0.0  # 36 months later: over


def test_overturned_or_repaired_violations_do_not_deduct() -> None:
    standing = rules.violation_deduction(
        ref="v",
        severity="serious",
        sanctions=[rules.SanctionState(date(2026, 2, 1), "in_force")],
    )
    assert standing is not None and standing.decided_on == date(2026, 2, 1)
    for state in ("overturned", "lifted"):
        assert (
            rules.violation_deduction(
                ref="v", severity="serious", sanctions=[rules.SanctionState(TODAY, state)]
            )
            is None
        )


@pytest.mark.parametrize(
    ("deliveries", "on_time", "points"),
    [
        (9, 0, 0.0),  # too few to judge
        (10, 10, 5.0),
        (10, 9, 0.0),  # the target share
        (10, 0, -5.0),
        (20, 9, -2.5),  # 45 %: half-way down
    ],
)
def test_timely_delivery_term(deliveries: int, on_time: int, points: float) -> None:
    term, detail = rules.timely_delivery_term(SCORING, deliveries=deliveries, on_time=on_time)
    assert round(term, 2) == points
    assert detail["applied"] is (deliveries >= 10)


def test_delivery_on_time() -> None:
    day = date(2026, 11, 2)
    kwargs: dict[str, Any] = {"delivered_on": day}
    assert rules.delivered_on_time(SCORING, confirmed_on=date(2026, 11, 9), **kwargs)
    assert not rules.delivered_on_time(SCORING, confirmed_on=date(2026, 11, 10), **kwargs)
    assert not rules.delivered_on_time(SCORING, confirmed_on=None, **kwargs)
    # Matching's own word wins.
    assert not rules.delivered_on_time(SCORING, confirmed_on=day, on_time=False, **kwargs)
    assert rules.delivered_on_time(SCORING, confirmed_on=None, due_on=day, **kwargs)


def test_the_clamp_keeps_the_score_in_range_and_the_terms_still_add_up() -> None:
    evaluations = [EvaluationFact(f"e{i}", 100.0, TODAY) for i in range(40)]
    high = rules.compute_score(
        JILIN, today=TODAY, evaluations=evaluations, deliveries=50, on_time=50
    )
    assert high.score == 100.0 and high.grade == "A"
    assert high.terms["clamp"] < 0
    assert terms_sum(high) == 100.0
    deductions = [Deduction(f"v{i}", "violation", "serious", TODAY) for i in range(5)]
    low = rules.compute_score(JILIN, today=TODAY, evaluations=[], deductions=deductions)
    assert low.score == 0.0 and low.grade == "D"
    assert low.terms["clamp"] == 30.0  # 70 − 100 = −30 clamped to 0
    assert terms_sum(low) == 0.0


def test_explain_change_names_the_reason_and_what_moved() -> None:
    before = rules.compute_score(JILIN, today=TODAY, evaluations=[])
    after = rules.compute_score(JILIN, today=TODAY, evaluations=[EvaluationFact("e", 90.0, TODAY)])
    text = rules.explain_change(before, after, "evaluation 2026 published")
    assert text.startswith("evaluation 2026 published: 70.00 → 86.00, grade C → B")
    assert "evaluations +70.00 → +86.00" in text
    assert rules.explain_change(None, before, "first").endswith("first score 70.00 (C)")


def test_recent_satisfaction_is_weighted_and_on_zero_to_one() -> None:
    assert rules.recent_satisfaction([], today=TODAY, half_life_months=12) is None
    value = rules.recent_satisfaction(
        [(TODAY, 80.0), (date(2025, 11, 23), 50.0)], today=TODAY, half_life_months=12
    )
    # (1 × 80 + 0.5 × 50) / 1.5 = 70 → 0.7
    assert value == 0.7
