"""Use cases of tenders (采购) and sealed bids (密封投标); no HTTP here.

A tender buys one published project by one of the five methods. It is drafted, published
(state `bidding` while the bid window is open and until opening), opened at or after the
deadline (开标) and then either goes to evaluation (`evaluating`) or fails (`failed`, 废标);
it may be cancelled before award. Bids are sealed: the price and the content exist only as
one AES-GCM token bound to the tender and the organisation until opening, and nobody but the
bidder — not the purchaser, not an operator — can read them before.

"Now" comes from a clock (`Clock`), the system time unless the app's state carries another
(`app.state.clock`), so tests control deadlines, windows and working days without sleeping.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from libs.common.auth import Principal, Role
from libs.common.clock import china_day, clock_of
from libs.common.crypto import DecryptionError, FieldCipher, KeyRing
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
from libs.common.ids import new_id
from libs.common.pagination import fetch_page
from libs.common.policy import PolicyPack, calendar_for, pack_for_region
from libs.common.service import PeriodicJob, ServiceRuntime
from libs.common.workdays import UnknownCalendarYear
from services.matching.library.models import ProjectView
from services.matching.market.models import Bid, Tender
from services.matching.models import OrganisationView
from services.matching.settings import MatchingSettings
from services.matching.tenders import events, rules
from services.matching.tenders.rules import Refusal
from services.matching.tenders.schemas import (
    BidIn,
    BidMine,
    BidOpened,
    BidsSummary,
    CriterionOut,
    TenderCreate,
    TenderPublic,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Clock
# --------------------------------------------------------------------------------------------

# The clock is shared: libs.common.clock (`clock_of(app.state)`).


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; SQLite hands back naive ones, which are stored as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --------------------------------------------------------------------------------------------
# Sealing (密封)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BidSeal:
    """Seals a bid's price and content as one AES-GCM token, bound to tender and bidder.

    The context `bid:<tender_id>:<organisation_id>` makes a token copied onto another bid
    fail to open instead of showing someone else's offer.
    """

    cipher: FieldCipher

    @staticmethod
    def context(tender_id: str, organisation_id: str) -> str:
        return f"bid:{tender_id}:{organisation_id}"

    def seal(self, tender_id: str, organisation_id: str, price_fen: int, content: Any) -> str:
        plain = json.dumps(
            {"price_fen": price_fen, "content": content}, ensure_ascii=False, sort_keys=True
        )
        return self.cipher.encrypt(plain, context=self.context(tender_id, organisation_id))

    def open(self, tender_id: str, organisation_id: str, token: str) -> tuple[int, dict[str, Any]]:
        plain = self.cipher.decrypt(token, context=self.context(tender_id, organisation_id))
        data = json.loads(plain)
        return int(data["price_fen"]), dict(data["content"])


@functools.cache
def bid_seal(data_keys: str) -> BidSeal:
    """One seal per key configuration (parsing the key ring once)."""
    return BidSeal(FieldCipher(KeyRing.from_config(data_keys)))


def seal_of(runtime: ServiceRuntime) -> BidSeal:
    """The seal of the matching service's configured data keys."""
    settings = runtime.settings
    if not isinstance(settings, MatchingSettings):
        raise TypeError("tenders run in the matching service (MatchingSettings.data_keys)")
    return bid_seal(settings.data_keys)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

STAFF_ROLES = frozenset({Role.operator, Role.purchaser})
# Who may read a bid's content once opened: the purchasing side and the panel.
CONTENT_READERS = frozenset({Role.operator, Role.purchaser, Role.expert})

OCDS_STATUS = {
    "draft": "planned",
    "published": "active",
    "bidding": "active",
    "evaluating": "active",
    "awarded": "complete",
    "failed": "unsuccessful",
    "cancelled": "cancelled",
}

SORTS: dict[str, Sequence[Any]] = {
    "created_at": (col(Tender.created_at), col(Tender.id)),
    "-created_at": (col(Tender.created_at).desc(), col(Tender.id)),
    "bid_deadline": (col(Tender.bid_deadline), col(Tender.id)),
    "-bid_deadline": (col(Tender.bid_deadline).desc(), col(Tender.id)),
}


