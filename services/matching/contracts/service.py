"""Use cases of contracts (政府购买服务合同), amendments, delivery and acceptance; no HTTP.

A contract is drawn up by the purchaser from an accepted award (items from the tender, price
from the winning bid), signed by the organisation (in force: `contract.signed`) or refused
(拒签: the award is refused and the next-ranked bidder is due an offer). While in force it
may be amended within 10 % of its value, paused and resumed as credit suspends and
reinstates the organisation, and it ends completed or terminated. Service sessions are
recorded against matches under it by the organisation holding them only (严禁服务转包),
confirmed for the recipient, and each contract period may be accepted (履约验收) by inviting
the recipients actually served.

"Now" is passed in by the caller (the app's clock, `libs.common.clock`), so tests step over
periods without sleeping; event handlers use the decision's own time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common.auth import Principal, Role
from libs.common.clock import china_day as china_today
from libs.common.db import Database
from libs.common.errors import Conflict, FieldError, InvalidInput, NotFound, RuleViolation
from libs.common.events import UnitOfWork
from libs.common.ids import new_id
from libs.common.pagination import fetch_page
from libs.common.policy import PolicyPack, pack_for_region
from services.matching.contracts import events, rules
from services.matching.contracts.models import Acceptance, Contract, ContractAmendment, Delivery
from services.matching.contracts.rules import Refusal
from services.matching.contracts.schemas import (
    AcceptanceResultIn,
    AmendmentCreate,
    ContractCreate,
    DeliveryCreate,
)
from services.matching.events import CREDIT_STATUS
from services.matching.library.models import ProjectView
from services.matching.market.models import Award, Bid, Tender
from services.matching.models import Match, OrganisationView
from services.matching.reconsider import reconsider
from services.matching.rules import SUPPLYING_STATE

STAFF_ROLES = frozenset({Role.operator, Role.purchaser})
#: Standing that forbids signing: credit has barred the organisation from the market.
BARRED_STATUSES = frozenset({"suspended", "exited", "blacklisted", "rejected"})
#: Contract event verb for each action.
VERBS = {
    "sign": "signed",
    "refuse": "refused",
    "pause": "paused",
    "resume": "resumed",
    "complete": "completed",
    "terminate": "terminated",
}

CONTRACT_SORTS: dict[str, Sequence[Any]] = {
    "created_at": (col(Contract.created_at), col(Contract.id)),
    "-created_at": (col(Contract.created_at).desc(), col(Contract.id)),
    "period_end": (col(Contract.period_end), col(Contract.id)),
    "-period_end": (col(Contract.period_end).desc(), col(Contract.id)),
}
DELIVERY_SORTS: dict[str, Sequence[Any]] = {
    "delivered_on": (col(Delivery.delivered_on), col(Delivery.id)),
    "-delivered_on": (col(Delivery.delivered_on).desc(), col(Delivery.id)),
    "recorded_at": (col(Delivery.recorded_at), col(Delivery.id)),
    "-recorded_at": (col(Delivery.recorded_at).desc(), col(Delivery.id)),
}


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _pack(region_code: str) -> PolicyPack:
    return pack_for_region(region_code)


def refuse(refusals: Sequence[Refusal], detail: str) -> None:
    """Raise for refusals: RuleViolation (with the clauses) if a policy rule is among them."""
    if not refusals:
        return
    errors = [FieldError(r.field, r.reason) for r in refusals]
    cited = [c for r in refusals for c in r.cites()]
    if cited:
        raise RuleViolation(
            detail=detail, errors=errors, extra={"rules": list(dict.fromkeys(cited))}
        )
    raise InvalidInput(detail=detail, errors=errors)


def _not_found(what: str, ident: str) -> NotFound:
    return NotFound(detail=f"No {what} {ident}.")


def _transition(contract: Contract, action: str) -> str:
    try:
        return rules.next_state(contract.state, action)
    except rules.InvalidTransition as exc:
        raise Conflict(
            detail=str(exc), extra={"state": contract.state, "version": contract.version}
        ) from None


def _move(contract: Contract, action: str, *, reason: str | None, at: datetime) -> str:
    """Apply a state-machine action; returns the state it left. Every change bumps the
    version, so consumers can drop a late event."""
    from_state = contract.state
    contract.state = _transition(contract, action)
    contract.state_reason = reason
    contract.version += 1
    contract.updated_at = at
    return from_state


def can_read(actor: Principal, contract: Contract) -> bool:
    """Who may read a contract.

    The purchasing side of its region sees every state; ministries see all; the organisation
    sees its own. A signed contract is public (合同应当依法予以公告, 吉民发〔2020〕44号 §四(三)4),
    so anyone signed in may read it; a pending or refused one stays between the parties.
    """
    if actor.role in STAFF_ROLES:
        return actor.covers(contract.region_code)
    if actor.role == Role.ministry:
        return True
    if actor.org_id is not None and actor.org_id == contract.organisation_id:
        return True
    return contract.state in rules.ANNOUNCED_STATES


def is_party(actor: Principal, contract: Contract) -> bool:
    """The purchasing side of the contract's region, or the organisation holding it: who
    may see its service records and acceptances (recipients' refs, workers' names)."""
    if actor.role in STAFF_ROLES:
        return actor.covers(contract.region_code)
    return actor.role == Role.organisation and actor.org_id == contract.organisation_id


async def _contract_for_update(session: AsyncSession, contract_id: str) -> Contract | None:
    return (
        await session.execute(select(Contract).where(Contract.id == contract_id).with_for_update())
    ).scalar_one_or_none()


async def _purchasers_contract(uow: UnitOfWork, contract_id: str, actor: Principal) -> Contract:
    """The contract, locked, when the caller's region covers it (404 otherwise)."""
    contract = await _contract_for_update(uow.session, contract_id)
    if contract is None or not actor.covers(contract.region_code):
        raise _not_found("contract", contract_id)
    return contract


