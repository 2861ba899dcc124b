"""Rules of charity resources (慈善资源): an offer checked against the province pack
(catalogue, negative list with its clause, recipient categories, regions, quantity and unit,
validity window), the arithmetic of the remaining quantity, and the region predicates search
runs in SQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common import regions
from libs.common.errors import InvalidInput, RuleViolation
from libs.common.policy import load_pack
from services.providers.charities import rules

JILIN = load_pack("jilin")
ZHEJIANG = load_pack("zhejiang")
HAINAN = load_pack("hainan")
TODAY = date(2026, 6, 15)


def offer(pack: Any = JILIN, **overrides: Any) -> rules.Refusals:
    args: dict[str, Any] = {
        "kind": "services",
        "service_codes": ["care", "counselling"],
        "regions": ["220102", "2201"],
        "target_categories": ["tekun", "dibao"],
        "quantity": 120,
        "unit": "hours",
        "valid_from": date(2026, 7, 1),
        "valid_until": date(2026, 12, 31),
        "today": TODAY,
    }
    args.update(overrides)
    return rules.offer_refusals(pack, **args)


def fields(out: rules.Refusals) -> list[str]:
    return [e.field for e in out.errors]


def test_a_valid_offer_has_no_refusals() -> None:
    out = offer()
    assert not out and out.errors == [] and out.clauses == []


# --------------------------------------------------------------------------- service codes


def test_an_item_outside_the_catalogue_is_named_by_its_index_without_a_clause() -> None:
    out = offer(service_codes=["care", "dance_lessons", "counselling"])
    assert fields(out) == ["body.service_codes.1"]
    assert "'dance_lessons' is not an item of the jilin catalogue" in out.errors[0].reason
    assert out.clauses == []
    assert isinstance(out.error("x"), InvalidInput)
    assert not isinstance(out.error("x"), RuleViolation)


@pytest.mark.parametrize("pack", [JILIN, ZHEJIANG, HAINAN], ids=lambda p: p.province)
@pytest.mark.parametrize("code", ["goods_and_works", "staffing_and_posts", "financing"])
def test_a_negative_list_item_is_refused_citing_the_packs_own_clause(pack: Any, code: str) -> None:
    regions = [pack.province_code]
    out = offer(pack, service_codes=["care", code], regions=regions, target_categories=["dibao"])
    entry = pack.negative_entry(code)
    assert entry is not None
    clause = entry.source.cite()
    assert fields(out) == ["body.service_codes.1"]
    assert clause in out.errors[0].reason and "不得购买事项" in out.errors[0].reason
    assert out.clauses == [clause]
    problem = out.error("refused")
    assert isinstance(problem, RuleViolation)
    assert problem.extra == {"rules": [clause]}
    assert problem.to_problem()["errors"][0]["field"] == "body.service_codes.1"


def test_the_jilin_goods_clause_is_the_2020_guide() -> None:
    out = offer(service_codes=["goods_and_works"])
    assert out.clauses == ["吉民发〔2020〕44号 §三(二)3"]


def test_catalogues_differ_by_province() -> None:
    # 罕见病对象跟踪 is in Zhejiang's list only; 社区照顾 in Jilin's only.
    zhejiang = {"regions": ["33"], "target_categories": ["dibao"]}
    assert not offer(ZHEJIANG, service_codes=["rare_disease_followup"], **zhejiang)
    assert fields(offer(service_codes=["rare_disease_followup"])) == ["body.service_codes.0"]
    assert not offer(service_codes=["community_care"])
    assert fields(offer(ZHEJIANG, service_codes=["community_care"], **zhejiang)) == [
        "body.service_codes.0"
    ]


def test_a_service_listed_twice_is_refused() -> None:
    assert fields(offer(service_codes=["care", "counselling", "care"])) == ["body.service_codes.2"]


# --------------------------------------------------------------------------- regions, categories


def test_regions_must_lie_in_the_charitys_province() -> None:
    out = offer(regions=["22", "330106", "2201", "46"])
    assert fields(out) == ["body.regions.1", "body.regions.3"]
    assert "outside province 22" in out.errors[0].reason


def test_a_region_listed_twice_is_refused() -> None:
    assert fields(offer(regions=["220102", "220102"])) == ["body.regions.1"]


def test_target_categories_are_the_packs_recipient_categories() -> None:
    out = offer(target_categories=["tekun", "elderly", "rare_disease"])
    # rare_disease is a Zhejiang category, not a Jilin one.
    assert fields(out) == ["body.target_categories.1", "body.target_categories.2"]
    assert "known: dibao" in out.errors[0].reason
    hainan = offer(HAINAN, regions=["46"], target_categories=["left_behind_child"])
    assert fields(hainan) == ["body.target_categories.0"]
    assert fields(offer(target_categories=["tekun", "tekun"])) == ["body.target_categories.1"]


# --------------------------------------------------------------------------- quantity, window


def test_funds_are_counted_in_fen() -> None:
    assert not offer(kind="funds", unit="fen", quantity=1_000_000)
    out = offer(kind="funds", unit="yuan")
    assert fields(out) == ["body.unit"] and "fen" in out.errors[0].reason
    assert not offer(kind="goods", unit="boxes")


@pytest.mark.parametrize("quantity", [0, -5])
def test_the_quantity_must_be_positive(quantity: int) -> None:
    assert fields(offer(quantity=quantity)) == ["body.quantity"]


def test_an_unknown_kind_is_refused() -> None:
    assert fields(offer(kind="land")) == ["body.kind"]


def test_window_boundaries() -> None:
    one_day = offer(valid_from=date(2026, 7, 1), valid_until=date(2026, 7, 1))
    assert not one_day  # from == until: one day
    reversed_ = offer(valid_from=date(2026, 7, 2), valid_until=date(2026, 7, 1))
    assert fields(reversed_) == ["body.valid_until"]
    assert not offer(valid_from=date(2026, 1, 1), valid_until=TODAY)  # still usable today
    over = offer(valid_from=date(2026, 1, 1), valid_until=date(2026, 6, 14))
    assert fields(over) == ["body.valid_until"] and "before today" in over.errors[0].reason


def test_all_refusals_are_reported_at_once() -> None:
    out = offer(
        service_codes=["financing", "x"],
        regions=["33"],
        target_categories=["nobody"],
        kind="funds",
        unit="yuan",
        valid_until=date(2026, 6, 1),
    )
    assert fields(out) == [
        "body.service_codes.0",
        "body.service_codes.1",
        "body.regions.0",
        "body.target_categories.0",
        "body.unit",
        "body.valid_until",
    ]
    assert len(out.clauses) == 1  # only the negative list cites a clause


# --------------------------------------------------------------------------- remaining


def test_take_down_to_exactly_zero_and_never_below() -> None:
    assert rules.take(10, 3) == 7
    assert rules.take(10, 10) == 0
    with pytest.raises(rules.OverAllocation, match="exceeds the remaining 10"):
        rules.take(10, 11)
    with pytest.raises(ValueError):
        rules.take(10, 0)


def test_give_back_never_above_the_quantity_offered() -> None:
    assert rules.give_back(7, 3, 10) == 10
    assert rules.give_back(0, 4, 10) == 4
    assert rules.give_back(9, 5, 10) == 10
    with pytest.raises(ValueError):
        rules.give_back(9, -1, 10)


@pytest.mark.parametrize(
    ("status", "remaining", "after"),
    [
        ("offered", 0, "exhausted"),
        ("offered", 3, "offered"),
        ("exhausted", 1, "offered"),
        ("exhausted", 0, "exhausted"),
        ("withdrawn", 0, "withdrawn"),
        ("withdrawn", 5, "withdrawn"),
        ("expired", 5, "expired"),
    ],
)
def test_status_after_a_movement(status: str, remaining: int, after: str) -> None:
    assert rules.status_after_movement(status, remaining) == after


# --------------------------------------------------------------------------- regions in SQL


def test_region_prefixes_are_the_areas_containing_a_code() -> None:
    assert regions.region_prefixes("220102003001") == [
        "22",
        "2201",
        "220102",
        "220102003",
        "220102003001",
    ]
    assert regions.region_prefixes("2201") == ["22", "2201"]


@pytest.mark.parametrize(
    ("prefix", "upper"),
    [("2201", "2202"), ("2209", "221"), ("2299", "23"), ("220199", "2202"), ("99", None)],
)
def test_prefix_upper_bound(prefix: str, upper: str | None) -> None:
    assert regions.prefix_upper_bound(prefix) == upper


digits = st.text(alphabet="0123456789", min_size=1, max_size=12)


@given(code=digits, prefix=digits)
def test_the_range_test_is_exactly_starts_with(code: str, prefix: str) -> None:
    upper = regions.prefix_upper_bound(prefix)
    in_range = prefix <= code and (upper is None or code < upper)
    assert in_range == code.startswith(prefix)


def test_a_resource_reaches_areas_it_covers_or_serves_inside() -> None:
    assert rules.reaches(["22"], "220102003")  # covers it
    assert rules.reaches(["220102003"], "2201")  # serves inside it
    assert rules.reaches(["220102"], "220102")
    assert not rules.reaches(["220104"], "220102")
    assert not rules.reaches(["2202"], "2201")
    assert rules.reaches(["46"], "")  # the whole country
    assert regions.overlaps("", "22") and not regions.overlaps("33", "22")
