"""Rules of the expert library (专家库): fields, affiliation periods, availability, recusal
(回避) with its exact three-year boundary, and the shared masking helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from libs.common.masking import mask_email, mask_phone
from libs.common.policy import pack_for_region
from services.providers.experts import rules

BIDDER = "52220102MJ0000001X"  # shape only: recusal compares codes, it does not validate
OTHER = "52220102MJ0000002X"
ON = date(2026, 6, 15)


@dataclass(frozen=True)
class Aff:
    organisation_uscc: str
    kind: str
    started_on: date
    ended_on: date | None = None
    organisation_id: str | None = None


# --------------------------------------------------------------------------- recusal


@pytest.mark.parametrize("kind", ["employment", "directorship", "shareholding"])
def test_each_kind_of_tie_to_a_bidder_requires_recusal(kind: str) -> None:
    tie = Aff(BIDDER, kind, date(2020, 1, 1))
    assert rules.recusal_conflicts([tie], {BIDDER}, ON) == [tie]


def test_ties_to_organisations_that_do_not_bid_do_not_count() -> None:
    assert rules.recusal_conflicts([Aff(OTHER, "employment", date(2020, 1, 1))], {BIDDER}, ON) == []
    assert rules.recusal_conflicts([Aff(BIDDER, "employment", date(2020, 1, 1))], set(), ON) == []


def test_a_bidder_named_by_library_id_matches_too() -> None:
    tie = Aff(OTHER, "directorship", date(2020, 1, 1), organisation_id="org-1")
    assert rules.recusal_conflicts([tie], ["org-1"], ON) == [tie]
    unknown = Aff(OTHER, "directorship", date(2020, 1, 1))  # no library id: only the code
    assert rules.recusal_conflicts([unknown], ["org-1"], ON) == []


def test_exactly_three_years_before_still_counts_one_day_more_does_not() -> None:
    boundary = Aff(BIDDER, "employment", date(2015, 1, 1), ended_on=date(2023, 6, 15))
    older = Aff(BIDDER, "employment", date(2015, 1, 1), ended_on=date(2023, 6, 14))
    assert rules.recusal_conflicts([boundary, older], {BIDDER}, ON) == [boundary]


def test_an_open_affiliation_counts_however_old() -> None:
    tie = Aff(BIDDER, "shareholding", date(1990, 1, 1), ended_on=None)
    assert rules.recusal_conflicts([tie], {BIDDER}, ON) == [tie]


def test_an_affiliation_that_starts_after_the_date_does_not_count_starting_on_it_does() -> None:
    later = Aff(BIDDER, "employment", date(2026, 6, 16))
    same_day = Aff(BIDDER, "employment", date(2026, 6, 15))
    assert rules.recusal_conflicts([later, same_day], {BIDDER}, ON) == [same_day]


def test_the_window_follows_the_years_argument() -> None:
    tie = Aff(BIDDER, "employment", date(2015, 1, 1), ended_on=date(2024, 6, 14))
    assert rules.recusal_conflicts([tie], {BIDDER}, ON, years=2) == []
    assert rules.recusal_conflicts([tie], {BIDDER}, ON, years=3) == [tie]


def test_leap_day_boundary_falls_back_to_28_february() -> None:
    on = date(2028, 2, 29)
    assert rules.years_before(on, 3) == date(2025, 2, 28)
    at = Aff(BIDDER, "employment", date(2020, 1, 1), ended_on=date(2025, 2, 28))
    before = Aff(BIDDER, "employment", date(2020, 1, 1), ended_on=date(2025, 2, 27))
    assert rules.recusal_conflicts([at, before], {BIDDER}, on) == [at]


def test_unknown_kinds_are_not_conflicts_and_order_is_kept() -> None:
    a = Aff(BIDDER, "employment", date(2021, 1, 1))
    b = Aff(BIDDER, "friendship", date(2021, 1, 1))
    c = Aff(BIDDER, "directorship", date(2019, 1, 1), ended_on=date(2024, 1, 1))
    assert rules.recusal_conflicts([a, b, c], {BIDDER}, ON) == [a, c]


def test_recusal_cites_the_national_rule() -> None:
    assert rules.RECUSAL_SOURCE.cite() == "财库〔2016〕198号 第十六条"


# --------------------------------------------------------------------------- fields


def test_catalogue_items_and_general_fields_are_accepted() -> None:
    jilin = pack_for_region("22")
    assert rules.field_errors(jilin, ["care", "evaluation", "finance", "law"]) == []


def test_unknown_and_off_catalogue_fields_name_their_index() -> None:
    jilin = pack_for_region("22")
    # rare_disease_followup is in the Zhejiang catalogue, not in Jilin's.
    assert pack_for_region("33").catalogue_item("rare_disease_followup") is not None
    errors = rules.field_errors(jilin, ["care", "astrology", "rare_disease_followup"])
    assert [e.field for e in errors] == ["body.fields.1", "body.fields.2"]
    assert "'astrology'" in errors[0].reason and "jilin" in errors[0].reason


def test_a_repeated_field_is_an_error_at_its_second_index() -> None:
    errors = rules.field_errors(pack_for_region("22"), ["law", "care", "law"])
    assert [e.field for e in errors] == ["body.fields.2"]


def test_period_end_before_start_is_an_error_same_day_is_not() -> None:
    assert rules.period_errors(date(2026, 1, 2), date(2026, 1, 1))[0].field == "body.ended_on"
    assert rules.period_errors(date(2026, 1, 1), date(2026, 1, 1)) == []
    assert rules.period_errors(date(2026, 1, 1), None) == []


@pytest.mark.parametrize(
    ("available", "until", "status", "expected"),
    [
        (True, None, "active", True),
        (False, None, "active", False),
        (True, None, "retired", False),
        (True, date(2026, 6, 15), "active", False),  # the absence includes its last day
        (True, date(2026, 6, 14), "active", True),
    ],
)
def test_available_on(available: bool, until: date | None, status: str, expected: bool) -> None:
    assert (
        rules.available_on(available=available, unavailable_until=until, status=status, day=ON)
        is expected
    )


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("0431 8888 1234", "043*****1234"),
        ("1234567", "****"),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("alice@example.com", "a***@example.com"),
        ("a@example.com", "a***@example.com"),
        ("@example.com", "***@example.com"),
        ("not-an-address", "***"),
    ],
)
def test_mask_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked
