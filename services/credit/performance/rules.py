"""Rules of performance evaluations (绩效评价) and credit scores (信用评价), pure: no I/O, no
clock (callers pass "today").

Evaluation. Three parts, each 0–100, weighted by the pack's `evaluation_weights` (purchaser,
recipients, third party; recipients' satisfaction weighs most: 吉民发〔2020〕44号 §四(五)1,
浙民助〔2018〕117号 §二(一)5, 海南省贯彻实施意见 §二(六)):

- recipients' satisfaction: each answer is a level 1–5 (非常不满意 … 非常满意); the part is
  the mean level × 20, the usual conversion of a five-level scale to a hundred-mark score
  (百分制), so 5 → 100, 4 → 80, 3 → 60, 1 → 20;
- total = Σ weight × part, with the parts as published (two decimals), rounded half-up to
  two decimals, so anyone can recompute it from the published figures;
- qualified (合格) iff total ≥ the pack's pass mark (`credit_scoring.pass_mark`, a local
  setting); unqualified → rectification (民发〔2012〕196号 §三(五) 提出整改意见), and
  `repeated_unqualified_count` in a row within the window → a violation under due process.

Score (0–100) and grade, from `credit_scoring` (all local settings, see the pack notes):

    evaluations = (base × base_weight + Σ wᵢ × totalᵢ) / (base_weight + Σ wᵢ),
                  wᵢ = 0.5 ** (age in whole months / half_life_months)
    violations  = − Σ deduction[severity] over violations decided in the last
                  `deduction_months` (none when every sanction of it was overturned on
                  appeal or lifted by credit repair)
    timely      = ± timely_delivery_points by the on-time share against the target, once
                  there are `timely_delivery_min` deliveries (else 0)
    score       = clamp(evaluations + violations + timely, 0, 100)

Each term is rounded to two decimals and `parts["terms"]` holds them with the clamp
adjustment, so the terms add up to the score exactly as shown. Ages count whole months, so a
score moves with time only when a month passes, not every day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from dateutil.relativedelta import relativedelta

from libs.common.policy import EvaluationWeights, PolicyPack
from libs.common.policy.schema import CreditScoringRules

Result = Literal["qualified", "unqualified"]

CENT = Decimal("0.01")
#: Evaluations listed in a score's parts (newest first); `count` says how many counted.
PARTS_ITEMS = 10

# YYYY, YYYY-H1/H2, YYYY-Q1..Q4 or YYYY-MM: the periods contracts are evaluated by.
PERIOD_RE = re.compile(r"^(\d{4})(?:-(H[12]|Q[1-4]|0[1-9]|1[0-2]))?$")


def q2(value: Decimal) -> Decimal:
    """Two decimals, half-up (四舍五入), as published."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def dec(value: float | int | Decimal) -> Decimal:
    """A stored float as the decimal it was written as (0.1 stays 0.1)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


# ------------------------------------------------------------------------------ periods


def period_bounds(period: str) -> tuple[date, date]:
    """The half-open days `[start, end)` of an evaluation period; ValueError if malformed."""
    m = PERIOD_RE.match(period)
    if m is None:
        raise ValueError(f"period {period!r} is not YYYY, YYYY-Hn, YYYY-Qn or YYYY-MM")
    year, part = int(m.group(1)), m.group(2)
    if part is None:
        return date(year, 1, 1), date(year + 1, 1, 1)
    if part.startswith("H"):
        start = date(year, 1 if part == "H1" else 7, 1)
        return start, start + relativedelta(months=6)
    if part.startswith("Q"):
        start = date(year, 3 * (int(part[1]) - 1) + 1, 1)
        return start, start + relativedelta(months=3)
    start = date(year, int(part), 1)
    return start, start + relativedelta(months=1)


def period_within_contract(
    period: str, *, contract_start: date | None, contract_end: date | None
) -> bool:
    """Whether the period overlaps the contract's term (an unknown end is open)."""
    start, end = period_bounds(period)
    if contract_start is not None and end <= contract_start:
        return False
    # A contract's period_end is its last day.
    return not (contract_end is not None and start > contract_end)


# ------------------------------------------------------------------------------ evaluation


