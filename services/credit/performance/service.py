"""Use cases of admission overrides, contract facts, evaluations and credit scores (no HTTP).

Concurrency: every use case that changes what an organisation's score is computed from, or
its admission standing, first locks the organisation's `OrganisationRecord` row (SELECT …
FOR UPDATE on PostgreSQL; SQLite has one writer at a time), as the sanctions flow does, so a
score is always computed from a consistent picture and versions never collide. Survey
answers are guarded by the table's unique constraint (one per recipient per evaluation) and
by a conditional UPDATE of the evaluation (`state = 'open'`), so a duplicate or an answer
racing a publication is refused, never counted twice.

"Now" is passed in by the caller (the app's clock), never read here, except as the default
of `recompute_score` for callers without a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import JSON, Text, bindparam, case, cast, func, insert, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common.auth import Principal, Role
from libs.common.clock import china_day
from libs.common.db import Database
from libs.common.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
    invalid,
)
from libs.common.events import UnitOfWork
from libs.common.events.envelope import encode_json
from libs.common.ids import new_id
from libs.common.pagination import fetch_page
from libs.common.policy import PolicyPack, calendar_for, pack_for_region
from libs.common.workdays import UnknownCalendarYear
from services.credit import events as admission_events
from services.credit.models import (
    AdmissionOverride,
    AdmissionReview,
    BlacklistEntry,
    ContractRecord,
    CreditScore,
    Evaluation,
    OrganisationRecord,
    Sanction,
    ScoreChange,
    ServedRecipient,
    SurveyResponse,
    Violation,
    metadata,
)
from services.credit.performance import events, rules
from services.credit.performance.schemas import (
    EvaluationCreate,
    EvaluationPublic,
    EvaluationPublished,
    OverrideCreate,
    PartScore,
    RecomputeReport,
    ScoreChangePublic,
    ScoreDetail,
    ScorePublic,
    SurveyCreate,
)
from services.credit.rules import ban_legal_basis
from services.credit.sanctions import events as sanction_events
from services.credit.sanctions import rules as sanction_rules

log = logging.getLogger(__name__)

SYSTEM_EVALUATION = "system:performance-evaluation"
CHINA_OFFSET = timedelta(hours=8)
#: Evaluation rows fetched at a time by the full recompute (bounds its memory).
STREAM_ROWS = 2000
#: Contract verbs → the state credit records (matching's own state names).
CONTRACT_STATES: dict[str, str] = {
    "signed": "active",
    "paused": "paused",
    "resumed": "active",
    "completed": "completed",
    "terminated": "terminated",
}


# ------------------------------------------------------------------------------ helpers


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; SQLite hands back naive ones, which are stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _pack(region_code: str) -> PolicyPack | None:
    try:
        return pack_for_region(region_code)
    except (LookupError, ValueError):
        return None


def _not_found(what: str, ident: str) -> NotFound:
    return NotFound(detail=f"No {what} {ident}.")


async def _lock_record(uow: UnitOfWork, organisation_id: str) -> OrganisationRecord | None:
    """The organisation's credit record, locked for the rest of the transaction."""
    result = await uow.session.execute(
        select(OrganisationRecord)
        .where(OrganisationRecord.organisation_id == organisation_id)
        .with_for_update()
    )
    return result.scalar_one_or_none()


def _official(actor: Principal, region_code: str) -> bool:
    return actor.role != Role.organisation and actor.covers(region_code)


# ------------------------------------------------------------------------------ overrides


