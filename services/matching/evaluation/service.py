"""Use cases of expert panels (评标委员会), score sheets, evaluation (综合评分法), results and
awards (中标/成交); no HTTP here.

A tender reaches evaluation in state `evaluating`, its bids opened. The purchaser draws a panel
from matching's view of the expert library; each member scores each valid bid; evaluation
ranks the bids and offers the award to the best-ranked bidder in good standing. The offered
organisation accepts (the tender is awarded) or refuses; the purchaser may exclude it, and a
credit decision (suspension, exit, blacklisting) excludes it automatically. Each time the
offer passes to the next-ranked; nobody left → the tender fails.

Who is an expert: a token of role `expert` whose subject (`sub`) is the library's expert id.
"Now" is the app's shared clock (`libs.common.clock`, `app.state.clock`), passed in by the
routes, so tests step over deadlines without sleeping.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common.auth import Principal, Role
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
from libs.common.policy import Citation, PolicyPack, pack_for_region
from services.matching.evaluation import events, rules
from services.matching.evaluation.schemas import (
    AwardPublic,
    BidResultPublic,
    CriterionPublic,
    CriterionResult,
    InvalidBidPublic,
    PanelExclusion,
    PanelMember,
    PanelPublic,
    ResultsPublic,
    ScoreSheetIn,
    ScoreSheetPublic,
)
from services.matching.library.models import ExpertView, ProjectView
from services.matching.market.models import Award, Bid, BidResult, Panel, PanelScore, Tender
from services.matching.models import OrganisationView
from services.matching.tenders import events as tender_events
from services.matching.tenders.service import china_day, utc

log = logging.getLogger(__name__)

#: Bids that count as bidders for recusal: every one not withdrawn.
BIDDER_STATES = ("submitted", "valid", "invalid")
#: Bids opened at the deadline (开标).
OPENED_STATES = ("valid", "invalid")


def _cites(citations: Sequence[Citation]) -> list[str]:
    out: list[str] = []
    for c in citations:
        if c.cite() not in out:
            out.append(c.cite())
    return out


def _pack(tender: Tender) -> PolicyPack:
    return pack_for_region(tender.region_code)


async def _tender(
    session: AsyncSession, tender_id: str, *, for_update: bool = False
) -> Tender | None:
    query = select(Tender).where(col(Tender.id) == tender_id)
    if for_update:
        # Row lock on PostgreSQL: panel, sheets, evaluation and awards of one tender take turns.
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def _visible_tender(
    session: AsyncSession, tender_id: str, actor: Principal, *, for_update: bool = False
) -> Tender:
    """The tender, or 404 when absent or outside the caller's region."""
    tender = await _tender(session, tender_id, for_update=for_update)
    if tender is None or not actor.covers(tender.region_code):
        raise NotFound(detail=f"No tender {tender_id}.")
    return tender


async def _panel(session: AsyncSession, tender_id: str) -> Panel | None:
    return (
        await session.execute(select(Panel).where(col(Panel.tender_id) == tender_id))
    ).scalar_one_or_none()


async def _bids(session: AsyncSession, tender_id: str, states: Sequence[str]) -> list[Bid]:
    rows = await session.execute(
        select(Bid)
        .where(col(Bid.tender_id) == tender_id, col(Bid.state).in_(states))
        .order_by(col(Bid.id))
    )
    return list(rows.scalars().all())


async def _organisations(
    session: AsyncSession, organisation_ids: Sequence[str]
) -> dict[str, OrganisationView]:
    if not organisation_ids:
        return {}
    rows = await session.execute(
        select(OrganisationView).where(col(OrganisationView.organisation_id).in_(organisation_ids))
    )
    return {o.organisation_id: o for o in rows.scalars().all()}


async def _expert_names(session: AsyncSession, expert_ids: Sequence[str]) -> dict[str, str]:
    if not expert_ids:
        return {}
    rows = await session.execute(
        select(ExpertView.expert_id, ExpertView.name).where(
            col(ExpertView.expert_id).in_(expert_ids)
        )
    )
    return {str(i): str(n) for i, n in rows.all()}


async def _has_results(session: AsyncSession, tender_id: str) -> bool:
    row = await session.execute(
        select(BidResult.bid_id).where(col(BidResult.tender_id) == tender_id).limit(1)
    )
    return row.first() is not None


def _require_member(panel: Panel | None, actor: Principal) -> Panel:
    """The caller must sit on the tender's panel (token subject = library expert id)."""
    if panel is None or actor.role != Role.expert or actor.subject not in panel.members:
        raise Forbidden(detail="Only members of this tender's evaluation panel may do this.")
    return panel


