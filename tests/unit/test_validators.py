"""Tests of `libs.common.validators`: resident IDs, credit codes and division codes."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError
from stdnum.cn import ric

from libs.common import validators as v
from tests.strategies import (
    USCC_ALPHABET,
    birth_dates,
    china_today,
    county_codes,
    division_codes,
    make_resident_id,
    make_uscc,
    resident_ids,
    usccs,
)

PROPERTY = settings(database=None, max_examples=200)

GB11643_EXAMPLE = "11010519491231002X"  # the worked example of GB 11643-1999
STDNUM_RIC_EXAMPLE = "360426199101010071"
USCC_EXAMPLES = ("91110000600037341L", "91350100M000100Y43")

ID_CHARS = "0123456789X"


def _reason(func: Callable[[str], object], value: str) -> str:
    """The ValueError message `func(value)` raises (fails the test if it does not raise)."""
    with pytest.raises(ValueError) as info:
        func(value)
    return str(info.value)


def _assert_no_id_leak(message: str, *values: str) -> None:
    for value in filter(None, values):
        assert value not in message
    assert re.search(r"\d{5,}", message) is None, message


def _replace(text: str, index: int, char: str) -> str:
    return text[:index] + char + text[index + 1 :]


# --------------------------------------------------------------------------------------------
# Resident ID: examples
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [GB11643_EXAMPLE, STDNUM_RIC_EXAMPLE])
def test_known_valid_resident_ids(number: str) -> None:
    assert v.validate_resident_id(number) == number
    assert v.is_valid_resident_id(number)


def test_known_invalid_check_digit() -> None:
    assert _reason(v.validate_resident_id, "110105194912310021") == "check digit does not match"
    assert not v.is_valid_resident_id("110105194912310021")


@pytest.mark.parametrize(
    "raw",
    ["11010519491231002x", " 110105 19491231 002x ", "１１０１０５１９４９１２３１００２ｘ"],
)
def test_normalisation(raw: str) -> None:
    assert v.validate_resident_id(raw) == GB11643_EXAMPLE


def test_birth_date_and_age() -> None:
    assert v.birth_date_from_resident_id(GB11643_EXAMPLE) == datetime.date(1949, 12, 31)
    assert v.age_on(GB11643_EXAMPLE, datetime.date(2026, 12, 30)) == 76
    assert v.age_on(GB11643_EXAMPLE, datetime.date(2026, 12, 31)) == 77
    assert v.age_on(GB11643_EXAMPLE, datetime.date(1949, 12, 31)) == 0
    assert "before the birth date" in _reason(
        lambda n: v.age_on(n, datetime.date(1949, 12, 30)), GB11643_EXAMPLE
    )


def test_age_of_someone_born_on_29_february() -> None:
    number = make_resident_id("220102", datetime.date(2000, 2, 29), 123)
    assert v.age_on(number, datetime.date(2023, 2, 28)) == 22
    assert v.age_on(number, datetime.date(2023, 3, 1)) == 23
    assert v.age_on(number, datetime.date(2024, 2, 29)) == 24


def test_future_birth_date_rejected() -> None:
    today = datetime.date(2026, 5, 1)
    born_today = make_resident_id("330106", today, 1)
    born_tomorrow = make_resident_id("330106", today + datetime.timedelta(days=1), 1)
    assert v.validate_resident_id(born_today, today=today) == born_today
    reason = _reason(lambda n: v.validate_resident_id(n, today=today), born_tomorrow)
    assert reason == "birth date is in the future"
    _assert_no_id_leak(reason, born_tomorrow)
    far_future = make_resident_id("330106", datetime.date(2999, 1, 1), 1)
    assert _reason(v.validate_resident_id, far_future) == "birth date is in the future"


def test_birth_before_1900_rejected() -> None:
    number = make_resident_id("330106", datetime.date(1899, 12, 31), 1)
    assert _reason(v.validate_resident_id, number) == "birth date is before 1900"


def test_30_february_rejected() -> None:
    body = "460105" + "19900230" + "123"
    number = body + ric.calc_check_digit(body + "0")
    reason = _reason(v.validate_resident_id, number)
    assert reason == "birth date 1990-02-30 is not a real date"
    _assert_no_id_leak(reason, number)


def test_15_digit_legacy_number_rejected() -> None:
    reason = _reason(v.validate_resident_id, "110105491231002")
    assert "15-digit" in reason
    _assert_no_id_leak(reason, "110105491231002")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("11010519491231002", "must have 18 characters, got 17"),
        ("11010519491231002X1", "must have 18 characters, got 19"),
        ("", "must have 18 characters, got 0"),
        ("1101051949123100AX", "first 17 characters"),
        ("11010519491231002Y", "last character"),
    ],
)
def test_malformed_resident_ids(raw: str, expected: str) -> None:
    reason = _reason(v.validate_resident_id, raw)
    assert expected in reason
    _assert_no_id_leak(reason, raw)


def test_unknown_province_rejected_but_residence_permit_accepted() -> None:
    unknown = make_resident_id("990101", datetime.date(1990, 1, 1), 5)
    assert _reason(v.validate_resident_id, unknown) == (
        "address code does not start with a known province code"
    )
    permit = make_resident_id("830000", datetime.date(1990, 1, 1), 5)
    assert v.validate_resident_id(permit) == permit


def test_non_string_rejected() -> None:
    assert not v.is_valid_resident_id(110105194912310020)  # type: ignore[arg-type]


def test_mask() -> None:
    assert v.mask_resident_id(GB11643_EXAMPLE) == "110105********002X"
    assert v.mask_resident_id(" 11010519491231002x") == "110105********002X"
    with pytest.raises(ValueError):
        v.mask_resident_id("110105194912310021")


# --------------------------------------------------------------------------------------------
# Resident ID: properties
# --------------------------------------------------------------------------------------------


@PROPERTY
@given(resident_ids())
def test_generated_ids_are_accepted(number: str) -> None:
    assert v.validate_resident_id(number) == number
    assert v.is_valid_resident_id(number)


@PROPERTY
@given(resident_ids(), st.data())
def test_generated_ids_round_trip_normalised(number: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=18))
    messy = f"  {number[:cut]} {number[cut:]} ".lower()
    assert v.validate_resident_id(messy) == number


@PROPERTY
@given(county_codes(), birth_dates(), st.integers(min_value=0, max_value=999))
def test_birth_date_round_trip(county: str, born: datetime.date, seq: int) -> None:
    number = make_resident_id(county, born, seq)
    assert v.birth_date_from_resident_id(number) == born
    assert v.age_on(number, born) == 0


@PROPERTY
@given(
    birth_dates(max_value=datetime.date(2000, 12, 31)),
    st.integers(min_value=1, max_value=25),
)
def test_age_counts_full_years(born: datetime.date, years: int) -> None:
    assume((born.month, born.day) != (2, 29))
    number = make_resident_id("220102", born, 7)
    birthday = born.replace(year=born.year + years)
    assert v.age_on(number, birthday) == years
    assert v.age_on(number, birthday - datetime.timedelta(days=1)) == years - 1


@PROPERTY
@given(resident_ids(), st.data())
def test_one_corrupted_character_is_rejected(number: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=17))
    choices = [c for c in (ID_CHARS if index == 17 else ID_CHARS[:10]) if c != number[index]]
    corrupted = _replace(number, index, data.draw(st.sampled_from(choices)))
    assert not v.is_valid_resident_id(corrupted)
    _assert_no_id_leak(_reason(v.validate_resident_id, corrupted), corrupted, number)


@PROPERTY
@given(resident_ids(), st.data())
def test_adjacent_transposition_is_rejected(number: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=16))
    assume(number[index] != number[index + 1])
    swapped = number[:index] + number[index + 1] + number[index] + number[index + 2 :]
    assert not v.is_valid_resident_id(swapped)
    _assert_no_id_leak(_reason(v.validate_resident_id, swapped), swapped, number)


@PROPERTY
@given(resident_ids())
def test_mask_format(number: str) -> None:
    masked = v.mask_resident_id(number)
    assert re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", masked)
    assert masked[:6] == number[:6] and masked[-4:] == number[-4:]


# --------------------------------------------------------------------------------------------
# Unified social credit code
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", USCC_EXAMPLES)
def test_known_valid_usccs(code: str) -> None:
    assert v.validate_uscc(code) == code
    assert v.validate_uscc(f" {code[:8]}-{code[8:]} ".lower()) == code
    assert v.is_valid_uscc(code)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("91110000600037341", "must have 18 characters, got 17"),
        ("91110000600037341LL", "must have 18 characters, got 19"),
        ("9111000060003734IL", "except I, O, S, V, Z"),
        ("911100O0600037341L", "except I, O, S, V, Z"),
        ("9A110000600037341L", "characters 2 to 8"),
        ("91110000600037341M", "check digit does not match"),
    ],
)
def test_malformed_usccs(raw: str, expected: str) -> None:
    assert expected in _reason(v.validate_uscc, raw)
    assert not v.is_valid_uscc(raw)


@PROPERTY
@given(usccs())
def test_generated_usccs_are_accepted(code: str) -> None:
    assert v.validate_uscc(code) == code
    assert v.validate_uscc(code.lower()) == code


@PROPERTY
@given(st.sampled_from("ANY"), usccs(), st.data())
def test_letter_authorities_are_checked(first: str, code: str, data: st.DataObject) -> None:
    letter_code = make_uscc(first + code[1:17])
    assert v.validate_uscc(letter_code) == letter_code
    wrong = data.draw(st.sampled_from([c for c in USCC_ALPHABET if c != letter_code[17]]))
    assert _reason(v.validate_uscc, letter_code[:17] + wrong) == "check digit does not match"


@PROPERTY
@given(usccs(), st.data())
def test_one_corrupted_uscc_character_is_rejected(code: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=17))
    replacement = data.draw(st.sampled_from([c for c in USCC_ALPHABET if c != code[index]]))
    assert not v.is_valid_uscc(_replace(code, index, replacement))


@PROPERTY
@given(usccs(), st.data())
def test_adjacent_uscc_transposition_is_rejected(code: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=16))
    assume(code[index] != code[index + 1])
    swapped = code[:index] + code[index + 1] + code[index] + code[index + 2 :]
    assert not v.is_valid_uscc(swapped)


# --------------------------------------------------------------------------------------------
# Division table and codes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name", "full_name"),
    [
        ("220102", "南关区", "吉林省长春市南关区"),
        ("330106", "西湖区", "浙江省杭州市西湖区"),
        ("460105", "秀英区", "海南省海口市秀英区"),
        ("469001", "五指山市", "海南省五指山市"),
        ("441900", "东莞市", "广东省东莞市"),
        ("110101", "东城区", "北京市东城区"),
        ("2201", "长春市", "吉林省长春市"),
        ("22", "吉林省", "吉林省"),
        ("330106012", "西湖区", "浙江省杭州市西湖区"),
        ("330106012001", "西湖区", "浙江省杭州市西湖区"),
    ],
)
def test_division_names(code: str, name: str, full_name: str) -> None:
    assert v.division_name(code) == name
    assert v.division_full_name(code) == full_name


@pytest.mark.parametrize("code", ["229999", "4690", "", "2201020", "22a102", "99"])
def test_unknown_division_names(code: str) -> None:
    assert v.division_name(code) is None
    assert v.division_full_name(code) is None


def test_table_covers_the_pilot_provinces_and_nests() -> None:
    assert {"22", "33", "46"} <= v.known_provinces()
    assert len(v.known_provinces()) == 34
    assert len(v.counties_within("22")) >= 50
    assert len(v.counties_within("33")) >= 80
    assert len(v.counties_within("46")) >= 20
    for code in v.counties_within():
        row = v.division(code)
        assert row is not None and row.level == "county"
        parent = v.division(row.parent)
        assert parent is not None and code.startswith(parent.code)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("220102", "220102"),
        ("220102003", "220102003"),
        ("220102003001", "220102003001"),
        ("441900003", "441900003"),
        (" 469001 ", "469001"),
        ("２２０１０２", "220102"),
    ],
)
def test_valid_division_codes(raw: str, expected: str) -> None:
    assert v.validate_division_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("229999", "unknown county code 229999"),
        ("229999001", "unknown county code 229999"),
        ("220100", "prefecture code"),
        ("220000", "province code"),
        ("22", "6, 9 or 12 digits, got 2"),
        ("22010", "6, 9 or 12 digits, got 5"),
        ("2201020", "6, 9 or 12 digits, got 7"),
        ("22O102", "digits only"),
        ("٢٢٠١٠٢", "digits only"),  # Arabic-Indic digits pass str.isdigit but are not codes
        ("", "digits only"),
    ],
)
def test_invalid_division_codes(raw: str, expected: str) -> None:
    assert expected in _reason(v.validate_division_code, raw)


@pytest.mark.parametrize(
    "raw", ["22", "2201", "220102", "4690", "1101", "220102003", "220102003001"]
)
def test_valid_region_scopes(raw: str) -> None:
    assert v.validate_region_scope(raw) == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("99", "unknown province code 99"),
        ("2299", "unknown prefecture code 2299"),
        ("229999", "unknown prefecture code 2299"),
        ("220199", "unknown county code 220199"),
        ("220000", "use 22 as a region scope"),
        ("220100", "use 2201 as a region scope"),
        ("221", "2, 4, 6, 9 or 12 digits, got 3"),
        ("", "digits only"),
        ("22a", "digits only"),
    ],
)
def test_invalid_region_scopes(raw: str, expected: str) -> None:
    assert expected in _reason(v.validate_region_scope, raw)


@PROPERTY
@given(division_codes())
def test_generated_division_codes_are_accepted(code: str) -> None:
    assert v.validate_division_code(code) == code
    assert v.validate_region_scope(code) == code
    assert v.division_name(code) == v.division_name(v.county_of(code))
    assert v.is_within(code, v.province_of(code))
    assert v.is_within(code, v.county_of(code))


@PROPERTY
@given(st.from_regex(r"[0-9]{6}", fullmatch=True))
def test_six_digit_codes_accepted_exactly_when_in_table(code: str) -> None:
    known = code in set(v.counties_within())
    try:
        v.validate_division_code(code)
    except ValueError:
        accepted = False
    else:
        accepted = True
    assert accepted == known


@pytest.mark.parametrize(
    ("code", "scope", "inside"),
    [
        ("220102", "22", True),
        ("220102", "2201", True),
        ("220102003001", "220102", True),
        ("220102003001", "220102003", True),
        ("220102", "", True),
        ("220102", "2202", False),
        ("220102", "33", False),
        ("22", "2201", False),
        ("220102003001", "220102004", False),
    ],
)
def test_is_within(code: str, scope: str, inside: bool) -> None:
    assert v.is_within(code, scope) is inside


def test_province_and_county_of() -> None:
    assert v.province_of("220102003") == "22"
    assert v.county_of("220102003001") == "220102"
    assert v.county_of(GB11643_EXAMPLE) == "110105"
    for func, short in ((v.province_of, "2"), (v.county_of, "22010"), (v.county_of, "22010a")):
        with pytest.raises(ValueError):
            func(short)


def test_counties_within_filters_by_prefix() -> None:
    jilin = v.counties_within("22")
    assert "220102" in jilin and "330106" not in jilin
    assert jilin == sorted(jilin)
    assert set(v.counties_within("2201")) < set(jilin)


# --------------------------------------------------------------------------------------------
# Pydantic types
# --------------------------------------------------------------------------------------------


class _Applicant(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    id_number: v.ResidentId
    provider: v.USCC
    location: v.DivisionCode
    scope: v.RegionScope


def test_pydantic_types_normalise() -> None:
    model = _Applicant(
        id_number=" 11010519491231002x",
        provider="91110000600037341l",
        location="２２０１０２",
        scope="22",
    )
    assert model.id_number == GB11643_EXAMPLE
    assert model.provider == "91110000600037341L"
    assert model.location == "220102"
    assert model.scope == "22"


def test_pydantic_errors_carry_the_reason_not_the_number() -> None:
    bad_id = "110105194912310021"
    with pytest.raises(ValidationError) as info:
        _Applicant(id_number=bad_id, provider="9111000060003734IL", location="229999", scope="99")
    messages = {err["loc"][0]: err["msg"] for err in info.value.errors()}
    assert "check digit does not match" in messages["id_number"]
    assert "except I, O, S, V, Z" in messages["provider"]
    assert "unknown county code 229999" in messages["location"]
    assert "unknown province code 99" in messages["scope"]
    assert bad_id not in str(info.value)


def test_born_today_in_china_is_accepted() -> None:
    number = make_resident_id("460105", china_today(), 1)
    assert v.validate_resident_id(number) == number
