"""Rules of the social-forces library: the dispatched-staff condition of each province's pack,
the social-work preference, registration checks, and the region coverage predicate that
organisation search runs in SQL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common import regions
from libs.common.policy import PolicyPack, load_pack
from services.providers import rules

JILIN = load_pack("jilin")
ZHEJIANG = load_pack("zhejiang")
HAINAN = load_pack("hainan")

DISPATCH_CLAUSES = {
    "jilin": "吉民发〔2018〕21号 §三(三)",
    "zhejiang": "浙民助〔2018〕117号 §二(二)2",
    "hainan": "海南省贯彻实施意见 §三(二)",
}


# --------------------------------------------------------------------------- staff


@pytest.mark.parametrize("pack", [JILIN, ZHEJIANG, HAINAN], ids=lambda p: p.province)
def test_dispatched_worker_below_college_is_refused_citing_the_province_clause(
    pack: PolicyPack,
) -> None:
    check = rules.check_staff(
        pack,
        education="below_college",
        qualification_level="social_worker",
        social_work_education=True,
        dispatched=True,
        field_prefix="body.staff.2",
    )
    clause = DISPATCH_CLAUSES[pack.province]
    assert check.clauses == [clause]
    assert [e.field for e in check.errors] == ["body.staff.2.education"]
    assert clause in check.errors[0].reason and "大专" in check.errors[0].reason
    # A qualification does not make up for the diploma, but it is still preferred.
    assert check.preferred is True


@pytest.mark.parametrize("education", ["college", "bachelor", "master", "doctorate"])
def test_dispatched_worker_with_college_or_above_is_accepted(education: str) -> None:
    check = rules.check_staff(
        JILIN,
        education=education,
        qualification_level="none",
        social_work_education=False,
        dispatched=True,
    )
    assert check.errors == [] and check.clauses == []


def test_the_diploma_rule_applies_only_to_dispatched_workers() -> None:
    check = rules.check_staff(
        JILIN,
        education="below_college",
        qualification_level="none",
        social_work_education=False,
        dispatched=False,
    )
    assert check.errors == []
    assert check.preferred is False
    assert "neither" in check.preferred_reason
    assert DISPATCH_CLAUSES["jilin"] in check.preferred_reason


@pytest.mark.parametrize(
    ("level", "social_work_education", "preferred", "says"),
    [
        ("assistant_social_worker", False, True, "助理社会工作师"),
        ("social_worker", False, True, "社会工作师"),
        ("senior_social_worker", True, True, "高级社会工作师"),
        ("none", True, True, "社会工作教育背景"),
        ("none", False, False, "neither"),
    ],
)
def test_social_work_qualification_or_education_is_preferred(
    level: str, social_work_education: bool, preferred: bool, says: str
) -> None:
    check = rules.check_staff(
        ZHEJIANG,
        education="bachelor",
        qualification_level=level,
        social_work_education=social_work_education,
        dispatched=True,
    )
    assert check.errors == []
    assert check.preferred is preferred
    assert says in check.preferred_reason
    assert DISPATCH_CLAUSES["zhejiang"] in check.preferred_reason


def test_education_order() -> None:
    assert not rules.meets_education("below_college")
    assert rules.meets_education("college")
    assert rules.meets_education("doctorate")
    assert not rules.meets_education("bachelor", minimum="master")


# --------------------------------------------------------------------------- registration


def test_registration_refuses_repeated_items_and_unknown_condition_codes() -> None:
    errors, clauses = rules.registration_errors(
        JILIN,
        kind="social_organisation",
        service_codes=["care", "counselling", "care"],
        service_regions=["2201", "220102", "2201"],
        qualifications=["independent_civil_liability", "good_vibes"],
        evidence=["facilities_staff_expertise", "dispatched_staff_qualification", "nope"],
    )
    assert clauses == []
    assert [e.field for e in errors] == [
        "body.services.2.code",
        "body.service_regions.2",
        "body.qualifications.good_vibes",
        "body.evidence.nope",
    ]
    assert "twice" in errors[0].reason and "twice" in errors[1].reason


def test_registration_of_a_valid_organisation_has_no_errors() -> None:
    assert rules.registration_errors(
        JILIN,
        kind="enterprise",
        service_codes=["care", "means_survey"],
        service_regions=["22", "2201", "220102003"],
        qualifications=["procurement_law_compliance"],
        evidence=["procurement_law_compliance"],
    ) == ([], [])


# --------------------------------------------------------------------------- coverage


def test_region_prefixes_are_the_areas_containing_a_code() -> None:
    assert regions.region_prefixes("220102003001") == [
        "22",
        "2201",
        "220102",
        "220102003",
        "220102003001",
    ]
    assert regions.region_prefixes("2201") == ["22", "2201"]
    assert regions.region_prefixes("22") == ["22"]


@pytest.mark.parametrize(
    ("prefix", "upper"),
    [
        ("2201", "2202"),
        ("2209", "221"),
        ("2299", "23"),
        ("220102003", "220102004"),
        ("99", None),
        ("9", None),
    ],
)
def test_prefix_upper_bound(prefix: str, upper: str | None) -> None:
    assert regions.prefix_upper_bound(prefix) == upper


@given(
    code=st.text(alphabet="0123456789", min_size=0, max_size=12),
    prefix=st.text(alphabet="0123456789", min_size=1, max_size=12),
)
def test_range_test_is_exactly_starts_with(code: str, prefix: str) -> None:
    assert regions.starts_with(code, prefix) == code.startswith(prefix)


@pytest.mark.parametrize(
    ("region_code", "service_regions", "scope", "expected"),
    [
        # Registered inside the area asked for.
        ("220102", ["2202"], "2201", True),
        ("220102003", ["2202"], "220102", True),
        # A service region covering a village code (a prefix of it).
        ("220202", ["2201"], "220102003001", True),
        ("220202", ["22"], "220102003001", True),
        ("220202", ["220102"], "220102003001", True),
        # A service region inside a city.
        ("220202", ["220102003"], "2201", True),
        ("220202", ["220104", "2203"], "2201", True),
        # Neither: a sibling county, a sibling village, a longer code that merely shares digits.
        ("220202", ["220104"], "220102", False),
        ("220202", ["220102003002"], "220102003001", False),
        ("220202", ["2201"], "2202", True),  # registered inside
        ("220302", ["2201"], "2202", False),
        # The whole country is reached by everyone.
        ("330106", ["3301"], "", True),
    ],
)
def test_reaches(region_code: str, service_regions: list[str], scope: str, expected: bool) -> None:
    assert rules.reaches(region_code, service_regions, scope) is expected
