"""Shared validators for Chinese identifiers and administrative division codes.

* Resident ID number (居民身份证号 / 公民身份号码, GB 11643): 18 characters, the check digit
  and birth date are checked with python-stdnum (`stdnum.cn.ric`).
* Unified social credit code (统一社会信用代码, GB 32100): 18 characters, check character
  computed by python-stdnum (`stdnum.cn.uscc`).
* Administrative division codes (行政区划代码): checked against the bundled table
  `libs/common/data/divisions.csv` (province, prefecture and county rows of every province;
  its first line names the source package and data date; regenerate it with
  `scripts/build_divisions.py`).

Every `validate_*` function normalises its input, returns the normalised value, and raises
`ValueError` with a short English reason. Reasons about resident IDs never contain the number:
they end up in logs. Note that pydantic's own `ValidationError` text does include the input
(`input_value=...`) unless the model sets `ConfigDict(hide_input_in_errors=True)`: set it on
every model with a `ResidentId` field that may be logged.
"""

from __future__ import annotations

import csv
import datetime
import functools
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Annotated

from pydantic import AfterValidator, Field
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, ValidationError

__all__ = [
    "USCC",
    "Division",
    "DivisionCode",
    "RegionScope",
    "ResidentId",
    "age_on",
    "birth_date_from_resident_id",
    "counties_within",
    "county_of",
    "division",
    "division_full_name",
    "division_name",
    "is_valid_resident_id",
    "is_valid_uscc",
    "is_within",
    "known_provinces",
    "mask_resident_id",
    "province_of",
    "validate_division_code",
    "validate_region_scope",
    "validate_resident_id",
    "validate_uscc",
]

CHINA_TZ = datetime.timezone(datetime.timedelta(hours=8), "CST")
"""China Standard Time (UTC+8, no daylight saving): the calendar that decides "today"."""

EARLIEST_BIRTH_DATE = datetime.date(1900, 1, 1)
"""Birth dates before this are rejected as implausible for a living resident."""

RESIDENCE_PERMIT_PREFIXES = frozenset({"83"})
"""Address-code prefixes of 港澳台居民居住证 numbers that are not provinces in the table
(830000 Taiwan; 81/82 Hong Kong and Macao are in it). They follow GB 11643 too."""

_DIGITS = frozenset("0123456789")
_USCC_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")
_DIVISION_LENGTHS = (6, 9, 12)
_SCOPE_LENGTHS = (2, 4, 6, 9, 12)


def _is_digits(text: str) -> bool:
    """True for a non-empty string of ASCII digits (str.isdigit also accepts '²', '٣', ...)."""
    return bool(text) and all(c in _DIGITS for c in text)


def _normalise(value: str, delete: str = "") -> str:
    """NFKC-fold (full-width '２' becomes '2'), drop all whitespace and `delete`, uppercase."""
    if not isinstance(value, str):
        raise ValueError("expected a string")
    folded = unicodedata.normalize("NFKC", value)
    return "".join(c for c in folded if not c.isspace() and c not in delete).upper()


# --------------------------------------------------------------------------------------------
# Resident ID number (居民身份证号, GB 11643)
# --------------------------------------------------------------------------------------------


def _today_in_china() -> datetime.date:
    return datetime.datetime.now(CHINA_TZ).date()


def validate_resident_id(value: str, *, today: datetime.date | None = None) -> str:
    """Validate an 18-character resident ID number (居民身份证号) and return it normalised.

    Normalisation removes whitespace, folds full-width characters and uppercases a trailing
    x. The number must have 17 digits and a check character (0-9 or X) that matches
    (`stdnum.cn.ric.calc_check_digit`), a real birth date (`stdnum.cn.ric.get_birth_date`)
    between 1900-01-01 and `today` (default: today in China), and an address code starting
    with a known province (or 83, residence permits of Taiwan residents). Legacy 15-digit
    numbers are refused.

    The address code is deliberately not checked against a county list: it is the county
    where the number was first assigned, which may since have been abolished or renamed, and
    people registered late (补录户口) get a county code younger than their birth date. That is
    also why `stdnum.cn.ric.validate` is not called as a whole: its birth-place check rejects
    such numbers, and its table (python-stdnum 2.2) lacks e.g. 330113 临平区 and 330114 钱塘区.

    The reason in the `ValueError` never contains the number.
    """
    number = _normalise(value)
    if len(number) == 15:
        raise ValueError(
            "15-digit resident ID numbers are no longer valid; give the 18-digit number"
        )
    if len(number) != 18:
        raise ValueError(f"resident ID must have 18 characters, got {len(number)}")
    if not _is_digits(number[:17]):
        raise ValueError("the first 17 characters of a resident ID must be digits")
    if number[17] not in _DIGITS and number[17] != "X":
        raise ValueError("the last character of a resident ID must be a digit or X")
    if ric.calc_check_digit(number) != number[17]:
        raise ValueError("check digit does not match")
    try:
        born = ric.get_birth_date(number)
    except ValidationError:
        y, m, d = number[6:10], number[10:12], number[12:14]
        raise ValueError(f"birth date {y}-{m}-{d} is not a real date") from None
    if born > (today or _today_in_china()):
        raise ValueError("birth date is in the future")
    if born < EARLIEST_BIRTH_DATE:
        raise ValueError("birth date is before 1900")
    if number[:2] not in _codes("province") | RESIDENCE_PERMIT_PREFIXES:
        raise ValueError("address code does not start with a known province code")
    return number