def refuse(refusals: Sequence[Refusal], detail: str) -> None:
    """Raise for refusals: RuleViolation (with the clauses) if a policy rule is among them."""
    if not refusals:
        return
    errors = [FieldError(r.field, r.reason) for r in refusals]
    cited = [c for c in (r.cited() for r in refusals) if c]
    if cited:
        raise RuleViolation(
            detail=detail, errors=errors, extra={"rules": list(dict.fromkeys(cited))}
        )
    raise InvalidInput(detail=detail, errors=errors)


def _pack(region_code: str) -> PolicyPack:
    return pack_for_region(region_code)


def _pack_label(pack: PolicyPack) -> str:
    return f"{pack.province}@{pack.version}"


def _bidder(view: OrganisationView | None, organisation_id: str) -> rules.Bidder:
    if view is None:
        return rules.Bidder(organisation_id, False, "unknown", (), {}, {})
    return rules.Bidder(
        organisation_id=view.organisation_id,
        registered=view.registered,
        status=view.status,
        service_regions=list(view.service_regions),
        capacities=dict(view.capacities),
        qualifications=dict(view.qualifications),
    )


def _terms(tender: Tender, *, invitation: bool | None = None) -> rules.TenderTerms:
    by_invitation = bool(tender.invited) if invitation is None else invitation
    return rules.TenderTerms(
        method=tender.method,
        region_code=tender.region_code,
        service_codes=list(tender.service_codes),
        qualification_requirements=list(tender.qualification_requirements),
        budget_fen=tender.budget_fen,
        invited=list(tender.invited),
        by_invitation=by_invitation,
    )


def _opened(tender: Tender) -> bool:
    """Whether the bids were opened (开标): from then on prices and the invitations are public.

    A tender cancelled before opening never reveals its sealed bids.
    """
    return tender.state in ("evaluating", "awarded", "failed")


def bidding_open(tender: Tender, now: datetime) -> bool:
    return (
        tender.state == "bidding"
        and tender.bid_deadline is not None
        and utc(now) < utc(tender.bid_deadline)
    )


# --------------------------------------------------------------------------------------------
# Reading tenders
# --------------------------------------------------------------------------------------------


def can_see(actor: Principal, tender: Tender) -> bool:
    """Purchasers and operators see tenders in their region, drafts included. Everyone else
    sees published notices anywhere (采购信息公开), never drafts."""
    if actor.role in STAFF_ROLES:
        return actor.covers(tender.region_code)
    return tender.state != "draft"


def to_public(tender: Tender, *, actor: Principal, now: datetime) -> TenderPublic:
    """The notice as `actor` may see it (invitations hidden from bidders until opening)."""
    invited, seed = list(tender.invited), tender.invitation_seed
    candidates = list(tender.invitation_candidates)
    if actor.role not in STAFF_ROLES and not _opened(tender) and tender.method != "single_source":
        # Who else is invited is not told to bidders before opening (it would invite collusion).
        invited = [o for o in invited if o == actor.org_id]
        seed, candidates = None, []
    return TenderPublic(
        id=tender.id,
        project_id=tender.project_id,
        previous_tender_id=tender.previous_tender_id,
        method=tender.method,
        method_reason=tender.method_reason,
        state=tender.state,
        state_reason=tender.state_reason,
        ocds_status=OCDS_STATUS.get(tender.state, "active"),
        region_code=tender.region_code,
        title=tender.title,
        service_codes=list(tender.service_codes),
        budget_fen=tender.budget_fen,
        pack=tender.pack,
        criteria=[
            CriterionOut(code=c["code"], name=c["name"], weight=Decimal(str(c["weight"])))
            for c in tender.criteria
        ],
        price_weight=Decimal(str(tender.price_weight)),
        qualification_requirements=list(tender.qualification_requirements),
        high_value=tender.high_value,
        panel_size=tender.panel_size,
        published_at=utc(tender.published_at) if tender.published_at else None,
        bid_deadline=utc(tender.bid_deadline) if tender.bid_deadline else None,
        bidding_open=bidding_open(tender, now),
        invited=invited,
        invitation_seed=seed,
        invitation_candidates=candidates,
        single_source_justification=tender.single_source_justification,
        publicity_until=tender.publicity_until,
        version=tender.version,
        created_at=utc(tender.created_at),
        updated_at=utc(tender.updated_at),
    )