def satisfaction_score(levels: Sequence[int]) -> Decimal:
    """Recipients' satisfaction on 0–100: the mean level (1–5) × 20, two decimals."""
    if not levels:
        raise ValueError("no survey responses")
    if any(not 1 <= level <= 5 for level in levels):
        raise ValueError("satisfaction levels are 1–5")
    return q2(Decimal(sum(levels)) * 20 / len(levels))


def required_responses(rules: CreditScoringRules, served: int) -> int:
    """Answers needed to publish: the pack's minimum, or every served recipient when fewer
    were served (a contract that served two people cannot produce three answers), and
    never fewer than one."""
    return max(1, min(rules.min_survey_responses, served))


@dataclass(frozen=True)
class EvaluationTotal:
    purchaser: Decimal
    satisfaction: Decimal
    third_party: Decimal
    weights: dict[str, Decimal]
    contributions: dict[str, Decimal]
    total: Decimal
    result: Result


def evaluation_total(
    weights: EvaluationWeights,
    rules: CreditScoringRules,
    *,
    purchaser: float | Decimal,
    satisfaction: float | Decimal,
    third_party: float | Decimal,
) -> EvaluationTotal:
    """Weighted total of the three parts and whether it passes the pack's mark."""
    parts = {
        "purchaser": q2(dec(purchaser)),
        "recipients": q2(dec(satisfaction)),
        "third_party": q2(dec(third_party)),
    }
    w = {
        "purchaser": weights.purchaser,
        "recipients": weights.recipients,
        "third_party": weights.third_party,
    }
    contributions = {k: w[k] * parts[k] for k in parts}
    total = q2(sum(contributions.values(), Decimal(0)))
    return EvaluationTotal(
        purchaser=parts["purchaser"],
        satisfaction=parts["recipients"],
        third_party=parts["third_party"],
        weights=w,
        contributions=contributions,
        total=total,
        result="qualified" if total >= rules.pass_mark else "unqualified",
    )


def weights_record(pack: PolicyPack) -> dict[str, Any]:
    """The weights as stored with an evaluation and published: numbers, clause, and whether
    they are local settings."""
    w = pack.evaluation_weights
    return {
        "purchaser": str(w.purchaser),
        "recipients": str(w.recipients),
        "third_party": str(w.third_party),
        "rule": w.source.cite(),
        "local_settings": list(w.local_settings),
        "pack": f"{pack.province}@{pack.version}",
    }


def setting_citation(pack: PolicyPack, field: str) -> str:
    """Cite a number of `credit_scoring`: a local setting is named as one, never as the
    document's."""
    rules = pack.credit_scoring
    label = f"credit_scoring.{field} = {getattr(rules, field)}"
    if rules.is_local_setting(field):
        return f"{label}（本地设置，{pack.province}@{pack.version}，非文件规定）"
    return f"{label}（{rules.source.cite()}）"


@dataclass(frozen=True)
class PastResult:
    """A published evaluation of the organisation, for the repeated-unqualified rule."""

    evaluation_id: str
    published_on: date
    result: str


def unqualified_streak(
    rules: CreditScoringRules,
    *,
    today: date,
    history: Sequence[PastResult],
    counted: Iterable[str] = (),
) -> list[str] | None:
    """The evaluations (oldest first) that make a run of `repeated_unqualified_count`
    unqualified results in a row, newest included, all published within the window; None
    when there is no such run.

    `history` is newest first. Evaluations already counted in an earlier
    repeated-unqualified violation end the run: a run records one violation, and the next
    one needs a new run (unqualified 2nd → violation, 3rd → none, 4th → violation).
    """
    done = set(counted)
    oldest_allowed = today - relativedelta(months=rules.repeated_unqualified_window_months)
    run: list[str] = []
    for past in history:
        if (
            past.result != "unqualified"
            or past.evaluation_id in done
            or past.published_on <= oldest_allowed
        ):
            break
        run.append(past.evaluation_id)
        if len(run) == rules.repeated_unqualified_count:
            return list(reversed(run))
    return None