# --------------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelView:
    panel: Panel
    names: dict[str, str]
    rules: list[str]

    @property
    def draw_date(self) -> date:
        return china_day(self.panel.drawn_at)


def _expert_profile(view: ExpertView) -> rules.Expert | None:
    """The expert as the draw reads it; None when an affiliation cannot be read.

    Recusal protects the bidders: a tie that cannot be read could be the one that obliges
    recusal, so such an expert is left out of the draw (and logged) rather than cleared.
    """
    affiliations: list[rules.Affiliation] = []
    for record in view.affiliations or []:
        try:
            affiliations.append(rules.Affiliation.from_record(record))
        except ValueError:
            log.warning("expert %s: unreadable affiliation; left out of the draw", view.expert_id)
            return None
    return rules.Expert(
        expert_id=view.expert_id,
        fields=tuple(view.fields),
        status=view.status,
        available=view.available,
        unavailable_until=view.unavailable_until,
        region_code=view.region_code,
        affiliations=tuple(affiliations),
    )


def _panel_citations(pack: PolicyPack, rule: rules.PanelRule) -> list[str]:
    return _cites([*rule.rules, pack.procurement.recusal_source])


async def draw_panel(
    *, uow: UnitOfWork, tender_id: str, actor: Principal, now: datetime
) -> PanelView:
    """Draw the tender's panel at random from eligible experts, applying recusal (回避).

    409 when the bids are not opened yet, when a panel exists, or when too few experts are
    eligible (naming how many are needed and found); 422 when the tender's panel size is not
    lawful for its method and budget.
    """
    session = uow.session
    tender = await _visible_tender(session, tender_id, actor, for_update=True)
    if tender.state != "evaluating":
        raise Conflict(
            detail=f"A panel is drawn once the bids are opened (state evaluating); this tender "
            f"is {tender.state}."
        )
    if await _panel(session, tender.id) is not None:
        raise Conflict(detail="This tender's panel is already drawn; a draw is never repeated.")
    pack = _pack(tender)
    procurement = pack.procurement
    try:
        rule = rules.panel_rule(pack, tender.method, tender.budget_fen)
    except LookupError as exc:
        raise Conflict(detail=str(exc)) from exc
    refusal = rules.panel_size_refusal(rule, tender.panel_size)
    if refusal:
        raise RuleViolation(detail=refusal, extra={"rules": rule.cites()})

    day = china_day(now)
    bids = await _bids(session, tender.id, BIDDER_STATES)
    bidder_ids = sorted({b.organisation_id for b in bids})
    orgs = await _organisations(session, bidder_ids)
    bidders = rules.Bidders(
        organisation_ids=frozenset(bidder_ids),
        usccs=frozenset(o.uscc for o in orgs.values() if o.uscc),
    )
    province = tender.region_code[:2]
    views = (
        await session.execute(
            select(ExpertView).where(
                col(ExpertView.region_code).startswith(province),
                col(ExpertView.status) == "active",
            )
        )
    ).scalars()
    profiles = (_expert_profile(v) for v in views.all())
    experts = {e.expert_id: e for e in profiles if e is not None}
    service_codes = set(tender.service_codes)
    candidate_ids = rules.candidates(
        experts.values(), service_codes=service_codes, province=province, day=day
    )
    item_experts = {c for c in candidate_ids if rules.in_item_fields(experts[c], service_codes)}
    conflicts = {
        c: rules.recusal_conflicts(
            experts[c].affiliations,
            bidders,
            on=day,
            years=procurement.recusal_years,
            relations=procurement.recusal_relations,
        )
        for c in candidate_ids
    }
    seed = secrets.token_hex(16)
    drawn = rules.draw_panel(
        seed=seed,
        candidate_ids=candidate_ids,
        size=tender.panel_size,
        conflicts=conflicts,
        item_experts=item_experts,
    )
    if not drawn.complete:
        free = drawn.eligible - drawn.recused
        raise Conflict(
            detail=f"Too few eligible experts: the panel needs {drawn.size} (at least one in "
            f"{', '.join(sorted(service_codes))}); found {drawn.eligible} eligible, "
            f"{drawn.recused} of them recused, leaving {free}, {drawn.in_fields} in the "
            "tender's fields.",
            extra={
                "needed": drawn.size,
                "found": free,
                "eligible": drawn.eligible,
                "recused": drawn.recused,
                "in_fields": drawn.in_fields,
                "rules": _panel_citations(pack, rule),
            },
        )
    panel = Panel(
        id=new_id(),
        tender_id=tender.id,
        size=drawn.size,
        seed=seed,
        candidates=candidate_ids,
        members=drawn.members,
        excluded=[e.as_record() for e in drawn.excluded],
        drawn_by=actor.subject,
        drawn_at=utc(now),
    )
    session.add(panel)
    names = await _expert_names(session, drawn.members)
    # No event: the members' names stay confidential until the results notice.
    await uow.commit()
    return PanelView(panel=panel, names=names, rules=_panel_citations(pack, rule))


