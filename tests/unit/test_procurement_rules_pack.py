"""The procurement section of the policy packs (政府采购规则): every number with its clause,
validated at load; bad sections are refused naming what is wrong.

Negative cases start from the packaged YAML as a plain dict, break one thing, and validate.
"""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from libs.common.policy import load_pack, validate_pack
from libs.common.policy.schema import MethodProcurement, ProcurementRules

PACKS = ["hainan", "jilin", "zhejiang"]
LAW = "中华人民共和国政府采购法"
REGULATION = "中华人民共和国政府采购法实施条例"


def raw(name: str) -> dict[str, Any]:
    text = (
        resources.files("libs.common.policy")
        .joinpath("packs", f"{name}.yaml")
        .read_text(encoding="utf-8")
    )
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def method_of(data: dict[str, Any], code: str) -> dict[str, Any]:
    found = next(m for m in data["procurement"]["methods"] if m["method"] == code)
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("name", PACKS)
def test_each_pack_carries_the_national_procurement_rules_with_clauses(name: str) -> None:
    proc = load_pack(name).procurement
    assert {m.method for m in proc.methods} == {
        "open_tender",
        "invited_tender",
        "competitive_negotiation",
        "competitive_consultation",
        "single_source",
    }
    open_tender = proc.method("open_tender")
    assert open_tender is not None
    assert open_tender.min_bid_days == 20
    assert open_tender.min_bid_days_source is not None
    assert open_tender.min_bid_days_source.cite() == f"{LAW} 第三十五条"
    assert open_tender.min_valid_bids == 3
    assert open_tender.min_valid_bids_source is not None
    assert open_tender.min_valid_bids_source.cite() == f"{LAW} 第三十六条(一)"
    assert open_tender.after_failure == ["competitive_negotiation", "competitive_consultation"]
    invited = proc.method("invited_tender")
    assert invited is not None and invited.min_invited == 3
    assert invited.min_invited_source is not None
    assert invited.min_invited_source.cite() == "财政部令第87号 第十四条"
    negotiation = proc.method("competitive_negotiation")
    consultation = proc.method("competitive_consultation")
    assert negotiation is not None and consultation is not None
    assert (negotiation.min_invited, consultation.min_invited) == (3, 3)
    assert consultation.min_invited_source is not None
    assert consultation.min_invited_source.cite() == "财库〔2014〕214号 第六条"
    single = proc.method("single_source")
    assert single is not None and single.publicity_working_days == 5
    assert single.publicity_source is not None
    assert single.publicity_source.cite() == f"{REGULATION} 第三十八条"
    assert single.is_local_setting("panel_min_size")


@pytest.mark.parametrize("name", PACKS)
def test_panels_and_recusal(name: str) -> None:
    proc = load_pack(name).procurement
    assert proc.high_value_threshold_fen == 10_000_000 * 100  # 1000万元 in fen
    assert proc.high_value_panel_min_size == 7
    assert proc.high_value_source.cite() == "财政部令第87号 第四十七条"
    assert proc.panel_size("open_tender", 10_000_000 * 100) == 7
    assert proc.panel_size("open_tender", 10_000_000 * 100 - 1) == 5
    assert proc.panel_size("competitive_negotiation", 10**12) == 3
    assert proc.recusal_years == 3
    assert proc.recusal_source.cite() == f"{REGULATION} 第九条"
    assert set(proc.recusal_relations) == {"employment", "directorship", "shareholding"}
    with pytest.raises(LookupError):
        proc.panel_size("auction", 1)


@pytest.mark.parametrize("name", PACKS)
def test_every_procurement_number_is_cited_or_a_local_setting(name: str) -> None:
    pack = load_pack(name)
    for rule in pack.procurement.methods:
        for number, source in (
            ("min_invited", rule.min_invited_source),
            ("min_valid_bids", rule.min_valid_bids_source),
            ("min_bid_days", rule.min_bid_days_source),
            ("publicity_working_days", rule.publicity_source),
            ("panel_min_size", rule.panel_source),
        ):
            if getattr(rule, number) is None:
                continue
            assert source is not None or rule.is_local_setting(number), (rule.method, number)
            if source is not None:
                assert source.doc in pack.sources
                assert source.quote is None  # national texts not on disk: no invented quotes
        assert rule.cites(), rule.method
    regulation = pack.document(REGULATION)
    assert regulation is not None and regulation.issuer_zh == "国务院"