def is_valid_resident_id(value: str) -> bool:
    """True when `validate_resident_id` accepts `value`."""
    try:
        validate_resident_id(value)
    except ValueError:
        return False
    return True


def birth_date_from_resident_id(value: str) -> datetime.date:
    """The birth date (出生日期) encoded in a valid resident ID; ValueError if invalid."""
    return ric.get_birth_date(validate_resident_id(value))


def age_on(value: str, on: datetime.date) -> int:
    """Age in full years (周岁) on date `on` of the holder of resident ID `value`.

    The age goes up on the birthday itself; someone born on 29 February turns a year older
    on 1 March in common years. ValueError if the ID is invalid or `on` precedes the birth.
    """
    born = birth_date_from_resident_id(value)
    if on < born:
        raise ValueError("the date is before the birth date")
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def mask_resident_id(value: str) -> str:
    """Masked form for display and logs: first 6 + 8 asterisks + last 4 (220102********123X).

    The ID must be valid (ValueError otherwise), so a typo is never half-shown as if real.
    """
    number = validate_resident_id(value)
    return number[:6] + "*" * 8 + number[14:]


# --------------------------------------------------------------------------------------------
# Unified social credit code (统一社会信用代码, GB 32100)
# --------------------------------------------------------------------------------------------


def validate_uscc(value: str) -> str:
    """Validate a unified social credit code (统一社会信用代码) and return it normalised.

    Normalisation removes whitespace and hyphens, folds full-width characters and uppercases.
    The code has 18 characters from the GB 32100 alphabet (digits and capital letters except
    I, O, S, V, Z); characters 2-8 (institution category and registering region) are digits.
    The first character (登记管理部门) is a digit or one of the letters GB 32100 uses
    (A 军队, N 农业 e.g. village collectives, Y 其他): python-stdnum 2.2's `validate` wrongly
    requires a digit there, so for a letter only its `calc_check_digit` is used.
    """
    code = _normalise(value, delete="-")
    if len(code) != 18:
        raise ValueError(f"credit code must have 18 characters, got {len(code)}")
    if not set(code) <= _USCC_ALPHABET:
        raise ValueError("credit code may contain only digits and capitals except I, O, S, V, Z")
    if not _is_digits(code[1:8]):
        raise ValueError("characters 2 to 8 of a credit code must be digits")
    if code[0] in _DIGITS:
        try:
            uscc.validate(code)
        except InvalidChecksum:
            raise ValueError("check digit does not match") from None
        except ValidationError as exc:  # pragma: no cover - the checks above come first
            raise ValueError(f"not a valid credit code: {exc}") from None
    elif uscc.calc_check_digit(code) != code[17]:
        raise ValueError("check digit does not match")
    return code


def is_valid_uscc(value: str) -> bool:
    """True when `validate_uscc` accepts `value`."""
    try:
        validate_uscc(value)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Administrative division codes (行政区划代码)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Division:
    """One row of the bundled table: a province (省级, 2 digits), prefecture (地级, 4 digits)
    or county-level division (县级, 6 digits).

    `parent` is the code of the enclosing row ("" for a province); a county directly under a
    province (municipality districts, 省直辖县级行政区划) has the province as parent. `kind`
    is the Chinese category, e.g. 市辖区, 县级市, 自治州, 不设区的地级市.
    """

    code: str
    name: str
    level: str
    parent: str
    kind: str


