"""Rules of expert panels, scoring (综合评分法) and award succession: pure, no I/O, no clock.

Panels (评标委员会 / 谈判小组 / 磋商小组):
- size: the smallest lawful panel for the method, odd (单数): ≥ 5 for open and invited tenders
  (财政部令第87号 第四十七条), ≥ 3 for competitive negotiation (政府采购法 第三十八条(一)) and
  consultation (财库〔2014〕214号 第十四条), ≥ 7 for a tender whose budget reaches the pack's
  high-value threshold (采购预算金额1000万元以上, 87号令 第四十七条). The numbers and clauses
  are the pack's `procurement` section.
- who may sit: an expert who is active, available on the draw date (not inside a temporary
  absence), registered in the tender's province, with at least one field among the tender's
  service codes or `evaluation` (评估). A panel of evaluators alone would judge services nobody
  on it practises, so at least one member must have a field among the service codes: when the
  draw reaches the last seat with no such member yet, experts without one are passed over
  (and recorded) until one comes.
- recusal (回避, 政府采购法实施条例 第九条): an expert employed by, director of, or shareholder
  of any bidder at any time in the `recusal_years` (3) before the draw date is excluded and
  the next drawn takes the seat.
- the draw is reproducible: the seed and the candidate list (eligible experts sorted by id) are
  stored; the draw order is `random.Random(seed).sample(candidates, len(candidates))` and the
  members are the first `size` of that order not excluded. `replay_draw` is the auditor's
  re-run from what the panel row stores.

Evaluation (综合评分法, 财政部令第87号 第五十五条):
- criterion score = mean of the panel members' scores (0–100), rounded to 4 places;
- quality score = Σ criterion weight × criterion score, rounded to 4 places;
- price score = lowest valid price ÷ bid price × 100 × price weight, rounded to 4 places, with
  the price weight inside the pack's band for services (10 %–30 %);
- total = quality score + price score. The published (rounded) numbers decide the ranking, so
  anyone can recompute it from the results notice;
- ranking: total, then quality score, then credit score (higher first, unknown last), then a
  deterministic order recorded with the panel (sha256 of the panel seed and the bid id), so no
  name or id is favoured systematically. Never "lowest price wins" (价低者得).

Award succession: the award is offered to the best-ranked bidder not yet offered and still in
good standing; refused or excluded → the next; nobody left → the tender fails.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from libs.common.policy import Citation, PolicyPack

#: The general field every panel may draw on besides the services themselves (评估).
EVALUATION_FIELD = "evaluation"

#: Scores are published with four decimals.
PLACES = Decimal("0.0001")
HUNDRED = Decimal(100)
MIN_SCORE = Decimal(0)
MAX_SCORE = Decimal(100)

#: Standing in the market that still allows an award (credit decisions bar the others).
ELIGIBLE_STATUS = "admitted"


def _q(value: Decimal) -> Decimal:
    return value.quantize(PLACES, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------
# Panel size
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelRule:
    """The smallest lawful panel for a purchase and the clauses behind it."""

    min_size: int
    high_value: bool
    rules: tuple[Citation, ...]

    def cites(self) -> list[str]:
        return [c.cite() for c in self.rules]


def panel_rule(pack: PolicyPack, method: str, budget_fen: int) -> PanelRule:
    """Smallest panel: the method's own (≥ 3 or ≥ 5), ≥ 7 at or above the high-value threshold.

    `LookupError` for a method the pack has no procedure for.
    """
    procurement = pack.procurement
    rule = procurement.method(method)
    if rule is None:
        raise LookupError(f"the {pack.province} pack has no procedure for {method!r}")
    high = procurement.is_high_value(method, budget_fen)
    cites: list[Citation] = []
    if rule.panel_source is not None:
        cites.append(rule.panel_source)
    if high and procurement.high_value_source not in cites:
        cites.append(procurement.high_value_source)
    return PanelRule(
        min_size=procurement.panel_size(method, budget_fen), high_value=high, rules=tuple(cites)
    )


def panel_size_refusal(rule: PanelRule, size: int) -> str | None:
    """Why `size` is not a lawful panel size (odd, at least the minimum); None if it is."""
    if size < rule.min_size:
        what = "a high-value purchase" if rule.high_value else "this method"
        return f"a panel of {size} is too small: {what} needs at least {rule.min_size} members"
    if size % 2 == 0:
        return f"a panel must have an odd number of members (单数), not {size}"
    return None


# --------------------------------------------------------------------------------------------
# Who may sit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Affiliation:
    """A tie between an expert and an organisation over time (任职 / 董事 / 持股)."""

    organisation_uscc: str | None
    organisation_id: str | None
    kind: str
    started_on: date
    ended_on: date | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Affiliation:
        """From the expert view's JSON (dates as ISO strings). `ValueError` if unusable."""
        try:
            started = date.fromisoformat(str(record["started_on"])[:10])
            ended_raw = record.get("ended_on")
            ended = date.fromisoformat(str(ended_raw)[:10]) if ended_raw else None
            uscc = record.get("organisation_uscc")
            org_id = record.get("organisation_id")
            return cls(
                organisation_uscc=str(uscc) if uscc else None,
                organisation_id=str(org_id) if org_id else None,
                kind=str(record["kind"]),
                started_on=started,
                ended_on=ended,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"affiliation without {exc}") from exc