async def _tender_for_update(uow: UnitOfWork, tender_id: str) -> Tender | None:
    return (
        await uow.session.execute(select(Tender).where(Tender.id == tender_id).with_for_update())
    ).scalar_one_or_none()


async def _visible_tender(
    uow: UnitOfWork, tender_id: str, actor: Principal, *, for_update: bool = True
) -> Tender:
    tender = (
        await _tender_for_update(uow, tender_id)
        if for_update
        else await uow.session.get(Tender, tender_id)
    )
    if tender is None or not can_see(actor, tender):
        raise NotFound(detail="The requested resource was not found.")
    return tender


async def get_tender(*, db: Database, tender_id: str, actor: Principal) -> Tender:
    async with db.session() as session:
        tender = await session.get(Tender, tender_id)
    if tender is None or not can_see(actor, tender):
        raise NotFound(detail="The requested resource was not found.")
    return tender


async def list_tenders(
    *,
    db: Database,
    actor: Principal,
    state: str | None,
    method: str | None,
    project_id: str | None,
    region: str | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[Tender], int]:
    query = select(Tender)
    if actor.role in STAFF_ROLES:
        query = query.where(col(Tender.region_code).startswith(actor.region))
    else:
        query = query.where(col(Tender.state) != "draft")
    if region:
        query = query.where(col(Tender.region_code).startswith(region))
    if state:
        query = query.where(col(Tender.state) == state)
    if method:
        query = query.where(col(Tender.method) == method)
    if project_id:
        query = query.where(col(Tender.project_id) == project_id)
    async with db.session() as session:
        return await fetch_page(session, query, order_by=SORTS[sort], limit=limit, offset=offset)


# --------------------------------------------------------------------------------------------
# Creating, publishing, cancelling
# --------------------------------------------------------------------------------------------


def _require_staff_region(actor: Principal, region_code: str) -> None:
    if actor.role not in STAFF_ROLES:
        raise Forbidden(detail="Only purchasers and operators manage tenders.")
    actor.require_region(region_code)


async def _project(uow: UnitOfWork, project_id: str, actor: Principal) -> ProjectView:
    project = await uow.session.get(ProjectView, project_id)
    if project is None or project.payload.get("tombstone") or not actor.covers(project.region_code):
        raise NotFound(
            detail=f"No published project {project_id} in your region.",
            errors=[FieldError("body.project_id", "unknown project")],
        )
    if project.state != "published":
        raise Conflict(
            detail=f"The project is {project.state}; only a published project can be tendered.",
            errors=[FieldError("body.project_id", f"project {project.state}")],
        )
    return project


async def _tenders_of(uow: UnitOfWork, project_id: str) -> list[Tender]:
    return list(
        (
            await uow.session.execute(
                select(Tender)
                .where(Tender.project_id == project_id)
                .order_by(col(Tender.created_at).desc(), col(Tender.id).desc())
            )
        )
        .scalars()
        .all()
    )


async def _organisation(uow: UnitOfWork, organisation_id: str) -> OrganisationView | None:
    return await uow.session.get(OrganisationView, organisation_id)


