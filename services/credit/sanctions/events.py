"""Events of violations, sanctions, the dishonesty list, appeals and credit repair.

Published (stream CREDIT):

- `sa.credit.violation.recorded` {violation_id, organisation_id, contract_id, kind, severity,
  response_due, notified_at}: the organisation is notified and may respond (陈述申辩).
  `.responded` {violation_id, organisation_id, responded_at}; `.dismissed` {violation_id,
  organisation_id, reason, decided_at}. The description and evidence never travel: they
  may quote recipients or staff.
- `sa.credit.organisation.<verb>` for each decision: warned | rectification_ordered |
  suspended | exited | blacklisted | reinstated (and rejected when a lifted sanction leaves
  an organisation that was never admitted). Common fields: organisation_id,
  decision_version, status, sanction_id, violation_id, sanction, reason, summary,
  legal_basis, starts_on, ends_on, deadline, deciding_authority, decided_at. Providers and
  matching set their status from the verbs they know, ignoring a decision_version not newer
  than theirs; `warned` and `rectification_ordered` leave status and version unchanged.
- `sa.credit.joint_punishment.notified` {organisation_id, uscc, name, violation, legal_basis,
  sanction, period {starts_on, ends_on, last_day}, deciding_authority, blacklist_id}: for other
  departments (失信联合惩戒), when the pack says so.
- `sa.credit.blacklist.expired | repaired | overturned` {blacklist_id, organisation_id, uscc,
  sanction_id, starts_on, ends_on, lifted_on, reason}: the listing ends.
- `sa.credit.sanction.completed | overturned` {sanction_id, organisation_id, kind, on, reason}.
- `sa.credit.appeal.filed | decided`, `sa.credit.repair.filed | decided` {…_id, sanction_id or
  blacklist_id, organisation_id, state/outcome, at}.

Consumed (stream MATCHING): `sa.matching.contract.refused` {contract_id, organisation_id,
reason} → a `refusing_to_sign` violation under due process.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.credit.models import (
    Appeal,
    BlacklistEntry,
    OrganisationRecord,
    RepairApplication,
    Sanction,
    Violation,
)
from services.credit.sanctions import rules

SERVICE = "credit"


def violation_recorded(v: Violation) -> Event:
    return new_event(
        service=SERVICE,
        entity="violation",
        verb="recorded",
        subject=v.id,
        data={
            "violation_id": v.id,
            "organisation_id": v.organisation_id,
            "contract_id": v.contract_id,
            "kind": v.kind,
            "severity": v.severity,
            "response_due": v.response_due,
            "notified_at": v.notified_at,
        },
    )


def violation_responded(v: Violation) -> Event:
    return new_event(
        service=SERVICE,
        entity="violation",
        verb="responded",
        subject=v.id,
        data={
            "violation_id": v.id,
            "organisation_id": v.organisation_id,
            "responded_at": v.responded_at,
        },
    )


def violation_dismissed(v: Violation, *, reason: str, at: datetime) -> Event:
    return new_event(
        service=SERVICE,
        entity="violation",
        verb="dismissed",
        subject=v.id,
        data={
            "violation_id": v.id,
            "organisation_id": v.organisation_id,
            "reason": reason,
            "decided_at": at,
        },
    )


#: Sanction kind → the verb of its `sa.credit.organisation.*` event.
DECISION_VERBS: dict[str, str] = {
    "warning": "warned",
    "rectification": "rectification_ordered",
    "suspension": "suspended",
    "exit": "exited",
    "blacklist": "blacklisted",
}


def organisation_sanctioned(
    record: OrganisationRecord, sanction: Sanction, entry: BlacklistEntry | None = None
) -> Event:
    """`sa.credit.organisation.<verb>` for a decision, with its reason and legal basis."""
    label = rules.SANCTION_KINDS[sanction.kind]
    data: dict[str, Any] = {
        "organisation_id": record.organisation_id,
        "decision_version": record.decision_version,
        "status": record.status,
        "sanction_id": sanction.id,
        "violation_id": sanction.violation_id,
        "sanction": sanction.kind,
        "reason": sanction.reason,
        "summary": f"{label}: {sanction.reason}",
        "legal_basis": sanction.legal_basis,
        "starts_on": sanction.starts_on,
        "ends_on": sanction.ends_on,
        "deadline": sanction.deadline,
        "deciding_authority": sanction.deciding_authority,
        "decided_at": sanction.decided_at,
    }
    if entry is not None:
        # What the first version of this event carried; kept for its readers.
        data.update(
            blacklist_id=entry.id,
            uscc=entry.uscc,
            name=entry.name,
            severity=entry.severity,
            ban_until=entry.ends_on,
        )
    return new_event(
        service=SERVICE,
        entity="organisation",
        verb=DECISION_VERBS[sanction.kind],
        subject=record.organisation_id,
        data=data,
    )


def status_restored(
    record: OrganisationRecord, *, cause: str, cause_id: str, reason: str, at: datetime
) -> Event:
    """The status after a sanction ends: `reinstated` back to admitted, or the status of a
    sanction still in force (suspended, exited), or `rejected` for an organisation never
    admitted."""
    verb = "reinstated" if record.status == "admitted" else record.status
    return new_event(
        service=SERVICE,
        entity="organisation",
        verb=verb,
        subject=record.organisation_id,
        data={
            "organisation_id": record.organisation_id,
            "decision_version": record.decision_version,
            "status": record.status,
            "cause": cause,
            "cause_id": cause_id,
            "reason": reason,
            "summary": reason,
            "decided_at": at,
        },
    )


def joint_punishment_notified(entry: BlacklistEntry) -> Event:
    """`sa.credit.joint_punishment.notified`: a ban other departments act on (失信联合惩戒)."""
    kind = entry.violation_kind
    return new_event(
        service=SERVICE,
        entity="joint_punishment",
        verb="notified",
        subject=entry.organisation_id,
        data={
            "organisation_id": entry.organisation_id,
            "blacklist_id": entry.id,
            "uscc": entry.uscc,
            "name": entry.name,
            "violation": rules.VIOLATION_KINDS.get(kind, kind) if kind else None,
            "violation_kind": kind,
            "legal_basis": entry.legal_basis,
            "sanction": rules.SANCTION_KINDS["blacklist"],
            "period": {
                "starts_on": entry.starts_on,
                "ends_on": entry.ends_on,
                "last_day": rules.last_day(entry.ends_on),
            },
            "deciding_authority": entry.deciding_authority,
        },
    )


def blacklist_lifted(entry: BlacklistEntry, verb: str) -> Event:
    """`sa.credit.blacklist.expired | repaired | overturned`: the listing ends."""
    return new_event(
        service=SERVICE,
        entity="blacklist",
        verb=verb,
        subject=entry.id,
        data={
            "blacklist_id": entry.id,
            "organisation_id": entry.organisation_id,
            "uscc": entry.uscc,
            "sanction_id": entry.sanction_id,
            "starts_on": entry.starts_on,
            "ends_on": entry.ends_on,
            "lifted_on": entry.lifted_on,
            "reason": entry.lifted_reason,
        },
    )


def sanction_ended(sanction: Sanction, verb: str, *, on: date, reason: str) -> Event:
    """`sa.credit.sanction.completed | overturned | lifted`."""
    return new_event(
        service=SERVICE,
        entity="sanction",
        verb=verb,
        subject=sanction.id,
        data={
            "sanction_id": sanction.id,
            "organisation_id": sanction.organisation_id,
            "kind": sanction.kind,
            "on": on,
            "reason": reason,
        },
    )


def appeal_event(appeal: Appeal, verb: str) -> Event:
    return new_event(
        service=SERVICE,
        entity="appeal",
        verb=verb,
        subject=appeal.id,
        data={
            "appeal_id": appeal.id,
            "sanction_id": appeal.sanction_id,
            "organisation_id": appeal.organisation_id,
            "state": appeal.state,
            "filed_at": appeal.filed_at,
            "decided_at": appeal.decided_at,
        },
    )


def repair_event(repair: RepairApplication, verb: str) -> Event:
    return new_event(
        service=SERVICE,
        entity="repair",
        verb=verb,
        subject=repair.id,
        data={
            "repair_id": repair.id,
            "blacklist_id": repair.blacklist_entry_id,
            "organisation_id": repair.organisation_id,
            "state": repair.state,
            "filed_at": repair.filed_at,
            "decided_at": repair.decided_at,
        },
    )


async def on_contract_refused(uow: UnitOfWork, event: Event) -> None:
    """Matching reports a refusal to sign (拒绝签订合同): record a violation under due process."""
    from services.credit.sanctions import service

    data = event.data
    try:
        organisation_id = str(data["organisation_id"])
        contract_id = None if data.get("contract_id") is None else str(data["contract_id"])
        reason = None if data.get("reason") is None else str(data["reason"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"contract.refused without organisation_id: {exc}") from exc
    await service.record_refusal(
        uow,
        event_id=event.id,
        organisation_id=organisation_id,
        contract_id=contract_id,
        reason=reason,
    )


subscriptions = [
    Subscription(
        durable="credit-contract-refusals",
        stream="MATCHING",
        subjects=["sa.matching.contract.refused"],
        handler=on_contract_refused,
    )
]
