"""Inputs and parameters of the allocation engine (pure data, no I/O).

Everything the engine needs arrives in memory: open needs, the remaining supply of
organisations under active contracts, and charity resources. The service builds these from
its projections (`NeedView`, `OrganisationView`, contracts, resources) and the matches already
made this month; the engine never reads a database.

Region codes are statistical division codes (统计用区划代码): 12 digits, of which the first
2 name the province, 4 the city, 6 the county, 9 the township and all 12 the village.
A provider covers a region by *prefix*: `"220102"` covers every village of that county.
Prefixes are normalised (`division_prefix`), so `"220100"` and `"220100000000"` both mean the
city `"2201"`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from types import MappingProxyType
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
H = TypeVar("H", bound=Hashable)

#: The lengths of a division-code prefix: province, city, county, township, village.
LEVELS: tuple[int, ...] = (2, 4, 6, 9, 12)

#: Organisation status that may receive needs (credit's admission decision); suspended,
#: exited and blacklisted organisations never do. Same as `services.matching.rules`.
ELIGIBLE_STATUS = "admitted"


class Reason(StrEnum):
    """Why a need was left unassigned (the "why not" of an explanation)."""

    #: No contract and no charity resource covers the item in the need's region (for
    #: resources: none that also targets one of the recipient's categories).
    no_coverage = "no_coverage"
    #: Eligible candidates exist, but their capacity (or fairness cap) is used by needs of
    #: higher value, or was used up before this run.
    capacity_exhausted = "capacity_exhausted"
    #: Candidates cover the need, but every one is suspended, exited, blacklisted or
    #: otherwise not eligible.
    all_ineligible = "all_ineligible"


def division_prefix(code: str) -> str:
    """Normalise a division code used as a coverage prefix to its significant level.

    `"220102"` → `"220102"` (county); `"220100"` → `"2201"` (the city, written with its
    county digits zero); `"220102001000"` → `"220102001"` (township); `"22"` → `"22"`.
    Raises `ValueError` for anything that is not 2, 4, 6, 9 or 12 digits once normalised.
    """
    code = code.strip()
    if not code.isdigit() or not code.isascii():
        raise ValueError(f"division code {code!r} is not all digits")
    # Strip zero-filled lower levels: village (3), township (3), county (2), city (2).
    for length, tail in ((12, 3), (9, 3), (6, 2), (4, 2)):
        if len(code) == length and code.endswith("0" * tail):
            code = code[: length - tail]
    if len(code) not in LEVELS:
        raise ValueError(f"division code {code!r} has {len(code)} digits, want one of {LEVELS}")
    return code


def waiting_days(opened_at: datetime, now: datetime) -> int:
    """Whole days a need has been waiting (never negative)."""
    return max(0, (now - opened_at).days)


@dataclass(frozen=True, slots=True)
class Need:
    """One open need item of one recipient (pseudonymous: no personal data).

    `waiting_days` is the whole days since the need was opened (`waiting_days()` computes it
    from `opened_at`); `categories` are the recipient's assistance categories (catalogue codes
    such as `"tekun"`, `"dibao"`, `"child_in_difficulty"`).
    """

    need_id: str
    recipient_ref: str
    region_code: str
    service_code: str
    urgency: int
    waiting_days: int = 0
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.region_code) != 12 or not self.region_code.isdigit():
            raise ValueError(f"need {self.need_id}: region {self.region_code!r} is not 12 digits")
        if not 1 <= self.urgency <= 4:
            raise ValueError(f"need {self.need_id}: urgency {self.urgency} is not 1–4")
        if self.waiting_days < 0:
            raise ValueError(f"need {self.need_id}: negative waiting days")


def factorize(values: Sequence[H]) -> tuple[IntArray, list[H]]:
    """Dictionary-encode values: (code of each value, distinct values in first-seen order)."""
    distinct = list(dict.fromkeys(values))
    index = {v: i for i, v in enumerate(distinct)}
    codes = np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))
    return codes, distinct


def _int_column(name: str, values: object, n: int) -> IntArray:
    column = np.asarray(values)
    if column.ndim != 1 or len(column) != n:
        raise ValueError(f"column {name} has shape {column.shape}, want ({n},)")
    if len(column) and not np.issubdtype(column.dtype, np.integer):
        raise ValueError(f"column {name} is not integer")
    return column.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class NeedColumns:
    """Open needs as columns: the input path for large runs, with no `Need` object per row.

    Row *i* is the need `Need(need_id[i], recipient_ref[i], regions[region[i]],
    services[service[i]], urgency[i], waiting_days[i], category_sets[categories[i]])`.
    Region, service and category set are dictionary-encoded (an index into a list of the
    distinct values), as a snapshot of open needs naturally is: a million needs fall in a few
    tens of thousands of villages, eight items and a few dozen category sets. The engine then
    reads a handful of integer arrays instead of a million objects (`from_needs` converts
    objects, which is what `allocate` does with a sequence of `Need`). Everything is checked
    on construction, as `Need` checks one row.
    """

    need_id: Sequence[str] | npt.NDArray[Any]  # str values (a list, or a numpy array)
    recipient_ref: Sequence[str] | npt.NDArray[Any]
    region: IntArray
    regions: Sequence[str]
    service: IntArray
    services: Sequence[str]
    urgency: IntArray
    waiting_days: IntArray
    categories: IntArray
    category_sets: Sequence[tuple[str, ...]]

    def __post_init__(self) -> None:
        n = len(self.need_id)
        if len(self.recipient_ref) != n:
            raise ValueError(f"{len(self.recipient_ref)} recipient refs for {n} needs")
        for name, vocabulary in (
            ("region", self.regions),
            ("service", self.services),
            ("categories", self.category_sets),
        ):
            column = _int_column(name, getattr(self, name), n)
            object.__setattr__(self, name, column)
            if n and (int(column.min()) < 0 or int(column.max()) >= len(vocabulary)):
                raise ValueError(f"column {name} indexes outside its {len(vocabulary)} values")
        for name in ("urgency", "waiting_days"):
            object.__setattr__(self, name, _int_column(name, getattr(self, name), n))
        for code in self.regions:
            if len(code) != 12 or not code.isdigit() or not code.isascii():
                raise ValueError(f"region {code!r} is not 12 digits")
        if n and (int(self.urgency.min()) < 1 or int(self.urgency.max()) > 4):
            raise ValueError("urgency must be 1–4")
        if n and int(self.waiting_days.min()) < 0:
            raise ValueError("negative waiting days")

    def __len__(self) -> int:
        return len(self.need_id)

    @classmethod
    def from_needs(cls, needs: Sequence[Need]) -> NeedColumns:
        """The columns of `Need` objects (one pass per attribute)."""
        if isinstance(needs, NeedView):
            return needs.columns
        n = len(needs)
        region, regions = factorize(list(map(attrgetter("region_code"), needs)))
        service, services = factorize(list(map(attrgetter("service_code"), needs)))
        categories, category_sets = factorize(list(map(attrgetter("categories"), needs)))
        return cls(
            need_id=list(map(attrgetter("need_id"), needs)),
            recipient_ref=list(map(attrgetter("recipient_ref"), needs)),
            region=region,
            regions=regions,
            service=service,
            services=services,
            urgency=np.fromiter(map(attrgetter("urgency"), needs), np.int64, count=n),
            waiting_days=np.fromiter(map(attrgetter("waiting_days"), needs), np.int64, count=n),
            categories=categories,
            category_sets=category_sets,
        )

    def need(self, i: int) -> Need:
        """Row i as a `Need`."""
        return Need(
            str(self.need_id[i]),
            str(self.recipient_ref[i]),
            self.regions[int(self.region[i])],
            self.services[int(self.service[i])],
            int(self.urgency[i]),
            int(self.waiting_days[i]),
            tuple(self.category_sets[int(self.categories[i])]),
        )


class NeedView(Sequence["Need"]):
    """The rows of `NeedColumns` as a read-only sequence of `Need` (made on access)."""

    __slots__ = ("columns",)

    def __init__(self, columns: NeedColumns) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns)

    @overload
    def __getitem__(self, i: int) -> Need: ...

    @overload
    def __getitem__(self, i: slice) -> list[Need]: ...

    def __getitem__(self, i: int | slice) -> Need | list[Need]:
        if isinstance(i, slice):
            return [self.columns.need(k) for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.columns.need(i)

    def __iter__(self) -> Iterator[Need]:
        return (self.columns.need(k) for k in range(len(self)))


@dataclass(frozen=True)
class OrganisationSupply:
    """What one organisation can still take this month under its active contracts.

    * `capacity`: service code → remaining monthly capacity (contract capacity minus the
      matches already made this month). A service missing or at 0 takes nothing.
    * `regions`: division-code prefixes its active contracts cover (for every service), or
      per service in `service_regions` when contracts cover different items in different
      places (a service listed there uses only those prefixes).
    * `credit_score` 0–100 and `satisfaction` 0–1 (average recipients' satisfaction of recent
      evaluations) feed the fit; `None` means unknown and scores as `Scoring`'s neutral value.
    * Eligible only when `eligible` is true and `status` is `"admitted"`; anything else
      (suspended, exited, blacklisted, …) is never assigned, but still counts as coverage
      for the "why not" of an unassigned need.
    """

    organisation_id: str
    capacity: Mapping[str, int]
    regions: tuple[str, ...] = ()
    credit_score: float | None = None
    satisfaction: float | None = None
    status: str = ELIGIBLE_STATUS
    eligible: bool = True
    service_regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_eligible(self) -> bool:
        return self.eligible and self.status == ELIGIBLE_STATUS

    def regions_for(self, service_code: str) -> tuple[str, ...]:
        return self.service_regions.get(service_code, self.regions)


@dataclass(frozen=True)
class CharityResource:
    """A charity's resource offer with quantity left (慈善资源).

    One `remaining` quantity is shared by all its `service_codes`. It serves a need only if
    it covers the need's region and item and `target_categories` contains at least one of
    the recipient's categories (an empty target list serves nobody). `credit_score` and
    `satisfaction` are the charity's, scored as for organisations; `eligible` false (the
    charity is banned, the offer withdrawn) keeps it out, with `status` saying why.
    """

    resource_id: str
    service_codes: tuple[str, ...]
    regions: tuple[str, ...]
    target_categories: tuple[str, ...]
    remaining: int
    charity_id: str | None = None
    credit_score: float | None = None
    satisfaction: float | None = None
    eligible: bool = True
    status: str = "available"

    @property
    def is_eligible(self) -> bool:
        return self.eligible


#: Default vulnerability points per recipient category, in tiers. A need takes the points of
#: the most vulnerable of its recipient's categories (the maximum, never a sum, so nobody
#: gains by holding several). 特困人员 and children in difficulty first (no one to rely on);
#: left-behind children, rare-disease patients and 低保 next; the other bands 0.
DEFAULT_VULNERABILITY: Mapping[str, int] = MappingProxyType(
    {
        "tekun": 2,
        "child_in_difficulty": 2,
        "left_behind_child": 1,
        "rare_disease": 1,
        "dibao": 1,
        "medical_aid": 0,
        "dibao_edge": 0,
        "temporary_aid": 0,
    }
)

#: Urgency 1–4 (set at assessment) → points: one urgency level is worth two points, as much
#: as the longest wait or the most vulnerable tier.
DEFAULT_URGENCY: Mapping[int, int] = MappingProxyType({1: 2, 2: 4, 3: 6, 4: 8})

#: Points of region closeness by the length of the longest covering prefix: same village
#: (12) > township (9) > county (6) > city (4) > province (2).
DEFAULT_CLOSENESS: Mapping[int, int] = MappingProxyType({12: 10, 9: 8, 6: 6, 4: 3, 2: 1})


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (the engine's only rounding)."""
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class Scoring:
    """How a need's priority and a candidate's fit are scored, all in integer points.

    The value of assigning need *n* to candidate *c* is ``priority(n) × fit(n, c)``, an
    integer, so the min-cost flow (which needs integer costs) optimises exactly the number
    the explanations show; nothing is rescaled after the fact.

    priority = urgency points (1–4 → `urgency_points`)
             + waiting points (`waiting_points_per_step` per full `waiting_step_days`
               waited, at most `waiting_cap_steps` steps: waiting counts but cannot outweigh
               urgency for ever)
             + vulnerability points (the most vulnerable category, `vulnerability_points`;
               an unknown category scores 0)

    fit = closeness points (longest covering prefix, `closeness_points`)
        + round(credit_score / 100 × `credit_points`)
        + round(satisfaction × `satisfaction_points`)      (halves round up)

    Unknown credit or satisfaction (`None`) score as `unknown_credit_score` and
    `unknown_satisfaction`. Every priority and fit is ≥ 1 (checked), so any assignment beats
    leaving a need unassigned.

    The defaults are deliberately coarse: priority 2–12 (11 *priority classes*), fit 1–20,
    value ≤ 240. Needs with equal priority collapse into one node and candidates with equal
    fit share one level (`problem.py`), so the graph, and the solve time, grow with the
    number of distinct values: a credit score of 83 and one of 86 give the same points, and
    a 3-point difference in credit should not decide who serves a person anyway. Finer
    tables are allowed and stay exact; they cost time, because the graph has more groups,
    hubs and levels.
    """

    urgency_points: Mapping[int, int] = field(default_factory=lambda: DEFAULT_URGENCY)
    waiting_step_days: int = 30
    waiting_points_per_step: int = 1
    waiting_cap_steps: int = 2
    vulnerability_points: Mapping[str, int] = field(default_factory=lambda: DEFAULT_VULNERABILITY)
    closeness_points: Mapping[int, int] = field(default_factory=lambda: DEFAULT_CLOSENESS)
    credit_points: int = 5
    satisfaction_points: int = 5
    unknown_credit_score: float = 60.0
    unknown_satisfaction: float = 0.5

    def __post_init__(self) -> None:
        if sorted(self.urgency_points) != [1, 2, 3, 4] or min(self.urgency_points.values()) < 1:
            raise ValueError("urgency_points must give ≥ 1 point to each urgency 1–4")
        if sorted(self.closeness_points) != list(LEVELS):
            raise ValueError(f"closeness_points must cover the levels {LEVELS}")
        if min(self.closeness_points.values()) < 1:
            raise ValueError("closeness points must be ≥ 1")
        if self.waiting_step_days < 1 or self.waiting_cap_steps < 0:
            raise ValueError("waiting_step_days must be ≥ 1 and waiting_cap_steps ≥ 0")
        if min(self.waiting_points_per_step, self.credit_points, self.satisfaction_points) < 0:
            raise ValueError("points must not be negative")
        if min(self.vulnerability_points.values(), default=0) < 0:
            raise ValueError("vulnerability points must not be negative")

    # priority ------------------------------------------------------------------------

    def waiting_steps(self, days: int) -> int:
        return min(days // self.waiting_step_days, self.waiting_cap_steps)

    def vulnerability(self, categories: tuple[str, ...]) -> tuple[int, str | None]:
        """Points of the most vulnerable category and that category (None if no points)."""
        best, which = 0, None
        for c in categories:
            p = self.vulnerability_points.get(c, 0)
            if p > best:
                best, which = p, c
        return best, which

    def priority_parts(self, need: Need) -> PriorityParts:
        vul, category = self.vulnerability(need.categories)
        return PriorityParts(
            urgency=self.urgency_points[need.urgency],
            waiting=self.waiting_steps(need.waiting_days) * self.waiting_points_per_step,
            vulnerability=vul,
            vulnerable_category=category,
            waiting_days=need.waiting_days,
        )

    def priority(self, need: Need) -> int:
        return self.priority_parts(need).total

    # fit -----------------------------------------------------------------------------

    def credit(self, credit_score: float | None) -> int:
        score = self.unknown_credit_score if credit_score is None else credit_score
        return round_half_up(min(100.0, max(0.0, score)) / 100 * self.credit_points)

    def satisfaction(self, satisfaction: float | None) -> int:
        sat = self.unknown_satisfaction if satisfaction is None else satisfaction
        return round_half_up(min(1.0, max(0.0, sat)) * self.satisfaction_points)

    def fit_parts(
        self, closeness_digits: int, credit_score: float | None, satisfaction: float | None
    ) -> FitParts:
        return FitParts(
            closeness_digits=closeness_digits,
            closeness=self.closeness_points[closeness_digits],
            credit=self.credit(credit_score),
            satisfaction=self.satisfaction(satisfaction),
        )


@dataclass(slots=True)
class PriorityParts:
    urgency: int
    waiting: int
    vulnerability: int
    vulnerable_category: str | None
    waiting_days: int

    @property
    def total(self) -> int:
        return self.urgency + self.waiting + self.vulnerability

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "urgency": self.urgency,
            "waiting": self.waiting,
            "waiting_days": self.waiting_days,
            "vulnerability": self.vulnerability,
            "vulnerable_category": self.vulnerable_category,
        }


