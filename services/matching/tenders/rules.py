"""Procurement rules of tenders and bids (政府采购规则): pure functions, no I/O.

The numbers come from the pack's `procurement` section, each with its clause, so every
refusal can cite it:
- bid window (等标期): open and invited tender ≥ 20 days (政府采购法 第三十五条);
- evaluation weights (综合评分法): criteria and price sum to 1; the price weight stays inside
  the pack's band for services (10 %–30 %, 财库〔2014〕214号 第二十四条, 财政部令第87号 第五十五条);
- invitation (邀请): ≥ 3 suppliers drawn at random from the qualified (财政部令第87号 第十四条;
  政府采购法 第三十八条(三); 财库〔2014〕214号 第六条); single source names its one supplier;
- opening (开标): fewer valid bids than the method needs → failed (废标, 政府采购法
  第三十六条(一)); after a failed tender the project may be bought by the methods the pack
  allows (政府采购法 第三十七条);
- single source: the justification is publicised ≥ 5 working days before award (政府采购法实施
  条例 第三十八条), counted in PRC working days;
- bidders: admitted (not suspended, exited or blacklisted), covering the region and every item,
  meeting every qualification requirement, invited where the method invites; price ≤ budget.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from libs.common.policy import Citation, PolicyPack
from libs.common.policy.schema import MethodProcurement
from libs.common.workdays import WorkdayCalendar

#: Tender states (OCDS tender status in brackets).
TENDER_STATES = (
    "draft",  # planned
    "bidding",  # active: published, the bid window open or waiting to be opened
    "evaluating",  # active: bids opened, the panel at work
    "awarded",  # complete
    "failed",  # unsuccessful (废标)
    "cancelled",  # cancelled
)
#: States in which a tender still holds its project (another tender of it is refused).
LIVE_STATES = frozenset({"draft", "published", "bidding", "evaluating", "awarded"})
#: States a cancellation may end.
CANCELLABLE_STATES = frozenset({"draft", "published", "bidding", "evaluating"})

ELIGIBLE_STATUS = "admitted"
#: Credit decisions that bar an organisation from the market, and why.
BARRED_STATUSES: dict[str, str] = {
    "suspended": "suspended by credit (暂停)",
    "exited": "exited the market (退出)",
    "blacklisted": "blacklisted (列入不良行为记录名单)",
}

Suppliers = Literal["drawn", "open"]


@dataclass(frozen=True)
class Refusal:
    """One reason a request is refused: the field at fault, why, and the clause if a rule."""

    field: str
    reason: str
    rule: Citation | None = None

    def cited(self) -> str | None:
        return self.rule.cite() if self.rule is not None else None


def procedure(pack: PolicyPack, method: str) -> MethodProcurement:
    """The pack's procedure for a method; `LookupError` for one the pack does not allow."""
    rule = pack.procurement.method(method)
    if rule is None or pack.purchasing_method(method) is None:
        raise LookupError(f"the {pack.province} pack allows no purchasing method {method!r}")
    return rule


# --------------------------------------------------------------------------------------------
# Tender set-up
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    code: str
    name: str
    weight: Decimal


def weight_refusals(
    pack: PolicyPack, criteria: Sequence[Criterion], price_weight: Decimal
) -> list[Refusal]:
    """Quality criteria and price must weigh 1 together, the price inside the pack's band."""
    refusals: list[Refusal] = []
    codes = [c.code for c in criteria]
    if not criteria:
        refusals.append(Refusal("body.criteria", "at least one quality criterion is needed"))
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        refusals.append(Refusal("body.criteria", f"duplicated criterion codes {dupes}"))
    for i, c in enumerate(criteria):
        if c.weight <= 0:
            refusals.append(Refusal(f"body.criteria.{i}.weight", "a criterion weight must be > 0"))
    band = pack.price_weight_band
    if not band.contains(price_weight):
        clause = band.legal_basis[0] if band.legal_basis else band.source
        refusals.append(
            Refusal(
                "body.price_weight",
                f"the price weight {price_weight} is outside the band for services "
                f"[{band.min}, {band.max}]: quality comes first, price may not decide alone",
                clause,
            )
        )
    total = sum((c.weight for c in criteria), Decimal(0)) + price_weight
    if total != Decimal(1):
        refusals.append(
            Refusal(
                "body.criteria",
                f"criteria weights plus the price weight must sum to 1, got {total}",
            )
        )
    return refusals