async def get_panel(*, db: Database, tender_id: str, actor: Principal) -> PanelView:
    async with db.session() as session:
        tender = await _visible_tender(session, tender_id, actor)
        panel = await _panel(session, tender.id)
        if panel is None:
            raise NotFound(detail=f"No panel has been drawn for tender {tender_id}.")
        names = await _expert_names(session, panel.members)
    pack = _pack(tender)
    rule = rules.panel_rule(pack, tender.method, tender.budget_fen)
    return PanelView(panel=panel, names=names, rules=_panel_citations(pack, rule))


async def audit_panel(*, db: Database, tender_id: str, actor: Principal) -> tuple[Panel, list[str]]:
    """Re-run the draw from the stored seed, candidates and exclusions (审计复核)."""
    view = await get_panel(db=db, tender_id=tender_id, actor=actor)
    panel = view.panel
    replayed = rules.replay_draw(
        seed=panel.seed,
        candidate_ids=panel.candidates,
        size=panel.size,
        excluded={str(e["expert_id"]) for e in panel.excluded},
    )
    return panel, replayed


# --------------------------------------------------------------------------------------------
# What the panel reads
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelBidRow:
    bid: Bid
    organisation: OrganisationView | None
    scored_by_me: bool


async def panel_bids(
    *, db: Database, tender_id: str, actor: Principal, now: datetime
) -> tuple[Tender, list[PanelBidRow]]:
    """The opened bids with each bidder's credit score and satisfaction, for panel members,
    after the deadline only."""
    async with db.session() as session:
        tender = await _tender(session, tender_id)
        if tender is None:
            raise NotFound(detail=f"No tender {tender_id}.")
        _require_member(await _panel(session, tender.id), actor)
        if tender.bid_deadline is None or utc(now) < utc(tender.bid_deadline):
            raise Conflict(detail="The bids stay sealed until the bid deadline.")
        bids = await _bids(session, tender.id, OPENED_STATES)
        orgs = await _organisations(session, [b.organisation_id for b in bids])
        mine = await session.execute(
            select(PanelScore.bid_id).where(
                col(PanelScore.tender_id) == tender.id, col(PanelScore.expert_id) == actor.subject
            )
        )
        scored = {str(b) for b in mine.scalars().all()}
    return tender, [PanelBidRow(b, orgs.get(b.organisation_id), b.id in scored) for b in bids]


# --------------------------------------------------------------------------------------------
# Score sheets
# --------------------------------------------------------------------------------------------


async def _sheet_target(
    session: AsyncSession, tender_id: str, bid_id: str, actor: Principal
) -> tuple[Tender, Bid, list[rules.Criterion]]:
    """Checks shared by a new sheet and a correction: member, state, valid bid of the tender."""
    tender = await _tender(session, tender_id, for_update=True)
    if tender is None:
        raise NotFound(detail=f"No tender {tender_id}.")
    _require_member(await _panel(session, tender.id), actor)
    if tender.state != "evaluating":
        raise Conflict(
            detail=f"Bids are scored while the tender is evaluating; it is {tender.state}."
        )
    if await _has_results(session, tender.id):
        raise Conflict(detail="The results are computed; score sheets can no longer change.")
    bid = await session.get(Bid, bid_id)
    if bid is None or bid.tender_id != tender.id:
        raise invalid("body.bid_id", f"no bid {bid_id} in this tender")
    if bid.state != "valid":
        raise invalid("body.bid_id", f"only valid bids are scored; this bid is {bid.state}")
    return tender, bid, rules.criteria_of(tender.criteria)


def _check_scores(criteria: Sequence[rules.Criterion], scores: Mapping[str, Decimal]) -> None:
    errors = rules.sheet_errors(criteria, scores)
    if errors:
        raise InvalidInput(
            detail="Every criterion of the tender must be scored 0–100; see `errors`.",
            errors=[FieldError(f, r) for f, r in errors],
        )


