"""What the matching service publishes and consumes about contracts (stream MATCHING).

Published, every contract event with {contract_id, award_id, tender_id, project_id,
organisation_id, region_code, version} (`version` is the contract's own counter, so a
consumer can drop a late event):
- `sa.matching.contract.signed` + {regions, service_codes, monthly_capacity, value_fen,
  period_start, period_end, signed_at}: in force; the allocation engine counts it as supply,
  providers move the project to in_service;
- `sa.matching.contract.refused` + {reason, refused_at}: the organisation would not sign (拒签);
  its award is refused, the next-ranked bidder is due an offer, credit may record a breach;
- `sa.matching.contract.amended` + {amendment_id, delta_fen, capacity_changes, value_fen,
  original_value_fen, monthly_capacity, reason, amended_at} (补充合同);
- `sa.matching.contract.paused|resumed` + {reason, at}: credit suspended / reinstated the
  organisation; the allocation engine re-allocates the needs of a paused contract;
- `sa.matching.contract.completed|terminated` + {reason, from_state, at}: providers close the
  project; after a termination the engine re-allocates its needs (临时接管预案);
- `sa.matching.service.delivered` {delivery_id, match_id, need_id, recipient_ref,
  organisation_id, contract_id, units, delivered_on, confirmed_by, confirmed_at}: a confirmed
  session (needs moves the need to in_service; credit uses it for evaluation);
- `sa.matching.acceptance.opened|published` {acceptance_id, contract_id, project_id,
  organisation_id, region_code, period, invited_recipients, result, summary, published_at}:
  the recipients invited are pseudonymous refs of people actually served in the period.

Consumed: stream CREDIT `sa.credit.organisation.suspended|reinstated|exited|blacklisted`
{organisation_id, decision_version, reason?} → the organisation's contracts are paused,
resumed or terminated (`service.apply_credit_decision`), guarded by `decision_version`.
No event carries a recipient's name, ID number, phone or address.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.matching.contracts.models import Acceptance, Contract, ContractAmendment, Delivery
from services.matching.models import Match

SERVICE = "matching"


def _contract_event(verb: str, contract: Contract, **data: Any) -> Event:
    return new_event(
        service=SERVICE,
        entity="contract",
        verb=verb,
        subject=contract.id,
        data={
            "contract_id": contract.id,
            "award_id": contract.award_id,
            "tender_id": contract.tender_id,
            "project_id": contract.project_id,
            "organisation_id": contract.organisation_id,
            "region_code": contract.region_code,
            "version": contract.version,
            **data,
        },
    )


def contract_signed(contract: Contract) -> Event:
    return _contract_event(
        "signed",
        contract,
        regions=list(contract.regions),
        service_codes=list(contract.service_codes),
        monthly_capacity=dict(contract.monthly_capacity),
        value_fen=contract.value_fen,
        period_start=contract.period_start,
        period_end=contract.period_end,
        signed_at=contract.signed_at,
    )


def contract_refused(contract: Contract, *, at: datetime) -> Event:
    return _contract_event("refused", contract, reason=contract.state_reason, refused_at=at)


def contract_amended(contract: Contract, amendment: ContractAmendment) -> Event:
    return _contract_event(
        "amended",
        contract,
        amendment_id=amendment.id,
        delta_fen=amendment.delta_fen,
        capacity_changes=dict(amendment.capacity_changes),
        value_fen=contract.value_fen,
        original_value_fen=contract.original_value_fen,
        monthly_capacity=dict(contract.monthly_capacity),
        reason=amendment.reason,
        amended_at=amendment.at,
    )


def contract_moved(verb: str, contract: Contract, *, from_state: str, at: datetime) -> Event:
    """`paused`, `resumed`, `completed` or `terminated`, with the reason and prior state."""
    return _contract_event(
        verb, contract, reason=contract.state_reason, from_state=from_state, at=at
    )


def service_delivered(delivery: Delivery, match: Match) -> Event:
    """The payload the needs service consumes (`need_id`, `organisation_id`)."""
    return new_event(
        service=SERVICE,
        entity="service",
        verb="delivered",
        subject=match.need_id,
        data={
            "delivery_id": delivery.id,
            "match_id": match.id,
            "need_id": match.need_id,
            "recipient_ref": delivery.recipient_ref,
            "organisation_id": delivery.organisation_id,
            "contract_id": delivery.contract_id,
            "units": delivery.units,
            "delivered_on": delivery.delivered_on,
            "confirmed_by": delivery.confirmed_by,
            "confirmed_at": delivery.confirmed_at,
        },
    )


def numeric_summary(summary: dict[str, Any]) -> dict[str, int | float]:
    """The acceptance summary's numbers (counts, scores, rates), nothing else."""
    return {
        str(k): v
        for k, v in summary.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def acceptance_event(verb: str, acceptance: Acceptance, contract: Contract) -> Event:
    """`opened` (recipients invited) or `published` (the result)."""
    return new_event(
        service=SERVICE,
        entity="acceptance",
        verb=verb,
        subject=acceptance.id,
        data={
            "acceptance_id": acceptance.id,
            "contract_id": contract.id,
            "project_id": contract.project_id,
            "organisation_id": contract.organisation_id,
            "region_code": contract.region_code,
            "period": acceptance.period,
            "invited_recipients": list(acceptance.invited_recipients),
            "result": acceptance.result,
            # Only the figures: free text typed by a caseworker may name a recipient, and no
            # event carries a recipient's identifiers (DESIGN §3).
            "summary": numeric_summary(acceptance.summary),
            "created_at": acceptance.created_at,
            "published_at": acceptance.published_at,
        },
    )


async def on_credit_decision(uow: UnitOfWork, event: Event) -> None:
    """Credit suspended, reinstated, exited or blacklisted an organisation: its contracts
    follow (暂停 / 恢复 / 终止), each change announced as a contract event."""
    from services.matching.contracts.service import apply_credit_decision

    verb = event.nats_subject.rsplit(".", 1)[1]
    try:
        organisation_id = str(event.data["organisation_id"])
        version = int(event.data["decision_version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(
            f"credit decision without organisation_id/decision_version: {exc}"
        ) from exc
    reason = event.data.get("reason")
    await apply_credit_decision(
        uow,
        organisation_id=organisation_id,
        verb=verb,
        decision_version=version,
        reason=str(reason) if reason else None,
        at=event.time,
    )


subscriptions: list[Subscription] = [
    Subscription(
        durable="matching-contracts-credit",
        stream="CREDIT",
        subjects=[
            "sa.credit.organisation.suspended",
            "sa.credit.organisation.reinstated",
            "sa.credit.organisation.exited",
            "sa.credit.organisation.blacklisted",
        ],
        handler=on_credit_decision,
    )
]
