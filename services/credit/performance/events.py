"""Events of evaluations and credit scores, and the contract facts credit learns from matching.

Published (stream CREDIT):

- `sa.credit.evaluation.recorded` {evaluation_id, contract_id, organisation_id, region_code,
  period, purchaser_score, satisfaction_score (0–100), satisfaction (0–1, this evaluation),
  organisation_satisfaction (0–1, recency-weighted over the organisation's published
  evaluations), third_party_score, responses, weights {purchaser, recipients, third_party,
  rule, local_settings, pack}, total, pass_mark, result, published_at}: a published
  evaluation (评价结果向社会公开); matching uses it as a selection weight. No recipient refs.
- `sa.credit.organisation.rectification_ordered` {organisation_id, decision_version, status,
  sanction: "rectification", sanction_id: null, violation_id: null, evaluation_id,
  contract_id, period, total, pass_mark, reason, summary, legal_basis, starts_on, ends_on:
  null, deadline: null, deciding_authority, decided_at}: an unqualified evaluation orders
  rectification (民发〔2012〕196号 §三(五) 提出整改意见). It changes neither status nor
  `decision_version` (the same shape the sanctions flow uses for its rectification orders).
- `sa.credit.violation.recorded` (payload of services/credit/sanctions/events.py) when
  unqualified results repeat: kind `repeated_unqualified`, under due process.
- `sa.credit.score.changed` {organisation_id, score, grade, version, reason, cause, cause_id,
  old_score, old_grade, computed_at}: `version` counts the organisation's score changes, so
  providers and matching ignore one that arrives late.
- `sa.credit.organisation.admitted | rejected` after a confirmed admission override (四眼),
  built by `services.credit.events.admission_decided` exactly as the automatic review's.

Consumed (stream MATCHING), one durable consumer so a contract's events keep their order:
- `sa.matching.contract.signed | paused | resumed | completed | terminated` {contract_id,
  organisation_id, project_id, region_code, version, period_start?, period_end?} →
  `ContractRecord`, ignoring an event whose `version` is not newer than the record's;
- `sa.matching.service.delivered` {contract_id, recipient_ref, delivered_on, confirmed_at,
  on_time?, due_on?, …} → `ServedRecipient` (deliveries += 1, on time counted);
- `sa.matching.acceptance.published` {contract_id, invited_recipients, …} → a
  `ServedRecipient` for each invited recipient (they were served in the period).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.credit.models import CreditScore, Evaluation, OrganisationRecord, ScoreChange

SERVICE = "credit"


def evaluation_recorded(
    ev: Evaluation, *, pass_mark: float, organisation_satisfaction: float | None
) -> Event:
    satisfaction = None if ev.satisfaction_score is None else round(ev.satisfaction_score / 100, 4)
    return new_event(
        service=SERVICE,
        entity="evaluation",
        verb="recorded",
        subject=ev.id,
        data={
            "evaluation_id": ev.id,
            "contract_id": ev.contract_id,
            "organisation_id": ev.organisation_id,
            "region_code": ev.region_code,
            "period": ev.period,
            "purchaser_score": ev.purchaser_score,
            "satisfaction_score": ev.satisfaction_score,
            "satisfaction": satisfaction,
            "organisation_satisfaction": organisation_satisfaction,
            "third_party_score": ev.third_party_score,
            "responses": ev.responses,
            "weights": ev.weights,
            "total": ev.total,
            "pass_mark": pass_mark,
            "result": ev.result,
            "published_at": ev.published_at,
        },
    )


def rectification_ordered(
    record: OrganisationRecord | None,
    ev: Evaluation,
    *,
    pass_mark: float,
    legal_basis: list[str],
    authority: str,
    at: datetime,
) -> Event:
    reason = (
        f"绩效评价不合格（performance evaluation {ev.period} of contract {ev.contract_id}: "
        f"total {ev.total} below the pass mark {pass_mark}），责令整改"
    )
    return new_event(
        service=SERVICE,
        entity="organisation",
        verb="rectification_ordered",
        subject=ev.organisation_id,
        data={
            "organisation_id": ev.organisation_id,
            "decision_version": record.decision_version if record is not None else 0,
            "status": record.status if record is not None else None,
            "sanction": "rectification",
            "sanction_id": None,
            "violation_id": None,
            "evaluation_id": ev.id,
            "contract_id": ev.contract_id,
            "period": ev.period,
            "total": ev.total,
            "pass_mark": pass_mark,
            "reason": reason,
            "summary": f"责令限期整改: {reason}",
            "legal_basis": legal_basis,
            "starts_on": ev.published_at.date() if ev.published_at else None,
            "ends_on": None,
            "deadline": None,
            "deciding_authority": authority,
            "decided_at": at,
        },
    )


def score_changed(score: CreditScore, change: ScoreChange) -> Event:
    return new_event(
        service=SERVICE,
        entity="score",
        verb="changed",
        subject=score.organisation_id,
        data=score_changed_data(
            organisation_id=score.organisation_id,
            score=score.score,
            grade=score.grade,
            version=score.version,
            reason=change.reason,
            cause=change.cause,
            cause_id=change.cause_id,
            old_score=change.old_score,
            old_grade=change.old_grade,
            computed_at=score.computed_at,
        ),
    )


def score_changed_data(**fields: Any) -> dict[str, Any]:
    """The payload of `sa.credit.score.changed` (also built in bulk by the full recompute)."""
    keys = (
        "organisation_id",
        "score",
        "grade",
        "version",
        "reason",
        "cause",
        "cause_id",
        "old_score",
        "old_grade",
        "computed_at",
    )
    return {k: fields[k] for k in keys}


def score_changed_event(data: dict[str, Any]) -> Event:
    return new_event(
        service=SERVICE,
        entity="score",
        verb="changed",
        subject=str(data["organisation_id"]),
        data=data,
    )


# ------------------------------------------------------------------------------ consumed

CONTRACT_VERBS = ("signed", "paused", "resumed", "completed", "terminated")


async def on_contract_fact(uow: UnitOfWork, event: Event) -> None:
    """One handler for matching's contract, delivery and acceptance events (in stream order)."""
    from services.credit.performance import service

    _, _, entity, verb = event.nats_subject.split(".")
    try:
        if entity == "contract" and verb in CONTRACT_VERBS:
            await service.apply_contract_event(uow, verb=verb, data=event.data, at=event.time)
        elif entity == "service" and verb == "delivered":
            await service.record_delivery(uow, data=event.data)
        elif entity == "acceptance" and verb == "published":
            await service.record_acceptance(uow, data=event.data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"{event.nats_subject} without usable fields: {exc!r}") from exc


subscriptions = [
    Subscription(
        durable="credit-contract-facts",
        stream="MATCHING",
        subjects=[
            *(f"sa.matching.contract.{verb}" for verb in CONTRACT_VERBS),
            "sa.matching.service.delivered",
            "sa.matching.acceptance.published",
        ],
        handler=on_contract_fact,
    )
]