def test_pack_without_procurement_is_refused_by_name() -> None:
    data = raw("jilin")
    del data["procurement"]
    with pytest.raises(ValidationError) as exc:
        validate_pack(data)
    assert ("procurement",) in [tuple(e["loc"]) for e in exc.value.errors()]


def test_even_panel_is_refused() -> None:
    data = raw("zhejiang")
    method_of(data, "open_tender")["panel_min_size"] = 4
    with pytest.raises(ValidationError, match="odd"):
        validate_pack(data)


def test_a_number_without_its_clause_is_refused() -> None:
    data = raw("hainan")
    del method_of(data, "open_tender")["min_bid_days_source"]
    with pytest.raises(ValidationError, match="min_bid_days needs min_bid_days_source"):
        validate_pack(data)


def test_a_number_marked_local_may_go_without_a_clause() -> None:
    data = raw("hainan")
    rule = method_of(data, "open_tender")
    del rule["min_bid_days_source"]
    rule["local_settings"] = ["min_bid_days"]
    rule["note"] = "test: a platform choice"
    pack = validate_pack(data)
    found = pack.procurement.method("open_tender")
    assert found is not None and found.is_local_setting("min_bid_days")


def test_every_purchasing_method_needs_a_procedure() -> None:
    data = raw("jilin")
    data["procurement"]["methods"] = [
        m for m in data["procurement"]["methods"] if m["method"] != "single_source"
    ]
    with pytest.raises(ValidationError, match=r"missing \['single_source'\]"):
        validate_pack(data)


def test_duplicated_procedure_is_refused() -> None:
    data = raw("jilin")
    data["procurement"]["methods"].append(copy.deepcopy(method_of(data, "open_tender")))
    with pytest.raises(ValidationError, match="duplicated"):
        validate_pack(data)


def test_after_failure_must_name_other_allowed_methods() -> None:
    data = raw("jilin")
    method_of(data, "open_tender")["after_failure"] = ["open_tender"]
    with pytest.raises(ValidationError, match="other methods"):
        validate_pack(data)


def test_invited_method_needs_its_minimum_and_open_method_none() -> None:
    data = raw("jilin")
    del method_of(data, "invited_tender")["min_invited"]
    with pytest.raises(ValidationError, match="need min_invited"):
        validate_pack(data)
    data = raw("jilin")
    method_of(data, "open_tender")["min_invited"] = 3
    with pytest.raises(ValidationError, match="invites nobody"):
        validate_pack(data)


def test_fewer_invited_than_valid_bids_needed_is_refused() -> None:
    data = raw("jilin")
    method_of(data, "invited_tender")["min_invited"] = 2
    with pytest.raises(ValidationError, match="could never succeed"):
        validate_pack(data)


def test_high_value_panel_must_not_be_smaller_than_the_ordinary_one() -> None:
    data = raw("jilin")
    data["procurement"]["high_value_panel_min_size"] = 3
    with pytest.raises(ValidationError, match="high-value panel smaller"):
        validate_pack(data)


def test_citing_the_regulation_needs_it_among_the_sources() -> None:
    data = raw("zhejiang")
    data["sources"].remove(REGULATION)
    data["documents"] = [d for d in data["documents"] if d["doc"] != REGULATION]
    with pytest.raises(ValidationError, match="not in sources"):
        validate_pack(data)


def test_models_are_frozen_and_forbid_unknown_fields() -> None:
    proc = load_pack("jilin").procurement
    assert isinstance(proc, ProcurementRules)
    with pytest.raises(ValidationError):
        proc.recusal_years = 5  # type: ignore[misc]
    data = raw("jilin")
    method_of(data, "open_tender")["min_bid_dayz"] = 20
    with pytest.raises(ValidationError) as exc:
        validate_pack(data)
    assert any(e["loc"][-1] == "min_bid_dayz" for e in exc.value.errors())
    assert MethodProcurement.model_fields["min_bid_days"].default is None