@dataclass(frozen=True)
class Expert:
    """What a draw reads of an expert (from the library view)."""

    expert_id: str
    fields: tuple[str, ...]
    status: str = "active"
    available: bool = True
    unavailable_until: date | None = None
    region_code: str = ""
    affiliations: tuple[Affiliation, ...] = ()


def available_on(expert: Expert, day: date) -> bool:
    """Active, switched on, and not inside a temporary absence that includes `day`."""
    if expert.status != "active" or not expert.available:
        return False
    return expert.unavailable_until is None or expert.unavailable_until < day


def in_item_fields(expert: Expert, service_codes: Collection[str]) -> bool:
    """Whether the expert practises one of the tender's services."""
    return any(f in service_codes for f in expert.fields)


def may_sit(expert: Expert, *, service_codes: Collection[str], province: str, day: date) -> bool:
    """Eligible for the draw: available, in the tender's province, in its fields or evaluation."""
    return (
        available_on(expert, day)
        and expert.region_code.startswith(province)
        and (in_item_fields(expert, service_codes) or EVALUATION_FIELD in expert.fields)
    )


def candidates(
    experts: Iterable[Expert], *, service_codes: Collection[str], province: str, day: date
) -> list[str]:
    """The draw's candidate list: eligible experts' ids, sorted (the order the draw samples)."""
    return sorted(
        e.expert_id
        for e in experts
        if may_sit(e, service_codes=service_codes, province=province, day=day)
    )


