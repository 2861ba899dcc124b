"""The services' pure rules, without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.policy import load_pack
from services.credit import rules as credit
from services.matching import rules as matching
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


NOW = datetime(2026, 11, 23, tzinfo=UTC)


def need(i: int, region: str = "220102001001", urgency: int = 2) -> matching.OpenNeed:
    return matching.OpenNeed(f"n{i}", region, "care", urgency, NOW + timedelta(minutes=i))


def provider(
    org: str, status: str = "admitted", regions: tuple[str, ...] = ("2201",), cap: int = 5
) -> matching.Provider:
    return matching.Provider(org, status, list(regions), {"care": cap})


def test_blacklisted_never_receives_a_need_even_with_more_capacity() -> None:
    orgs = {"good": provider("good", cap=1), "bad": provider("bad", "blacklisted", cap=100)}
    done, left = matching.allocate([need(1), need(2)], orgs)
    assert [a.organisation_id for a in done] == ["good"]
    assert left[0].reason.startswith("capacity for care used up")


def test_unmatched_reasons_name_the_binding_constraint() -> None:
    _, left = matching.allocate([need(1, region="330106001001")], {"a": provider("a")})
    assert "no organisation offers care in 330106001001" in left[0].reason
    _, left = matching.allocate([need(1)], {"a": provider("a", "suspended")})
    assert "ineligible (suspended)" in left[0].reason


def test_closest_coverage_wins_and_urgent_needs_go_first() -> None:
    orgs = {
        "county": provider("county", regions=("220102",), cap=1),
        "city": provider("city", cap=1),
    }
    done, _ = matching.allocate([need(1, urgency=1), need(2, urgency=4)], orgs)
    assert done[0].need_id == "n2" and done[0].organisation_id == "county"
    assert done[1].organisation_id == "city"


@given(
    caps=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=5),
    statuses=st.lists(
        st.sampled_from(["admitted", "blacklisted", "suspended"]), min_size=5, max_size=5
    ),
    n=st.integers(min_value=0, max_value=30),
)
def test_allocation_never_exceeds_capacity_or_uses_ineligible(
    caps: list[int], statuses: list[str], n: int
) -> None:
    orgs = {f"o{i}": provider(f"o{i}", statuses[i], cap=c) for i, c in enumerate(caps)}
    done, left = matching.allocate([need(i) for i in range(n)], orgs)
    assert len(done) + len(left) == n
    eligible_capacity = sum(c for i, c in enumerate(caps) if statuses[i] == "admitted")
    assert len(done) == min(n, eligible_capacity)
    for i, c in enumerate(caps):
        taken = sum(1 for a in done if a.organisation_id == f"o{i}")
        assert taken <= c
        if statuses[i] != "admitted":
            assert taken == 0