async def submit_sheet(
    *, uow: UnitOfWork, tender_id: str, data: ScoreSheetIn, actor: Principal, now: datetime
) -> PanelScore:
    """One member's scores of one valid bid; a second sheet for the same bid is 409."""
    session = uow.session
    _tender_row, bid, criteria = await _sheet_target(session, tender_id, data.bid_id, actor)
    _check_scores(criteria, data.scores)
    existing = (
        await session.execute(
            select(PanelScore.id).where(
                col(PanelScore.bid_id) == bid.id, col(PanelScore.expert_id) == actor.subject
            )
        )
    ).first()
    if existing is not None:
        raise Conflict(detail="You have scored this bid already; PUT to correct your sheet.")
    sheet = PanelScore(
        id=new_id(),
        tender_id=bid.tender_id,
        bid_id=bid.id,
        expert_id=actor.subject,
        scores={c.code: str(data.scores[c.code]) for c in criteria},
        submitted_at=utc(now),
    )
    session.add(sheet)
    try:
        await uow.commit()
    except IntegrityError as exc:  # a concurrent first sheet won the race
        raise Conflict(detail="You have scored this bid already; PUT to correct it.") from exc
    return sheet


async def correct_sheet(
    *,
    uow: UnitOfWork,
    tender_id: str,
    bid_id: str,
    scores: Mapping[str, Decimal],
    actor: Principal,
    now: datetime,
) -> PanelScore:
    """Replace one's own sheet before the results are computed."""
    session = uow.session
    _tender_row, bid, criteria = await _sheet_target(session, tender_id, bid_id, actor)
    _check_scores(criteria, scores)
    sheet = (
        await session.execute(
            select(PanelScore).where(
                col(PanelScore.bid_id) == bid.id, col(PanelScore.expert_id) == actor.subject
            )
        )
    ).scalar_one_or_none()
    if sheet is None:
        raise NotFound(detail="You have not scored this bid yet; POST your sheet first.")
    sheet.scores = {c.code: str(scores[c.code]) for c in criteria}
    sheet.submitted_at = utc(now)
    await uow.commit()
    return sheet


def sheet_scores(sheet: PanelScore) -> dict[str, Decimal]:
    return {str(k): Decimal(str(v)) for k, v in sheet.scores.items()}


# --------------------------------------------------------------------------------------------
# Evaluation (综合评分法) and the first offer
# --------------------------------------------------------------------------------------------


async def _fail(
    uow: UnitOfWork, tender: Tender, *, reason: str, valid_bids: int, now: datetime
) -> None:
    """Nobody left to award: the tender fails (采购失败) and the project may be bought again."""
    rule = _pack(tender).procurement.method(tender.method)
    tender.state = "failed"
    tender.state_reason = reason[:2000]
    tender.version += 1
    tender.updated_at = utc(now)
    uow.emit(
        tender_events.tender_failed(
            tender,
            rule=None,
            valid_bids=valid_bids,
            after_failure=list(rule.after_failure) if rule else [],
            at=utc(now),
        )
    )


async def _offer_next(
    uow: UnitOfWork,
    tender: Tender,
    *,
    now: datetime,
    decided_by: str,
    barred: Mapping[str, str] | None = None,
) -> Award | None:
    """Offer the award to the best-ranked bidder not yet offered and in good standing.

    Bidders barred by credit on the way are recorded as excluded awards; with nobody left the
    tender fails. `barred` overrides the organisation view (a decision being applied now).
    """
    session = uow.session
    rows = (
        await session.execute(
            select(BidResult)
            .where(col(BidResult.tender_id) == tender.id)
            .order_by(col(BidResult.rank))
        )
    ).scalars()
    results = list(rows.all())
    awards = (
        await session.execute(select(Award).where(col(Award.tender_id) == tender.id))
    ).scalars()
    offered = {a.bid_id for a in awards.all()}
    orgs = await _organisations(session, [r.organisation_id for r in results])
    standing = {o: v.status for o, v in orgs.items()}
    standing.update(barred or {})
    succession = rules.next_offer(
        [rules.Ranked(r.rank, r.bid_id, r.organisation_id) for r in results],
        already_offered=offered,
        standing=standing,
    )
    at = utc(now)
    for ranked, why in succession.skipped:
        skipped = Award(
            id=new_id(),
            tender_id=tender.id,
            bid_id=ranked.bid_id,
            organisation_id=ranked.organisation_id,
            rank=ranked.rank,
            state="excluded",
            reason=f"not offered: {why}",
            decided_by=decided_by,
            created_at=at,
            updated_at=at,
        )
        session.add(skipped)
        uow.emit(events.award_event("excluded", skipped, tender))
    if succession.offer is None:
        await _fail(
            uow,
            tender,
            reason="no ranked bidder is left to award: every offer was refused or excluded",
            valid_bids=len(results),
            now=now,
        )
        return None
    nxt = succession.offer
    award = Award(
        id=new_id(),
        tender_id=tender.id,
        bid_id=nxt.bid_id,
        organisation_id=nxt.organisation_id,
        rank=nxt.rank,
        state="offered",
        decided_by=decided_by,
        created_at=at,
        updated_at=at,
    )
    session.add(award)
    uow.emit(events.award_event("offered", award, tender))
    return award