def years_before(day: date, years: int) -> date:
    """The same calendar date `years` earlier; 29 February falls back to 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


@dataclass(frozen=True)
class Bidders:
    """Who bid, by library id and credit code (an affiliation may name either)."""

    organisation_ids: frozenset[str]
    usccs: frozenset[str] = frozenset()


def recusal_conflicts(
    affiliations: Iterable[Affiliation],
    bidders: Bidders,
    *,
    on: date,
    years: int,
    relations: Collection[str],
) -> list[Affiliation]:
    """The affiliations that oblige the expert to recuse on `on` (回避).

    One counts when its kind is a recusal relation, it names a bidder (by id or credit code),
    and it existed at some time in the `years` before `on`: it began on or before `on` and is
    open or ended on or after the same date `years` earlier. Ended the day before that → it
    no longer counts.
    """
    cutoff = years_before(on, years)
    return [
        a
        for a in affiliations
        if a.kind in relations
        and (
            (a.organisation_id is not None and a.organisation_id in bidders.organisation_ids)
            or (a.organisation_uscc is not None and a.organisation_uscc in bidders.usccs)
        )
        and a.started_on <= on
        and (a.ended_on is None or a.ended_on >= cutoff)
    ]


# --------------------------------------------------------------------------------------------
# The draw
# --------------------------------------------------------------------------------------------

RECUSED = "recused"
PASSED_OVER = "passed_over"


@dataclass(frozen=True)
class Exclusion:
    """An expert drawn but not seated: recused (with the tie), or passed over for the seat
    kept for a member in the tender's own fields."""

    expert_id: str
    reason: str
    detail: str
    organisation_id: str | None = None
    organisation_uscc: str | None = None
    kind: str | None = None

    def as_record(self) -> dict[str, Any]:
        return {
            "expert_id": self.expert_id,
            "reason": self.reason,
            "detail": self.detail,
            "organisation_id": self.organisation_id,
            "organisation_uscc": self.organisation_uscc,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class PanelDraw:
    size: int
    members: list[str]
    excluded: list[Exclusion]
    eligible: int
    recused: int
    in_fields: int

    @property
    def complete(self) -> bool:
        return len(self.members) == self.size


def draw_order(seed: str, candidate_ids: Sequence[str]) -> list[str]:
    """Every candidate in the order drawn: `random.Random(seed).sample(candidates, n)`."""
    return random.Random(seed).sample(list(candidate_ids), len(candidate_ids))


def draw_panel(
    *,
    seed: str,
    candidate_ids: Sequence[str],
    size: int,
    conflicts: Mapping[str, Sequence[Affiliation]],
    item_experts: Collection[str],
) -> PanelDraw:
    """Seat the first `size` drawn experts who need not recuse, keeping one seat for an expert
    in the tender's own fields (`item_experts`).

    `conflicts` maps an expert id to the ties that oblige recusal (empty or absent: none).
    The result may be short of `size` (`complete` False) when too few experts are eligible.
    """
    members: list[str] = []
    excluded: list[Exclusion] = []
    for expert_id in draw_order(seed, candidate_ids):
        if len(members) == size:
            break
        ties = conflicts.get(expert_id) or ()
        if ties:
            tie = ties[0]
            excluded.append(
                Exclusion(
                    expert_id=expert_id,
                    reason=RECUSED,
                    detail=f"{tie.kind} with a bidder since {tie.started_on.isoformat()}"
                    + (f" until {tie.ended_on.isoformat()}" if tie.ended_on else ""),
                    organisation_id=tie.organisation_id,
                    organisation_uscc=tie.organisation_uscc,
                    kind=tie.kind,
                )
            )
            continue
        last_seat = len(members) == size - 1
        if (
            last_seat
            and expert_id not in item_experts
            and not any(m in item_experts for m in members)
        ):
            excluded.append(
                Exclusion(
                    expert_id=expert_id,
                    reason=PASSED_OVER,
                    detail="the last seat is kept for an expert in the tender's service fields",
                )
            )
            continue
        members.append(expert_id)
    recused = sum(1 for c in candidate_ids if conflicts.get(c))
    in_fields = sum(1 for c in candidate_ids if c in item_experts and not conflicts.get(c))
    return PanelDraw(
        size=size,
        members=members,
        excluded=excluded,
        eligible=len(candidate_ids),
        recused=recused,
        in_fields=in_fields,
    )


def replay_draw(
    *, seed: str, candidate_ids: Sequence[str], size: int, excluded: Collection[str]
) -> list[str]:
    """The auditor's re-run: the first `size` of the draw order not recorded as excluded."""
    return [e for e in draw_order(seed, candidate_ids) if e not in excluded][:size]


# --------------------------------------------------------------------------------------------
# Criteria, weights and score sheets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """A quality criterion of the scoring method (评审因素) and its weight in the total."""

    code: str
    name: str
    weight: Decimal


def criteria_of(raw: Iterable[Mapping[str, Any]]) -> list[Criterion]:
    """The tender's stored criteria [{code, name, weight}]; `ValueError` if unusable."""
    out: list[Criterion] = []
    for item in raw:
        try:
            out.append(
                Criterion(
                    code=str(item["code"]),
                    name=str(item.get("name") or item["code"]),
                    weight=Decimal(str(item["weight"])),
                )
            )
        except (KeyError, InvalidOperation) as exc:
            raise ValueError(f"unusable criterion {item!r}") from exc
    return out


def band_citations(pack: PolicyPack) -> list[Citation]:
    band = pack.price_weight_band
    return [band.source, *band.legal_basis]


def weight_refusals(
    pack: PolicyPack, criteria: Sequence[Criterion], price_weight: Decimal
) -> list[str]:
    """The price weight must lie in the pack's band for services and, with the criteria
    weights, sum to 1 (re-checked at evaluation: the tender checked it when it was set)."""
    refusals: list[str] = []
    band = pack.price_weight_band
    if not band.contains(price_weight):
        refusals.append(
            f"the price weight {price_weight} is outside the band for services "
            f"[{band.min}, {band.max}] (服务项目价格分值占总分值的比重为10%至30%)"
        )
    if not criteria:
        refusals.append("the tender has no quality criteria to score")
    if any(c.weight <= 0 for c in criteria):
        refusals.append("every criterion weight must be > 0")
    total = sum((c.weight for c in criteria), Decimal(0)) + price_weight
    if total != Decimal(1):
        refusals.append(f"criteria weights plus the price weight sum to {total}, not 1")
    return refusals


def sheet_errors(
    criteria: Sequence[Criterion], scores: Mapping[str, Decimal], *, at: str = "body.scores"
) -> list[tuple[str, str]]:
    """(field, reason) for each criterion missing, unknown or scored outside 0–100."""
    errors: list[tuple[str, str]] = []
    codes = [c.code for c in criteria]
    for code in codes:
        if code not in scores:
            errors.append((f"{at}.{code}", "this criterion must be scored"))
    for code, value in scores.items():
        if code not in codes:
            errors.append((f"{at}.{code}", f"not a criterion of this tender ({', '.join(codes)})"))
        elif not MIN_SCORE <= value <= MAX_SCORE:
            errors.append((f"{at}.{code}", f"a score lies in 0–100, got {value}"))
    return errors


@dataclass(frozen=True)
class Sheet:
    """One panel member's scores of one bid."""

    bid_id: str
    expert_id: str
    scores: Mapping[str, Decimal]


def missing_sheets(
    members: Sequence[str], bid_ids: Sequence[str], sheets: Iterable[Sheet]
) -> list[tuple[str, str]]:
    """(expert_id, bid_id) pairs still unscored, in panel order then bid order."""
    done = {(s.expert_id, s.bid_id) for s in sheets}
    return [(m, b) for m in members for b in bid_ids if (m, b) not in done]


# --------------------------------------------------------------------------------------------
# Scoring and ranking (综合评分法)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredBid:
    """A valid bid to rank: its price and the bidder's credit score (for ties)."""

    bid_id: str
    organisation_id: str
    price_fen: int
    credit_score: Decimal | None = None


@dataclass(frozen=True)
class CriterionScore:
    code: str
    name: str
    weight: Decimal
    mean: Decimal
    weighted: Decimal

    def as_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight": str(self.weight),
            "mean": str(self.mean),
            "weighted": str(self.weighted),
        }


