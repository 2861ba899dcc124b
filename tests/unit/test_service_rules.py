"""The services' pure rules, without I/O."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from libs.common.policy import load_pack
from services.credit import rules as credit
from services.needs import rules as needs
from services.providers import rules as providers

JILIN = load_pack("jilin")
ALL_MET = {
    "procurement_law_compliance": True,
    "independent_civil_liability": True,
    "facilities_staff_expertise": True,
    "governance_finance_assets": True,
}
TODAY = date(2026, 11, 23)


def test_admission_all_conditions_met_is_admitted_and_every_reason_cites() -> None:
    d = credit.review_admission(
        JILIN, kind="social_organisation", qualifications=ALL_MET, banned_until=None, today=TODAY
    )
    assert d.outcome == "admitted"
    assert all(r.met and r.rule for r in d.reasons)
    # Project-stage conditions are checked per tender, not at admission.
    assert "project_specific_conditions" not in {r.condition for r in d.reasons}


@pytest.mark.parametrize("missing", sorted(ALL_MET))
def test_each_missing_condition_rejects_citing_its_clause(missing: str) -> None:
    d = credit.review_admission(
        JILIN,
        kind="social_organisation",
        qualifications={**ALL_MET, missing: False},
        banned_until=None,
        today=TODAY,
    )
    assert d.outcome == "rejected"
    assert [r.condition for r in d.unmet] == [missing]
    assert d.unmet[0].rule == JILIN.admission_condition(missing).source.cite()  # type: ignore[union-attr]


def test_class_ii_institutions_need_their_extra_condition() -> None:
    d = credit.review_admission(
        JILIN,
        kind="public_institution_class_ii",
        qualifications=ALL_MET,
        banned_until=None,
        today=TODAY,
    )
    assert [r.condition for r in d.unmet] == ["class_ii_budget_staffing_mechanism"]


def test_refused_kind_and_ban_in_force_reject() -> None:
    d = credit.review_admission(
        JILIN,
        kind="public_institution_class_i",
        qualifications=ALL_MET,
        banned_until=TODAY + timedelta(days=1),
        today=TODAY,
    )
    assert {r.condition for r in d.unmet} == {"contractor_kind", "not_banned"}
    ended = credit.review_admission(
        JILIN, kind="social_organisation", qualifications=ALL_MET, banned_until=TODAY, today=TODAY
    )
    assert ended.outcome == "admitted"  # a ban ending today no longer bars


def test_ban_periods_by_severity() -> None:
    start = date(2026, 1, 31)
    assert credit.ban_end(JILIN, severity="minor", starts_on=start) == date(2027, 1, 31)
    assert credit.ban_end(JILIN, severity="serious", starts_on=start) == date(2029, 1, 31)
    assert any("第七十七条" in basis for basis in credit.ban_legal_basis(JILIN))


def test_registration_refuses_class_one_off_catalogue_and_other_provinces() -> None:
    errors, clauses = providers.registration_errors(
        JILIN, kind="public_institution_class_i", service_codes=["care"], service_regions=["2201"]
    )
    assert [e.field for e in errors] == ["body.kind"] and clauses
    errors, clauses = providers.registration_errors(
        JILIN, kind="enterprise", service_codes=["care", "tea_ceremony"], service_regions=["33"]
    )
    assert [e.field for e in errors] == ["body.services.1.code", "body.service_regions.0"]
    assert clauses == []


def test_needs_only_direct_services_and_known_categories() -> None:
    assert needs.service_errors(JILIN, "care") == []
    assert "administrative" in needs.service_errors(JILIN, "means_survey")[0].reason
    assert needs.service_errors(JILIN, "nope")[0].field == "body.service_code"
    assert needs.category_errors(JILIN, ["tekun"]) == []
    assert [e.field for e in needs.category_errors(JILIN, ["tekun", "vip"])] == [
        "body.categories.1"
    ]
    assert needs.mask_name("张三丰") == "张**"