async def create_tender(
    *, uow: UnitOfWork, data: TenderCreate, actor: Principal, now: datetime
) -> Tender:
    """Draft a tender for a published project (采购需求 → 采购文件)."""
    project = await _project(uow, data.project_id, actor)
    _require_staff_region(actor, project.region_code)
    pack = _pack(project.region_code)
    try:
        rule = rules.procedure(pack, data.method)
    except LookupError as exc:
        raise invalid("body.method", str(exc)) from None

    earlier = await _tenders_of(uow, project.project_id)
    live = [t for t in earlier if t.state in rules.LIVE_STATES]
    if live:
        raise Conflict(
            detail=f"The project already has tender {live[0].id} ({live[0].state}).",
            errors=[FieldError("body.project_id", "a tender of this project is under way")],
        )
    previous = earlier[0] if earlier else None
    failed_method = previous.method if previous and previous.state == "failed" else None

    refusals: list[Refusal] = []
    change = rules.method_change_refusal(
        project_method=project.purchasing_method,
        method=data.method,
        reason=data.method_reason,
        failed_method=failed_method,
        pack=pack,
    )
    if change:
        refusals.append(change)
    criteria = [rules.Criterion(c.code, c.name, c.weight) for c in data.criteria]
    refusals += rules.weight_refusals(pack, criteria, data.price_weight)
    refusals += rules.invitation_refusals(
        rule, suppliers=data.suppliers, invited_count=data.invited_count
    )
    window = rules.bid_window_refusal(
        rule, published_at=utc(now), bid_deadline=utc(data.bid_deadline)
    )
    if window:
        refusals.append(window)
    refusals += rules.requirement_refusals(
        project.qualification_requirements, data.qualification_requirements
    )
    requirements = sorted(
        set(data.qualification_requirements or []) | set(project.qualification_requirements)
    )
    invited: list[str] = []
    justification: str | None = None
    if rule.suppliers == "named":
        if data.single_source is None:
            refusals.append(Refusal("body.single_source", "single source names its supplier"))
        else:
            org_id = data.single_source.organisation_id
            justification = data.single_source.justification
            invited = [org_id]
            terms = rules.TenderTerms(
                data.method,
                project.region_code,
                list(project.service_codes),
                requirements,
                project.budget_fen,
            )
            view = await _organisation(uow, org_id)
            for r in rules.eligibility_refusals(pack, _bidder(view, org_id), terms):
                refusals.append(Refusal(f"body.single_source.{r.field}", r.reason, r.rule))
    elif data.single_source is not None:
        refusals.append(Refusal("body.single_source", f"{data.method} names no single supplier"))
    refuse(refusals, "The tender cannot be set up as requested; see `errors`.")

    draws = rules.draws_suppliers(rule, data.suppliers)
    reason = data.method_reason
    if failed_method and previous is not None and not reason:
        reason = f"tender {previous.id} ({failed_method}) failed: {previous.state_reason}"
    tender = Tender(
        id=new_id(),
        project_id=project.project_id,
        previous_tender_id=previous.id if previous else None,
        method=data.method,
        method_reason=reason[:2000] if reason else None,
        state="draft",
        region_code=project.region_code,
        title=project.title,
        service_codes=list(project.service_codes),
        budget_fen=project.budget_fen,
        pack=_pack_label(pack),
        criteria=[{"code": c.code, "name": c.name, "weight": str(c.weight)} for c in criteria],
        price_weight=data.price_weight,
        qualification_requirements=requirements,
        high_value=pack.procurement.is_high_value(data.method, project.budget_fen),
        panel_size=pack.procurement.panel_size(data.method, project.budget_fen),
        bid_deadline=utc(data.bid_deadline),
        invited=invited,
        invitation_count=(data.invited_count or rule.min_invited) if draws else None,
        single_source_justification=justification,
        created_by=actor.subject,
        created_at=utc(now),
        updated_at=utc(now),
    )
    uow.session.add(tender)
    await uow.commit()
    return tender


async def qualified_candidates(uow: UnitOfWork, pack: PolicyPack, tender: Tender) -> list[str]:
    """Every organisation that may be invited: admitted, covering the region and every item,
    meeting every qualification requirement — sorted, as the draw needs."""
    views = (
        (
            await uow.session.execute(
                select(OrganisationView).where(
                    col(OrganisationView.status) == rules.ELIGIBLE_STATUS,
                    col(OrganisationView.registered).is_(True),
                )
            )
        )
        .scalars()
        .all()
    )
    terms = _terms(tender, invitation=False)
    return sorted(
        v.organisation_id
        for v in views
        if not rules.eligibility_refusals(pack, _bidder(v, v.organisation_id), terms)
    )