@functools.cache
def _table() -> dict[str, Division]:
    """The division table, read once from the package data file."""
    text = resources.files("libs.common.data").joinpath("divisions.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["code"]: Division(**row) for row in rows}


@functools.cache
def _codes(level: str) -> frozenset[str]:
    return frozenset(code for code, d in _table().items() if d.level == level)


@functools.cache
def _four_digit_scopes() -> frozenset[str]:
    """Prefecture codes plus the 4-digit prefixes of counties that have no prefecture row
    (1101 北京市辖区, 4690 海南省直辖县级行政区划, ...)."""
    return _codes("prefecture") | {code[:4] for code in _codes("county")}


def division(code: str) -> Division | None:
    """The table row of a 2-, 4- or 6-digit code, or None."""
    return _table().get(code)


def known_provinces() -> set[str]:
    """The 2-digit codes of all provinces (省级行政区) in the table, 71-82 included."""
    return set(_codes("province"))


def counties_within(scope: str = "") -> list[str]:
    """Sorted 6-digit county codes that start with `scope` ("" means all of them)."""
    return sorted(code for code in _codes("county") if code.startswith(scope))


def _higher_level_hint(county: str) -> str | None:
    """A hint when a 6-digit code is the GB/T 2260 form of a province (220000) or
    prefecture (220100) rather than a county; None otherwise."""
    if county.endswith("0000") and county[:2] in _codes("province"):
        return f"{county} is a province code, not a county; use {county[:2]} as a region scope"
    if county.endswith("00") and county[:4] in _codes("prefecture"):
        return f"{county} is a prefecture code, not a county; use {county[:4]} as a region scope"
    return None


def validate_division_code(code: str) -> str:
    """Validate a division code at county level or below and return it (whitespace removed).

    Accepted: 6 digits (county, 县级), 9 digits (township, 乡级) or 12 digits (village, 村级);
    the first 6 digits must be a county in the bundled table. 9- and 12-digit codes come from
    the statistical division classification (统计用区划代码), not GB/T 2260, and cannot be
    checked beyond their county prefix and digit form.
    """
    text = _normalise(code)
    if not _is_digits(text):
        raise ValueError("division code must contain digits only")
    if len(text) not in _DIVISION_LENGTHS:
        raise ValueError(f"division code must have 6, 9 or 12 digits, got {len(text)}")
    if text[:6] not in _codes("county"):
        raise ValueError(_higher_level_hint(text[:6]) or f"unknown county code {text[:6]}")
    return text


def validate_region_scope(code: str) -> str:
    """Validate a region scope (管辖范围): a code prefix naming an area, returned normalised.

    Accepted: 2 digits (province), 4 (prefecture, or the county group of a municipality or of
    a province's directly administered counties, e.g. 4690), 6 (county), 9 or 12 (township or
    village, statistical classification). Every level present must exist in the table, as far
    as the table goes (down to county). An empty string is refused: callers that mean
    "everywhere" must say so explicitly (`is_within` treats "" as everything).
    """
    text = _normalise(code)
    if not _is_digits(text):
        raise ValueError("region scope must contain digits only")
    if len(text) not in _SCOPE_LENGTHS:
        raise ValueError(f"region scope must have 2, 4, 6, 9 or 12 digits, got {len(text)}")
    county = text[:6] if len(text) >= 6 else None
    if county and county not in _codes("county") and (hint := _higher_level_hint(county)):
        raise ValueError(hint)
    if text[:2] not in _codes("province"):
        raise ValueError(f"unknown province code {text[:2]}")
    if len(text) >= 4 and text[:4] not in _four_digit_scopes():
        raise ValueError(f"unknown prefecture code {text[:4]}")
    if county and county not in _codes("county"):
        raise ValueError(f"unknown county code {county}")
    return text


def division_name(code: str) -> str | None:
    """Name of a 2/4/6-digit division (e.g. 220102 -> 南关区), or of the county of a 9/12-digit
    code; None when unknown."""
    key = code[:6] if len(code) in (9, 12) else code
    row = _table().get(key) if _is_digits(code) else None
    return row.name if row else None


def division_full_name(code: str) -> str | None:
    """Full name from the province down (e.g. 220102 -> 吉林省长春市南关区); None if unknown.

    A 9/12-digit code gives its county's full name; repeated names (东莞市 as prefecture and
    as county) appear once.
    """
    key = code[:6] if len(code) in (9, 12) else code
    row = _table().get(key) if _is_digits(code) else None
    names: list[str] = []
    while row is not None:
        if not names or names[0] != row.name:
            names.insert(0, row.name)
        row = _table().get(row.parent)
    return "".join(names) or None


def province_of(code: str) -> str:
    """The 2-digit province part of a division code, region scope or resident ID."""
    if len(code) < 2 or not _is_digits(code[:2]):
        raise ValueError("code must start with 2 digits")
    return code[:2]


def county_of(code: str) -> str:
    """The 6-digit county part of a division code (6/9/12 digits) or resident ID."""
    if len(code) < 6 or not _is_digits(code[:6]):
        raise ValueError("code must start with 6 digits")
    return code[:6]


def is_within(code: str, scope: str) -> bool:
    """True when `code` lies in region `scope`, i.e. starts with it; "" contains everything.

    Both are expected to be validated codes: division codes nest by prefix, so 2201 contains
    220102, 220102003 and 220102003001 but not 22.
    """
    return code.startswith(scope)


# --------------------------------------------------------------------------------------------
# Pydantic v2 field types
# --------------------------------------------------------------------------------------------

ResidentId = Annotated[
    str,
    AfterValidator(validate_resident_id),
    Field(description="18-character resident ID number (居民身份证号, GB 11643)"),
]
"""A resident ID, normalised. Set `hide_input_in_errors=True` on models that use it."""

USCC = Annotated[
    str,
    AfterValidator(validate_uscc),
    Field(description="Unified social credit code (统一社会信用代码, GB 32100)"),
]
"""A unified social credit code, normalised."""

DivisionCode = Annotated[
    str,
    AfterValidator(validate_division_code),
    Field(description="6-, 9- or 12-digit division code at county level or below"),
]
"""A division code at county level or below (see `validate_division_code`)."""

RegionScope = Annotated[
    str,
    AfterValidator(validate_region_scope),
    Field(description="2-, 4-, 6-, 9- or 12-digit division code prefix naming an area"),
]
"""A region scope (see `validate_region_scope`)."""