def recent_satisfaction(
    items: Sequence[tuple[date, float]], *, today: date, half_life_months: int
) -> float | None:
    """Recipients' satisfaction of an organisation on 0–1: its evaluations' satisfaction
    parts (0–100), recent ones weighing more (the score's half-life); None without any."""
    weighted = weights = 0.0
    for published_on, score in items:
        w = 0.5 ** (months_between(published_on, today) / half_life_months)
        weighted += w * score
        weights += w
    return round(weighted / weights / 100, 4) if weights else None


# ------------------------------------------------------------------------------ delivery


def delivered_on_time(
    rules: CreditScoringRules,
    *,
    delivered_on: date,
    confirmed_on: date | None,
    on_time: bool | None = None,
    due_on: date | None = None,
) -> bool:
    """Whether a confirmed delivery counts as on time (及时).

    Matching's word wins (`on_time`, or delivered by `due_on`); without one, a session
    confirmed by the recipient within `timely_confirmation_days` of the day it was delivered
    counts as on time. No confirmation day: not on time.
    """
    if on_time is not None:
        return on_time
    if due_on is not None:
        return delivered_on <= due_on
    if confirmed_on is None:
        return False
    return confirmed_on - delivered_on <= timedelta(days=rules.timely_confirmation_days)


def timely_delivery_term(
    rules: CreditScoringRules, *, deliveries: int, on_time: int
) -> tuple[float, dict[str, Any]]:
    """Points for timely delivery and how they were found.

    Linear from −points (none on time) through 0 (on-time share = target) to +points (all
    on time); 0 below `timely_delivery_min` deliveries (too few to judge).
    """
    detail: dict[str, Any] = {"deliveries": deliveries, "on_time": on_time}
    if deliveries < rules.timely_delivery_min:
        detail["applied"] = False
        detail["why"] = f"fewer than {rules.timely_delivery_min} deliveries"
        return 0.0, detail
    share = min(1.0, on_time / deliveries)
    target = float(rules.timely_delivery_target)
    points = float(rules.timely_delivery_points)
    if share >= target:
        term = points * (share - target) / (1 - target)
    else:
        term = -points * (target - share) / target
    detail.update(applied=True, share=round(share, 4), target=target)
    return term, detail


# ------------------------------------------------------------------------------ score


@dataclass(frozen=True)
class EvaluationFact:
    evaluation_id: str
    total: float
    published_on: date


@dataclass(frozen=True)
class Deduction:
    """A decided violation (or a ban decided without one) that takes points off."""

    ref: str  # violation id, or sanction id for a ban without a violation
    kind: str  # violation | sanction
    severity: str
    decided_on: date


@dataclass(frozen=True)
class ScoreResult:
    score: float
    grade: str
    parts: dict[str, Any]

    @property
    def terms(self) -> dict[str, float]:
        terms: dict[str, float] = self.parts.get("terms", {})
        return terms


def months_between(earlier: date, later: date) -> int:
    """Whole months from `earlier` to `later` (0 when `later` is not after it)."""
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    if later.day < earlier.day:
        months -= 1
    return max(0, months)


@dataclass(frozen=True)
class SanctionState:
    """One sanction decided on a violation: when, and whether it still stands."""

    decided_on: date
    state: str


def violation_deduction(
    *, ref: str, severity: str, sanctions: Sequence[SanctionState], kind: str = "violation"
) -> Deduction | None:
    """The deduction of a decided violation, from its sanctions: decided on the first
    decision's day; none when every sanction was overturned on appeal (申诉成立) or lifted by
    credit repair (信用修复), which restore the organisation's credit."""
    standing = [s for s in sanctions if s.state not in ("overturned", "lifted")]
    if not standing:
        return None
    return Deduction(
        ref=ref,
        kind=kind,
        severity=severity,
        decided_on=min(s.decided_on for s in sanctions),
    )


def grade_of(rules: CreditScoringRules, score: float) -> str:
    return rules.grade_of(score)