@dataclass(frozen=True)
class Result:
    bid_id: str
    organisation_id: str
    price_fen: int
    criteria: tuple[CriterionScore, ...]
    quality_score: Decimal
    price_score: Decimal
    total: Decimal
    credit_score: Decimal | None
    tie_order: str
    rank: int = 0


def criterion_mean(scores: Sequence[Decimal]) -> Decimal:
    """Mean of the members' scores of one criterion, rounded to 4 places (half up)."""
    if not scores:
        raise ValueError("no scores to average")
    with localcontext() as ctx:
        ctx.prec = 28
        return _q(sum(scores, Decimal(0)) / Decimal(len(scores)))


def price_score(*, lowest_fen: int, price_fen: int, price_weight: Decimal) -> Decimal:
    """价格分 = 评标基准价 (lowest valid price) ÷ 投标报价 × 100 × 价格权值, to 4 places."""
    if lowest_fen <= 0 or price_fen <= 0:
        raise ValueError("prices must be positive")
    if price_fen < lowest_fen:
        raise ValueError("the lowest valid price cannot exceed a valid bid's price")
    with localcontext() as ctx:
        ctx.prec = 28
        return _q(Decimal(lowest_fen) / Decimal(price_fen) * HUNDRED * price_weight)


def tie_order(seed: str, bid_id: str) -> str:
    """The last tie-break: a digest of the panel's recorded seed and the bid, not its name."""
    return hashlib.sha256(f"{seed}:{bid_id}".encode()).hexdigest()