async def _latest_review(session: AsyncSession, organisation_id: str) -> AdmissionReview | None:
    return (
        await session.execute(
            select(AdmissionReview)
            .where(AdmissionReview.organisation_id == organisation_id)
            .order_by(col(AdmissionReview.decided_at).desc(), col(AdmissionReview.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def _refuse_if_banned(uow: UnitOfWork, record: OrganisationRecord, today: date) -> None:
    """An override may not admit an organisation under a ban in force (禁止参与期限内)."""
    entry = (
        await uow.session.execute(
            select(BlacklistEntry)
            .where(
                BlacklistEntry.uscc == record.uscc,
                BlacklistEntry.state == "listed",
                col(BlacklistEntry.starts_on) <= today,
                col(BlacklistEntry.ends_on) > today,
            )
            .order_by(col(BlacklistEntry.ends_on).desc(), col(BlacklistEntry.id))
            .limit(1)
        )
    ).scalar_one_or_none()
    if entry is None:
        return
    pack = _pack(record.region_code)
    basis = list(entry.legal_basis) or (ban_legal_basis(pack) if pack is not None else [])
    raise RuleViolation(
        detail=(
            f"The organisation is banned until {sanction_rules.last_day(entry.ends_on)} "
            f"(blacklist entry {entry.id}); an override cannot admit it while the ban is in "
            "force."
        ),
        errors=[FieldError("body.outcome", "a ban in force forbids admission")],
        extra={
            "rules": basis,
            "blacklist_id": entry.id,
            "ban_ends_on": entry.ends_on.isoformat(),
        },
    )


async def propose_override(
    *, uow: UnitOfWork, organisation_id: str, data: OverrideCreate, actor: Principal, now: datetime
) -> AdmissionOverride:
    """An operator proposes to override the admission outcome (准入复核), with a written reason;
    it takes effect only when a second operator confirms it (四眼原则)."""
    record = await _lock_record(uow, organisation_id)
    if record is None or not actor.covers(record.region_code):
        raise _not_found("organisation known to credit", organisation_id)
    review = await _latest_review(uow.session, organisation_id)
    if review is None:
        raise Conflict(detail="The organisation has no admission review yet to override.")
    if review.outcome == data.outcome:
        raise Conflict(
            detail=f"The admission outcome is already {data.outcome}; nothing to override.",
            extra={"review_id": review.id},
        )
    pending = (
        await uow.session.execute(
            select(AdmissionOverride).where(
                AdmissionOverride.organisation_id == organisation_id,
                AdmissionOverride.state == "proposed",
            )
        )
    ).scalar_one_or_none()
    if pending is not None:
        raise Conflict(
            detail="An override of this organisation awaits a second operator already.",
            extra={"override_id": pending.id},
        )
    if data.outcome == "admitted":
        await _refuse_if_banned(uow, record, china_day(now))
    override = AdmissionOverride(
        id=new_id(),
        organisation_id=organisation_id,
        review_id=review.id,
        outcome=data.outcome,
        reason=data.reason,
        state="proposed",
        proposed_by=actor.subject,
        proposed_at=now,
    )
    uow.session.add(override)
    await uow.commit()
    log.info(
        "admission override %s proposed by %s for %s: %s",
        override.id,
        actor.subject,
        organisation_id,
        data.outcome,
    )
    return override


def _override_reason(override: AdmissionOverride) -> dict[str, Any]:
    return {
        "condition": "override",
        "met": True,
        "rule": "准入复核，四眼原则（两名操作员：提议与确认）",
        "description": override.reason,
        "override_id": override.id,
        "outcome": override.outcome,
        "proposed_by": override.proposed_by,
        "confirmed_by": override.confirmed_by,
    }


@dataclass
class OverrideOutcome:
    override: AdmissionOverride
    status: str | None = None
    review: AdmissionReview | None = None


async def decide_override(
    *,
    uow: UnitOfWork,
    override_id: str,
    confirm: bool,
    note: str | None,
    actor: Principal,
    now: datetime,
) -> OverrideOutcome:
    """A second operator confirms (the override takes effect) or rejects a proposed override.

    Confirmed: a new admission review records the outcome with every original reason plus
    the override; the status follows unless a sanction in force imposes a heavier one (a
    suspended organisation stays suspended; its admission standing is what it returns to),
    and then `sa.credit.organisation.admitted|rejected` is emitted with the next
    `decision_version`, as the automatic review does.
    """
    found = await uow.session.get(AdmissionOverride, override_id)
    if found is None:
        raise _not_found("admission override", override_id)
    record = await _lock_record(uow, found.organisation_id)
    override = await uow.session.get(AdmissionOverride, override_id, populate_existing=True)
    if record is None or override is None or not actor.covers(record.region_code):
        raise _not_found("admission override", override_id)
    if actor.subject == override.proposed_by:
        raise Forbidden(
            detail="四眼原则: the operator who proposed an override may not confirm or reject "
            "it; a second operator must.",
            extra={"proposed_by": override.proposed_by},
        )
    if override.state != "proposed":
        raise Conflict(detail=f"The override is already {override.state}.")
    override.confirmed_by = actor.subject
    override.confirmed_at = now
    override.confirm_note = note
    if not confirm:
        override.state = "rejected"
        await uow.commit()
        return OverrideOutcome(override=override, status=record.status)
    today = china_day(now)
    if override.outcome == "admitted":
        await _refuse_if_banned(uow, record, today)
    override.state = "confirmed"
    latest = await _latest_review(uow.session, record.organisation_id)
    kept = [r for r in (latest.reasons if latest else []) if r.get("condition") != "override"]
    pack = _pack(record.region_code)
    review = AdmissionReview(
        id=new_id(),
        organisation_id=record.organisation_id,
        outcome=override.outcome,
        reasons=[*kept, _override_reason(override)],
        pack=f"{pack.province}@{pack.version}" if pack else (latest.pack if latest else ""),
        decided_by=actor.subject,
        decided_at=now,
    )
    uow.session.add(review)
    await uow.session.flush()
    # Imported here: the sanctions use cases call back into this module (recompute_score).
    from services.credit.sanctions.service import sanction_standing

    imposed = await sanction_standing(uow, record.organisation_id, today)
    if imposed is None:
        record.status = override.outcome
        record.decision_version += 1
        record.updated_at = now
        summary = (
            f"admission override ({override.outcome}) proposed by {override.proposed_by}, "
            f"confirmed by {actor.subject}: {override.reason}"
        )
        uow.emit(admission_events.admission_decided(record, review, summary))
    await uow.commit()
    log.info(
        "admission override %s confirmed by %s: %s is %s",
        override.id,
        actor.subject,
        record.organisation_id,
        record.status,
    )
    return OverrideOutcome(override=override, status=record.status, review=review)


async def get_override(*, db: Database, override_id: str, actor: Principal) -> AdmissionOverride:
    async with db.session() as session:
        override = await session.get(AdmissionOverride, override_id)
        record = (
            await session.get(OrganisationRecord, override.organisation_id) if override else None
        )
        if override is None or record is None or not _official(actor, record.region_code):
            raise _not_found("admission override", override_id)
        return override


async def list_overrides(
    *, db: Database, organisation_id: str, actor: Principal, limit: int, offset: int
) -> tuple[list[AdmissionOverride], int]:
    async with db.session() as session:
        record = await session.get(OrganisationRecord, organisation_id)
        if record is None or not _official(actor, record.region_code):
            raise _not_found("organisation known to credit", organisation_id)
        return await fetch_page(
            session,
            select(AdmissionOverride).where(AdmissionOverride.organisation_id == organisation_id),
            order_by=[col(AdmissionOverride.proposed_at).desc(), col(AdmissionOverride.id)],
            limit=limit,
            offset=offset,
        )


# ------------------------------------------------------------------------------ contract facts


def _day(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return date.fromisoformat(str(value)[:10])


def _instant(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return utc(value)
    return utc(datetime.fromisoformat(str(value)))


async def apply_contract_event(
    uow: UnitOfWork, *, verb: str, data: dict[str, Any], at: datetime
) -> ContractRecord | None:
    """Matching's contract event → credit's `ContractRecord`; None when stale (its
    `version` is not newer than the one recorded)."""
    contract_id = str(data["contract_id"])
    version = int(data["version"])
    record = await uow.session.get(ContractRecord, contract_id)
    if record is not None and record.version >= version:
        return None
    if record is None:
        record = ContractRecord(
            contract_id=contract_id,
            organisation_id=str(data["organisation_id"]),
            region_code=str(data["region_code"]),
            state=CONTRACT_STATES[verb],
            updated_at=at,
        )
        uow.session.add(record)
    record.organisation_id = str(data["organisation_id"])
    record.region_code = str(data["region_code"])
    if data.get("project_id") is not None:
        record.project_id = str(data["project_id"])
    record.state = CONTRACT_STATES[verb]
    if "period_start" in data:
        record.period_start = _day(data.get("period_start"))
    if "period_end" in data:
        record.period_end = _day(data.get("period_end"))
    record.version = version
    record.updated_at = at
    return record


async def _pack_of_contract(
    session: AsyncSession, contract_id: str, organisation_id: str | None
) -> PolicyPack | None:
    contract = await session.get(ContractRecord, contract_id)
    if contract is not None:
        return _pack(contract.region_code)
    if organisation_id:
        record = await session.get(OrganisationRecord, organisation_id)
        if record is not None:
            return _pack(record.region_code)
    return None


async def record_delivery(uow: UnitOfWork, *, data: dict[str, Any]) -> None:
    """A confirmed delivery (服务记录) → the recipient was served under the contract."""
    if data.get("contract_id") is None:
        return  # a charity resource's delivery: no contract to evaluate
    contract_id = str(data["contract_id"])
    ref = str(data["recipient_ref"])
    delivered_on = _day(data["delivered_on"])
    if delivered_on is None:
        raise ValueError("delivered_on is empty")
    confirmed_at = _instant(data.get("confirmed_at"))
    pack = await _pack_of_contract(uow.session, contract_id, data.get("organisation_id"))
    if pack is None:
        # The contract's own event comes first on this consumer; an unknown contract is a
        # gap worth retrying (and, if it persists, a dead letter with this reason).
        raise RuntimeError(f"delivery for contract {contract_id} unknown to credit")
    explicit = data.get("on_time")
    ok = rules.delivered_on_time(
        pack.credit_scoring,
        delivered_on=delivered_on,
        confirmed_on=china_day(confirmed_at) if confirmed_at else None,
        on_time=None if explicit is None else bool(explicit),
        due_on=_day(data.get("due_on")),
    )
    # Atomic increments: two replicas applying deliveries of one recipient never lose one.
    table = metadata.tables[str(ServedRecipient.__tablename__)]
    first, last = table.c.first_served_on, table.c.last_served_on
    result = await uow.session.execute(
        update(table)
        .where(table.c.contract_id == contract_id, table.c.recipient_ref == ref)
        .values(
            deliveries=table.c.deliveries + 1,
            on_time=table.c.on_time + (1 if ok else 0),
            first_served_on=case(
                (or_(first.is_(None), first > delivered_on), delivered_on), else_=first
            ),
            last_served_on=case(
                (or_(last.is_(None), last < delivered_on), delivered_on), else_=last
            ),
        )
    )
    if getattr(result, "rowcount", 0):
        return
    uow.session.add(
        ServedRecipient(
            contract_id=contract_id,
            recipient_ref=ref,
            first_served_on=delivered_on,
            last_served_on=delivered_on,
            deliveries=1,
            on_time=1 if ok else 0,
        )
    )


async def record_acceptance(uow: UnitOfWork, *, data: dict[str, Any]) -> None:
    """A published acceptance (履约验收): every invited recipient was served in the period."""
    contract_id = str(data["contract_id"])
    refs = sorted({str(r) for r in (data.get("invited_recipients") or [])})
    if not refs:
        return
    known = set(
        (
            await uow.session.execute(
                select(ServedRecipient.recipient_ref).where(
                    ServedRecipient.contract_id == contract_id,
                    col(ServedRecipient.recipient_ref).in_(refs),
                )
            )
        )
        .scalars()
        .all()
    )
    for ref in refs:
        if ref not in known:
            uow.session.add(ServedRecipient(contract_id=contract_id, recipient_ref=ref))


# ------------------------------------------------------------------------------ evaluations


def evaluation_to_public(ev: Evaluation, pack: PolicyPack | None) -> EvaluationPublic:
    out = EvaluationPublic.model_validate(ev)
    if pack is not None:
        out.pass_mark = float(pack.credit_scoring.pass_mark)
        out.rules = [
            pack.evaluation_weights.source.cite(),
            rules.setting_citation(pack, "pass_mark"),
            rules.setting_citation(pack, "min_survey_responses"),
        ]
    return out


async def _visible_evaluation(
    session: AsyncSession, actor: Principal, evaluation_id: str
) -> Evaluation:
    ev = await session.get(Evaluation, evaluation_id)
    if ev is None or not _can_read(actor, ev):
        raise _not_found("evaluation", evaluation_id)
    return ev


def _can_read(actor: Principal, ev: Evaluation) -> bool:
    if actor.role == Role.organisation:
        return actor.org_id == ev.organisation_id
    return actor.covers(ev.region_code)


async def open_evaluation(
    *, uow: UnitOfWork, data: EvaluationCreate, actor: Principal, now: datetime
) -> EvaluationPublic:
    """Open the evaluation of one contract period; one per (contract, period) — a second is
    409 (the table's unique constraint decides, so two at once cannot both succeed)."""
    contract = await uow.session.get(ContractRecord, data.contract_id)
    if contract is None or not actor.covers(contract.region_code):
        raise _not_found("contract known to credit", data.contract_id)
    if not rules.period_within_contract(
        data.period, contract_start=contract.period_start, contract_end=contract.period_end
    ):
        raise invalid(
            "body.period",
            f"the period does not overlap the contract's term "
            f"({contract.period_start} – {contract.period_end})",
        )
    pack = _pack(contract.region_code)
    if pack is None:
        raise invalid("body.contract_id", f"no policy pack for region {contract.region_code}")
    ev = Evaluation(
        id=new_id(),
        contract_id=contract.contract_id,
        organisation_id=contract.organisation_id,
        region_code=contract.region_code,
        period=data.period,
        weights=rules.weights_record(pack),
        state="open",
        pack=f"{pack.province}@{pack.version}",
        created_at=now,
    )
    uow.session.add(ev)
    try:
        await uow.commit()
    except IntegrityError:
        await uow.session.rollback()
        existing = (
            await uow.session.execute(
                select(Evaluation.id).where(
                    Evaluation.contract_id == data.contract_id, Evaluation.period == data.period
                )
            )
        ).scalar_one_or_none()
        raise Conflict(
            detail=f"Contract {data.contract_id} already has an evaluation for {data.period}.",
            extra={"evaluation_id": existing},
        ) from None
    return evaluation_to_public(ev, pack)


async def set_part_score(
    *,
    uow: UnitOfWork,
    evaluation_id: str,
    part: Literal["purchaser", "third_party"],
    data: PartScore,
    actor: Principal,
) -> EvaluationPublic:
    """The purchaser's or the third party's score, while the evaluation is open."""
    ev = (
        await uow.session.execute(
            select(Evaluation).where(Evaluation.id == evaluation_id).with_for_update()
        )
    ).scalar_one_or_none()
    if ev is None or not actor.covers(ev.region_code):
        raise _not_found("evaluation", evaluation_id)
    if ev.state != "open":
        raise Conflict(detail="The evaluation is published; its scores are final.")
    score = float(rules.q2(rules.dec(data.score)))
    if part == "purchaser":
        ev.purchaser_score, ev.purchaser_by = score, actor.subject
    else:
        ev.third_party_score, ev.third_party_by = score, actor.subject
    await uow.commit()
    return evaluation_to_public(ev, _pack(ev.region_code))


async def add_survey_response(
    *, uow: UnitOfWork, evaluation_id: str, data: SurveyCreate, actor: Principal, now: datetime
) -> SurveyResponse:
    """Record a recipient's satisfaction answer: only from a recipient actually served under
    the evaluated contract (422 naming `recipient_ref`), one each (409)."""
    ev = await uow.session.get(Evaluation, evaluation_id)
    if ev is None or not actor.covers(ev.region_code):
        raise _not_found("evaluation", evaluation_id)
    served = await uow.session.get(ServedRecipient, (ev.contract_id, data.recipient_ref))
    if served is None:
        pack = _pack(ev.region_code)
        raise RuleViolation(
            detail="Only recipients actually served under the evaluated contract may answer its "
            "satisfaction survey (服务对象满意度评价).",
            errors=[
                FieldError(
                    "body.recipient_ref",
                    f"recipient {data.recipient_ref} was not served under contract "
                    f"{ev.contract_id}",
                )
            ],
            extra={"rules": [pack.evaluation_weights.source.cite()] if pack else []},
        )
    # Counts the answer only while the evaluation is open; racing a publication, it waits
    # for the publication's row lock and then finds the evaluation closed.
    counted = await uow.session.execute(
        update(Evaluation)
        .where(col(Evaluation.id) == evaluation_id, col(Evaluation.state) == "open")
        .values(responses=col(Evaluation.responses) + 1)
    )
    if not getattr(counted, "rowcount", 0):
        raise Conflict(detail="The evaluation is published; no more answers are taken.")
    response = SurveyResponse(
        id=new_id(),
        evaluation_id=evaluation_id,
        recipient_ref=data.recipient_ref,
        satisfaction=data.satisfaction,
        answers=data.answers,
        channel=data.channel,
        recorded_by=actor.subject,
        submitted_at=now,
    )
    uow.session.add(response)
    try:
        await uow.commit()
    except IntegrityError:
        raise Conflict(
            detail="This recipient has answered this evaluation's survey already; one answer each.",
            errors=[FieldError("body.recipient_ref", "already answered")],
        ) from None
    return response


@dataclass
class Publication:
    evaluation: Evaluation
    pack: PolicyPack
    rectification_ordered: bool
    violation: Violation | None


async def _organisation_history(
    session: AsyncSession, ev: Evaluation
) -> tuple[list[rules.PastResult], list[tuple[date, float]]]:
    """The organisation's published evaluations, newest first, this one at the head."""
    rows = (
        await session.execute(
            select(
                Evaluation.id,
                Evaluation.published_at,
                Evaluation.result,
                Evaluation.satisfaction_score,
            )
            .where(
                Evaluation.organisation_id == ev.organisation_id,
                Evaluation.state == "published",
                Evaluation.id != ev.id,
            )
            .order_by(col(Evaluation.published_at).desc(), col(Evaluation.id).desc())
        )
    ).all()
    assert ev.published_at is not None
    history = [rules.PastResult(ev.id, china_day(ev.published_at), str(ev.result))]
    satisfaction: list[tuple[date, float]] = []
    if ev.satisfaction_score is not None:
        satisfaction.append((china_day(ev.published_at), ev.satisfaction_score))
    for eid, published_at, result, sat in rows:
        if published_at is None:
            continue
        history.append(rules.PastResult(str(eid), china_day(published_at), str(result)))
        if sat is not None:
            satisfaction.append((china_day(published_at), float(sat)))
    return history, satisfaction


async def _counted_evaluations(session: AsyncSession, organisation_id: str) -> set[str]:
    """Evaluations already counted in a repeated-unqualified violation of the organisation."""
    rows = (
        await session.execute(
            select(Violation.evidence).where(
                Violation.organisation_id == organisation_id,
                Violation.kind == "repeated_unqualified",
            )
        )
    ).scalars()
    return {
        str(item.get("reference"))
        for evidence in rows
        for item in (evidence or [])
        if isinstance(item, dict) and item.get("kind") == "evaluation"
    }


async def publish_evaluation(
    *, uow: UnitOfWork, evaluation_id: str, actor: Principal, now: datetime
) -> Publication:
    """Publish an evaluation once its three parts exist (结果向社会公开).

    Unqualified: rectification is ordered; the `repeated_unqualified_count`-th unqualified
    result in a row within the pack's window also records a violation (general severity)
    under due process, for the sanctions flow to decide. The organisation's score is
    recomputed in the same transaction.
    """
    found = await uow.session.get(Evaluation, evaluation_id)
    if found is None or not actor.covers(found.region_code):
        raise _not_found("evaluation", evaluation_id)
    record = await _lock_record(uow, found.organisation_id)
    ev = (
        await uow.session.execute(
            select(Evaluation)
            .where(Evaluation.id == evaluation_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if ev.state != "open":
        raise Conflict(detail="The evaluation is published already.")
    pack = _pack(ev.region_code)
    if pack is None:
        raise Conflict(detail=f"No policy pack for region {ev.region_code}.")
    scoring = pack.credit_scoring
    levels = [
        int(v)
        for v in (
            await uow.session.execute(
                select(SurveyResponse.satisfaction).where(
                    SurveyResponse.evaluation_id == evaluation_id
                )
            )
        ).scalars()
    ]
    served = int(
        (
            await uow.session.execute(
                select(func.count())
                .select_from(ServedRecipient)
                .where(ServedRecipient.contract_id == ev.contract_id)
            )
        ).scalar_one()
    )
    required = rules.required_responses(scoring, served)
    missing: list[str] = []
    if ev.purchaser_score is None:
        missing.append("purchaser_score")
    if ev.third_party_score is None:
        missing.append("third_party_score")
    if len(levels) < required:
        missing.append(f"survey_responses ({len(levels)} of {required})")
    if missing:
        raise Conflict(
            detail=f"The evaluation cannot be published yet: missing {', '.join(missing)}.",
            extra={
                "missing": missing,
                "responses": len(levels),
                "responses_required": required,
                "rules": [
                    pack.evaluation_weights.source.cite(),
                    rules.setting_citation(pack, "min_survey_responses"),
                ],
            },
        )
    assert ev.purchaser_score is not None and ev.third_party_score is not None
    satisfaction = rules.satisfaction_score(levels)
    total = rules.evaluation_total(
        pack.evaluation_weights,
        scoring,
        purchaser=ev.purchaser_score,
        satisfaction=satisfaction,
        third_party=ev.third_party_score,
    )
    ev.satisfaction_score = float(total.satisfaction)
    ev.responses = len(levels)
    ev.total = float(total.total)
    ev.result = total.result
    ev.state = "published"
    ev.published_at = now
    today = china_day(now)
    history, satisfactions = await _organisation_history(uow.session, ev)
    uow.emit(
        events.evaluation_recorded(
            ev,
            pass_mark=float(scoring.pass_mark),
            organisation_satisfaction=rules.recent_satisfaction(
                satisfactions, today=today, half_life_months=scoring.half_life_months
            ),
        )
    )
    violation: Violation | None = None
    ordered = total.result == "unqualified"
    if ordered:
        uow.emit(
            events.rectification_ordered(
                record,
                ev,
                pass_mark=float(scoring.pass_mark),
                legal_basis=[
                    scoring.unqualified_source.cite(),
                    rules.setting_citation(pack, "pass_mark"),
                ],
                authority=sanction_rules.default_authority(pack, ev.region_code),
                at=now,
            )
        )
        streak = rules.unqualified_streak(
            scoring,
            today=today,
            history=history,
            counted=await _counted_evaluations(uow.session, ev.organisation_id),
        )
        if streak is not None:
            violation = await _record_repeated_unqualified(
                uow, ev=ev, pack=pack, streak=streak, history=history, now=now
            )
    await recompute_score(
        uow,
        ev.organisation_id,
        cause="evaluation",
        cause_id=ev.id,
        reason=f"evaluation {ev.period} of contract {ev.contract_id} published: total "
        f"{ev.total:.2f} ({ev.result})",
        now=now,
    )
    await uow.commit()
    return Publication(evaluation=ev, pack=pack, rectification_ordered=ordered, violation=violation)


async def _record_repeated_unqualified(
    uow: UnitOfWork,
    *,
    ev: Evaluation,
    pack: PolicyPack,
    streak: Sequence[str],
    history: Sequence[rules.PastResult],
    now: datetime,
) -> Violation:
    """Repeated unqualified results (连续考评不合格) → a violation under due process: the
    organisation is notified and may respond within the pack's working days; the sanctions
    flow decides (民发〔2012〕196号: 取消一定时期内承接资格)."""
    scoring = pack.credit_scoring
    try:
        due = sanction_rules.response_due(pack, calendar_for(pack), china_day(now))
    except UnknownCalendarYear as exc:
        # Never a weekday guess: the window decides whether a defence is heard.
        raise InvalidInput(
            detail=f"The response window cannot be counted in working days: {exc}.",
            errors=[FieldError("body", str(exc))],
            extra={"calendar_year": exc.year},
        ) from exc
    published = {p.evaluation_id: p.published_on for p in history}
    violation = Violation(
        id=new_id(),
        organisation_id=ev.organisation_id,
        contract_id=ev.contract_id,
        kind="repeated_unqualified",
        severity=scoring.repeated_unqualified_severity,
        description=(
            f"绩效评价连续{len(streak)}次不合格（{scoring.repeated_unqualified_window_months}"
            f"个月内）；依据 {scoring.unqualified_source.cite()}，经陈述申辩后作出处理决定。"
        )[:4000],
        evidence=[
            {
                "kind": "evaluation",
                "reference": eid,
                "note": f"published {published.get(eid)}, unqualified",
            }
            for eid in streak
        ],
        state="notified",
        recorded_by=SYSTEM_EVALUATION,
        recorded_at=now,
        notified_at=now,
        response_due=due,
    )
    uow.session.add(violation)
    uow.emit(sanction_events.violation_recorded(violation))
    return violation


async def get_evaluation(*, db: Database, evaluation_id: str, actor: Principal) -> EvaluationPublic:
    async with db.session() as session:
        ev = await _visible_evaluation(session, actor, evaluation_id)
        served = int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(ServedRecipient)
                    .where(ServedRecipient.contract_id == ev.contract_id)
                )
            ).scalar_one()
        )
    pack = _pack(ev.region_code)
    out = evaluation_to_public(ev, pack)
    if pack is not None and ev.state == "open":
        out.responses_required = rules.required_responses(pack.credit_scoring, served)
    return out


_EVALUATION_ORDER: dict[str, Any] = {
    "created_at": col(Evaluation.created_at).asc(),
    "-created_at": col(Evaluation.created_at).desc(),
    "published_at": col(Evaluation.published_at).asc(),
    "-published_at": col(Evaluation.published_at).desc(),
    "total": col(Evaluation.total).asc(),
    "-total": col(Evaluation.total).desc(),
}


async def list_evaluations(
    *,
    db: Database,
    actor: Principal,
    organisation_id: str | None,
    contract_id: str | None,
    period: str | None,
    state: str | None,
    result: str | None,
    region: str | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[EvaluationPublic], int]:
    """Evaluations the caller may see (officials: their region; an organisation: its own)."""
    query = select(Evaluation)
    if actor.role == Role.organisation:
        query = query.where(Evaluation.organisation_id == (actor.org_id or ""))
    else:
        query = query.where(col(Evaluation.region_code).startswith(actor.region))
    if region:
        query = query.where(col(Evaluation.region_code).startswith(region))
    for column, value in (
        (Evaluation.organisation_id, organisation_id),
        (Evaluation.contract_id, contract_id),
        (Evaluation.period, period),
        (Evaluation.state, state),
        (Evaluation.result, result),
    ):
        if value:
            query = query.where(column == value)
    async with db.session() as session:
        rows, total = await fetch_page(
            session,
            query,
            order_by=[_EVALUATION_ORDER[sort], col(Evaluation.id)],
            limit=limit,
            offset=offset,
        )
    return [evaluation_to_public(ev, _pack(ev.region_code)) for ev in rows], total


async def public_evaluations(
    *,
    db: Database,
    organisation_id: str | None,
    region: str | None,
    period: str | None,
    limit: int,
    offset: int,
) -> tuple[list[EvaluationPublished], int]:
    """Published evaluations, for everybody: field by field, no recipient refs, no accounts."""
    query = (
        select(Evaluation, OrganisationRecord.name)
        .join(
            OrganisationRecord,
            col(OrganisationRecord.organisation_id) == Evaluation.organisation_id,
            isouter=True,
        )
        .where(Evaluation.state == "published")
    )
    if organisation_id:
        query = query.where(Evaluation.organisation_id == organisation_id)
    if region:
        query = query.where(col(Evaluation.region_code).startswith(region))
    if period:
        query = query.where(Evaluation.period == period)
    async with db.session() as session:
        total = int(
            (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
        )
        rows = (
            await session.execute(
                query.order_by(col(Evaluation.published_at).desc(), col(Evaluation.id))
                .limit(limit)
                .offset(offset)
            )
        ).all()
    items = [
        EvaluationPublished(
            id=ev.id,
            contract_id=ev.contract_id,
            organisation_id=ev.organisation_id,
            organisation_name=name,
            region_code=ev.region_code,
            period=ev.period,
            purchaser_score=ev.purchaser_score,
            satisfaction_score=ev.satisfaction_score,
            third_party_score=ev.third_party_score,
            responses=ev.responses,
            weights={
                k: ev.weights.get(k) for k in ("purchaser", "recipients", "third_party", "rule")
            },
            total=ev.total,
            result=ev.result,
            published_at=ev.published_at,
        )
        for ev, name in rows
    ]
    return items, total


# ------------------------------------------------------------------------------ score facts


def _deductions(
    violation_rows: Iterable[tuple[Any, ...]], direct_rows: Iterable[tuple[Any, ...]]
) -> dict[str, list[rules.Deduction]]:
    """Deductions by organisation from (org, violation_id, severity, decided_at, sanction
    state) rows of decided violations and (org, sanction_id, severity, decided_at, state)
    rows of bans decided without a violation."""
    grouped: dict[tuple[str, str, str, str], list[rules.SanctionState]] = {}
    for org, ref, severity, decided_at, state in violation_rows:
        key = (str(org), "violation", str(ref), str(severity))
        grouped.setdefault(key, []).append(rules.SanctionState(china_day(decided_at), str(state)))
    for org, ref, severity, decided_at, state in direct_rows:
        key = (str(org), "sanction", str(ref), str(severity))
        grouped.setdefault(key, []).append(rules.SanctionState(china_day(decided_at), str(state)))
    out: dict[str, list[rules.Deduction]] = {}
    for (org, kind, ref, severity), sanctions in grouped.items():
        d = rules.violation_deduction(ref=ref, severity=severity, sanctions=sanctions, kind=kind)
        if d is not None:
            out.setdefault(org, []).append(d)
    for items in out.values():
        items.sort(key=lambda d: (d.decided_on, d.ref))
    return out


def _violation_query(organisation_ids: Sequence[str] | None = None, region: str = "") -> Any:
    q = (
        sa_select(
            col(Violation.organisation_id),
            col(Violation.id),
            col(Violation.severity),
            col(Sanction.decided_at),
            col(Sanction.state),
        )
        .join(Sanction, col(Sanction.violation_id) == Violation.id)
        .where(col(Violation.state) == "decided")
    )
    if organisation_ids is not None:
        q = q.where(col(Violation.organisation_id).in_(organisation_ids))
    if region:
        q = q.where(
            col(Violation.organisation_id).in_(
                select(OrganisationRecord.organisation_id).where(
                    col(OrganisationRecord.region_code).startswith(region)
                )
            )
        )
    return q


def _direct_ban_query(organisation_ids: Sequence[str] | None = None, region: str = "") -> Any:
    q = (
        sa_select(
            col(Sanction.organisation_id),
            col(Sanction.id),
            col(BlacklistEntry.severity),
            col(Sanction.decided_at),
            col(Sanction.state),
        )
        .join(BlacklistEntry, col(BlacklistEntry.sanction_id) == Sanction.id)
        .where(col(Sanction.violation_id).is_(None))
    )
    if organisation_ids is not None:
        q = q.where(col(Sanction.organisation_id).in_(organisation_ids))
    if region:
        q = q.where(
            col(Sanction.organisation_id).in_(
                select(OrganisationRecord.organisation_id).where(
                    col(OrganisationRecord.region_code).startswith(region)
                )
            )
        )
    return q


def _delivery_query(organisation_ids: Sequence[str] | None = None, region: str = "") -> Any:
    q = (
        select(
            ContractRecord.organisation_id,
            func.sum(ServedRecipient.deliveries),
            func.sum(ServedRecipient.on_time),
        )
        .join(ContractRecord, col(ContractRecord.contract_id) == ServedRecipient.contract_id)
        .group_by(ContractRecord.organisation_id)
    )
    if organisation_ids is not None:
        q = q.where(col(ContractRecord.organisation_id).in_(organisation_ids))
    if region:
        q = q.where(
            col(ContractRecord.organisation_id).in_(
                select(OrganisationRecord.organisation_id).where(
                    col(OrganisationRecord.region_code).startswith(region)
                )
            )
        )
    return q


@dataclass
class ScoreFacts:
    evaluations: list[rules.EvaluationFact]
    deductions: list[rules.Deduction]
    deliveries: int
    on_time: int


async def _score_facts(session: AsyncSession, organisation_id: str) -> ScoreFacts:
    evaluations = [
        rules.EvaluationFact(str(eid), float(total), china_day(published_at))
        for eid, total, published_at in (
            await session.execute(
                select(Evaluation.id, Evaluation.total, Evaluation.published_at)
                .where(
                    Evaluation.organisation_id == organisation_id,
                    Evaluation.state == "published",
                    col(Evaluation.total).is_not(None),
                    col(Evaluation.published_at).is_not(None),
                )
                .order_by(col(Evaluation.published_at).desc(), col(Evaluation.id).desc())
            )
        ).all()
    ]
    ids = [organisation_id]
    deductions = _deductions(
        (await session.execute(_violation_query(ids))).all(),
        (await session.execute(_direct_ban_query(ids))).all(),
    ).get(organisation_id, [])
    delivered = (await session.execute(_delivery_query(ids))).first()
    deliveries = int(delivered[1] or 0) if delivered else 0
    on_time = int(delivered[2] or 0) if delivered else 0
    return ScoreFacts(evaluations, deductions, deliveries, on_time)


def _compute(pack: PolicyPack, facts: ScoreFacts, today: date) -> rules.ScoreResult:
    return rules.compute_score(
        pack,
        today=today,
        evaluations=facts.evaluations,
        deductions=facts.deductions,
        deliveries=facts.deliveries,
        on_time=facts.on_time,
    )


# ------------------------------------------------------------------------------ scores


async def recompute_score(
    uow: UnitOfWork,
    organisation_id: str,
    cause: str,
    cause_id: str | None,
    reason: str,
    *,
    now: datetime | None = None,
) -> ScoreChange | None:
    """Recompute one organisation's score in the caller's transaction (no commit).

    For every use case of this service that changes what a score is made of: an evaluation
    published, a violation decided, a sanction overturned or lifted, credit repaired. Locks
    the organisation's record (a caller already holding the lock is fine). When the score or
    the grade changes: the `CreditScore` row, a `ScoreChange` with the reason, the cause and
    the parts, and `sa.credit.score.changed` with the next version. Returns the change, or
    None when nothing changed (or the organisation is unknown to credit).

    `cause`: evaluation | violation | sanction | repair | appeal | recompute | …
    """
    now = now or datetime.now(UTC)
    record = await _lock_record(uow, organisation_id)
    if record is None:
        return None
    pack = _pack(record.region_code)
    if pack is None:
        log.warning("score of %s not computed: no pack for %s", organisation_id, record.region_code)
        return None
    facts = await _score_facts(uow.session, organisation_id)
    result = _compute(pack, facts, china_day(now))
    current = await uow.session.get(CreditScore, organisation_id)
    old = (
        None
        if current is None
        else rules.ScoreResult(score=current.score, grade=current.grade, parts=current.parts)
    )
    if old is not None and old.score == result.score and old.grade == result.grade:
        return None
    version = 1 if current is None else current.version + 1
    change = ScoreChange(
        id=new_id(),
        organisation_id=organisation_id,
        old_score=old.score if old else None,
        new_score=result.score,
        old_grade=old.grade if old else None,
        new_grade=result.grade,
        reason=rules.explain_change(old, result, reason),
        cause=cause[:40],
        cause_id=cause_id,
        parts=result.parts,
        version=version,
        at=now,
    )
    if current is None:
        current = CreditScore(
            organisation_id=organisation_id,
            score=result.score,
            grade=result.grade,
            parts=result.parts,
            version=version,
            computed_at=now,
        )
        uow.session.add(current)
    else:
        current.score, current.grade, current.parts = result.score, result.grade, result.parts
        current.version, current.computed_at = version, now
    uow.session.add(change)
    uow.emit(events.score_changed(current, change))
    return change


def _visible_score(actor: Principal, record: OrganisationRecord) -> bool:
    if actor.role == Role.organisation:
        return actor.org_id == record.organisation_id
    return actor.covers(record.region_code)


async def score_detail(
    *, db: Database, organisation_id: str, actor: Principal, now: datetime
) -> ScoreDetail:
    """The current score with its history, oldest change first. An organisation without any
    change yet shows what it would score today (provisional: the base until evaluated)."""
    async with db.session() as session:
        record = await session.get(OrganisationRecord, organisation_id)
        if record is None or not _visible_score(actor, record):
            raise _not_found("organisation known to credit", organisation_id)
        current = await session.get(CreditScore, organisation_id)
        history = (
            (
                await session.execute(
                    select(ScoreChange)
                    .where(ScoreChange.organisation_id == organisation_id)
                    .order_by(col(ScoreChange.version), col(ScoreChange.id))
                )
            )
            .scalars()
            .all()
        )
        if current is not None:
            return ScoreDetail(
                current=ScorePublic.model_validate(current),
                provisional=False,
                history=[ScoreChangePublic.model_validate(c) for c in history],
            )
        pack = _pack(record.region_code)
        if pack is None:
            raise _not_found("score for organisation", organisation_id)
        result = _compute(pack, await _score_facts(session, organisation_id), china_day(now))
    return ScoreDetail(
        current=ScorePublic(
            organisation_id=organisation_id,
            score=result.score,
            grade=result.grade,
            parts=result.parts,
            version=0,
            computed_at=None,
        ),
        provisional=True,
        history=[],
    )


_SCORE_ORDER: dict[str, Any] = {
    "score": col(CreditScore.score).asc(),
    "-score": col(CreditScore.score).desc(),
    "organisation_id": col(CreditScore.organisation_id).asc(),
    "computed_at": col(CreditScore.computed_at).asc(),
    "-computed_at": col(CreditScore.computed_at).desc(),
}


async def list_scores(
    *,
    db: Database,
    actor: Principal,
    grade: str | None,
    region: str | None,
    min_score: float | None,
    max_score: float | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[CreditScore], int]:
    query = select(CreditScore).join(
        OrganisationRecord, col(OrganisationRecord.organisation_id) == CreditScore.organisation_id
    )
    if actor.role == Role.organisation:
        query = query.where(CreditScore.organisation_id == (actor.org_id or ""))
    else:
        query = query.where(col(OrganisationRecord.region_code).startswith(actor.region))
    if region:
        query = query.where(col(OrganisationRecord.region_code).startswith(region))
    if grade:
        query = query.where(CreditScore.grade == grade)
    if min_score is not None:
        query = query.where(col(CreditScore.score) >= min_score)
    if max_score is not None:
        query = query.where(col(CreditScore.score) <= max_score)
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[_SCORE_ORDER[sort], col(CreditScore.organisation_id)],
            limit=limit,
            offset=offset,
        )


# ------------------------------------------------------------------------------ full recompute


@dataclass
class _Pending:
    organisation_id: str
    snapshot_version: int
    result: rules.ScoreResult


async def recompute_all(
    *,
    db: Database,
    uow_factory: Callable[[], UnitOfWork],
    now: datetime,
    region: str = "",
    batch_size: int = 1000,
    reason: str = "full recompute",
    progress: Callable[[str], None] | None = None,
) -> RecomputeReport:
    """Recompute every organisation's score (in `region`) in one pass.

    Reads what is small whole (organisations, current versions, deductions, deliveries),
    streams published evaluations ordered by organisation and computes each organisation as
    its rows end, and writes every `batch_size` organisations in one transaction with
    executemany: `CreditScore` upserts, `ScoreChange` rows and outbox events. Each batch
    locks its organisations' records and skips any whose score changed since the scan
    began (an incremental recompute got there with newer facts).
    """
    started = time.perf_counter()
    today = china_day(now)
    lines: list[str] = []

    def note(line: str) -> None:
        lines.append(line)
        log.info("credit scores: %s", line)
        if progress is not None:
            progress(line)

    packs: dict[str, PolicyPack | None] = {}
    orgs: dict[str, PolicyPack] = {}
    async with db.session() as session:
        for org, region_code in (
            await session.execute(
                select(OrganisationRecord.organisation_id, OrganisationRecord.region_code).where(
                    col(OrganisationRecord.region_code).startswith(region)
                )
            )
        ).all():
            province = str(region_code)[:2]
            if province not in packs:
                packs[province] = _pack(str(region_code))
            pack = packs[province]
            if pack is not None:
                orgs[str(org)] = pack
        versions: dict[str, int] = {
            str(org): int(v)
            for org, v in (
                await session.execute(select(CreditScore.organisation_id, CreditScore.version))
            ).all()
        }
        deductions = _deductions(
            (await session.execute(_violation_query(None, region))).all(),
            (await session.execute(_direct_ban_query(None, region))).all(),
        )
        deliveries = {
            str(org): (int(n or 0), int(ok or 0))
            for org, n, ok in (await session.execute(_delivery_query(None, region))).all()
        }
    note(f"scan: {len(orgs)} organisations in region {region or '(all)'}")

    counts = {"changed": 0, "unchanged": 0, "skipped": 0, "evaluations": 0, "done": 0}
    pending: list[_Pending] = []

    def compute(org: str, facts: list[rules.EvaluationFact]) -> None:
        pack = orgs[org]
        facts.sort(key=lambda f: (f.published_on, f.evaluation_id), reverse=True)
        n, ok = deliveries.get(org, (0, 0))
        result = rules.compute_score(
            pack,
            today=today,
            evaluations=facts,
            deductions=deductions.get(org, ()),
            deliveries=n,
            on_time=ok,
        )
        pending.append(_Pending(org, versions.get(org, 0), result))

    writing: asyncio.Task[None] | None = None

    async def write(batch: list[_Pending]) -> None:
        changed, unchanged, skipped = await _write_batch(uow_factory, batch, now=now, reason=reason)
        counts["changed"] += changed
        counts["unchanged"] += unchanged
        counts["skipped"] += skipped
        counts["done"] += len(batch)
        note(
            f"{counts['done']}/{len(orgs)} organisations: {counts['changed']} changed, "
            f"{counts['unchanged']} unchanged, {counts['skipped']} skipped "
            f"({time.perf_counter() - started:.1f}s)"
        )

    async def flush(*, final: bool = False) -> None:
        """Hand the pending batch to a writer task; at most one batch is being written while
        the next is computed (the database works while Python computes)."""
        nonlocal writing
        if writing is not None:
            await writing
            writing = None
        if pending:
            batch = list(pending)
            pending.clear()
            writing = asyncio.create_task(write(batch))
        if final and writing is not None:
            await writing
            writing = None

    seen: set[str] = set()
    query = (
        select(
            Evaluation.organisation_id,
            Evaluation.id,
            Evaluation.total,
            Evaluation.published_at,
        )
        .where(
            Evaluation.state == "published",
            col(Evaluation.total).is_not(None),
            col(Evaluation.published_at).is_not(None),
        )
        .order_by(col(Evaluation.organisation_id))
    )
    if region:
        query = query.where(col(Evaluation.region_code).startswith(region))
    try:
        async with db.session() as session:
            stream = await session.stream(query.execution_options(yield_per=STREAM_ROWS))
            current_org: str | None = None
            facts: list[rules.EvaluationFact] = []
            async for partition in stream.partitions():
                for org, eid, total, published_at in partition:
                    counts["evaluations"] += 1
                    if org != current_org:
                        if current_org is not None and current_org in orgs:
                            compute(current_org, facts)
                            seen.add(current_org)
                            if len(pending) >= batch_size:
                                await flush()
                        current_org, facts = org, []
                    facts.append(rules.EvaluationFact(eid, total, china_day(published_at)))
            if current_org is not None and current_org in orgs:
                compute(current_org, facts)
                seen.add(current_org)
        for org in orgs:
            if org not in seen:
                compute(org, [])
                if len(pending) >= batch_size:
                    await flush()
        await flush(final=True)
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writing
    seconds = time.perf_counter() - started
    note(f"done in {seconds:.1f}s: {counts['evaluations']} evaluations read")
    return RecomputeReport(
        organisations=len(orgs),
        changed=counts["changed"],
        unchanged=counts["unchanged"],
        skipped=counts["skipped"],
        evaluations=counts["evaluations"],
        seconds=round(seconds, 3),
        log=lines,
    )


def _json_text_param(session: AsyncSession) -> Callable[[str], Any]:
    """A bind parameter for a JSON column given already-encoded text: as is on SQLite (JSON is
    text there), cast to json on PostgreSQL."""
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"

    def param(name: str) -> Any:
        value = bindparam(name, type_=Text())
        return cast(value, JSON) if dialect == "postgresql" else value

    return param


async def _write_batch(
    uow_factory: Callable[[], UnitOfWork], batch: Sequence[_Pending], *, now: datetime, reason: str
) -> tuple[int, int, int]:
    """Write one batch of recomputed scores; (changed, unchanged, skipped)."""
    scores = metadata.tables[str(CreditScore.__tablename__)]
    changes_table = metadata.tables[str(ScoreChange.__tablename__)]
    ids = [p.organisation_id for p in batch]
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    unchanged = skipped = 0
    async with uow_factory() as uow:
        session = uow.session
        # The same lock order as every incremental recompute: records first.
        await session.execute(
            select(OrganisationRecord.organisation_id)
            .where(col(OrganisationRecord.organisation_id).in_(ids))
            .with_for_update()
        )
        current = {
            str(row.organisation_id): row
            for row in (
                await session.execute(
                    sa_select(
                        scores.c.organisation_id,
                        scores.c.version,
                        scores.c.score,
                        scores.c.grade,
                    ).where(scores.c.organisation_id.in_(ids))
                )
            ).all()
        }
        # The old parts only of scores that change (to explain what moved): an unchanged
        # organisation costs no JSON decoding.
        moving = [
            p.organisation_id
            for p in batch
            if (row := current.get(p.organisation_id)) is not None
            and row.version == p.snapshot_version
            and (row.score != p.result.score or row.grade != p.result.grade)
        ]
        old_parts: dict[str, dict[str, Any]] = {}
        for start in range(0, len(moving), 500):
            chunk = moving[start : start + 500]
            old_parts.update(
                (str(org), parts)
                for org, parts in (
                    await session.execute(
                        sa_select(scores.c.organisation_id, scores.c.parts).where(
                            scores.c.organisation_id.in_(chunk)
                        )
                    )
                ).all()
            )
        for p in batch:
            row = current.get(p.organisation_id)
            version = int(row.version) if row is not None else 0
            if version != p.snapshot_version:
                skipped += 1
                continue
            new = p.result
            if row is not None and row.score == new.score and row.grade == new.grade:
                unchanged += 1
                continue
            old = (
                None
                if row is None
                else rules.ScoreResult(
                    score=row.score, grade=row.grade, parts=old_parts.get(p.organisation_id, {})
                )
            )
            # Encoded once for both tables (the JSON type would encode it twice, slower).
            parts_json = encode_json(new.parts).decode()
            values = {
                "b_org": p.organisation_id,
                "b_score": new.score,
                "b_grade": new.grade,
                "b_parts": parts_json,
                "b_version": version + 1,
                "b_computed_at": now,
            }
            (inserts if row is None else updates).append(values)
            explained = rules.explain_change(old, new, reason)
            change_id = new_id()
            changes.append(
                {
                    "id": change_id,
                    "organisation_id": p.organisation_id,
                    "old_score": old.score if old else None,
                    "new_score": new.score,
                    "old_grade": old.grade if old else None,
                    "new_grade": new.grade,
                    "reason": explained,
                    "cause": "recompute",
                    "cause_id": None,
                    "parts": parts_json,
                    "version": version + 1,
                    "at": now,
                }
            )
            uow.emit(
                events.score_changed_event(
                    events.score_changed_data(
                        organisation_id=p.organisation_id,
                        score=new.score,
                        grade=new.grade,
                        version=version + 1,
                        reason=explained,
                        cause="recompute",
                        cause_id=None,
                        old_score=old.score if old else None,
                        old_grade=old.grade if old else None,
                        computed_at=now,
                    )
                )
            )
        json_param = _json_text_param(session)
        score_values = {
            "score": bindparam("b_score"),
            "grade": bindparam("b_grade"),
            "parts": json_param("b_parts"),
            "version": bindparam("b_version"),
            "computed_at": bindparam("b_computed_at"),
        }
        if inserts:
            await session.execute(
                insert(scores).values(organisation_id=bindparam("b_org"), **score_values), inserts
            )
        if updates:
            await session.execute(
                update(scores)
                .where(scores.c.organisation_id == bindparam("b_org"))
                .values(**score_values),
                updates,
            )
        if changes:
            columns: dict[str, Any] = {c: bindparam(f"c_{c}") for c in changes[0] if c != "parts"}
            await session.execute(
                insert(changes_table).values({**columns, "parts": json_param("c_parts")}),
                [{f"c_{k}": v for k, v in c.items()} for c in changes],
            )
        await uow.commit()
    return len(changes), unchanged, skipped