def compute_score(
    pack: PolicyPack,
    *,
    today: date,
    evaluations: Sequence[EvaluationFact],
    deductions: Sequence[Deduction] = (),
    deliveries: int = 0,
    on_time: int = 0,
) -> ScoreResult:
    """An organisation's score and grade today, with every part that makes it.

    `evaluations` newest first (the parts list the newest `PARTS_ITEMS`).
    """
    rules = pack.credit_scoring
    base = float(rules.base_score)
    base_weight = float(rules.base_weight)
    half_life = rules.half_life_months
    weighted = base * base_weight
    weight_sum = base_weight
    items: list[dict[str, Any]] = []
    for fact in evaluations:
        age = months_between(fact.published_on, today)
        w = 0.5 ** (age / half_life)
        weighted += w * fact.total
        weight_sum += w
        if len(items) < PARTS_ITEMS:
            items.append(
                {
                    "evaluation_id": fact.evaluation_id,
                    "total": fact.total,
                    "age_months": age,
                    "weight": round(w, 4),
                }
            )
    evaluation_term = round(weighted / weight_sum, 2)

    deducted: list[dict[str, Any]] = []
    violation_term = 0.0
    for d in deductions:
        until = d.decided_on + relativedelta(months=rules.deduction_months)
        if not d.decided_on <= today < until:
            continue
        points = float(rules.deductions_by_severity[d.severity])  # type: ignore[index]
        violation_term -= points
        deducted.append(
            {
                d.kind + "_id": d.ref,
                "severity": d.severity,
                "points": -points,
                "decided_on": d.decided_on.isoformat(),
                "until": until.isoformat(),
            }
        )
    violation_term = round(violation_term, 2)

    timely, timely_detail = timely_delivery_term(rules, deliveries=deliveries, on_time=on_time)
    timely = round(timely, 2)

    raw = round(evaluation_term + violation_term + timely, 2)
    score = round(min(100.0, max(0.0, raw)), 2)
    clamp = round(score - raw, 2)
    grade = rules.grade_of(score)
    parts: dict[str, Any] = {
        "terms": {
            "evaluations": evaluation_term,
            "violations": violation_term,
            "timely_delivery": timely,
            "clamp": clamp,
        },
        "evaluations": {
            "count": len(evaluations),
            "base": base,
            "base_weight": base_weight,
            "half_life_months": half_life,
            "newest": items,
        },
        "violations": deducted,
        "timely_delivery": timely_detail,
        **_pack_parts(pack),
    }
    return ScoreResult(score=score, grade=grade, parts=parts)


_PACK_PARTS: dict[tuple[str, str], dict[str, Any]] = {}


def _pack_parts(pack: PolicyPack) -> dict[str, Any]:
    """The parts every score under a pack shares (grades and citations), built once."""
    key = (pack.province, pack.version)
    found = _PACK_PARTS.get(key)
    if found is None:
        rules = pack.credit_scoring
        found = {
            "grade": {
                "thresholds": {g: float(v) for g, v in rules.grade_thresholds.items()},
                "lowest": rules.lowest_grade,
            },
            "rules": score_citations(pack),
        }
        _PACK_PARTS[key] = found
    # Copies: a caller may change its parts without changing every other score's.
    grade = found["grade"]
    return {
        "grade": {"thresholds": dict(grade["thresholds"]), "lowest": grade["lowest"]},
        "rules": list(found["rules"]),
    }


def score_citations(pack: PolicyPack) -> list[str]:
    """What a score rests on: the credit-system clause, the results clause, and the note
    that every number is a local setting of the pack."""
    rules = pack.credit_scoring
    cites = [rules.source.cite()]
    if rules.results_source.cite() not in cites:
        cites.append(rules.results_source.cite())
    cites.append(f"credit_scoring（本地设置，{pack.province}@{pack.version}，非文件规定）")
    return cites


def explain_change(old: ScoreResult | None, new: ScoreResult, reason: str) -> str:
    """One line for the history: the reason and what moved."""
    if old is None:
        return f"{reason}: first score {new.score:.2f} ({new.grade})"
    moved = [
        f"{name} {old.terms.get(name, 0.0):+.2f} → {value:+.2f}"
        for name, value in new.terms.items()
        if round(old.terms.get(name, 0.0) - value, 2) != 0
    ]
    grade = f", grade {old.grade} → {new.grade}" if old.grade != new.grade else ""
    return (
        f"{reason}: {old.score:.2f} → {new.score:.2f}{grade}"
        + (f" ({'; '.join(moved)})" if moved else "")
    )[:2000]