def rank_key(r: Result) -> tuple[Decimal, Decimal, int, Decimal, str]:
    credit = r.credit_score if r.credit_score is not None else Decimal(0)
    return (
        -r.total,
        -r.quality_score,
        0 if r.credit_score is not None else 1,
        -credit,
        r.tie_order,
    )


def evaluate(
    *,
    criteria: Sequence[Criterion],
    price_weight: Decimal,
    bids: Sequence[ScoredBid],
    sheets: Iterable[Sheet],
    seed: str,
) -> list[Result]:
    """Score and rank the valid bids; returns them best first with `rank` 1, 2, …

    Every bid must have at least one sheet (the caller checks completeness first).
    """
    if not bids:
        return []
    by_bid: dict[str, list[Sheet]] = {}
    for s in sheets:
        by_bid.setdefault(s.bid_id, []).append(s)
    lowest = min(b.price_fen for b in bids)
    results: list[Result] = []
    for bid in bids:
        bid_sheets = by_bid.get(bid.bid_id, [])
        if not bid_sheets:
            raise ValueError(f"bid {bid.bid_id} has no score sheet")
        parts: list[CriterionScore] = []
        for c in criteria:
            mean = criterion_mean([s.scores[c.code] for s in bid_sheets])
            parts.append(CriterionScore(c.code, c.name, c.weight, mean, _q(c.weight * mean)))
        quality = _q(sum((p.weight * p.mean for p in parts), Decimal(0)))
        price = price_score(lowest_fen=lowest, price_fen=bid.price_fen, price_weight=price_weight)
        results.append(
            Result(
                bid_id=bid.bid_id,
                organisation_id=bid.organisation_id,
                price_fen=bid.price_fen,
                criteria=tuple(parts),
                quality_score=quality,
                price_score=price,
                total=quality + price,
                credit_score=bid.credit_score,
                tie_order=tie_order(seed, bid.bid_id),
            )
        )
    ordered = sorted(results, key=rank_key)
    return [_with_rank(r, i) for i, r in enumerate(ordered, start=1)]


def _with_rank(r: Result, rank: int) -> Result:
    return Result(
        bid_id=r.bid_id,
        organisation_id=r.organisation_id,
        price_fen=r.price_fen,
        criteria=r.criteria,
        quality_score=r.quality_score,
        price_score=r.price_score,
        total=r.total,
        credit_score=r.credit_score,
        tie_order=r.tie_order,
        rank=rank,
    )


# --------------------------------------------------------------------------------------------
# Award succession (中标/成交候选人依次递补)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    """A ranked bid as award succession reads it."""

    rank: int
    bid_id: str
    organisation_id: str


@dataclass(frozen=True)
class Succession:
    """Who gets the next offer (None: nobody left) and who was skipped on the way, why."""

    offer: Ranked | None
    skipped: list[tuple[Ranked, str]] = field(default_factory=list)


def next_offer(
    ranked: Sequence[Ranked],
    *,
    already_offered: Collection[str],
    standing: Mapping[str, str],
) -> Succession:
    """The best-ranked bid not yet offered whose organisation is still admitted.

    `already_offered` holds bid ids that had an offer (refused, excluded …); `standing` maps
    organisation id → market status (missing: unknown, treated as not barred — the bid was
    valid at opening and no decision against the organisation has arrived).
    """
    skipped: list[tuple[Ranked, str]] = []
    for r in sorted(ranked, key=lambda x: x.rank):
        if r.bid_id in already_offered:
            continue
        status = standing.get(r.organisation_id)
        if status is not None and status not in (ELIGIBLE_STATUS, "unknown"):
            skipped.append((r, f"the organisation is {status}"))
            continue
        return Succession(offer=r, skipped=skipped)
    return Succession(offer=None, skipped=skipped)
