"""Load the packaged policy packs (政策包) and find the pack for a region.

Packs ship inside this package as `packs/<province>.yaml` and are read through
`importlib.resources`, so they work from a checkout, an editable install or a wheel. Each is
validated on first use and cached: a pack is immutable data, and a broken one must stop the
service at start-up (loudly, with the pydantic error naming the field) rather than surface
halfway through an award.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from libs.common.policy.schema import PROVINCE_CODES, PolicyPack, validate_pack
from libs.common.workdays import WorkdayCalendar, default_calendar

_PACKS_DIR = "packs"
_PROVINCE_BY_CODE = {code: name for name, code in PROVINCE_CODES.items()}


class PolicyPackError(ValueError):
    """A pack file that is not even a YAML mapping (bad syntax, a list, empty)."""


def _packs_root() -> Traversable:
    # `packs/` holds data only (no __init__.py), so resolve it from this package.
    return resources.files(__package__ or "libs.common.policy").joinpath(_PACKS_DIR)


def available_packs() -> list[str]:
    """Province names with a packaged pack, sorted: ['hainan', 'jilin', 'zhejiang']."""
    return list(_packaged_names())


@functools.cache
def _packaged_names() -> tuple[str, ...]:
    # Packs ship with the code: list the directory once, not on every request.
    return tuple(
        sorted(
            entry.name.removesuffix(".yaml")
            for entry in _packs_root().iterdir()
            if entry.is_file() and entry.name.endswith(".yaml")
        )
    )


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyPackError(f"policy pack {origin} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyPackError(
            f"policy pack {origin} must be a YAML mapping, got {type(data).__name__}"
        )
    return data


def _resolve(name_or_code: str) -> str:
    key = name_or_code.strip().lower()
    name = _PROVINCE_BY_CODE.get(key, key)
    if name not in _packaged_names():
        raise LookupError(
            f"no policy pack for {name_or_code!r}; available: "
            + ", ".join(f"{n} ({PROVINCE_CODES.get(n, '?')})" for n in available_packs())
        )
    return name


@functools.cache
def _load_named(name: str) -> PolicyPack:
    entry = _packs_root().joinpath(f"{name}.yaml")
    pack = validate_pack(_parse(entry.read_text(encoding="utf-8"), f"{name}.yaml"))
    if pack.province != name:
        # A copy-pasted file would otherwise serve one province's rules under another's name.
        raise PolicyPackError(f"{name}.yaml declares province {pack.province!r}")
    return pack


def load_pack(name_or_code: str) -> PolicyPack:
    """The pack for a province by name ("jilin") or two-digit code ("22").

    Raises `LookupError` for a province without a pack and `pydantic.ValidationError` for a
    pack that fails validation.
    """
    return _load_named(_resolve(name_or_code))


def pack_for_region(division_code: str) -> PolicyPack:
    """The pack for an administrative division code (行政区划代码), e.g. "220102" → jilin.

    Only the first two digits (the province) matter; 6-digit GB/T 2260 codes and 9/12-digit
    statistical codes both work.
    """
    code = division_code.strip()
    if not (code.isdigit() and code.isascii() and len(code) >= 2):
        raise ValueError(f"{division_code!r} is not an administrative division code")
    province = code[:2]
    if province not in _PROVINCE_BY_CODE:
        raise LookupError(
            f"no policy pack for province {province} (division {code}); packs exist for "
            + ", ".join(f"{c} {n}" for n, c in sorted(PROVINCE_CODES.items(), key=lambda x: x[1]))
        )
    return load_pack(province)


def load_pack_file(path: str | Path) -> PolicyPack:
    """Validate a pack file from disk (not cached), e.g. a draft before it is packaged."""
    file = Path(path)
    return validate_pack(_parse(file.read_text(encoding="utf-8"), str(file)))


_CALENDARS: dict[tuple[str, str], WorkdayCalendar] = {}


def calendar_for(pack: PolicyPack) -> WorkdayCalendar:
    """The PRC working-day calendar for deadlines under `pack`: the library's official
    calendar, extended by the pack's `holiday_calendar` for years the library lacks."""
    key = (pack.province, pack.version)
    calendar = _CALENDARS.get(key)
    if calendar is None:
        extra = pack.holiday_calendar
        calendar = (
            WorkdayCalendar(
                extra_holidays=frozenset(extra.holidays),
                extra_workdays=frozenset(extra.workdays),
                extra_years=frozenset(extra.years),
            )
            if extra is not None
            else default_calendar()
        )
        _CALENDARS[key] = calendar
    return calendar


#: Warn this many days before a pack's working-day calendar runs out: deadlines of up to
#: about 20 working days (a month) from now must stay computable, and the State Council's
#: notice for the next year usually appears in November.
CALENDAR_WARNING_DAYS = 45


@dataclass(frozen=True)
class CalendarHorizon:
    """How far one province's working-day calendar reaches from a given day."""

    province: str
    known_through: date
    days_left: int

    @property
    def running_out(self) -> bool:
        return self.days_left < CALENDAR_WARNING_DAYS

    def warning(self) -> str:
        return (
            f"{self.province}: the working-day calendar ends on {self.known_through} "
            f"({self.days_left} days from now); deadlines counted in working days beyond it "
            "are refused. Add the State Council's holiday notice for the next year to the "
            "pack's `holiday_calendar`, or upgrade chinese-calendar."
        )


def calendar_horizons(today: date) -> list[CalendarHorizon]:
    """Each packaged province's working-day calendar horizon, seen from `today`."""
    out = []
    for name in available_packs():
        through = calendar_for(load_pack(name)).known_through(today)
        out.append(CalendarHorizon(name, through, (through - today).days))
    return out