@dataclass(frozen=True)
class Evaluation:
    tender: Tender
    results: list[rules.Result]
    award: Award | None


async def evaluate(
    *, uow: UnitOfWork, tender_id: str, actor: Principal, now: datetime
) -> Evaluation:
    """Rank the valid bids from the panel's sheets and offer the award to the best.

    409 while any member has not scored every valid bid (listing what is missing), before the
    panel is drawn, or when the results exist; 422 when the weights break the pack's band.
    """
    session = uow.session
    tender = await _visible_tender(session, tender_id, actor, for_update=True)
    if tender.state != "evaluating":
        raise Conflict(detail=f"Only a tender under evaluation is evaluated; it is {tender.state}.")
    panel = await _panel(session, tender.id)
    if panel is None:
        raise Conflict(detail="Draw the panel first: POST /tenders/{id}/panel.")
    if await _has_results(session, tender.id):
        raise Conflict(detail="This tender is evaluated already; see its results.")
    pack = _pack(tender)
    criteria = rules.criteria_of(tender.criteria)
    price_weight = Decimal(str(tender.price_weight))
    refusals = rules.weight_refusals(pack, criteria, price_weight)
    if refusals:
        raise RuleViolation(
            detail="; ".join(refusals), extra={"rules": _cites(rules.band_citations(pack))}
        )
    bids = await _bids(session, tender.id, ("valid",))
    if not bids:
        raise Conflict(detail="The tender has no valid bid to evaluate.")
    sheet_rows = (
        await session.execute(select(PanelScore).where(col(PanelScore.tender_id) == tender.id))
    ).scalars()
    members = set(panel.members)
    sheets = [
        rules.Sheet(s.bid_id, s.expert_id, sheet_scores(s))
        for s in sheet_rows.all()
        if s.expert_id in members
    ]
    missing = rules.missing_sheets(panel.members, [b.id for b in bids], sheets)
    if missing:
        names = await _expert_names(session, panel.members)
        raise Conflict(
            detail=f"{len(missing)} score sheet(s) missing: every member scores every valid bid.",
            extra={
                "missing": [
                    {"expert_id": e, "expert_name": names.get(e), "bid_id": b} for e, b in missing
                ]
            },
        )
    orgs = await _organisations(session, [b.organisation_id for b in bids])
    scored = [
        rules.ScoredBid(
            bid_id=b.id,
            organisation_id=b.organisation_id,
            price_fen=int(b.price_fen or 0),
            credit_score=_credit(orgs.get(b.organisation_id)),
        )
        for b in bids
    ]
    if any(s.price_fen <= 0 for s in scored):
        raise Conflict(detail="A valid bid without an opened price cannot be evaluated.")
    results = rules.evaluate(
        criteria=criteria, price_weight=price_weight, bids=scored, sheets=sheets, seed=panel.seed
    )
    for r in results:
        session.add(
            BidResult(
                bid_id=r.bid_id,
                tender_id=tender.id,
                organisation_id=r.organisation_id,
                criteria={c.code: c.as_record() for c in r.criteria},
                quality_score=r.quality_score,
                price_score=r.price_score,
                total=r.total,
                credit_score=float(r.credit_score) if r.credit_score is not None else None,
                rank=r.rank,
            )
        )
    await session.flush()
    names = await _expert_names(session, panel.members)
    invalid_bids = await _bids(session, tender.id, ("invalid",))
    all_orgs = await _organisations(
        session, [b.organisation_id for b in bids] + [b.organisation_id for b in invalid_bids]
    )
    uow.emit(
        events.tender_evaluated(
            tender,
            criteria=criteria,
            price_weight=price_weight,
            panel=[names.get(m, m) for m in panel.members],
            results=results,
            invalid=[(b.id, b.organisation_id, b.invalid_reason) for b in invalid_bids],
            names={o: v.name for o, v in all_orgs.items()},
            cited=_cites(rules.band_citations(pack)),
            at=utc(now),
        )
    )
    award = await _offer_next(uow, tender, now=now, decided_by=actor.subject)
    await uow.commit()
    return Evaluation(tender=tender, results=results, award=award)


def _credit(view: OrganisationView | None) -> Decimal | None:
    if view is None or view.credit_score is None:
        return None
    return Decimal(str(view.credit_score))


# --------------------------------------------------------------------------------------------
# Results notice (评审结果公告)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    tender: Tender
    results: list[BidResult]
    prices: dict[str, int | None]
    invalid: list[Bid]
    organisations: dict[str, OrganisationView]
    panel: list[str]
    award: Award | None
    rules: list[str]