def bid_window_refusal(
    rule: MethodProcurement, *, published_at: datetime, bid_deadline: datetime
) -> Refusal | None:
    """The deadline must follow publication by the method's minimum window (等标期).

    Counted in calendar days from the moment of publication: a deadline exactly
    `min_bid_days` × 24 h later is allowed, one second earlier is not.
    """
    if bid_deadline <= published_at:
        return Refusal("body.bid_deadline", "the bid deadline must be after publication")
    if rule.min_bid_days is None:
        return None
    earliest = published_at + timedelta(days=rule.min_bid_days)
    if bid_deadline < earliest:
        return Refusal(
            "body.bid_deadline",
            f"{rule.method}: at least {rule.min_bid_days} days from publication to the bid "
            f"deadline; the earliest lawful deadline is {earliest.isoformat()}",
            rule.min_bid_days_source,
        )
    return None


def invitation_refusals(
    rule: MethodProcurement, *, suppliers: Suppliers | None, invited_count: int | None
) -> list[Refusal]:
    """How suppliers are found must fit the method; enough of them must be invited."""
    refusals: list[Refusal] = []
    if rule.suppliers == "open":
        if suppliers == "drawn" or invited_count is not None:
            refusals.append(
                Refusal("body.invited_count", f"{rule.method} is open to every qualified bidder")
            )
        return refusals
    if rule.suppliers == "named":
        if invited_count is not None or suppliers is not None:
            refusals.append(
                Refusal("body.invited_count", "single source names its supplier in single_source")
            )
        return refusals
    if rule.suppliers == "drawn" and suppliers == "open":
        refusals.append(
            Refusal(
                "body.suppliers",
                f"{rule.method} invites suppliers drawn at random",
                rule.min_invited_source,
            )
        )
    if invited_count is not None and rule.min_invited and invited_count < rule.min_invited:
        refusals.append(
            Refusal(
                "body.invited_count",
                f"{rule.method}: at least {rule.min_invited} suppliers must be invited",
                rule.min_invited_source,
            )
        )
    return refusals


def draws_suppliers(rule: MethodProcurement, suppliers: Suppliers | None) -> bool:
    """Whether this tender invites suppliers drawn at random (rather than open to all)."""
    if rule.suppliers == "drawn":
        return True
    if rule.suppliers == "drawn_or_open":
        return suppliers != "open"
    return False


def draw(candidates: Sequence[str], count: int, seed: str) -> list[str]:
    """Draw `count` suppliers at random from the qualified (随机抽取), reproducibly.

    The same seed and the same candidate list give the same draw: the candidates are sorted
    first (so the order they were read in does not matter) and `random.Random(seed)` samples
    them. The order of the result is the order drawn.
    """
    pool = sorted(set(candidates))
    if count > len(pool):
        raise ValueError(f"cannot draw {count} from {len(pool)} candidates")
    return random.Random(seed).sample(pool, count)


def draw_refusal(rule: MethodProcurement, *, candidates: int, wanted: int) -> Refusal | None:
    """Too few qualified suppliers to invite as many as the method needs."""
    if candidates >= wanted:
        return None
    return Refusal(
        "invited",
        f"only {candidates} qualified organisations can be invited; {rule.method} needs {wanted}",
        rule.min_invited_source,
    )


def method_change_refusal(
    *,
    project_method: str,
    method: str,
    reason: str | None,
    failed_method: str | None,
    pack: PolicyPack,
) -> Refusal | None:
    """A tender may use another method than the project intended only with a reason — or
    after a failed tender, by a method the pack allows to follow that failure."""
    if failed_method is not None:
        previous = procedure(pack, failed_method)
        if method != failed_method and method not in previous.after_failure:
            allowed = ", ".join([failed_method, *previous.after_failure])
            return Refusal(
                "body.method",
                f"after a failed {failed_method} the project may be bought again by: {allowed}",
                previous.after_failure_source,
            )
        return None
    if method != project_method and not (reason and reason.strip()):
        return Refusal(
            "body.method_reason",
            f"the project was approved for {project_method}; another method needs a reason",
        )
    return None


def publicity_until(calendar: WorkdayCalendar, rule: MethodProcurement, published_on: date) -> date:
    """Last day of the single-source publicity (公示期): the n-th working day after the day of
    publication (期限从次日起算). Award is allowed only after it (`award_allowed`)."""
    if rule.publicity_working_days is None:
        raise ValueError(f"{rule.method} has no publicity period")
    return calendar.add_workdays(published_on, rule.publicity_working_days)


def award_allowed(until: date | None, today: date) -> bool:
    """True once the publicity period is over: the day after its last day, not before."""
    return until is None or today > until