@dataclass(slots=True)
class FitParts:
    closeness_digits: int
    closeness: int
    credit: int
    satisfaction: int
    _stored: dict[str, object] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def total(self) -> int:
        return self.closeness + self.credit + self.satisfaction

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "region_closeness": self.closeness,
            "covering_prefix_digits": self.closeness_digits,
            "credit": self.credit,
            "satisfaction": self.satisfaction,
        }

    def stored(self) -> dict[str, object]:
        """`as_dict()`, made once and shared by the explanations naming these parts
        (read-only)."""
        if self._stored is None:
            self._stored = self.as_dict()
        return self._stored


@dataclass(frozen=True)
class FairnessCap:
    """No organisation may take more than `max_share` of a region's open needs for an item.

    The region is the first `region_digits` digits of the need's code (6 = county). The cap
    of organisation *o* for item *s* in region *R* is
    ``max(minimum, floor(max_share × open needs for s in R))``, fixed before solving, so it
    is an arc capacity and the flow stays exact. (A share of the *resulting* assignments
    would be a ratio constraint, not a flow; a cap across items would cross the per-item
    capacities and make it a multi-commodity problem.)
    """

    max_share: float
    region_digits: int = 6
    minimum: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.max_share <= 1:
            raise ValueError("max_share must be in (0, 1]")
        if self.region_digits not in LEVELS:
            raise ValueError(f"region_digits must be one of {LEVELS}")
        if self.minimum < 0:
            raise ValueError("minimum must be ≥ 0")

    def cap(self, open_needs: int) -> int:
        return max(self.minimum, math.floor(self.max_share * open_needs + 1e-9))


@dataclass(frozen=True)
class EngineOptions:
    """Switches for tests and benchmarks; the defaults are what the service should use.

    `collapse=False` gives every need its own node, `partition=False` solves one graph and
    `prune=False` keeps every arc (`flow.prune`): all give the same optimum (slower), which
    the tests check. `explain_top` is how many competing candidates an explanation names.
    """

    collapse: bool = True
    partition: bool = True
    prune: bool = True
    explain_top: int = 3