async def results(*, db: Database, tender_id: str) -> Results:
    """The public results: any signed-in caller may read a results notice once it exists."""
    async with db.session() as session:
        tender = await _tender(session, tender_id)
        if tender is None:
            raise NotFound(detail=f"No tender {tender_id}.")
        rows = list(
            (
                await session.execute(
                    select(BidResult)
                    .where(col(BidResult.tender_id) == tender.id)
                    .order_by(col(BidResult.rank))
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            raise Conflict(detail="This tender has not been evaluated yet: no results to show.")
        bids = await _bids(session, tender.id, OPENED_STATES)
        panel = await _panel(session, tender.id)
        members = list(panel.members) if panel else []
        names = await _expert_names(session, members)
        orgs = await _organisations(session, [b.organisation_id for b in bids])
        awards = (
            await session.execute(
                select(Award)
                .where(col(Award.tender_id) == tender.id)
                .order_by(col(Award.created_at), col(Award.rank), col(Award.id))
            )
        ).scalars()
        history = list(awards.all())
    # Where the award stands: the live offer or the accepted award, else the last decided.
    live = [a for a in history if a.state in ("offered", "accepted")]
    award = live[-1] if live else (history[-1] if history else None)
    pack = _pack(tender)
    return Results(
        tender=tender,
        results=rows,
        prices={b.id: b.price_fen for b in bids},
        invalid=[b for b in bids if b.state == "invalid"],
        organisations=orgs,
        panel=[names.get(m, m) for m in members],
        award=award,
        rules=_cites([*rules.band_citations(pack)]),
    )


# --------------------------------------------------------------------------------------------
# Awards (中标/成交)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwardChange:
    award: Award
    next_award: Award | None
    tender: Tender


async def _award_for_update(session: AsyncSession, award_id: str) -> Award | None:
    query = select(Award).where(col(Award.id) == award_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


def _award_visible(award: Award | None, tender: Tender | None, actor: Principal) -> bool:
    if award is None or tender is None:
        return False
    if actor.role in (Role.organisation,):
        return actor.org_id == award.organisation_id
    if actor.role in (Role.operator, Role.purchaser):
        return actor.covers(tender.region_code)
    return False


async def _award_and_tender(
    session: AsyncSession, award_id: str, actor: Principal
) -> tuple[Award, Tender]:
    award = await _award_for_update(session, award_id)
    tender = await _tender(session, award.tender_id, for_update=True) if award else None
    if not _award_visible(award, tender, actor) or award is None or tender is None:
        raise NotFound(detail=f"No award {award_id}.")
    return award, tender


def _require_offered(award: Award, tender: Tender) -> None:
    if award.state != "offered":
        raise Conflict(detail=f"This award is {award.state}; only an offered award can change.")
    if tender.state != "evaluating":
        raise Conflict(detail=f"The tender is {tender.state}; its award is settled.")


async def accept_award(
    *, uow: UnitOfWork, award_id: str, actor: Principal, now: datetime
) -> AwardChange:
    """The offered organisation accepts: the tender is awarded (中标/成交).

    A single-source award waits until the publicity period (公示期) has passed.
    """
    session = uow.session
    award, tender = await _award_and_tender(session, award_id, actor)
    _require_offered(award, tender)
    view = await session.get(OrganisationView, award.organisation_id)
    if view is not None and view.status not in (rules.ELIGIBLE_STATUS, "unknown"):
        raise Conflict(
            detail=f"The organisation is {view.status}: it cannot accept an award now; the "
            "offer passes to the next-ranked bidder."
        )
    pack = _pack(tender)
    procedure = pack.procurement.method(tender.method)
    if procedure is not None and procedure.publicity_working_days is not None:
        today = china_day(now)
        if tender.publicity_until is None or today <= tender.publicity_until:
            until = tender.publicity_until.isoformat() if tender.publicity_until else "unknown"
            raise RuleViolation(
                detail=f"{tender.method}: the award may be made only after the publicity period "
                f"of {procedure.publicity_working_days} working days (公示期, until {until}).",
                extra={
                    "rules": _cites(
                        [procedure.publicity_source] if procedure.publicity_source else []
                    )
                },
            )
    at = utc(now)
    award.state = "accepted"
    award.decided_by = actor.subject
    award.updated_at = at
    tender.state = "awarded"
    tender.state_reason = f"awarded to organisation {award.organisation_id} (rank {award.rank})"
    tender.version += 1
    tender.updated_at = at
    bid = await session.get(Bid, award.bid_id)
    project = await session.get(ProjectView, tender.project_id)
    result = await session.get(BidResult, award.bid_id)
    contract_terms = events.contract_terms(
        bid=bid, project=project, total=result.total if result else None
    )
    uow.emit(events.award_event("accepted", award, tender, extra=contract_terms))
    uow.emit(events.award_event("made", award, tender, extra=contract_terms))
    await uow.commit()
    return AwardChange(award=award, next_award=None, tender=tender)


async def refuse_award(
    *, uow: UnitOfWork, award_id: str, reason: str, actor: Principal, now: datetime
) -> AwardChange:
    """The offered organisation refuses (放弃中标): the next-ranked gets the offer."""
    session = uow.session
    award, tender = await _award_and_tender(session, award_id, actor)
    if actor.role != Role.organisation:
        raise Forbidden(detail="Only the organisation offered the award may refuse it.")
    _require_offered(award, tender)
    return await _close_and_pass(
        uow, award, tender, state="refused", reason=reason, by=actor.subject, now=now
    )


async def exclude_award(
    *, uow: UnitOfWork, award_id: str, reason: str, actor: Principal, now: datetime
) -> AwardChange:
    """The purchaser excludes the offered organisation (取消中标资格): the next gets the offer."""
    session = uow.session
    award, tender = await _award_and_tender(session, award_id, actor)
    if actor.role not in (Role.operator, Role.purchaser):
        raise Forbidden(detail="Only the purchaser or an operator may exclude an award.")
    _require_offered(award, tender)
    return await _close_and_pass(
        uow, award, tender, state="excluded", reason=reason, by=actor.subject, now=now
    )


async def _pass_on(
    uow: UnitOfWork,
    award: Award,
    tender: Tender,
    *,
    state: str,
    reason: str,
    by: str,
    now: datetime,
    barred: Mapping[str, str] | None = None,
) -> Award | None:
    """Close the offered award (refused | excluded) and offer the next; no commit."""
    award.state = state
    award.reason = reason[:2000]
    award.decided_by = by
    award.updated_at = utc(now)
    uow.emit(events.award_event(state, award, tender))
    await uow.session.flush()
    return await _offer_next(uow, tender, now=now, decided_by=by, barred=barred)


async def _close_and_pass(
    uow: UnitOfWork,
    award: Award,
    tender: Tender,
    *,
    state: str,
    reason: str,
    by: str,
    now: datetime,
) -> AwardChange:
    nxt = await _pass_on(uow, award, tender, state=state, reason=reason, by=by, now=now)
    await uow.commit()
    return AwardChange(award=award, next_award=nxt, tender=tender)


async def exclude_for_credit(
    uow: UnitOfWork, *, organisation_id: str, status: str, version: int, event_type: str
) -> int:
    """A credit decision bars the organisation: every award offered to it is excluded and
    passes to the next-ranked. Returns how many awards were excluded.

    A decision older than the one matching already applied for the organisation (a late
    suspension after a reinstatement) changes nothing. The organisation view may already
    carry this very decision (the standing consumer ran first): that still applies.
    """
    session = uow.session
    view = await session.get(OrganisationView, organisation_id)
    if view is not None and (
        view.status_version > version
        # The same decision number already applied as another standing: this one is stale.
        or (view.status_version == version and view.status != status)
    ):
        return 0
    # Award rows first, then the tender: the same lock order as accept/refuse/exclude.
    offered = (
        await session.execute(
            select(Award)
            .where(col(Award.organisation_id) == organisation_id, col(Award.state) == "offered")
            .order_by(col(Award.created_at), col(Award.id))
            .with_for_update()
        )
    ).scalars()
    count = 0
    now = datetime.now(UTC)
    for award in list(offered.all()):
        tender = await _tender(session, award.tender_id, for_update=True)
        if tender is None or tender.state != "evaluating":
            continue
        await _pass_on(
            uow,
            award,
            tender,
            state="excluded",
            reason=f"credit decision: the organisation is {status} (decision {version})",
            by=f"event:{event_type}",
            now=now,
            barred={organisation_id: status},
        )
        count += 1
    return count


async def reoffer_after_refused_contract(
    uow: UnitOfWork, *, award_id: str, reason: str | None, event_type: str
) -> Award | None:
    """The winner would not sign the contract (拒签): the offer passes to the next-ranked
    bidder (财政部令第87号 第四十九条) and the tender is under evaluation again until someone
    accepts. Returns the new offer, or None when there is nothing to do (a replay, a tender
    that moved on) or nobody left (the tender failed).
    """
    session = uow.session
    award = await _award_for_update(session, award_id)
    if award is None:
        raise LookupError(f"no award {award_id}")
    tender = await _tender(session, award.tender_id, for_update=True)
    if tender is None or tender.state != "awarded":
        return None  # already handled, or the tender was cancelled meanwhile
    others = (
        await session.execute(
            select(Award.id).where(
                col(Award.tender_id) == tender.id,
                col(Award.id) != award.id,
                col(Award.state).in_(("offered", "accepted")),
            )
        )
    ).first()
    if others is not None or award.state not in ("accepted", "refused"):
        return None
    now = datetime.now(UTC)
    by = f"event:{event_type}"
    why = f"refused to sign the contract: {reason}" if reason else "refused to sign the contract"
    # The contracts package marks the award refused in its own transaction; record it here
    # too in case it did not, and announce it.
    award.state = "refused"
    award.reason = award.reason or why[:2000]
    award.decided_by = by
    award.updated_at = now
    uow.emit(events.award_event("refused", award, tender))
    tender.state = "evaluating"
    tender.state_reason = f"award {award.id} {why}"[:2000]
    tender.version += 1
    tender.updated_at = now
    await session.flush()
    return await _offer_next(uow, tender, now=now, decided_by=by)


# --------------------------------------------------------------------------------------------
# Reading awards
# --------------------------------------------------------------------------------------------


async def get_award(*, db: Database, award_id: str, actor: Principal) -> Award:
    async with db.session() as session:
        award = await session.get(Award, award_id)
        tender = await _tender(session, award.tender_id) if award else None
    if award is None or not _award_visible(award, tender, actor):
        raise NotFound(detail=f"No award {award_id}.")
    return award


async def list_awards(
    *, db: Database, tender_id: str, actor: Principal, limit: int, offset: int
) -> tuple[list[Award], int]:
    """The tender's awards in the order offered (the succession, 递补)."""
    async with db.session() as session:
        tender = await _visible_tender(session, tender_id, actor)
        return await fetch_page(
            session,
            select(Award).where(col(Award.tender_id) == tender.id),
            order_by=[col(Award.created_at), col(Award.rank), col(Award.id)],
            limit=limit,
            offset=offset,
        )


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------


def panel_public(view: PanelView) -> PanelPublic:
    panel = view.panel
    return PanelPublic(
        id=panel.id,
        tender_id=panel.tender_id,
        size=panel.size,
        seed=panel.seed,
        candidates=list(panel.candidates),
        members=[PanelMember(expert_id=m, name=view.names.get(m, m)) for m in panel.members],
        excluded=[PanelExclusion.model_validate(e) for e in panel.excluded],
        drawn_by=panel.drawn_by,
        drawn_at=utc(panel.drawn_at),
        draw_date=view.draw_date,
        rules=view.rules,
    )


def sheet_public(sheet: PanelScore) -> ScoreSheetPublic:
    return ScoreSheetPublic(
        id=sheet.id,
        tender_id=sheet.tender_id,
        bid_id=sheet.bid_id,
        expert_id=sheet.expert_id,
        scores=sheet_scores(sheet),
        submitted_at=utc(sheet.submitted_at),
    )


def award_public(award: Award) -> AwardPublic:
    return AwardPublic(
        id=award.id,
        tender_id=award.tender_id,
        bid_id=award.bid_id,
        organisation_id=award.organisation_id,
        rank=award.rank,
        state=award.state,
        reason=award.reason,
        decided_by=award.decided_by,
        created_at=utc(award.created_at),
        updated_at=utc(award.updated_at),
    )


def criteria_public(tender: Tender) -> list[CriterionPublic]:
    return [
        CriterionPublic(code=c.code, name=c.name, weight=c.weight)
        for c in rules.criteria_of(tender.criteria)
    ]


def results_public(res: Results) -> ResultsPublic:
    tender = res.tender

    def org_name(org_id: str) -> str | None:
        view = res.organisations.get(org_id)
        return view.name if view else None

    return ResultsPublic(
        tender_id=tender.id,
        title=tender.title,
        method=tender.method,
        state=tender.state,
        state_reason=tender.state_reason,
        price_weight=Decimal(str(tender.price_weight)),
        criteria=criteria_public(tender),
        panel=res.panel,
        results=[
            BidResultPublic(
                bid_id=r.bid_id,
                organisation_id=r.organisation_id,
                organisation_name=org_name(r.organisation_id),
                price_fen=res.prices.get(r.bid_id),
                criteria={
                    code: CriterionResult.model_validate(part)
                    for code, part in (r.criteria or {}).items()
                },
                quality_score=Decimal(str(r.quality_score)),
                price_score=Decimal(str(r.price_score)),
                total=Decimal(str(r.total)),
                credit_score=r.credit_score,
                rank=r.rank,
            )
            for r in res.results
        ],
        invalid=[
            InvalidBidPublic(
                bid_id=b.id,
                organisation_id=b.organisation_id,
                organisation_name=org_name(b.organisation_id),
                reason=b.invalid_reason,
            )
            for b in res.invalid
        ],
        award=award_public(res.award) if res.award else None,
        rules=res.rules,
    )
