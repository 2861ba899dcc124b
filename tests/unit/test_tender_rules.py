"""Procurement rules of tenders and bids (政府采购规则), pure: bid window, weights and the price
band, invitation draw, minimum bids at opening, single-source publicity in working days,
bidder eligibility, panel sizes and the method that may follow a failed tender."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from libs.common.policy import calendar_for, load_pack
from services.matching.tenders import rules

JILIN = load_pack("jilin")
PUBLISHED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def method(code: str) -> rules.MethodProcurement:
    return rules.procedure(JILIN, code)


# -- bid window (等标期) -----------------------------------------------------------


@pytest.mark.parametrize("code", ["open_tender", "invited_tender"])
def test_tender_window_of_exactly_20_days_is_allowed(code: str) -> None:
    deadline = PUBLISHED + timedelta(days=20)
    assert (
        rules.bid_window_refusal(method(code), published_at=PUBLISHED, bid_deadline=deadline)
        is None
    )


@pytest.mark.parametrize("code", ["open_tender", "invited_tender"])
def test_tender_window_one_second_short_of_20_days_is_refused_with_the_clause(code: str) -> None:
    deadline = PUBLISHED + timedelta(days=20) - timedelta(seconds=1)
    refusal = rules.bid_window_refusal(method(code), published_at=PUBLISHED, bid_deadline=deadline)
    assert refusal is not None
    assert refusal.field == "body.bid_deadline"
    assert refusal.cited() == "中华人民共和国政府采购法 第三十五条"
    assert (PUBLISHED + timedelta(days=20)).isoformat() in refusal.reason


def test_consultation_window_is_10_days_and_negotiation_only_after_publication() -> None:
    ten = PUBLISHED + timedelta(days=10)
    assert (
        rules.bid_window_refusal(
            method("competitive_consultation"), published_at=PUBLISHED, bid_deadline=ten
        )
        is None
    )
    short = rules.bid_window_refusal(
        method("competitive_consultation"),
        published_at=PUBLISHED,
        bid_deadline=ten - timedelta(minutes=1),
    )
    assert short is not None and short.cited() == "财库〔2014〕214号 第十条"
    negotiation = method("competitive_negotiation")
    soon = PUBLISHED + timedelta(hours=1)
    assert rules.bid_window_refusal(negotiation, published_at=PUBLISHED, bid_deadline=soon) is None
    past = rules.bid_window_refusal(negotiation, published_at=PUBLISHED, bid_deadline=PUBLISHED)
    assert past is not None and past.rule is None


# -- weights (综合评分法) ------------------------------------------------------------


def criteria(*weights: str) -> list[rules.Criterion]:
    return [rules.Criterion(f"c{i}", f"criterion {i}", Decimal(w)) for i, w in enumerate(weights)]


@pytest.mark.parametrize("price", ["0.10", "0.30", "0.2"])
def test_weights_summing_to_one_with_price_inside_the_band_pass(price: str) -> None:
    rest = Decimal(1) - Decimal(price)
    half = rest / 2
    assert rules.weight_refusals(JILIN, criteria(str(half), str(rest - half)), Decimal(price)) == []


def test_weights_not_summing_to_one_are_refused() -> None:
    refusals = rules.weight_refusals(JILIN, criteria("0.4", "0.2"), Decimal("0.3"))
    assert [r.field for r in refusals] == ["body.criteria"]
    assert "0.9" in refusals[0].reason and refusals[0].rule is None


@pytest.mark.parametrize(("price", "rest"), [("0.09", "0.91"), ("0.31", "0.69"), ("0", "1")])
def test_price_weight_outside_the_band_is_refused_with_the_clause(price: str, rest: str) -> None:
    refusals = rules.weight_refusals(JILIN, criteria(rest), Decimal(price))
    assert [r.field for r in refusals] == ["body.price_weight"]
    assert refusals[0].cited() == "财库〔2014〕214号 第二十四条"


def test_duplicated_and_non_positive_criteria_are_refused() -> None:
    crit = [
        rules.Criterion("plan", "服务方案", Decimal("0.8")),
        rules.Criterion("plan", "服务方案", Decimal("0")),
    ]
    fields = {r.field for r in rules.weight_refusals(JILIN, crit, Decimal("0.2"))}
    assert fields == {"body.criteria", "body.criteria.1.weight"}


# -- invitation and the draw (随机抽取) ---------------------------------------------


def test_invited_tender_needs_at_least_three_invited_with_the_clause() -> None:
    refusals = rules.invitation_refusals(method("invited_tender"), suppliers=None, invited_count=2)
    assert [(r.field, r.cited()) for r in refusals] == [
        ("body.invited_count", "财政部令第87号 第十四条")
    ]
    assert (
        rules.invitation_refusals(method("invited_tender"), suppliers=None, invited_count=3) == []
    )
    opened = rules.invitation_refusals(
        method("invited_tender"), suppliers="open", invited_count=None
    )
    assert [r.field for r in opened] == ["body.suppliers"]


@pytest.mark.parametrize(
    ("code", "clause"),
    [
        ("competitive_negotiation", "中华人民共和国政府采购法 第三十八条(三)"),
        ("competitive_consultation", "财库〔2014〕214号 第六条"),
    ],
)
def test_negotiation_and_consultation_invite_at_least_three(code: str, clause: str) -> None:
    refusals = rules.invitation_refusals(method(code), suppliers="drawn", invited_count=2)
    assert [r.cited() for r in refusals] == [clause]
    # They may instead be open to every qualified supplier (公告).
    assert rules.invitation_refusals(method(code), suppliers="open", invited_count=None) == []
    assert not rules.draws_suppliers(method(code), "open")
    assert rules.draws_suppliers(method(code), None)


def test_open_tender_invites_nobody() -> None:
    refusals = rules.invitation_refusals(method("open_tender"), suppliers=None, invited_count=3)
    assert [r.field for r in refusals] == ["body.invited_count"]
    assert not rules.draws_suppliers(method("open_tender"), None)


def test_draw_is_reproducible_from_seed_and_candidates_in_any_order() -> None:
    candidates = [f"org-{i:02d}" for i in range(12)]
    first = rules.draw(candidates, 3, "seed-1")
    shuffled = candidates[:]
    random.Random(7).shuffle(shuffled)
    assert rules.draw(shuffled, 3, "seed-1") == first
    assert len(set(first)) == 3 and set(first) <= set(candidates)
    # The documented recipe, so an auditor can re-run it without this code.
    assert first == random.Random("seed-1").sample(sorted(candidates), 3)
    assert any(rules.draw(candidates, 3, f"seed-{i}") != first for i in range(2, 10))


def test_draw_gives_every_qualified_candidate_a_chance() -> None:
    candidates = [f"org-{i}" for i in range(6)]
    drawn = {o for i in range(200) for o in rules.draw(candidates, 3, f"s{i}")}
    assert drawn == set(candidates)


def test_too_few_qualified_candidates_to_draw_three_is_refused() -> None:
    rule = method("invited_tender")
    refusal = rules.draw_refusal(rule, candidates=2, wanted=3)
    assert refusal is not None and refusal.cited() == "财政部令第87号 第十四条"
    assert rules.draw_refusal(rule, candidates=3, wanted=3) is None
    with pytest.raises(ValueError):
        rules.draw(["a", "b"], 3, "seed")


# -- opening (开标) ---------------------------------------------------------------


@pytest.mark.parametrize("code", ["open_tender", "invited_tender"])
def test_fewer_than_three_valid_bids_fail_the_tender_with_the_clause(code: str) -> None:
    outcome = rules.opening_outcome(method(code), 2)
    assert outcome.state == "failed"
    assert outcome.rule is not None
    assert outcome.rule.cite() == "中华人民共和国政府采购法 第三十六条(一)"
    assert outcome.reason is not None and "2 valid bid(s)" in outcome.reason
    assert rules.opening_outcome(method(code), 3).state == "evaluating"
    assert rules.opening_outcome(method(code), 0).state == "failed"


def test_negotiation_and_consultation_fail_below_three_and_single_source_needs_one() -> None:
    assert rules.opening_outcome(method("competitive_negotiation"), 2).state == "failed"
    consult = rules.opening_outcome(method("competitive_consultation"), 2)
    assert consult.rule is not None and consult.rule.cite() == "财库〔2014〕214号 第六条"
    assert rules.opening_outcome(method("single_source"), 1).state == "evaluating"
    assert rules.opening_outcome(method("single_source"), 0).state == "failed"


# -- single source: publicity in working days (公示期) -----------------------------


def test_single_source_publicity_counts_working_days_across_national_day() -> None:
    rule = method("single_source")
    calendar = calendar_for(JILIN)
    # Published Wed 2026-09-30; 10-01..07 are off and Sat 10-10 is an adjusted working day:
    # 10-08, 10-09, 10-10, 10-12, 10-13 are the five working days.
    until = rules.publicity_until(calendar, rule, date(2026, 9, 30))
    assert until == date(2026, 10, 13)
    assert not rules.award_allowed(until, date(2026, 10, 13))
    assert rules.award_allowed(until, date(2026, 10, 14))
    # Without the holiday it would be five weekdays: a plain count would be wrong.
    assert rules.publicity_until(calendar, rule, date(2026, 3, 2)) == date(2026, 3, 9)


def test_publicity_is_only_for_single_source() -> None:
    with pytest.raises(ValueError):
        rules.publicity_until(calendar_for(JILIN), method("open_tender"), date(2026, 3, 2))
    assert rules.award_allowed(None, date(2026, 3, 2))


# -- panels (评标委员会) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "budget_fen", "size"),
    [
        ("open_tender", 999_999_999, 5),
        ("open_tender", 1_000_000_000, 7),  # 1000万元以上: inclusive
        ("invited_tender", 2_000_000_000, 7),
        ("competitive_negotiation", 2_000_000_000, 3),
        ("competitive_consultation", 100_000, 3),
        ("single_source", 100_000, 3),
    ],
)
def test_panel_sizes_are_odd_and_grow_at_high_value(code: str, budget_fen: int, size: int) -> None:
    assert JILIN.procurement.panel_size(code, budget_fen) == size
    assert size % 2 == 1


# -- a new method, and after a failed tender ------------------------------------


def change(
    method: str, *, reason: str | None = None, failed: str | None = None
) -> rules.Refusal | None:
    return rules.method_change_refusal(
        project_method="open_tender",
        method=method,
        reason=reason,
        failed_method=failed,
        pack=JILIN,
    )


def test_method_other_than_the_project_s_needs_a_reason() -> None:
    refusal = change("invited_tender")
    assert refusal is not None and refusal.field == "body.method_reason"
    assert change("invited_tender", reason="  ") is not None
    assert change("invited_tender", reason="急需") is None
    assert change("open_tender") is None


def test_after_a_failed_open_tender_negotiation_or_consultation_may_follow() -> None:
    for code in ("competitive_negotiation", "competitive_consultation", "open_tender"):
        assert change(code, failed="open_tender") is None
    refusal = change("single_source", failed="open_tender")
    assert refusal is not None and refusal.cited() == "中华人民共和国政府采购法 第三十七条"


def test_a_tender_may_add_requirements_but_not_drop_the_project_s() -> None:
    assert rules.requirement_refusals(["a"], None) == []
    assert rules.requirement_refusals(["a"], ["a", "b"]) == []
    assert [r.field for r in rules.requirement_refusals(["a", "b"], ["b"])] == [
        "body.qualification_requirements"
    ]


# -- bidders --------------------------------------------------------------------

TERMS = rules.TenderTerms(
    method="open_tender",
    region_code="220102",
    service_codes=["care", "counselling"],
    qualification_requirements=["independent_civil_liability"],
    budget_fen=1_000_000,
)


def bidder(**changes: object) -> rules.Bidder:
    base: dict[str, object] = {
        "organisation_id": "org-1",
        "registered": True,
        "status": "admitted",
        "service_regions": ["2201"],
        "capacities": {"care": 10, "counselling": 5},
        "qualifications": {"independent_civil_liability": True},
    }
    base.update(changes)
    return rules.Bidder(**base)  # type: ignore[arg-type]


def test_an_admitted_organisation_covering_region_items_and_qualifications_may_bid() -> None:
    assert rules.eligibility_refusals(JILIN, bidder(), TERMS) == []


@pytest.mark.parametrize(
    ("changes", "field", "clause"),
    [
        ({"status": "suspended"}, "organisation.status", "吉民发〔2020〕44号 §四(四)4"),
        ({"status": "blacklisted"}, "organisation.status", "中华人民共和国政府采购法 第七十七条"),
        ({"status": "pending"}, "organisation.status", None),
        ({"service_regions": ["220104"]}, "organisation.service_regions", None),
        ({"service_regions": []}, "organisation.service_regions", None),
        ({"capacities": {"care": 10}}, "organisation.capacities", None),
        ({"capacities": {"care": 10, "counselling": 0}}, "organisation.capacities", None),
        (
            {"qualifications": {"independent_civil_liability": False}},
            "organisation.qualifications.independent_civil_liability",
            "吉民发〔2020〕44号 §二(二)2",
        ),
    ],
)
def test_ineligible_bidders_are_refused_naming_the_field(
    changes: dict[str, object], field: str, clause: str | None
) -> None:
    refusals = rules.eligibility_refusals(JILIN, bidder(**changes), TERMS)
    assert [(r.field, r.cited()) for r in refusals] == [(field, clause)]


def test_by_invitation_only_the_invited_may_bid() -> None:
    terms = rules.TenderTerms(
        method="invited_tender",
        region_code="220102",
        service_codes=["care"],
        qualification_requirements=[],
        budget_fen=100,
        invited=["org-2", "org-3", "org-4"],
        by_invitation=True,
    )
    refusals = rules.eligibility_refusals(JILIN, bidder(), terms)
    assert [(r.field, r.cited()) for r in refusals] == [
        ("organisation_id", "财政部令第87号 第十四条")
    ]
    assert rules.eligibility_refusals(JILIN, bidder(organisation_id="org-3"), terms) == []


def test_price_must_not_exceed_the_budget() -> None:
    assert rules.price_refusal(1_000_000, 1_000_000) is None
    over = rules.price_refusal(1_000_001, 1_000_000)
    assert over is not None and over.field == "body.price_fen"
    assert rules.price_refusal(0, 1_000_000) is not None


def test_region_coverage_is_a_prefix() -> None:
    assert rules.covers_region(["22"], "220102001")
    assert not rules.covers_region(["220104"], "220102")
    assert not rules.covers_region([""], "220102")
