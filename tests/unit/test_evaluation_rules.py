"""Pure rules of panels, scoring (综合评分法) and award succession: no I/O."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest

from libs.common.policy import load_pack
from services.matching.evaluation import rules
from services.matching.evaluation.rules import (
    Affiliation,
    Bidders,
    Criterion,
    Expert,
    Ranked,
    ScoredBid,
    Sheet,
)

JILIN = load_pack("jilin")
DRAW_DAY = date(2026, 11, 23)
TEN_MILLION_YUAN_FEN = 10_000_000 * 100
RECUSAL = JILIN.procurement

D = Decimal


def conflicts_of(affiliations: list[Affiliation], bidders: Bidders) -> list[Affiliation]:
    return rules.recusal_conflicts(
        affiliations,
        bidders,
        on=DRAW_DAY,
        years=RECUSAL.recusal_years,
        relations=RECUSAL.recusal_relations,
    )


# ------------------------------------------------------------------------------ panel sizes


@pytest.mark.parametrize(
    ("method", "budget_fen", "size", "clause"),
    [
        ("open_tender", 500_000_00, 5, "财政部令第87号 第四十七条"),
        ("invited_tender", 500_000_00, 5, "财政部令第87号 第四十七条"),
        ("competitive_negotiation", 500_000_00, 3, "中华人民共和国政府采购法 第三十八条(一)"),
        ("competitive_consultation", 500_000_00, 3, "财库〔2014〕214号 第十四条"),
        # 采购预算金额1000万元以上 (inclusive) → 7 for tenders.
        ("open_tender", TEN_MILLION_YUAN_FEN, 7, "财政部令第87号 第四十七条"),
        ("invited_tender", TEN_MILLION_YUAN_FEN, 7, "财政部令第87号 第四十七条"),
        ("open_tender", TEN_MILLION_YUAN_FEN - 1, 5, "财政部令第87号 第四十七条"),
        # The high-value panel is a rule of tenders; negotiation keeps its own minimum.
        ("competitive_negotiation", TEN_MILLION_YUAN_FEN, 3, "第三十八条(一)"),
    ],
)
def test_panel_sizes_by_method_and_high_value(
    method: str, budget_fen: int, size: int, clause: str
) -> None:
    rule = rules.panel_rule(JILIN, method, budget_fen)
    assert rule.min_size == size
    assert any(clause in c for c in rule.cites())
    assert rules.panel_size_refusal(rule, size) is None
    assert rules.panel_size_refusal(rule, size + 2) is None
    too_small = rules.panel_size_refusal(rule, size - 2)
    assert too_small is not None and f"at least {size}" in too_small
    even = rules.panel_size_refusal(rule, size + 1)
    assert even is not None and "odd" in even


def test_high_value_panel_names_the_threshold_clause_and_says_why() -> None:
    rule = rules.panel_rule(JILIN, "open_tender", TEN_MILLION_YUAN_FEN)
    assert rule.high_value
    refusal = rules.panel_size_refusal(rule, 5)
    assert refusal is not None and "high-value" in refusal and "7" in refusal


def test_unknown_method_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        rules.panel_rule(JILIN, "auction", 100)


# ----------------------------------------------------------------------------------- recusal

BIDDER = "org-bidder"
BIDDER_USCC = "52220102MJ0000001X"
BIDDERS = Bidders(organisation_ids=frozenset({BIDDER}), usccs=frozenset({BIDDER_USCC}))


def employed(
    ended_on: date | None, *, started_on: date = date(2015, 1, 1), **kw: str
) -> Affiliation:
    return Affiliation(
        organisation_uscc=kw.get("uscc"),
        organisation_id=kw.get("org", BIDDER),
        kind=kw.get("kind", "employment"),
        started_on=started_on,
        ended_on=ended_on,
    )


def test_recusal_employed_by_a_bidder_two_years_ago_is_excluded() -> None:
    two_years_ago = date(2024, 11, 23)
    assert conflicts_of([employed(two_years_ago)], BIDDERS) != []


def test_recusal_three_years_and_one_day_ago_is_eligible() -> None:
    three_years_and_a_day = date(2023, 11, 22)
    assert conflicts_of([employed(three_years_and_a_day)], BIDDERS) == []


def test_recusal_boundary_day_exactly_three_years_ago_still_counts() -> None:
    assert conflicts_of([employed(date(2023, 11, 23))], BIDDERS) != []


def test_recusal_open_tie_director_by_credit_code_and_shareholding() -> None:
    by_code = Affiliation(BIDDER_USCC, None, "directorship", date(2020, 1, 1), None)
    assert conflicts_of([by_code], BIDDERS) == [by_code]
    share = employed(None, kind="shareholding")
    assert conflicts_of([share], BIDDERS) == [share]


def test_recusal_ignores_other_organisations_other_kinds_and_future_ties() -> None:
    other = employed(None, org="org-other")
    advisor = employed(None, kind="advisory")
    future = employed(None, started_on=DRAW_DAY + timedelta(days=1))
    assert conflicts_of([other, advisor, future], BIDDERS) == []


def test_years_before_handles_29_february() -> None:
    assert rules.years_before(date(2028, 2, 29), 3) == date(2025, 2, 28)


# -------------------------------------------------------------------------------- candidates


def test_candidates_are_eligible_experts_sorted_by_id() -> None:
    experts = [
        Expert("e3", ("care",), region_code="220102"),
        Expert("e1", ("evaluation",), region_code="2201"),
        Expert("e2", ("law",), region_code="220102"),  # not in the tender's fields
        Expert("e4", ("care",), region_code="220102", available=False),
        Expert("e5", ("care",), region_code="220102", unavailable_until=DRAW_DAY),
        Expert("e6", ("care",), region_code="220102", unavailable_until=DRAW_DAY - timedelta(1)),
        Expert("e7", ("care",), region_code="330102"),  # another province
        Expert("e8", ("care",), region_code="220102", status="retired"),
    ]
    got = rules.candidates(experts, service_codes={"care"}, province="22", day=DRAW_DAY)
    assert got == ["e1", "e3", "e6"]


# --------------------------------------------------------------------------------- the draw

CANDIDATES = [f"expert-{i:02d}" for i in range(12)]


def test_draw_is_reproducible_from_seed_and_candidates() -> None:
    seed = "5f0c1d2e3a4b5c6d7e8f901a2b3c4d5e"
    first = rules.draw_panel(
        seed=seed, candidate_ids=CANDIDATES, size=5, conflicts={}, item_experts=set(CANDIDATES)
    )
    again = rules.draw_panel(
        seed=seed, candidate_ids=CANDIDATES, size=5, conflicts={}, item_experts=set(CANDIDATES)
    )
    assert first.complete and first.members == again.members
    # The documented formula, by hand.
    assert first.members == random.Random(seed).sample(CANDIDATES, len(CANDIDATES))[:5]
    replay = rules.replay_draw(seed=seed, candidate_ids=CANDIDATES, size=5, excluded=set())
    assert replay == first.members
    other = rules.draw_panel(
        seed="another-seed", candidate_ids=CANDIDATES, size=5, conflicts={}, item_experts=set()
    )
    assert other.members != first.members


def test_recused_expert_is_replaced_by_the_next_drawn_and_replay_agrees() -> None:
    seed = "abc123"
    order = rules.draw_order(seed, CANDIDATES)
    conflicted = order[1]
    tie = employed(None)
    drawn = rules.draw_panel(
        seed=seed,
        candidate_ids=CANDIDATES,
        size=5,
        conflicts={conflicted: [tie]},
        item_experts=set(CANDIDATES),
    )
    assert drawn.members == [order[0], *order[2:6]]
    assert [(e.expert_id, e.reason, e.organisation_id, e.kind) for e in drawn.excluded] == [
        (conflicted, rules.RECUSED, BIDDER, "employment")
    ]
    assert drawn.recused == 1
    replay = rules.replay_draw(
        seed=seed,
        candidate_ids=CANDIDATES,
        size=5,
        excluded={e.expert_id for e in drawn.excluded},
    )
    assert replay == drawn.members


def test_last_seat_is_kept_for_an_expert_in_the_tenders_fields() -> None:
    seed = "seat"
    order = rules.draw_order(seed, CANDIDATES)
    # Only the 8th and 10th drawn practise the service; the rest are evaluators.
    item = {order[7], order[9]}
    drawn = rules.draw_panel(
        seed=seed, candidate_ids=CANDIDATES, size=5, conflicts={}, item_experts=item
    )
    assert drawn.members == [*order[:4], order[7]]
    assert [e.expert_id for e in drawn.excluded] == order[4:7]
    assert {e.reason for e in drawn.excluded} == {rules.PASSED_OVER}
    assert (
        rules.replay_draw(
            seed=seed,
            candidate_ids=CANDIDATES,
            size=5,
            excluded={e.expert_id for e in drawn.excluded},
        )
        == drawn.members
    )


def test_too_few_eligible_experts_leaves_the_panel_incomplete() -> None:
    drawn = rules.draw_panel(
        seed="x",
        candidate_ids=CANDIDATES[:6],
        size=5,
        conflicts={CANDIDATES[0]: [employed(None)], CANDIDATES[1]: [employed(None)]},
        item_experts=set(CANDIDATES),
    )
    assert not drawn.complete
    assert (drawn.eligible, drawn.recused, len(drawn.members)) == (6, 2, 4)


def test_no_expert_in_the_tenders_fields_leaves_the_last_seat_empty() -> None:
    drawn = rules.draw_panel(
        seed="x", candidate_ids=CANDIDATES, size=3, conflicts={}, item_experts=set()
    )
    assert not drawn.complete and len(drawn.members) == 2 and drawn.in_fields == 0


# ------------------------------------------------------------------------- price and weights


def test_price_formula_is_exact_decimal() -> None:
    # 评标基准价 ÷ 投标报价 × 100 × 权值
    assert rules.price_score(lowest_fen=80_000, price_fen=100_000, price_weight=D("0.30")) == D(
        "24.0000"
    )
    # 2/3 × 100 × 0.25 = 16.666…: rounded half up to four places, no float noise.
    score = rules.price_score(lowest_fen=200_000, price_fen=300_000, price_weight=D("0.25"))
    assert score == D("16.6667") and str(score) == "16.6667"
    # The lowest bid takes the whole price weight.
    assert rules.price_score(lowest_fen=123, price_fen=123, price_weight=D("0.1")) == D("10.0000")
    with pytest.raises(ValueError):
        rules.price_score(lowest_fen=200, price_fen=100, price_weight=D("0.3"))


@pytest.mark.parametrize(
    ("price_weight", "ok"),
    [("0.10", True), ("0.30", True), ("0.20", True), ("0.09", False), ("0.31", False)],
)
def test_price_weight_band_for_services(price_weight: str, ok: bool) -> None:
    pw = D(price_weight)
    criteria = [Criterion("service_plan", "服务方案", D(1) - pw)]
    refusals = rules.weight_refusals(JILIN, criteria, pw)
    assert (refusals == []) is ok
    if not ok:
        assert "outside the band" in refusals[0]
    cites = [c.cite() for c in rules.band_citations(JILIN)]
    assert "财库〔2014〕214号 第二十四条" in cites


def test_weights_must_sum_to_one() -> None:
    criteria = [Criterion("a", "A", D("0.5")), Criterion("b", "B", D("0.3"))]
    refusals = rules.weight_refusals(JILIN, criteria, D("0.3"))
    assert refusals == ["criteria weights plus the price weight sum to 1.1, not 1"]


def test_criterion_mean_rounds_half_up_to_four_places() -> None:
    assert rules.criterion_mean([D("80"), D("85"), D("90.5")]) == D("85.1667")
    assert rules.criterion_mean([D("0.00005"), D("0")]) == D("0.0000")  # 0.000025
    assert rules.criterion_mean([D("0.0001"), D("0")]) == D("0.0001")  # 0.00005 half up


def test_sheet_errors_name_each_criterion() -> None:
    criteria = [Criterion("plan", "方案", D("0.4")), Criterion("staff", "人员", D("0.3"))]
    errors = rules.sheet_errors(criteria, {"plan": D("101"), "extra": D("5")})
    assert sorted(errors) == sorted(
        [
            ("body.scores.staff", "this criterion must be scored"),
            ("body.scores.plan", "a score lies in 0–100, got 101"),
            ("body.scores.extra", "not a criterion of this tender (plan, staff)"),
        ]
    )


def test_missing_sheets_lists_member_and_bid() -> None:
    sheets = [Sheet("b1", "e1", {}), Sheet("b2", "e1", {}), Sheet("b1", "e2", {})]
    assert rules.missing_sheets(["e1", "e2"], ["b1", "b2"], sheets) == [("e2", "b2")]


# ------------------------------------------------------------------------------- evaluation

PLAN = Criterion("service_plan", "服务方案", D("0.40"))
STAFF = Criterion("staffing", "人员配备", D("0.20"))
PAST = Criterion("past_performance", "以往业绩", D("0.10"))
CRITERIA = [PLAN, STAFF, PAST]
PRICE_WEIGHT = D("0.30")


def sheets_for(bid_id: str, marks: list[tuple[int, int, int]]) -> list[Sheet]:
    return [
        Sheet(bid_id, f"e{i}", {PLAN.code: D(a), STAFF.code: D(b), PAST.code: D(c)})
        for i, (a, b, c) in enumerate(marks)
    ]


def test_a_cheap_weak_bid_loses_to_a_dearer_better_one() -> None:
    cheap = ScoredBid("cheap", "org-cheap", price_fen=600_000)
    better = ScoredBid("better", "org-better", price_fen=1_000_000)
    sheets = sheets_for("cheap", [(55, 60, 60), (60, 60, 65), (58, 62, 60)]) + sheets_for(
        "better", [(92, 90, 85), (90, 88, 90), (95, 90, 88)]
    )
    ranked = rules.evaluate(
        criteria=CRITERIA, price_weight=PRICE_WEIGHT, bids=[cheap, better], sheets=sheets, seed="s"
    )
    by_id = {r.bid_id: r for r in ranked}
    # The cheap bid takes the whole price weight …
    assert by_id["cheap"].price_score == D("30.0000")
    assert by_id["better"].price_score == D("18.0000")  # 0.6 × 100 × 0.30
    # … and still loses on quality.
    assert [r.bid_id for r in ranked] == ["better", "cheap"]
    assert [r.rank for r in ranked] == [1, 2]
    # Per-criterion means and weighted parts, exactly.
    plan = by_id["better"].criteria[0]
    assert (plan.code, plan.mean, plan.weighted) == ("service_plan", D("92.3333"), D("36.9333"))
    expected_quality = (
        D("0.40") * D("92.3333") + D("0.20") * D("89.3333") + D("0.10") * D("87.6667")
    )
    assert expected_quality == D("63.566650")  # half up, not half even
    assert by_id["better"].quality_score == D("63.5667")
    assert by_id["better"].total == by_id["better"].quality_score + D("18.0000")


def _flat(bid_id: str, mark: int, n: int = 3) -> list[Sheet]:
    return sheets_for(bid_id, [(mark, mark, mark)] * n)


def test_ties_broken_by_quality_score_then_credit_score() -> None:
    # Same total (quality + price), different quality: the better quality ranks first.
    # A: quality 0.7 × 80 = 56, price 30 (lowest) → 86. B: quality 0.7 × 100 = 70, price
    # 100/x × 30 = 16 → x = 187.5 % of A's price.
    a = ScoredBid("a", "org-a", price_fen=800_000, credit_score=D(99))
    b = ScoredBid("b", "org-b", price_fen=1_500_000, credit_score=D(10))
    ranked = rules.evaluate(
        criteria=CRITERIA,
        price_weight=PRICE_WEIGHT,
        bids=[a, b],
        sheets=_flat("a", 80) + _flat("b", 100),
        seed="s",
    )
    assert ranked[0].total == ranked[1].total == D("86.0000")
    assert [r.bid_id for r in ranked] == ["b", "a"]  # quality first, credit notwithstanding

    # Same total and quality: the higher credit score first; unknown credit last.
    c = ScoredBid("c", "org-c", price_fen=1_000_000, credit_score=D("70.5"))
    d = ScoredBid("d", "org-d", price_fen=1_000_000, credit_score=D("88"))
    e = ScoredBid("e", "org-e", price_fen=1_000_000, credit_score=None)
    ranked = rules.evaluate(
        criteria=CRITERIA,
        price_weight=PRICE_WEIGHT,
        bids=[c, e, d],
        sheets=_flat("c", 75) + _flat("d", 75) + _flat("e", 75),
        seed="s",
    )
    assert [r.bid_id for r in ranked] == ["d", "c", "e"]
    assert [r.rank for r in ranked] == [1, 2, 3]


def test_full_tie_falls_to_the_recorded_seeded_order() -> None:
    bids = [ScoredBid(f"bid-{i}", f"org-{i}", 1_000_000, D(80)) for i in range(4)]
    sheets = [s for b in bids for s in _flat(b.bid_id, 70)]
    first = rules.evaluate(
        criteria=CRITERIA, price_weight=PRICE_WEIGHT, bids=bids, sheets=sheets, seed="seed-1"
    )
    again = rules.evaluate(
        criteria=CRITERIA,
        price_weight=PRICE_WEIGHT,
        bids=list(reversed(bids)),
        sheets=sheets,
        seed="seed-1",
    )
    assert [r.bid_id for r in first] == [r.bid_id for r in again]
    expected = sorted((b.bid_id for b in bids), key=lambda i: rules.tie_order("seed-1", i))
    assert [r.bid_id for r in first] == expected


# -------------------------------------------------------------------------- award succession

RANKED = [Ranked(1, "b1", "o1"), Ranked(2, "b2", "o2"), Ranked(3, "b3", "o3")]


def test_next_offer_goes_down_the_ranking() -> None:
    assert rules.next_offer(RANKED, already_offered=set(), standing={}).offer == RANKED[0]
    nxt = rules.next_offer(RANKED, already_offered={"b1"}, standing={"o2": "admitted"})
    assert nxt.offer == RANKED[1] and nxt.skipped == []


def test_next_offer_skips_barred_organisations_and_ends_with_nobody() -> None:
    nxt = rules.next_offer(RANKED, already_offered={"b1"}, standing={"o2": "suspended"})
    assert nxt.offer == RANKED[2]
    assert nxt.skipped == [(RANKED[1], "the organisation is suspended")]
    done = rules.next_offer(RANKED, already_offered={"b1", "b2", "b3"}, standing={})
    assert done.offer is None
