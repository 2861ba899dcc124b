"""Policy packs: the three packaged packs load, cite their sources, and bad packs are refused.

Negative cases start from the packaged YAML as a plain dict (what `yaml.safe_load` gives),
break one thing, and call the validator, so each test fails only for the fault it names.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from libs.common.policy import (
    BasePlusPerStaffing,
    Citation,
    PolicyPack,
    PolicyPackError,
    TieredStaffing,
    available_packs,
    load_pack,
    load_pack_file,
    pack_for_region,
    validate_pack,
)

PACKS = ["hainan", "jilin", "zhejiang"]

# The shared vocabulary from DESIGN.md §4, written out here rather than imported, so a change
# to the schema's list shows up as a failing test.
ADMINISTRATIVE = {
    "case_finding",
    "means_survey",
    "needs_assessment",
    "planning_design",
    "policy_research",
    "topic_study",
    "policy_outreach",
    "staff_training",
    "performance_evaluation",
    "economic_verification",
}
DIRECT = {
    "care",
    "rehabilitation",
    "hospital_escort",
    "counselling",
    "community_care",
    "intergenerational_harmony",
    "capacity_building",
    "community_advocacy",
    "community_participation",
    "social_integration",
    "resource_linking",
    "rare_disease_followup",
}
RECIPIENT_CODES = {
    "tekun",
    "dibao",
    "dibao_edge",
    "medical_aid",
    "temporary_aid",
    "left_behind_child",
    "child_in_difficulty",
    "rare_disease",
}


def raw(name: str) -> dict[str, Any]:
    """The packaged YAML of a pack as a fresh, mutable dict."""
    text = (
        resources.files("libs.common.policy")
        .joinpath("packs", f"{name}.yaml")
        .read_text(encoding="utf-8")
    )
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def error_locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in exc.value.errors()]


# -- loading ----------------------------------------------------------------------------------


def test_available_packs_are_the_three_provinces() -> None:
    assert available_packs() == PACKS


@pytest.mark.parametrize("name", PACKS)
def test_each_pack_loads_and_revalidates(name: str) -> None:
    pack = load_pack(name)
    assert isinstance(pack, PolicyPack)
    assert pack.province == name
    assert pack.version == "2026.1"
    # A loaded pack survives a dump/validate round trip unchanged.
    assert validate_pack(pack) == pack
    assert validate_pack(raw(name)) == pack


@pytest.mark.parametrize(("code", "name"), [("22", "jilin"), ("33", "zhejiang"), ("46", "hainan")])
def test_load_by_province_code_is_the_cached_pack(code: str, name: str) -> None:
    pack = load_pack(code)
    assert pack.province == name
    assert pack.province_code == code
    assert pack is load_pack(name)
    assert load_pack(f" {name.upper()} ") is pack


def test_unknown_pack_name_raises_lookup_error() -> None:
    with pytest.raises(LookupError, match="beijing"):
        load_pack("beijing")


def test_pack_for_region_uses_the_first_two_digits() -> None:
    assert pack_for_region("220102").province == "jilin"
    assert pack_for_region("330106").province == "zhejiang"
    assert pack_for_region("460100000000").province == "hainan"


def test_pack_for_region_without_a_pack_raises_lookup_error() -> None:
    with pytest.raises(LookupError, match="province 11"):
        pack_for_region("110101")


@pytest.mark.parametrize("bad", ["", "2", "22a102", "吉林"])
def test_pack_for_region_refuses_non_codes(bad: str) -> None:
    with pytest.raises(ValueError, match="not an administrative division code"):
        pack_for_region(bad)


def test_packs_are_frozen() -> None:
    pack = load_pack("jilin")
    with pytest.raises(ValidationError):
        pack.version = "2099.1"  # type: ignore[misc]


# -- citations --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PACKS)
def test_every_rule_cites_a_source_of_its_pack(name: str) -> None:
    pack = load_pack(name)
    cited = pack.citations()
    # The rules themselves, not only whatever citations happen to exist.
    rules: list[Any] = [
        *pack.catalogue,
        *pack.negative_list,
        *pack.recipient_categories,
        *pack.purchasing_methods,
        *pack.contractor_kinds,
        *pack.admission_conditions,
        *pack.funding_sources,
        pack.contract_term,
        pack.evaluation_weights,
        pack.price_weight_band,
        pack.sanctions,
        pack.time_limits,
    ]
    for rule in rules:
        assert rule.source.doc in pack.sources, rule
    assert len(cited) >= len(rules)
    assert {c.doc for _, c in cited} <= set(pack.sources)
    # Every declared source is used, and described.
    assert {c.doc for _, c in cited} == set(pack.sources)
    assert {d.doc for d in pack.documents} == set(pack.sources)


def test_cite_formats_section_and_article() -> None:
    assert (
        Citation(doc="吉民发〔2020〕44号", section="三(二)5").cite()
        == "吉民发〔2020〕44号 §三(二)5"
    )
    law = Citation(doc="中华人民共和国政府采购法", section="第七十七条")
    assert law.cite() == "中华人民共和国政府采购法 第七十七条"


def test_jilin_negative_list_is_the_six_items_of_section_3_2() -> None:
    pack = load_pack("jilin")
    assert [e.source.cite() for e in pack.negative_list] == [
        f"吉民发〔2020〕44号 §三(二){i}" for i in range(1, 7)
    ]
    entry = pack.negative_entry("financing")
    assert entry is not None and entry.source.quote == "融资行为"


@pytest.mark.parametrize("name", ["zhejiang", "hainan"])
def test_provinces_without_a_list_apply_the_national_negative_list(name: str) -> None:
    pack = load_pack(name)
    assert {e.code for e in pack.negative_list} == {
        e.code for e in load_pack("jilin").negative_list
    }
    own = pack.negative_entry("direct_government_duties")
    assert own is not None and own.source.doc == pack.sources[0]
    financing = pack.negative_entry("financing")
    assert financing is not None and financing.source.cite() == "财政部令第102号 第十条(四)"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("section", "§三(二)5", "numbering"),
        ("section", "3.2.5", "numbering"),
        ("quote", "字" * 121, "at most 120"),
        ("doc", "", "at least 1"),
    ],
)
def test_citation_rejects_bad_fields(field: str, value: str, message: str) -> None:
    data = {"doc": "吉民发〔2020〕44号", "section": "三(二)5", field: value}
    with pytest.raises(ValidationError, match=message) as exc:
        Citation.model_validate(data)
    assert (field,) in error_locs(exc)


# -- catalogue and categories -----------------------------------------------------------------


@pytest.mark.parametrize("name", PACKS)
def test_catalogue_codes_come_from_the_shared_list(name: str) -> None:
    pack = load_pack(name)
    for item in pack.catalogue:
        expected = "administrative" if item.code in ADMINISTRATIVE else "direct"
        assert item.code in ADMINISTRATIVE | DIRECT, item.code
        assert item.kind == expected, item.code
    assert {i.code for i in pack.direct_services()} <= DIRECT
    assert {i.code for i in pack.administrative_services()} <= ADMINISTRATIVE
    assert {c.code for c in pack.recipient_categories} <= RECIPIENT_CODES


def test_each_province_lists_its_own_subset() -> None:
    jilin, zhejiang, hainan = (load_pack(n) for n in ("jilin", "zhejiang", "hainan"))
    # Jilin's annex defines every item; only Zhejiang buys verification and rare-disease care.
    assert all(i.definition for i in jilin.catalogue)
    assert len(jilin.catalogue) == 20
    assert jilin.catalogue_item("economic_verification") is None
    assert zhejiang.catalogue_item("rare_disease_followup") is not None
    assert zhejiang.catalogue_item("community_care") is None
    assert hainan.catalogue_item("needs_assessment") is None
    assert len(hainan.catalogue) == 12
    escort = zhejiang.catalogue_item("hospital_escort")
    assert escort is not None and escort.target_groups == ["medical_aid"]
    assert zhejiang.category("rare_disease") is not None
    assert jilin.category("left_behind_child") is not None
    assert hainan.category("dibao_edge") is None


def test_unknown_catalogue_code_is_rejected() -> None:
    data = raw("hainan")
    data["catalogue"][0]["code"] = "gardening"
    with pytest.raises(ValidationError, match="gardening") as exc:
        validate_pack(data)
    assert exc.value.errors()[0]["loc"][:2] == ("catalogue", 0)


def test_catalogue_kind_must_match_the_code() -> None:
    data = raw("hainan")
    data["catalogue"][0]["kind"] = "direct"  # case_finding is administrative work
    with pytest.raises(ValidationError, match="case_finding is administrative"):
        validate_pack(data)


def test_target_group_must_be_a_category_of_the_pack() -> None:
    data = raw("hainan")
    data["catalogue"][0]["target_groups"] = ["rare_disease"]  # Hainan names no such category
    with pytest.raises(ValidationError, match="unknown target groups"):
        validate_pack(data)


def test_empty_catalogue_is_rejected() -> None:
    data = raw("jilin")
    data["catalogue"] = []
    with pytest.raises(ValidationError) as exc:
        validate_pack(data)
    assert ("catalogue",) in error_locs(exc)


# -- staffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipients", "workers"),
    [(0, 1), (499, 1), (500, 2), (1000, 2), (1001, 3), (1500, 3), (1501, 4)],
)
def test_zhejiang_staffing_tiers(recipients: int, workers: int) -> None:
    staffing = load_pack("zhejiang").staffing
    assert isinstance(staffing, TieredStaffing)
    assert staffing.required_workers(recipients) == workers


def test_zhejiang_above_1000_is_a_local_setting() -> None:
    staffing = load_pack("zhejiang").staffing
    assert isinstance(staffing, TieredStaffing)
    assert staffing.is_local_setting("above_top_per")
    assert not staffing.is_local_setting("tiers")
    assert staffing.note and "local setting" in staffing.note


@pytest.mark.parametrize(
    ("recipients", "workers"),
    [(0, 2), (1, 3), (1500, 3), (1501, 4), (3000, 4), (3001, 5)],
)
def test_hainan_2_plus_n_staffing(recipients: int, workers: int) -> None:
    staffing = load_pack("hainan").staffing
    assert isinstance(staffing, BasePlusPerStaffing)
    assert staffing.required_workers(recipients) == workers


def test_staffing_rejects_negative_recipients() -> None:
    for name in ("zhejiang", "hainan"):
        staffing = load_pack(name).staffing
        assert staffing is not None
        with pytest.raises(ValueError, match="recipients must be"):
            staffing.required_workers(-1)


def test_jilin_has_no_staffing_number() -> None:
    assert load_pack("jilin").staffing is None


def test_tiers_out_of_order_are_rejected() -> None:
    data = raw("zhejiang")
    data["staffing"]["tiers"] = [
        {"max_recipients": 1000, "workers": 2},
        {"max_recipients": 499, "workers": 1},
    ]
    with pytest.raises(ValidationError, match="strictly increasing") as exc:
        validate_pack(data)
    assert exc.value.errors()[0]["loc"][:2] == ("staffing", "tiered")


def test_bounded_top_tier_needs_above_top_per() -> None:
    data = raw("zhejiang")
    del data["staffing"]["above_top_per"]
    with pytest.raises(ValidationError, match="above_top_per is needed"):
        validate_pack(data)


# -- money, weights, sanctions ----------------------------------------------------------------


def test_jilin_budget_cap_is_two_percent() -> None:
    cap = load_pack("jilin").budget_cap
    assert cap is not None
    assert cap.ratio == Decimal("0.02")
    assert cap.in_principle
    assert cap.source.cite() == "吉民发〔2020〕44号 §五"
    assert load_pack("zhejiang").budget_cap is None
    assert load_pack("hainan").budget_cap is None


@pytest.mark.parametrize("name", PACKS)
def test_contract_terms_and_price_band(name: str) -> None:
    pack = load_pack(name)
    assert (pack.contract_term.default_max_months, pack.contract_term.stable_max_months) == (12, 36)
    band = pack.price_weight_band
    assert (band.min, band.max) == (Decimal("0.10"), Decimal("0.30"))
    assert band.contains(Decimal("0.2")) and not band.contains(Decimal("0.31"))
    assert "价低者得" in (band.source.quote or "")


@pytest.mark.parametrize("name", PACKS)
def test_recipients_weigh_most_and_numbers_are_marked_local(name: str) -> None:
    weights = load_pack(name).evaluation_weights
    assert weights.purchaser + weights.recipients + weights.third_party == Decimal(1)
    assert weights.recipients > max(weights.purchaser, weights.third_party)
    assert weights.local_settings == ["purchaser", "recipients", "third_party"]
    assert weights.note and weights.note.startswith("local setting, not from the document")


def test_weights_not_summing_to_one_are_rejected() -> None:
    data = raw("jilin")
    data["evaluation_weights"]["third_party"] = "0.25"
    with pytest.raises(ValidationError, match="must sum to 1") as exc:
        validate_pack(data)
    assert ("evaluation_weights",) in error_locs(exc)


def test_weights_where_recipients_do_not_weigh_most_are_rejected() -> None:
    data = raw("jilin")
    data["evaluation_weights"].update(purchaser="0.50", recipients="0.30", third_party="0.20")
    with pytest.raises(ValidationError, match="recipients' satisfaction must weigh more"):
        validate_pack(data)


def test_price_band_with_min_above_max_is_rejected() -> None:
    data = raw("zhejiang")
    data["price_weight_band"].update(min="0.40", max="0.30")
    with pytest.raises(ValidationError, match=re.escape("min 0.40 > max 0.30")):
        validate_pack(data)


def test_sanctions_grow_with_severity() -> None:
    sanctions = load_pack("jilin").sanctions
    assert sanctions.ban_months_by_severity == {"minor": 12, "general": 24, "serious": 36}
    assert sanctions.min_publication_months["general"] == 3
    assert sanctions.min_publication_months["serious"] == 12
    assert sanctions.joint_punishment and not load_pack("hainan").sanctions.joint_punishment
    data = raw("jilin")
    data["sanctions"]["ban_months_by_severity"]["serious"] = 6
    with pytest.raises(ValidationError, match="not decrease with severity"):
        validate_pack(data)


def test_local_settings_must_name_real_fields() -> None:
    data = raw("jilin")
    data["sanctions"]["local_settings"].append("ban_years")
    with pytest.raises(ValidationError, match="unknown fields"):
        validate_pack(data)


# -- contractors ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PACKS)
def test_contractor_kinds(name: str) -> None:
    pack = load_pack(name)
    for code in ("social_organisation", "public_institution_class_ii", "enterprise"):
        kind = pack.contractor_kind(code)
        assert kind is not None and kind.allowed, code
    class_i = pack.contractor_kind("public_institution_class_i")
    assert class_i is not None and not class_i.allowed
    assert class_i.source.cite() == "财政部令第102号 第八条"
    assert "公益一类" in (class_i.source.quote or "")
    mass = pack.contractor_kind("state_funded_mass_organisation")
    assert mass is not None and not mass.allowed


def test_jilin_names_rural_collectives_itself() -> None:
    kind = load_pack("jilin").contractor_kind("rural_collective")
    assert kind is not None and kind.allowed
    assert kind.source.cite() == "吉民发〔2020〕44号 §二(一)3"


@pytest.mark.parametrize("name", PACKS)
def test_admission_conditions_share_codes(name: str) -> None:
    pack = load_pack(name)
    codes = {c.code for c in pack.admission_conditions}
    assert {
        "procurement_law_compliance",
        "independent_civil_liability",
        "facilities_staff_expertise",
        "governance_finance_assets",
        "class_ii_budget_staffing_mechanism",
    } <= codes
    condition = pack.admission_condition("class_ii_budget_staffing_mechanism")
    assert condition is not None and condition.applies_to == ["public_institution_class_ii"]


def test_jilin_admission_conditions_are_section_2_2_items_1_to_5() -> None:
    pack = load_pack("jilin")
    sections = {c.source.section for c in pack.admission_conditions}
    assert {f"二(二){i}" for i in range(1, 6)} <= sections


# -- rejection of broken packs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "list_name",
    [
        "catalogue",
        "negative_list",
        "recipient_categories",
        "contractor_kinds",
        "admission_conditions",
    ],
)
def test_duplicated_code_is_rejected(list_name: str) -> None:
    data = raw("jilin")
    data[list_name].append(copy.deepcopy(data[list_name][0]))
    with pytest.raises(ValidationError, match=f"{list_name}: duplicated codes"):
        validate_pack(data)


def test_unknown_top_level_field_is_rejected_by_name() -> None:
    data = raw("hainan")
    data["catalog"] = data["catalogue"]
    with pytest.raises(ValidationError) as exc:
        validate_pack(data)
    assert [(e["loc"], e["type"]) for e in exc.value.errors()] == [
        (("catalog",), "extra_forbidden")
    ]


def test_unknown_nested_field_is_rejected_by_path() -> None:
    data = raw("zhejiang")
    data["catalogue"][2]["colour"] = "blue"
    with pytest.raises(ValidationError) as exc:
        validate_pack(data)
    assert ("catalogue", 2, "colour") in error_locs(exc)


def test_citation_of_an_undeclared_document_is_rejected() -> None:
    data = raw("hainan")
    data["staffing"]["source"]["doc"] = "琼民发〔2099〕1号"
    with pytest.raises(ValidationError, match=r"staffing\.source: cites '琼民发〔2099〕1号'"):
        validate_pack(data)


def test_rule_without_a_source_is_rejected() -> None:
    data = raw("jilin")
    del data["budget_cap"]["source"]
    with pytest.raises(ValidationError) as exc:
        validate_pack(data)
    assert ("budget_cap", "source") in error_locs(exc)


def test_province_code_must_match_province() -> None:
    data = raw("jilin")
    data["province_code"] = "33"
    with pytest.raises(ValidationError, match="does not match jilin"):
        validate_pack(data)


def test_load_pack_file_validates_a_file_from_disk(tmp_path: Path) -> None:
    good = tmp_path / "jilin.yaml"
    good.write_text(yaml.safe_dump(raw("jilin"), allow_unicode=True), encoding="utf-8")
    assert load_pack_file(good) == load_pack("jilin")

    broken_data = raw("jilin")
    broken_data["contract_term"]["default_max_months"] = 0
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(broken_data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValidationError) as exc:
        load_pack_file(broken)
    assert ("contract_term", "default_max_months") in error_locs(exc)


@pytest.mark.parametrize("text", ["- just\n- a list\n", "", "key: [unclosed\n"])
def test_load_pack_file_rejects_non_mappings(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyPackError, match=re.escape("bad.yaml")):
        load_pack_file(path)


# A holiday list for a year the working-day library does not know. Test data shaped like the
# State Council's notice (not the real 2027 notice, which was not available when written).
NOTICE = "国办发明电〔2026〕99号"
CALENDAR_2027 = {
    "years": [2027],
    "holidays": ["2027-01-01"],
    "workdays": ["2027-01-09"],  # a Saturday worked in exchange
    "source": {"doc": NOTICE, "section": "一"},
}


def with_calendar(calendar: dict[str, Any]) -> dict[str, Any]:
    data = raw("jilin")
    data["sources"] = [*data["sources"], NOTICE]
    data["documents"] = [
        *data.get("documents", []),
        {
            "doc": NOTICE,
            "title_zh": "国务院办公厅关于2027年部分节假日安排的通知",
            "issuer_zh": "国务院办公厅",
        },
    ]
    data["holiday_calendar"] = calendar
    return data


def test_pack_holiday_calendar_extends_deadlines_into_an_unknown_year() -> None:
    from datetime import date

    from libs.common.policy import calendar_for
    from libs.common.workdays import UnknownCalendarYear

    plain = calendar_for(load_pack("jilin"))
    with pytest.raises(UnknownCalendarYear):
        plain.add_workdays(date(2026, 12, 30), 3)
    pack = validate_pack(with_calendar(CALENDAR_2027))
    extended = calendar_for(pack.model_copy(update={"version": "2099.1"}))
    # Thu 12-31 is day 1; Fri 2027-01-01 is a holiday; Mon 01-04 day 2, Tue 01-05 day 3.
    assert extended.add_workdays(date(2026, 12, 30), 3) == date(2027, 1, 5)
    assert extended.is_workday(date(2027, 1, 9)) and not extended.is_workday(date(2027, 1, 1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"holidays": ["2028-01-01"]}, "outside the listed years"),
        ({"workdays": ["2027-01-01"]}, "both holiday and working day"),
    ],
)
def test_pack_holiday_calendar_is_validated(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_pack(with_calendar({**CALENDAR_2027, **change}))
