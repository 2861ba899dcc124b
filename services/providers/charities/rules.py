"""Policy rules of charity resources (慈善资源), pure: no I/O, no clock.

The platform links recipients' needs with charity aid so that government aid and charity aid
work together (搭建救助对象需求与公益慈善救助帮扶力量对接信息平台, 吉民发〔2018〕21号 §三(五);
Hainan §三(四)). A resource is offered in the vocabulary of the charity's province pack, so that
matching can compare it with needs:

- service codes are items of the province catalogue (服务清单); an item of the negative list
  (不得购买事项, 吉民发〔2020〕44号 §三(二)) is refused citing its clause;
- regions are division codes or prefixes inside the province;
- target categories are the pack's recipient categories (救助对象类别);
- the quantity is a positive integer in its unit, funds in fen (分) so money stays exact;
- the validity window runs forward and has not already ended.

Each refusal is a `FieldError` naming the field (with the list index) plus, where a policy
clause is behind it, the clause as `Citation.cite()` gives it.

The remaining quantity follows matching's allocations: `take` and `give_back` are the
arithmetic (never below 0, never above the quantity offered).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from libs.common.errors import AppError, FieldError, InvalidInput, RuleViolation
from libs.common.policy import PolicyPack
from libs.common.regions import overlaps

KINDS: dict[str, str] = {
    "funds": "资金",
    "goods": "物资",
    "volunteer_hours": "志愿服务时长",
    "services": "服务",
}
FUNDS_UNIT = "fen"  # 分: money is counted in whole fen, never as a float of yuan

#: Statuses in which a resource can still be withdrawn by its charity.
WITHDRAWABLE: frozenset[str] = frozenset({"offered", "exhausted"})

# Division codes nest by prefix: province 2, prefecture 4, county 6, township 9, village 12.


@dataclass
class Refusals:
    """Field errors and the distinct clauses behind them, in the order found."""

    errors: list[FieldError] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)

    def add(self, path: str, reason: str, *clauses: str) -> None:
        self.errors.append(FieldError(path, reason))
        for clause in clauses:
            if clause not in self.clauses:
                self.clauses.append(clause)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def error(self, detail: str) -> AppError:
        """RuleViolation (with `rules`) when a clause refused; plain InvalidInput otherwise."""
        if self.clauses:
            return RuleViolation(
                detail=detail, errors=list(self.errors), extra={"rules": list(self.clauses)}
            )
        return InvalidInput(detail=detail, errors=list(self.errors))


# --------------------------------------------------------------------------------------------
# The offer
# --------------------------------------------------------------------------------------------


def service_refusals(pack: PolicyPack, service_codes: Sequence[str], out: Refusals) -> None:
    """Catalogue items only, each once; a negative-list entry cites its own clause."""
    seen: set[str] = set()
    for i, code in enumerate(service_codes):
        path = f"body.service_codes.{i}"
        entry = pack.negative_entry(code)
        if entry is not None:
            clause = entry.source.cite()
            out.add(
                path,
                f"{code!r} is on the negative list: {entry.description_zh} "
                f"(不得购买事项, {clause})",
                clause,
            )
        elif pack.catalogue_item(code) is None:
            out.add(
                path,
                f"{code!r} is not an item of the {pack.province} catalogue (服务清单); known: "
                + ", ".join(i.code for i in pack.catalogue),
            )
        elif code in seen:
            out.add(path, f"{code!r} is listed twice")
        seen.add(code)


def region_refusals(pack: PolicyPack, regions: Sequence[str], out: Refusals) -> None:
    """Regions lie inside the charity's province, each once (they are search index rows)."""
    seen: set[str] = set()
    for i, code in enumerate(regions):
        path = f"body.regions.{i}"
        if not code.startswith(pack.province_code):
            out.add(path, f"{code} is outside province {pack.province_code} of the charity")
        elif code in seen:
            out.add(path, f"{code} is listed twice")
        seen.add(code)


def category_refusals(pack: PolicyPack, categories: Sequence[str], out: Refusals) -> None:
    """Target groups are the pack's recipient categories (救助对象类别), each once."""
    seen: set[str] = set()
    for i, code in enumerate(categories):
        path = f"body.target_categories.{i}"
        if pack.category(code) is None:
            out.add(
                path,
                f"{code!r} is not a recipient category of the {pack.province} pack; known: "
                + ", ".join(c.code for c in pack.recipient_categories),
            )
        elif code in seen:
            out.add(path, f"{code!r} is listed twice")
        seen.add(code)


def quantity_refusals(kind: str, quantity: int, unit: str, out: Refusals) -> None:
    if quantity <= 0:
        out.add("body.quantity", f"the quantity must be a positive integer, got {quantity}")
    if kind == "funds" and unit != FUNDS_UNIT:
        out.add("body.unit", f"funds are counted in fen (分): the unit must be {FUNDS_UNIT!r}")


def window_refusals(valid_from: date, valid_until: date, today: date, out: Refusals) -> None:
    """valid_from ≤ valid_until (both inclusive), and the window must not be over already."""
    if valid_until < valid_from:
        out.add("body.valid_until", f"{valid_until} is before valid_from {valid_from}")
    elif valid_until < today:
        out.add("body.valid_until", f"the window ended on {valid_until}, before today {today}")


def offer_refusals(
    pack: PolicyPack,
    *,
    kind: str,
    service_codes: Sequence[str],
    regions: Sequence[str],
    target_categories: Sequence[str],
    quantity: int,
    unit: str,
    valid_from: date,
    valid_until: date,
    today: date,
) -> Refusals:
    """Every rule an offer must meet under `pack` (the charity's province), all at once."""
    out = Refusals()
    if kind not in KINDS:
        out.add("body.kind", f"{kind!r} is not a resource kind; known: {', '.join(KINDS)}")
    service_refusals(pack, service_codes, out)
    region_refusals(pack, regions, out)
    category_refusals(pack, target_categories, out)
    quantity_refusals(kind, quantity, unit, out)
    window_refusals(valid_from, valid_until, today, out)
    return out


# --------------------------------------------------------------------------------------------
# Remaining quantity (matching's allocations)
# --------------------------------------------------------------------------------------------


class OverAllocation(ValueError):
    """More was allocated than remains: matching must never promise units twice."""


def take(remaining: int, amount: int) -> int:
    """The remaining quantity after allocating `amount`; refuses to go below 0."""
    if amount <= 0:
        raise ValueError(f"an allocation must be positive, got {amount}")
    if amount > remaining:
        raise OverAllocation(f"allocating {amount} exceeds the remaining {remaining}")
    return remaining - amount


def give_back(remaining: int, amount: int, quantity: int) -> int:
    """The remaining quantity after releasing `amount`, never above the quantity offered."""
    if amount <= 0:
        raise ValueError(f"a release must be positive, got {amount}")
    return min(quantity, remaining + amount)


def status_after_movement(status: str, remaining: int) -> str:
    """An offered resource that reaches 0 is exhausted; an exhausted one that gets units back
    is offered again. Withdrawn and expired resources keep their status: the movement is
    recorded (it happened in matching) but does not bring them back."""
    if status == "offered" and remaining == 0:
        return "exhausted"
    if status == "exhausted" and remaining > 0:
        return "offered"
    return status


# --------------------------------------------------------------------------------------------
# Regions (the predicates search runs in SQL)
# --------------------------------------------------------------------------------------------


def reaches(regions: Iterable[str], scope: str) -> bool:
    """A resource reaches `scope` when one of its regions covers it or lies inside it."""
    return any(overlaps(r, scope) for r in regions)
