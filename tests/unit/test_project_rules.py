"""Purchasing-project rules (项目库) and the 2 % budget cap, pure: each refusal cites its clause.

Show items: negative-list and off-catalogue items refused with the clause; term limits at the
exact boundaries (12 months allowed, 12 months + 1 day refused; 36 months with a stable
recurring service and a secured budget allowed, + 1 day refused; 13 months stable without a
secured budget refused); the cap exactly at the limit and one yuan over.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.errors import InvalidInput, RuleViolation
from libs.common.policy import load_pack
from services.providers.projects import rules
from services.providers.projects.service import PreconditionFailed, parse_if_match

JILIN = load_pack("jilin")
ZHEJIANG = load_pack("zhejiang")
HAINAN = load_pack("hainan")

TERM = "吉民发〔2020〕44号 §四(三)2"  # 合同履行期限一般不超过1年
STABLE = "吉民发〔2020〕44号 §四(三)3"  # 稳定项目 ≤ 3 年
CAP = "吉民发〔2020〕44号 §五"  # ≤ 2 % of central + provincial special funds


def refusals(pack: Any = JILIN, **overrides: Any) -> rules.Refusals:
    values: dict[str, Any] = {
        "service_codes": ["care"],
        "fund_source": "special_funds",
        "period_start": date(2027, 1, 1),
        "period_end": date(2027, 12, 31),
        "stable_recurring": False,
        "budget_secured": False,
        "purchasing_method": "open_tender",
        "qualification_requirements": ["project_specific_conditions"],
    }
    values.update(overrides)
    return rules.project_refusals(pack, **values)


def test_a_valid_project_passes_every_rule() -> None:
    assert not refusals()
    assert refusals().errors == [] and refusals().clauses == []


# ------------------------------------------------------------------------ items


@pytest.mark.parametrize(
    ("code", "clause"),
    [
        ("goods_and_works", "吉民发〔2020〕44号 §三(二)3"),
        ("financing", "吉民发〔2020〕44号 §三(二)4"),
        ("staffing_and_posts", "吉民发〔2020〕44号 §三(二)5"),
        ("direct_government_duties", "吉民发〔2020〕44号 §三(二)2"),
    ],
)
def test_negative_list_item_is_refused_citing_its_own_clause(code: str, clause: str) -> None:
    out = refusals(service_codes=["care", code])
    assert out.clauses == [clause]
    assert [e.field for e in out.errors] == ["body.service_codes.1"]
    assert "不得购买事项" in out.errors[0].reason and clause in out.errors[0].reason
    with pytest.raises(RuleViolation) as caught:
        out.raise_if_any("refused")
    assert caught.value.extra["rules"] == [clause]


def test_negative_list_clause_follows_the_province_pack() -> None:
    # Zhejiang takes the negative list from 财政部令第102号 (article 10, item 4 = financing).
    assert refusals(ZHEJIANG, service_codes=["financing"]).clauses == ["财政部令第102号 第十条(四)"]


def test_off_catalogue_item_is_refused_citing_the_catalogue() -> None:
    out = refusals(service_codes=["dog_walking"])
    assert out.clauses == ["吉民发〔2020〕44号 §附件"]  # 吉林省政府购买社会救助服务清单
    assert out.errors[0].field == "body.service_codes.0"
    assert "not in the catalogue of purchasable social-assistance services of the jilin pack" in (
        out.errors[0].reason
    )


def test_an_item_of_another_provinces_catalogue_is_off_catalogue() -> None:
    # Hainan lists no needs assessment; Jilin does.
    assert not refusals(JILIN, service_codes=["needs_assessment"])
    out = refusals(HAINAN, service_codes=["needs_assessment"], fund_source="working_funds")
    assert out.clauses == ["海南省贯彻实施意见 §二(二)"]


# ------------------------------------------------------------------------ term


def test_term_end_limit_is_the_day_before_the_same_day_later() -> None:
    assert rules.term_end_limit(date(2027, 1, 1), 12) == date(2027, 12, 31)
    assert rules.term_end_limit(date(2027, 3, 15), 36) == date(2030, 3, 14)
    # A day the target month lacks: the term runs through the end of that month.
    assert rules.term_end_limit(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert rules.term_end_limit(date(2028, 2, 29), 12) == date(2029, 2, 28)


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
    months=st.integers(min_value=1, max_value=48),
)
def test_term_end_limit_spans_months_whole_months(start: date, months: int) -> None:
    end = rules.term_end_limit(start, months)
    nxt = end + timedelta(days=1)  # the first day after the term
    assert start < nxt
    assert (nxt.year - start.year) * 12 + nxt.month - start.month in (months, months + 1)
    if start.day <= 28:
        assert nxt.day == start.day


def test_twelve_months_inclusive_is_allowed_and_one_day_more_refused() -> None:
    assert not refusals(period_start=date(2027, 1, 1), period_end=date(2027, 12, 31))
    out = refusals(period_start=date(2027, 1, 1), period_end=date(2028, 1, 1))
    # The default term refuses; the stable-service clause says how a longer term is allowed.
    assert out.clauses == [TERM, STABLE]
    assert out.errors[0].field == "body.period_end"
    assert "latest end 2027-12-31" in out.errors[0].reason


def test_thirty_six_months_with_stable_service_and_secured_budget() -> None:
    start = date(2027, 1, 1)
    assert not refusals(
        period_start=start,
        period_end=date(2029, 12, 31),
        stable_recurring=True,
        budget_secured=True,
    )
    out = refusals(
        period_start=start, period_end=date(2030, 1, 1), stable_recurring=True, budget_secured=True
    )
    assert out.clauses == [STABLE]
    assert "latest end 2029-12-31" in out.errors[0].reason


def test_thirteen_months_stable_without_a_secured_budget_is_refused() -> None:
    out = refusals(
        period_start=date(2027, 1, 1),
        period_end=date(2028, 1, 31),
        stable_recurring=True,
        budget_secured=False,
    )
    assert out.clauses == [TERM, STABLE]
    assert "budget_secured" in out.errors[0].reason
    assert "stable_recurring" not in out.errors[0].reason.split("not met:")[1]


def test_a_secured_budget_alone_does_not_allow_more_than_a_year() -> None:
    out = refusals(period_end=date(2028, 1, 1), budget_secured=True)
    assert out.clauses == [TERM, STABLE]
    assert "stable_recurring" in out.errors[0].reason.split("not met:")[1]


def test_a_period_ending_before_it_starts_is_invalid_input_without_a_clause() -> None:
    out = refusals(period_start=date(2027, 5, 2), period_end=date(2027, 5, 1))
    assert out.clauses == [] and out.errors[0].field == "body.period_end"
    with pytest.raises(InvalidInput) as caught:
        out.raise_if_any("bad")
    assert not isinstance(caught.value, RuleViolation)


def test_a_one_day_project_is_allowed() -> None:
    assert not refusals(period_start=date(2027, 5, 1), period_end=date(2027, 5, 1))


# ------------------------------------------------------------------------ fund source, method


def test_zhejiang_working_funds_pay_for_administrative_work_only() -> None:
    assert not refusals(
        ZHEJIANG, service_codes=["means_survey", "staff_training"], fund_source="working_funds"
    )
    out = refusals(ZHEJIANG, service_codes=["means_survey", "care"], fund_source="working_funds")
    assert out.clauses == ["浙民助〔2018〕117号 §三(二)"]
    assert out.errors[0].field == "body.fund_source" and "'care' is direct" in out.errors[0].reason
    # Welfare-lottery funds apply to any work in Zhejiang.
    assert not refusals(ZHEJIANG, service_codes=["care"], fund_source="welfare_lottery")


def test_a_fund_source_the_pack_lacks_is_refused_citing_the_sources_clause() -> None:
    out = refusals(JILIN, fund_source="welfare_lottery")
    assert out.clauses == [CAP]  # Jilin §五 names working funds and special funds
    assert "allowed: working_funds, special_funds" in out.errors[0].reason


def test_purchasing_method_must_be_the_packs() -> None:
    assert not refusals(purchasing_method="single_source")
    out = refusals(purchasing_method="lowest_price_auction")
    assert out.clauses == ["吉民发〔2020〕44号 §四(三)"]


def test_qualification_requirements_must_be_admission_conditions() -> None:
    assert not refusals(
        qualification_requirements=["dispatched_staff_qualification", "governance_finance_assets"]
    )
    out = refusals(qualification_requirements=["procurement_law_compliance", "big_office"])
    assert [e.field for e in out.errors] == ["body.qualification_requirements.1"]
    assert out.clauses == []


def test_every_refusal_is_reported_at_once() -> None:
    out = refusals(
        service_codes=["financing", "dog_walking"],
        period_end=date(2028, 6, 30),
        fund_source="welfare_lottery",
        purchasing_method="auction",
    )
    assert [e.field for e in out.errors] == [
        "body.service_codes.0",
        "body.service_codes.1",
        "body.period_end",
        "body.fund_source",
        "body.purchasing_method",
    ]
    assert len(out.clauses) == len(set(out.clauses)) == 6  # the term cites 四(三)2 and 3


# ------------------------------------------------------------------------ budget cap


def test_cap_is_floor_of_two_percent_in_fen() -> None:
    assert JILIN.budget_cap is not None and JILIN.budget_cap.ratio == Decimal("0.02")
    assert rules.cap_for(JILIN, 100_000_000) == 2_000_000
    assert rules.cap_for(JILIN, 149) == 2  # 2.98 fen → 2: never rounded up
    assert rules.cap_for(JILIN, 0) == 0


def test_packs_without_a_cap_track_only() -> None:
    assert ZHEJIANG.budget_cap is None and HAINAN.budget_cap is None
    assert rules.cap_for(ZHEJIANG, 100_000_000) is None
    assert rules.cap_for(HAINAN, 100_000_000) is None


def test_cap_exactly_at_the_limit_fits_and_one_yuan_over_does_not() -> None:
    cap = rules.cap_for(JILIN, 10_000_000)  # 100,000 yuan of special funds → 2,000 yuan
    assert cap == 200_000
    assert rules.fits_cap(cap_fen=cap, reserved_fen=150_000, requested_fen=50_000)
    assert not rules.fits_cap(cap_fen=cap, reserved_fen=150_000, requested_fen=50_100)
    assert not rules.fits_cap(cap_fen=cap, reserved_fen=cap, requested_fen=1)


def test_cap_refusal_cites_the_clause_and_gives_the_figures() -> None:
    err = rules.cap_refusal(
        JILIN,
        region_code="220102",
        year=2027,
        base_fen=10_000_000,
        cap_fen=200_000,
        reserved_fen=150_000,
        requested_fen=50_100,
    )
    problem = err.to_problem()
    assert problem["status"] == 422
    assert problem["rules"] == [CAP]
    assert (problem["cap_fen"], problem["reserved_fen"], problem["requested_fen"]) == (
        200_000,
        150_000,
        50_100,
    )
    assert problem["available_fen"] == 50_000
    assert problem["errors"][0]["field"] == "project.budget_fen"
    assert CAP in problem["errors"][0]["reason"]


def test_no_funds_refusal_says_what_to_do() -> None:
    problem = rules.no_funds_refusal(JILIN, region_code="220102", year=2027).to_problem()
    assert problem["rules"] == [CAP]
    assert "POST /funds/allocations" in problem["errors"][0]["reason"]


# ------------------------------------------------------------------------ states, If-Match


def test_market_events_map_to_states() -> None:
    assert rules.market_target("tender.published") == "tendered"
    assert rules.market_target("tender.failed") == "published"
    assert rules.market_target("award.made") == "awarded"
    assert rules.market_target("contract.signed") == "in_service"
    assert rules.market_target("contract.terminated") == "closed"
    assert rules.market_target("bid.submitted") is None


def test_reservation_is_held_from_approval_on() -> None:
    assert "draft" not in rules.HOLDS_RESERVATION and "cancelled" not in rules.HOLDS_RESERVATION
    assert {"approved", "published", "tendered"} <= rules.HOLDS_RESERVATION
    assert set(rules.MANUAL_TRANSITIONS["cancel"]).isdisjoint({"awarded", "in_service", "closed"})


@pytest.mark.parametrize(
    ("header", "version"), [('"3"', 3), ('W/"12"', 12), ("7", 7), (None, None), ("*", None)]
)
def test_if_match_forms(header: str | None, version: int | None) -> None:
    assert parse_if_match(header) == version


@pytest.mark.parametrize("header", ['"three"', '"-1"', '"٣"'])
def test_if_match_garbage_is_invalid_input(header: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_if_match(header)
    assert caught.value.errors[0].field == "header.If-Match"


def test_precondition_failed_is_412() -> None:
    assert PreconditionFailed(detail="x").to_problem()["status"] == 412