def requirement_refusals(
    project_requirements: Sequence[str], requested: Sequence[str] | None
) -> list[Refusal]:
    """A tender may add qualification requirements but not drop the project's own."""
    if requested is None:
        return []
    dropped = sorted(set(project_requirements) - set(requested))
    if dropped:
        return [
            Refusal(
                "body.qualification_requirements",
                f"the project requires {dropped}; a tender may add requirements, not drop them",
            )
        ]
    return []


# --------------------------------------------------------------------------------------------
# Bidders
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bidder:
    """What matching knows of an organisation when it bids (from OrganisationView)."""

    organisation_id: str
    registered: bool
    status: str
    service_regions: Sequence[str]
    capacities: Mapping[str, int]
    qualifications: Mapping[str, bool]


@dataclass(frozen=True)
class TenderTerms:
    """What a bidder must meet (from the tender)."""

    method: str
    region_code: str
    service_codes: Sequence[str]
    qualification_requirements: Sequence[str]
    budget_fen: int
    invited: Sequence[str] = field(default_factory=tuple)
    by_invitation: bool = False


def covers_region(service_regions: Sequence[str], region_code: str) -> bool:
    """An organisation serves a region when one of its service areas is a prefix of it."""
    return any(region_code.startswith(s) for s in service_regions if s)


def eligibility_refusals(pack: PolicyPack, bidder: Bidder, terms: TenderTerms) -> list[Refusal]:
    """Why an organisation may not bid (or be invited, or be opened as valid); [] if it may."""
    refusals: list[Refusal] = []
    if bidder.status != ELIGIBLE_STATUS:
        barred = BARRED_STATUSES.get(bidder.status)
        sanctions = pack.sanctions
        rule: Citation | None = None
        if bidder.status == "blacklisted":
            rule = sanctions.legal_basis[0] if sanctions.legal_basis else sanctions.source
        elif barred:
            rule = sanctions.source  # a sanction (失信惩戒) keeps it out of purchases for a time
        refusals.append(
            Refusal(
                "organisation.status",
                f"only admitted organisations may bid; this one is "
                f"{barred or bidder.status + ' (not admitted)'}",
                rule,
            )
        )
    if not bidder.registered or not covers_region(bidder.service_regions, terms.region_code):
        refusals.append(
            Refusal(
                "organisation.service_regions",
                f"the organisation does not serve the tender's region {terms.region_code}",
            )
        )
    missing = [c for c in terms.service_codes if bidder.capacities.get(c, 0) <= 0]
    if missing:
        refusals.append(
            Refusal(
                "organisation.capacities",
                f"the organisation offers no capacity for {missing}",
            )
        )
    for code in terms.qualification_requirements:
        if bidder.qualifications.get(code) is not True:
            condition = pack.admission_condition(code)
            refusals.append(
                Refusal(
                    f"organisation.qualifications.{code}",
                    f"the tender requires {code}"
                    + (f" ({condition.description_zh})" if condition else ""),
                    condition.source if condition else None,
                )
            )
    if terms.by_invitation and bidder.organisation_id not in terms.invited:
        invitation = procedure(pack, terms.method)
        refusals.append(
            Refusal(
                "organisation_id",
                f"{terms.method}: only invited organisations may respond",
                invitation.min_invited_source,
            )
        )
    return refusals


def price_refusal(price_fen: int, budget_fen: int) -> Refusal | None:
    if price_fen <= 0:
        return Refusal("body.price_fen", "the price must be > 0 fen")
    if price_fen > budget_fen:
        return Refusal(
            "body.price_fen", f"the price exceeds the budget of {budget_fen} fen (预算金额)"
        )
    return None


# --------------------------------------------------------------------------------------------
# Opening (开标)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Where a tender goes at opening: `evaluating`, or `failed` with the reason and clause."""

    state: Literal["evaluating", "failed"]
    reason: str | None = None
    rule: Citation | None = None


def opening_outcome(rule: MethodProcurement, valid_bids: int) -> Outcome:
    """Fewer valid bids than the method needs → failed (废标 / 采购失败).

    Competitive consultation may, by 财库〔2014〕214号 第三条 and later notices, go on with two
    suppliers for some services (e.g. government-purchased services funded by a subsidy);
    the platform does not apply those exceptions and fails below three.
    """
    if valid_bids >= rule.min_valid_bids:
        return Outcome("evaluating")
    clause = rule.min_valid_bids_source
    return Outcome(
        "failed",
        f"{valid_bids} valid bid(s); {rule.method} needs at least {rule.min_valid_bids}"
        + (f" ({clause.cite()})" if clause else ""),
        clause,
    )