async def _organisations_contract(uow: UnitOfWork, contract_id: str, actor: Principal) -> Contract:
    """The contract, locked, when the caller is the organisation named in it (404 else)."""
    contract = await _contract_for_update(uow.session, contract_id)
    if contract is None or actor.org_id is None or actor.org_id != contract.organisation_id:
        raise _not_found("contract", contract_id)
    return contract


# --------------------------------------------------------------------------------------------
# Drawing up, signing, refusing
# --------------------------------------------------------------------------------------------


async def create_contract(
    *, uow: UnitOfWork, data: ContractCreate, actor: Principal, now: datetime
) -> Contract:
    """Draw up the written contract (签订书面合同) of an accepted award: state pending.

    Items are the tender's, the value the winning bid's price. The period obeys the pack's
    term limit (1 year; 3 for a stable recurring service with a secured budget, as the
    project says) and lies inside the project's. `no_subcontracting` is always an obligation.
    """
    session = uow.session
    award = await session.get(Award, data.award_id)
    tender = await session.get(Tender, award.tender_id) if award is not None else None
    if award is None or tender is None or not actor.covers(tender.region_code):
        raise _not_found("award", data.award_id)
    if award.state != "accepted":
        raise Conflict(
            detail=f"The award is {award.state}; a contract is drawn up only from an accepted "
            "award.",
            extra={"award_state": award.state},
        )
    existing = (
        await session.execute(select(Contract).where(Contract.award_id == award.id))
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            detail="This award already has a contract.", extra={"existing_id": existing.id}
        )
    bid = await session.get(Bid, award.bid_id)
    if bid is None or bid.price_fen is None:
        raise Conflict(detail="The winning bid has no opened price to contract for.")
    project = await session.get(ProjectView, tender.project_id)
    if project is None:
        raise Conflict(detail=f"Matching has not received project {tender.project_id} yet.")

    pack = _pack(tender.region_code)
    today = china_today(now)
    refusals: list[Refusal] = [
        *rules.region_refusals(data.regions, tender.region_code),
        *rules.capacity_refusals(
            data.monthly_capacity, tender.service_codes, path="body.monthly_capacity"
        ),
    ]
    if data.period_end < today:
        refusals.append(Refusal("body.period_end", f"{data.period_end} is already past"))
    refusals += rules.term_refusals(
        pack,
        period_start=data.period_start,
        period_end=data.period_end,
        stable_recurring=bool(project.payload.get("stable_recurring", False)),
        budget_secured=bool(project.payload.get("budget_secured", False)),
    )
    if data.period_start <= data.period_end:
        refusals += rules.project_period_refusals(
            period_start=data.period_start,
            period_end=data.period_end,
            project_start=project.period_start,
            project_end=project.period_end,
        )
    refuse(refusals, "The contract cannot be drawn up as asked.")

    contract = Contract(
        id=new_id(),
        tender_id=tender.id,
        award_id=award.id,
        project_id=tender.project_id,
        organisation_id=award.organisation_id,
        region_code=tender.region_code,
        service_codes=list(tender.service_codes),
        regions=list(dict.fromkeys(data.regions)),
        monthly_capacity=dict(data.monthly_capacity),
        original_value_fen=bid.price_fen,
        value_fen=bid.price_fen,
        settlement=data.settlement,
        obligations=rules.obligations_with_defaults(data.obligations),
        period_start=data.period_start,
        period_end=data.period_end,
        state="pending",
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(contract)
    try:
        await uow.commit()
    except IntegrityError:
        # Two requests raced past the check; the unique award_id kept one.
        raise Conflict(detail="This award already has a contract.") from None
    return contract


async def sign_contract(
    *, uow: UnitOfWork, contract_id: str, actor: Principal, now: datetime
) -> Contract:
    """The organisation signs: active, announced as `contract.signed` (supply for matching)."""
    contract = await _organisations_contract(uow, contract_id, actor)
    _transition(contract, "sign")
    view = await uow.session.get(OrganisationView, contract.organisation_id)
    if view is not None and view.status in BARRED_STATUSES:
        raise Conflict(
            detail=f"The organisation is {view.status} by credit and cannot sign.",
            extra={"organisation_status": view.status},
        )
    if china_today(now) > contract.period_end:
        raise Conflict(detail=f"The contract period ended on {contract.period_end}.")
    _move(contract, "sign", reason=None, at=now)
    contract.signed_at = now
    uow.emit(events.contract_signed(contract))
    await reconsider(uow.session, contract.regions)  # new capacity: waiting needs first
    await uow.commit()
    return contract


async def refuse_contract(
    *, uow: UnitOfWork, contract_id: str, actor: Principal, reason: str, now: datetime
) -> Contract:
    """The organisation will not sign (拒签): the contract is refused and so is its award, so
    the next-ranked bidder is due an offer; `contract.refused` tells evaluation and credit
    (which may count refusing to sign as a breach)."""
    contract = await _organisations_contract(uow, contract_id, actor)
    _move(contract, "refuse", reason=reason, at=now)
    award = (
        await uow.session.execute(
            select(Award).where(Award.id == contract.award_id).with_for_update()
        )
    ).scalar_one_or_none()
    if award is not None and award.state == "accepted":
        award.state = "refused"
        award.reason = f"refused to sign the contract: {reason}"
        award.updated_at = now
    uow.emit(events.contract_refused(contract, at=now))
    await uow.commit()
    return contract


# --------------------------------------------------------------------------------------------
# Amendments (补充合同)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Amended:
    amendment: ContractAmendment
    contract: Contract
    headroom_fen: int


async def amend_contract(
    *, uow: UnitOfWork, contract_id: str, data: AmendmentCreate, actor: Principal, now: datetime
) -> Amended:
    """A supplementary contract: value and capacity change; all amendments together stay
    within 10 % of the original value (政府采购法 第四十九条)."""
    contract = await _purchasers_contract(uow, contract_id, actor)
    if contract.state not in rules.AMENDABLE_STATES:
        raise Conflict(
            detail=f"A {contract.state} contract cannot be amended; only one being performed "
            "(active or paused).",
            extra={"state": contract.state, "version": contract.version},
        )
    if data.delta_fen == 0 and not data.capacity_changes:
        raise InvalidInput(
            detail="An amendment changes the value or the capacity.",
            errors=[FieldError("body.delta_fen", "give a value change or capacity changes")],
        )
    previous = [
        int(d)
        for d in (
            await uow.session.execute(
                select(ContractAmendment.delta_fen).where(
                    ContractAmendment.contract_id == contract.id
                )
            )
        ).scalars()
    ]
    refusals: list[Refusal] = []
    if contract.value_fen + data.delta_fen < 1:
        refusals.append(Refusal("body.delta_fen", "the contract value would fall below 1 fen"))
    cap = rules.amendment_refusal(
        original_value_fen=contract.original_value_fen,
        previous_deltas=previous,
        delta_fen=data.delta_fen,
    )
    if cap is not None:
        refusals.append(cap)
    capacity, capacity_refusals = rules.capacity_after(
        contract.monthly_capacity, data.capacity_changes, contract.service_codes
    )
    refusals += capacity_refusals
    refuse(refusals, "The amendment is refused.")

    amendment = ContractAmendment(
        id=new_id(),
        contract_id=contract.id,
        delta_fen=data.delta_fen,
        capacity_changes=dict(data.capacity_changes),
        reason=data.reason,
        decided_by=actor.subject,
        at=now,
    )
    uow.session.add(amendment)
    grew = any(n > contract.monthly_capacity.get(code, 0) for code, n in capacity.items())
    contract.value_fen += data.delta_fen
    contract.monthly_capacity = capacity
    contract.version += 1
    contract.updated_at = now
    uow.emit(events.contract_amended(contract, amendment))
    if grew and contract.state == SUPPLYING_STATE:
        await reconsider(uow.session, contract.regions)
    await uow.commit()
    headroom = rules.amendment_headroom_fen(
        contract.original_value_fen, [*previous, data.delta_fen]
    )
    return Amended(amendment=amendment, contract=contract, headroom_fen=headroom)


async def list_amendments(
    *, db: Database, contract_id: str, actor: Principal
) -> list[ContractAmendment]:
    async with db.session() as session:
        contract = await session.get(Contract, contract_id)
        if contract is None or not can_read(actor, contract):
            raise _not_found("contract", contract_id)
        rows = await session.execute(
            select(ContractAmendment)
            .where(ContractAmendment.contract_id == contract_id)
            .order_by(col(ContractAmendment.at), col(ContractAmendment.id))
        )
        return list(rows.scalars().all())


# --------------------------------------------------------------------------------------------
# Completion and termination
# --------------------------------------------------------------------------------------------


async def complete_contract(
    *, uow: UnitOfWork, contract_id: str, actor: Principal, now: datetime
) -> Contract:
    """履约完毕: after the period, or earlier once a period was accepted as qualified."""
    contract = await _purchasers_contract(uow, contract_id, actor)
    _transition(contract, "complete")
    qualified = (
        await uow.session.execute(
            select(Acceptance.id)
            .where(Acceptance.contract_id == contract.id, Acceptance.result == "qualified")
            .limit(1)
        )
    ).first() is not None
    today = china_today(now)
    if not rules.may_complete(
        period_end=contract.period_end, today=today, qualified_acceptance=qualified
    ):
        raise Conflict(
            detail=f"The contract runs until {contract.period_end} and no period has been "
            "accepted as qualified (验收合格) yet.",
            extra={"state": contract.state, "version": contract.version},
        )
    reason = (
        "the contract period is over"
        if today > contract.period_end
        else "completed early after a qualified acceptance"
    )
    from_state = _move(contract, "complete", reason=reason, at=now)
    uow.emit(events.contract_moved("completed", contract, from_state=from_state, at=now))
    await uow.commit()
    return contract


async def terminate_contract(
    *, uow: UnitOfWork, contract_id: str, actor: Principal, reason: str, now: datetime
) -> Contract:
    """The purchaser ends the contract (终止合同执行); its needs are to be taken over."""
    contract = await _purchasers_contract(uow, contract_id, actor)
    from_state = _move(contract, "terminate", reason=reason, at=now)
    uow.emit(events.contract_moved("terminated", contract, from_state=from_state, at=now))
    await uow.commit()
    return contract


# --------------------------------------------------------------------------------------------
# Credit decisions (暂停 / 恢复 / 退出 / 黑名单)
# --------------------------------------------------------------------------------------------


async def apply_credit_decision(
    uow: UnitOfWork,
    *,
    organisation_id: str,
    verb: str,
    decision_version: int,
    reason: str | None,
    at: datetime,
) -> list[Contract]:
    """Pause, resume or terminate the organisation's contracts after a credit decision.

    Credit's `decision_version` orders decisions. The organisation's standing row is locked
    and moved forward here as well (the same monotonic rule as the eligibility consumer), so
    a decision older than one already applied by either consumer changes nothing: a late
    suspension never pauses contracts a newer reinstatement resumed.
    """
    action = rules.credit_action(verb)
    if action is None:
        return []
    session = uow.session
    view = (
        await session.execute(
            select(OrganisationView)
            .where(OrganisationView.organisation_id == organisation_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if view is None:
        view = OrganisationView(organisation_id=organisation_id, updated_at=at)
        session.add(view)
    if decision_version < view.status_version:
        return []  # an older decision arriving late
    if decision_version > view.status_version:
        view.status = CREDIT_STATUS[verb]
        view.status_version = decision_version
        view.updated_at = at
    contracts = (
        (
            await session.execute(
                select(Contract)
                .where(
                    Contract.organisation_id == organisation_id,
                    col(Contract.state).in_(sorted(rules.states_hit_by(action))),
                )
                .order_by(col(Contract.id))
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    why = f"credit decision {decision_version}: organisation {verb}"
    if reason:
        why = f"{why} — {reason}"
    for contract in contracts:
        from_state = _move(contract, action, reason=why, at=at)
        uow.emit(events.contract_moved(VERBS[action], contract, from_state=from_state, at=at))
        if contract.state == SUPPLYING_STATE:  # resumed: its capacity is back
            await reconsider(session, contract.regions)
    return list(contracts)


async def affected_matches(session: AsyncSession, organisation_id: str) -> list[Match]:
    """Active matches under the organisation's paused or terminated contracts: the needs the
    allocation engine must take over (临时接管预案, 吉民发〔2020〕44号 §四(四)3)."""
    rows = await session.execute(
        select(Match)
        .join(Contract, col(Contract.id) == col(Match.contract_id))
        .where(
            Contract.organisation_id == organisation_id,
            col(Contract.state).in_(["paused", "terminated"]),
            Match.state == "active",
        )
        .order_by(col(Match.id))
    )
    return list(rows.scalars().all())


# --------------------------------------------------------------------------------------------
# Reading contracts
# --------------------------------------------------------------------------------------------


async def get_contract(*, db: Database, contract_id: str, actor: Principal) -> Contract:
    async with db.session() as session:
        contract = await session.get(Contract, contract_id)
    if contract is None or not can_read(actor, contract):
        raise _not_found("contract", contract_id)
    return contract


async def list_contracts(
    *,
    db: Database,
    actor: Principal,
    state: str | None,
    organisation_id: str | None,
    project_id: str | None,
    tender_id: str | None,
    region: str | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[Contract], int]:
    query = select(Contract)
    announced = col(Contract.state).in_(sorted(rules.ANNOUNCED_STATES))
    if actor.role in STAFF_ROLES:
        if actor.region:
            query = query.where(col(Contract.region_code).startswith(actor.region))
    elif actor.role != Role.ministry:
        if actor.org_id is not None:
            query = query.where(or_(col(Contract.organisation_id) == actor.org_id, announced))
        else:
            query = query.where(announced)
    if state:
        query = query.where(Contract.state == state)
    if organisation_id:
        query = query.where(Contract.organisation_id == organisation_id)
    if project_id:
        query = query.where(Contract.project_id == project_id)
    if tender_id:
        query = query.where(Contract.tender_id == tender_id)
    if region:
        query = query.where(col(Contract.region_code).startswith(region))
    async with db.session() as session:
        return await fetch_page(
            session, query, order_by=CONTRACT_SORTS[sort], limit=limit, offset=offset
        )


# --------------------------------------------------------------------------------------------
# Delivery (服务记录)
# --------------------------------------------------------------------------------------------


async def record_delivery(
    *, uow: UnitOfWork, match_id: str, data: DeliveryCreate, actor: Principal, now: datetime
) -> Delivery:
    """The organisation holding the match records a session delivered under its contract.

    Any other organisation is refused: serving another's match is a transfer or subcontract
    of the contract (严禁服务转包).
    """
    session = uow.session
    match = await session.get(Match, match_id)
    if match is None:
        raise _not_found("match", match_id)
    contract = (
        await session.get(Contract, match.contract_id) if match.contract_id is not None else None
    )
    if match.organisation_id is None or contract is None:
        # A charity resource's match, or one the allocation made outside any contract.
        raise Conflict(detail="The match is not under a contract; there is none to serve under.")
    pack = _pack(contract.region_code)
    deliverer = actor.org_id or ""
    refusal = rules.delivery_refusal(
        pack, holder=match.organisation_id, deliverer=deliverer
    ) or rules.delivery_refusal(pack, holder=contract.organisation_id, deliverer=deliverer)
    if refusal is not None:
        refuse([refusal], "Service under this match may be recorded only by its organisation.")
    if match.state != "active":
        raise Conflict(detail=f"The match is {match.state}; service is recorded on active ones.")
    if contract.state not in rules.DELIVERABLE_STATES:
        raise Conflict(
            detail=f"The contract is {contract.state}; service is recorded only while it is "
            "in force.",
            extra={"contract_state": contract.state},
        )
    refuse(
        rules.delivery_date_refusals(
            data.delivered_on,
            period_start=contract.period_start,
            period_end=contract.period_end,
            today=china_today(now),
        ),
        "The service record is refused.",
    )
    delivery = Delivery(
        id=new_id(),
        match_id=match.id,
        contract_id=contract.id,
        organisation_id=contract.organisation_id,
        recipient_ref=match.recipient_ref,
        delivered_on=data.delivered_on,
        units=data.units,
        worker=data.worker,
        note=data.note,
        recorded_by=actor.subject,
        recorded_at=now,
    )
    session.add(delivery)
    await uow.commit()
    return delivery


async def confirm_delivery(
    *, uow: UnitOfWork, delivery_id: str, by: str, actor: Principal, now: datetime
) -> Delivery:
    """The recipient (or a proxy) confirms the session, recorded by the purchasing side of the
    region; `service.delivered` follows (needs: in_service; credit: evaluation)."""
    session = uow.session
    delivery = (
        await session.execute(select(Delivery).where(Delivery.id == delivery_id).with_for_update())
    ).scalar_one_or_none()
    match = await session.get(Match, delivery.match_id) if delivery is not None else None
    if delivery is None or match is None or not actor.covers(match.region_code):
        raise _not_found("service record", delivery_id)
    if delivery.confirmed_at is not None:
        raise Conflict(
            detail=f"The session was already confirmed by the {delivery.confirmed_by}.",
            extra={"confirmed_by": delivery.confirmed_by},
        )
    delivery.confirmed_by = by
    delivery.confirmed_at = now
    uow.emit(events.service_delivered(delivery, match))
    await uow.commit()
    return delivery


async def list_deliveries(
    *,
    db: Database,
    contract_id: str,
    actor: Principal,
    confirmed: bool | None,
    match_id: str | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[Delivery], int]:
    async with db.session() as session:
        contract = await session.get(Contract, contract_id)
        if contract is None or not is_party(actor, contract):
            raise _not_found("contract", contract_id)
        query = select(Delivery).where(Delivery.contract_id == contract_id)
        if confirmed is True:
            query = query.where(col(Delivery.confirmed_at).is_not(None))
        elif confirmed is False:
            query = query.where(col(Delivery.confirmed_at).is_(None))
        if match_id:
            query = query.where(Delivery.match_id == match_id)
        return await fetch_page(
            session, query, order_by=DELIVERY_SORTS[sort], limit=limit, offset=offset
        )


# --------------------------------------------------------------------------------------------
# Acceptance (履约验收)
# --------------------------------------------------------------------------------------------


async def open_acceptance(
    *, uow: UnitOfWork, contract_id: str, period: str, actor: Principal, now: datetime
) -> Acceptance:
    """Accept one period: invite exactly the recipients served under the contract in it
    (distinct refs with confirmed sessions), so satisfaction comes only from people served."""
    contract = await _purchasers_contract(uow, contract_id, actor)
    if contract.state in ("pending", "refused"):
        raise Conflict(
            detail=f"A {contract.state} contract was never performed; nothing to accept.",
            extra={"state": contract.state},
        )
    refuse(
        rules.acceptance_period_refusals(
            period,
            period_start=contract.period_start,
            period_end=contract.period_end,
            today=china_today(now),
        ),
        "The acceptance period is refused.",
    )
    existing = (
        await uow.session.execute(
            select(Acceptance).where(
                Acceptance.contract_id == contract.id, Acceptance.period == period
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            detail=f"Period {period} of this contract already has an acceptance.",
            extra={"existing_id": existing.id},
        )
    first, last = rules.period_range(period)
    refs = (
        await uow.session.execute(
            select(Delivery.recipient_ref)
            .where(
                Delivery.contract_id == contract.id,
                col(Delivery.confirmed_at).is_not(None),
                col(Delivery.delivered_on) >= first,
                col(Delivery.delivered_on) <= last,
            )
            .distinct()
        )
    ).scalars()
    acceptance = Acceptance(
        id=new_id(),
        contract_id=contract.id,
        period=period,
        invited_recipients=sorted(set(refs)),
        summary={},
        created_at=now,
    )
    uow.session.add(acceptance)
    uow.emit(events.acceptance_event("opened", acceptance, contract))
    await uow.commit()
    return acceptance


async def publish_acceptance(
    *,
    uow: UnitOfWork,
    acceptance_id: str,
    data: AcceptanceResultIn,
    actor: Principal,
    now: datetime,
) -> Acceptance:
    """Publish the result (验收结果): qualified or unqualified, with the invited refs."""
    acceptance = (
        await uow.session.execute(
            select(Acceptance).where(Acceptance.id == acceptance_id).with_for_update()
        )
    ).scalar_one_or_none()
    contract = (
        await uow.session.get(Contract, acceptance.contract_id) if acceptance is not None else None
    )
    if acceptance is None or contract is None or not actor.covers(contract.region_code):
        raise _not_found("acceptance", acceptance_id)
    if acceptance.result is not None:
        raise Conflict(
            detail=f"The result ({acceptance.result}) was already published.",
            extra={"result": acceptance.result},
        )
    acceptance.result = data.result
    acceptance.summary = dict(data.summary)
    acceptance.decided_by = actor.subject
    acceptance.published_at = now
    uow.emit(events.acceptance_event("published", acceptance, contract))
    await uow.commit()
    return acceptance


async def get_acceptance(*, db: Database, acceptance_id: str, actor: Principal) -> Acceptance:
    async with db.session() as session:
        acceptance = await session.get(Acceptance, acceptance_id)
        contract = (
            await session.get(Contract, acceptance.contract_id) if acceptance is not None else None
        )
    if acceptance is None or contract is None or not is_party(actor, contract):
        raise _not_found("acceptance", acceptance_id)
    return acceptance


async def list_acceptances(*, db: Database, contract_id: str, actor: Principal) -> list[Acceptance]:
    async with db.session() as session:
        contract = await session.get(Contract, contract_id)
        if contract is None or not is_party(actor, contract):
            raise _not_found("contract", contract_id)
        rows = await session.execute(
            select(Acceptance)
            .where(Acceptance.contract_id == contract_id)
            .order_by(col(Acceptance.period), col(Acceptance.id))
        )
        return list(rows.scalars().all())