async def publish_tender(
    *, uow: UnitOfWork, tender_id: str, actor: Principal, now: datetime
) -> Tender:
    """Publish the notice and open the bid window (state `bidding`).

    Invitation methods draw their suppliers now, from those qualified at this moment, with
    a fresh random seed; seed and candidates are kept so anyone can re-run the draw. A
    single-source purchase starts its publicity period (公示期) today.
    """
    tender = await _visible_tender(uow, tender_id, actor)
    _require_staff_region(actor, tender.region_code)
    if tender.state != "draft":
        raise Conflict(detail=f"The tender is {tender.state}; only a draft can be published.")
    project = await uow.session.get(ProjectView, tender.project_id)
    if project is None or project.state != "published":
        raise Conflict(detail="The project is no longer published; the tender cannot open.")
    pack = _pack(tender.region_code)
    rule = rules.procedure(pack, tender.method)
    now = utc(now)
    assert tender.bid_deadline is not None
    window = rules.bid_window_refusal(rule, published_at=now, bid_deadline=utc(tender.bid_deadline))
    refuse([window] if window else [], "The bid window is too short from today; see `errors`.")
    if tender.invitation_count is not None:
        candidates = await qualified_candidates(uow, pack, tender)
        short = rules.draw_refusal(rule, candidates=len(candidates), wanted=tender.invitation_count)
        refuse([short] if short else [], "Too few qualified organisations to invite.")
        seed = secrets.token_hex(16)
        tender.invitation_seed = seed
        tender.invitation_candidates = candidates
        tender.invited = rules.draw(candidates, tender.invitation_count, seed)
    if rule.suppliers == "named":
        org_id = tender.invited[0]
        view = await _organisation(uow, org_id)
        refuse(
            rules.eligibility_refusals(pack, _bidder(view, org_id), _terms(tender)),
            "The single source is no longer eligible.",
        )
    if rule.publicity_working_days is not None:
        try:
            tender.publicity_until = rules.publicity_until(calendar_for(pack), rule, china_day(now))
        except UnknownCalendarYear as exc:
            raise invalid("publicity_until", str(exc)) from None
    tender.state = "bidding"
    tender.published_at = now
    tender.version += 1
    tender.updated_at = now
    uow.emit(events.tender_published(tender))
    await uow.commit()
    return tender


def _cancel(uow: UnitOfWork, tender: Tender, *, reason: str, now: datetime) -> None:
    from_state = tender.state
    tender.state = "cancelled"
    tender.state_reason = reason[:2000]
    tender.version += 1
    tender.updated_at = utc(now)
    uow.emit(events.tender_cancelled(tender, from_state=from_state, at=utc(now)))


async def cancel_tender(
    *, uow: UnitOfWork, tender_id: str, actor: Principal, reason: str, now: datetime
) -> Tender:
    """Cancel a tender before award (终止采购); bids not yet opened stay sealed."""
    tender = await _visible_tender(uow, tender_id, actor)
    _require_staff_region(actor, tender.region_code)
    if tender.state not in rules.CANCELLABLE_STATES:
        raise Conflict(detail=f"The tender is {tender.state}; it can no longer be cancelled.")
    _cancel(uow, tender, reason=reason, now=now)
    await uow.commit()
    return tender


async def cancel_tenders_of_project(
    uow: UnitOfWork, *, project_id: str, reason: str, now: datetime
) -> list[Tender]:
    """The project was cancelled: end every tender of it still open. The caller commits."""
    tenders = (
        (
            await uow.session.execute(
                select(Tender)
                .where(
                    Tender.project_id == project_id,
                    col(Tender.state).in_(rules.CANCELLABLE_STATES),
                )
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    for tender in tenders:
        _cancel(uow, tender, reason=reason, now=now)
    return list(tenders)


# --------------------------------------------------------------------------------------------
# Bids
# --------------------------------------------------------------------------------------------


def _bidder_id(actor: Principal) -> str:
    if actor.role != Role.organisation or not actor.org_id:
        raise Forbidden(detail="Only organisations bid, for themselves.")
    return actor.org_id


def _window_refusal(tender: Tender, now: datetime) -> None:
    if tender.state != "bidding":
        raise Conflict(
            detail=f"The tender is {tender.state}; it takes no bids.",
            errors=[FieldError("tender.state", tender.state)],
        )
    if not bidding_open(tender, now):
        raise Conflict(
            detail="The bid deadline has passed.",
            errors=[FieldError("tender.bid_deadline", "deadline passed (投标截止)")],
        )


async def _check_bidder(
    uow: UnitOfWork, tender: Tender, organisation_id: str, price_fen: int
) -> None:
    pack = _pack(tender.region_code)
    view = await _organisation(uow, organisation_id)
    refusals = rules.eligibility_refusals(pack, _bidder(view, organisation_id), _terms(tender))
    price = rules.price_refusal(price_fen, tender.budget_fen)
    if price:
        refusals.append(price)
    refuse(refusals, "The organisation may not bid on this tender; see `errors`.")


async def _own_bid(uow: UnitOfWork, tender_id: str, organisation_id: str) -> Bid | None:
    return (
        await uow.session.execute(
            select(Bid)
            .where(Bid.tender_id == tender_id, Bid.organisation_id == organisation_id)
            .with_for_update()
        )
    ).scalar_one_or_none()


async def submit_bid(
    *,
    uow: UnitOfWork,
    tender_id: str,
    actor: Principal,
    body: BidIn,
    seal: BidSeal,
    now: datetime,
) -> Bid:
    """Submit a sealed bid (投标): one per organisation, before the deadline."""
    organisation_id = _bidder_id(actor)
    tender = await _visible_tender(uow, tender_id, actor)
    _window_refusal(tender, now)
    await _check_bidder(uow, tender, organisation_id, body.price_fen)
    now = utc(now)
    sealed = seal.seal(tender.id, organisation_id, body.price_fen, body.content)
    bid = await _own_bid(uow, tender.id, organisation_id)
    if bid is not None and bid.state != "withdrawn":
        raise Conflict(
            detail="This organisation has already bid; replace it with PUT /bids/mine.",
            errors=[FieldError("organisation_id", "one bid per organisation")],
        )
    if bid is None:
        bid = Bid(
            id=new_id(),
            tender_id=tender.id,
            organisation_id=organisation_id,
            sealed=sealed,
            submitted_at=now,
            updated_at=now,
        )
        uow.session.add(bid)
    else:  # bidding again after a withdrawal
        bid.state, bid.sealed, bid.version = "submitted", sealed, bid.version + 1
        bid.submitted_at = bid.updated_at = now
    uow.emit(events.bid_event("submitted", bid))
    try:
        await uow.commit()
    except IntegrityError:
        # Two submissions raced past the check; the unique constraint kept one.
        raise Conflict(detail="This organisation has already bid.") from None
    return bid


async def replace_bid(
    *,
    uow: UnitOfWork,
    tender_id: str,
    actor: Principal,
    body: BidIn,
    seal: BidSeal,
    now: datetime,
) -> Bid:
    """Replace the organisation's bid before the deadline (修改投标文件)."""
    organisation_id = _bidder_id(actor)
    tender = await _visible_tender(uow, tender_id, actor)
    _window_refusal(tender, now)
    bid = await _own_bid(uow, tender.id, organisation_id)
    if bid is None or bid.state == "withdrawn":
        raise NotFound(detail="This organisation has no bid on the tender.")
    await _check_bidder(uow, tender, organisation_id, body.price_fen)
    bid.sealed = seal.seal(tender.id, organisation_id, body.price_fen, body.content)
    bid.version += 1
    bid.updated_at = utc(now)
    uow.emit(events.bid_event("replaced", bid))
    await uow.commit()
    return bid


async def withdraw_bid(*, uow: UnitOfWork, tender_id: str, actor: Principal, now: datetime) -> Bid:
    """Withdraw the organisation's bid before the deadline (撤回); the sealed offer is erased."""
    organisation_id = _bidder_id(actor)
    tender = await _visible_tender(uow, tender_id, actor)
    _window_refusal(tender, now)
    bid = await _own_bid(uow, tender.id, organisation_id)
    if bid is None or bid.state == "withdrawn":
        raise NotFound(detail="This organisation has no bid on the tender.")
    bid.state = "withdrawn"
    bid.sealed = ""
    bid.version += 1
    bid.updated_at = utc(now)
    uow.emit(events.bid_event("withdrawn", bid))
    await uow.commit()
    return bid


def to_mine(bid: Bid, seal: BidSeal) -> BidMine:
    price, content = (bid.price_fen, bid.content)
    if bid.state == "submitted" and bid.sealed:
        price, content = seal.open(bid.tender_id, bid.organisation_id, bid.sealed)
    return BidMine(
        id=bid.id,
        tender_id=bid.tender_id,
        organisation_id=bid.organisation_id,
        state=bid.state,
        price_fen=price,
        content=content,
        version=bid.version,
        submitted_at=utc(bid.submitted_at),
        updated_at=utc(bid.updated_at),
    )


async def my_bid(*, db: Database, tender_id: str, actor: Principal) -> Bid:
    organisation_id = _bidder_id(actor)
    await get_tender(db=db, tender_id=tender_id, actor=actor)
    async with db.session() as session:
        query = select(Bid).where(
            Bid.tender_id == tender_id, Bid.organisation_id == organisation_id
        )
        bid = (await session.execute(query)).scalar_one_or_none()
    if bid is None:
        raise NotFound(detail="This organisation has no bid on the tender.")
    return bid


def _to_opened(bid: Bid, actor: Principal) -> BidOpened:
    return BidOpened(
        id=bid.id,
        organisation_id=bid.organisation_id,
        state=bid.state,
        price_fen=bid.price_fen,
        invalid_reason=bid.invalid_reason,
        content=bid.content if actor.role in CONTENT_READERS else None,
        submitted_at=utc(bid.submitted_at),
        opened_at=utc(bid.opened_at) if bid.opened_at else None,
    )


async def bids_of(*, db: Database, tender_id: str, actor: Principal) -> BidsSummary:
    """Before opening: only how many bids are in. After: every opened bid (唱标)."""
    tender = await get_tender(db=db, tender_id=tender_id, actor=actor)
    async with db.session() as session:
        if not _opened(tender):
            count = (
                await session.execute(
                    select(func.count())
                    .select_from(Bid)
                    .where(Bid.tender_id == tender_id, col(Bid.state) != "withdrawn")
                )
            ).scalar_one()
            return BidsSummary(tender_id=tender_id, opened=False, count=int(count), items=[])
        rows = (
            (
                await session.execute(
                    select(Bid)
                    .where(Bid.tender_id == tender_id, col(Bid.state).in_(("valid", "invalid")))
                    .order_by(col(Bid.submitted_at), col(Bid.id))
                )
            )
            .scalars()
            .all()
        )
    items = [_to_opened(b, actor) for b in rows]
    return BidsSummary(tender_id=tender_id, opened=True, count=len(items), items=items)


async def get_bid(
    *, db: Database, tender_id: str, bid_id: str, actor: Principal, seal: BidSeal
) -> BidMine | BidOpened:
    """One bid: its bidder may read it at any time; others only once it is opened."""
    tender = await get_tender(db=db, tender_id=tender_id, actor=actor)
    async with db.session() as session:
        bid = await session.get(Bid, bid_id)
    if bid is None or bid.tender_id != tender.id:
        raise NotFound(detail="The requested resource was not found.")
    if actor.role == Role.organisation and actor.org_id == bid.organisation_id:
        return to_mine(bid, seal)
    if not _opened(tender) or bid.state not in ("valid", "invalid"):
        raise Forbidden(detail="Bids are sealed until opening (开标); nobody else may read them.")
    return _to_opened(bid, actor)


# --------------------------------------------------------------------------------------------
# Opening (开标)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    tender: Tender
    valid: int
    invalid: int
    rule: str | None


async def open_bids(
    *, uow: UnitOfWork, tender_id: str, actor: Principal | None, seal: BidSeal, now: datetime
) -> Opening:
    """Open the bids at or after the deadline: unseal each, re-check its bidder, mark it valid
    or invalid; then evaluate, or fail the tender (废标) with the clause.

    `actor` None is the opening job. Eligibility is checked again now: an organisation
    suspended since it bid is invalid, with the reason.
    """
    if actor is not None:
        tender = await _visible_tender(uow, tender_id, actor)
        _require_staff_region(actor, tender.region_code)
    else:
        found = await _tender_for_update(uow, tender_id)
        if found is None:
            raise NotFound(detail=f"No tender {tender_id}.")
        tender = found
    now = utc(now)
    if tender.state != "bidding":
        raise Conflict(detail=f"The tender is {tender.state}; only a bidding tender is opened.")
    assert tender.bid_deadline is not None
    if now < utc(tender.bid_deadline):
        raise Conflict(
            detail="Bids are opened only at or after the deadline.",
            errors=[FieldError("tender.bid_deadline", "deadline not reached")],
        )
    pack = _pack(tender.region_code)
    rule = rules.procedure(pack, tender.method)
    bids = (
        (
            await uow.session.execute(
                select(Bid)
                .where(Bid.tender_id == tender.id, Bid.state == "submitted")
                .order_by(col(Bid.submitted_at), col(Bid.id))
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    terms = _terms(tender)
    for bid in bids:
        bid.opened_at = now
        bid.updated_at = now
        try:
            bid.price_fen, bid.content = seal.open(tender.id, bid.organisation_id, bid.sealed)
        except (DecryptionError, ValueError, KeyError, TypeError):
            log.warning("tender %s: bid %s could not be unsealed", tender.id, bid.id)
            bid.state, bid.invalid_reason = "invalid", "the sealed bid could not be opened"
            continue
        view = await _organisation(uow, bid.organisation_id)
        refusals = rules.eligibility_refusals(pack, _bidder(view, bid.organisation_id), terms)
        price = rules.price_refusal(bid.price_fen, tender.budget_fen)
        if price:
            refusals.append(price)
        if refusals:
            bid.state = "invalid"
            bid.invalid_reason = "; ".join(
                r.reason + (f" ({r.cited()})" if r.cited() else "") for r in refusals
            )[:2000]
        else:
            bid.state = "valid"
    valid = sum(1 for b in bids if b.state == "valid")
    outcome = rules.opening_outcome(rule, valid)
    tender.state = outcome.state
    tender.version += 1
    tender.updated_at = now
    cited = outcome.rule.cite() if outcome.rule else None
    if outcome.state == "failed":
        tender.state_reason = outcome.reason
        uow.emit(
            events.tender_failed(
                tender, rule=cited, valid_bids=valid, after_failure=rule.after_failure, at=now
            )
        )
    else:
        uow.emit(events.tender_evaluating(tender, list(bids), at=now))
    await uow.commit()
    return Opening(tender=tender, valid=valid, invalid=len(bids) - valid, rule=cited)


async def due_for_opening(*, db: Database, now: datetime) -> list[str]:
    """Tenders still bidding whose deadline has passed."""
    async with db.session() as session:
        rows = await session.execute(
            select(Tender.id)
            .where(Tender.state == "bidding", col(Tender.bid_deadline) <= utc(now))
            .order_by(col(Tender.bid_deadline), col(Tender.id))
        )
        return [str(r) for r in rows.scalars().all()]


async def open_due_tenders(runtime: ServiceRuntime, *, now: datetime | None = None) -> int:
    """Open every tender whose deadline has passed; return how many were opened.

    Safe in every replica at once: each opening locks its tender and re-checks its state, so
    a tender another replica has just opened is skipped.
    """
    now = now or clock_of(runtime)()
    seal = seal_of(runtime)
    opened = 0
    for tender_id in await due_for_opening(db=runtime.db, now=now):
        try:
            async with runtime.unit_of_work() as uow:
                await open_bids(uow=uow, tender_id=tender_id, actor=None, seal=seal, now=now)
            opened += 1
        except Conflict:
            continue  # opened meanwhile by a purchaser or another replica
    if opened:
        log.info("tender opening: %d tender(s) opened", opened)
    return opened


async def _run_opening(runtime: ServiceRuntime) -> None:
    # PeriodicJob.run returns None; the count is for callers such as tests.
    await open_due_tenders(runtime)


#: The periodic opening (开标) of tenders past their deadline, for `ServiceRuntime(jobs=)`.
opening_job = PeriodicJob(name="tender-opening", interval_seconds=30, run=_run_opening)
