"""Use cases of public disclosure (信息公开): render the public documents of a tender into the
feeds, and read the lists and feeds back. No HTTP here.

`refresh_tender` is the only writer. It takes the feed lock first (libs.common.feed), then
reads the tender and everything public about it from matching's own tables in the same
transaction and writes each document; unchanged documents cost nothing. The consumer in
`events.py` calls it for every market event, so whatever changed — a tender published, an
award refused, a contract terminated, an acceptance published — reaches the lists and the
feeds in the order it was committed.

What is public: a tender once published (采购公告 and its outcome, 政府采购法 §11 and the
packs' "information published" step); the results notice once evaluated (评审结果, with the
panel's names); a contract once signed (合同公告, 吉民发〔2020〕44号 §四(三)4); an acceptance
once its result is published (验收结果). Recipients never appear: acceptance notices carry
counts, not the invited refs or the free-text notes (which may quote people).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common.db import Database
from libs.common.feed import FeedEntry
from services.matching.contracts.models import Acceptance, Contract, ContractAmendment
from services.matching.evaluation import rules as evaluation_rules
from services.matching.library.models import ExpertView
from services.matching.market.models import BidResult, Panel
from services.matching.ocds import mapping
from services.matching.ocds import service as ocds
from services.matching.public.models import (
    ACCEPTANCES,
    CONTRACTS,
    RESULTS,
    TENDERS,
    public_feeds,
)
from services.matching.public.schemas import (
    AcceptanceNotice,
    AmendmentNotice,
    AwardNotice,
    BidScores,
    ContractNotice,
    CriterionNotice,
    CriterionScore,
    InvalidBid,
    ResultsNotice,
    TenderNotice,
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return _utc(value) if value is not None else None


def _criteria(raw: Sequence[Mapping[str, Any]]) -> list[CriterionNotice]:
    return [
        CriterionNotice(code=c.code, name=c.name, weight=c.weight)
        for c in evaluation_rules.criteria_of(raw)
    ]


def _name(process: mapping.Process, organisation_id: str) -> str | None:
    view = process.organisations.get(organisation_id)
    return view.name if view is not None else None


def _uscc(process: mapping.Process, organisation_id: str) -> str | None:
    view = process.organisations.get(organisation_id)
    return view.uscc if view is not None else None


# -------------------------------------------------------------------------------- documents


def tender_notice(process: mapping.Process) -> TenderNotice:
    t = process.tender
    return TenderNotice(
        tender_id=t.id,
        project_id=t.project_id,
        title=t.title,
        method=t.method,
        method_name=mapping.METHOD_NAME_ZH.get(t.method, t.method),
        method_reason=t.method_reason,
        purchaser=process.project.department if process.project is not None else None,
        region_code=t.region_code,
        service_codes=list(t.service_codes),
        budget_fen=t.budget_fen,
        state=t.state,
        ocds_status=mapping.TENDER_STATUS.get(t.state, "active"),
        state_reason=t.state_reason,
        published_at=_opt_utc(t.published_at),
        bid_deadline=_opt_utc(t.bid_deadline),
        criteria=_criteria(t.criteria),
        price_weight=Decimal(str(t.price_weight)),
        qualification_requirements=list(t.qualification_requirements),
        # Who was invited stays with the purchasing side until the bids are opened.
        invited=list(t.invited) if t.state in mapping.OPENED_STATES else [],
        single_source_justification=t.single_source_justification,
        publicity_until=t.publicity_until,
        previous_tender_id=t.previous_tender_id,
        version=t.version,
        updated_at=_utc(t.updated_at),
    )


async def results_notice(session: AsyncSession, process: mapping.Process) -> ResultsNotice | None:
    t = process.tender
    results = await ocds.fresh_rows(
        session,
        select(BidResult)
        .where(BidResult.tender_id == t.id)
        .order_by(col(BidResult.rank), col(BidResult.bid_id)),
    )
    if not results:
        return None  # not evaluated yet: no results notice
    panels = await ocds.fresh_rows(session, select(Panel).where(Panel.tender_id == t.id))
    members = list(panels[0].members) if panels else []
    names: dict[str, str] = {}
    if members:
        rows = await session.execute(
            select(ExpertView.expert_id, ExpertView.name).where(
                col(ExpertView.expert_id).in_(members)
            )
        )
        names = {str(i): str(n) for i, n in rows.all()}
    return ResultsNotice(
        tender_id=t.id,
        project_id=t.project_id,
        title=t.title,
        method=t.method,
        region_code=t.region_code,
        state=t.state,
        state_reason=t.state_reason,
        price_weight=Decimal(str(t.price_weight)),
        criteria=_criteria(t.criteria),
        # A member the library no longer shows keeps a place, unnamed.
        panel=[names.get(m, "(未具名专家)") for m in members],
        results=[
            BidScores(
                bid_id=r.bid_id,
                organisation_id=r.organisation_id,
                organisation_name=_name(process, r.organisation_id),
                uscc=_uscc(process, r.organisation_id),
                price_fen=process.prices.get(r.bid_id),
                criteria={
                    code: CriterionScore.model_validate(part)
                    for code, part in (r.criteria or {}).items()
                },
                quality_score=Decimal(str(r.quality_score)),
                price_score=Decimal(str(r.price_score)),
                total=Decimal(str(r.total)),
                credit_score=r.credit_score,
                rank=r.rank,
            )
            for r in results
        ],
        invalid=[
            InvalidBid(
                bid_id=b.id,
                organisation_id=b.organisation_id,
                organisation_name=_name(process, b.organisation_id),
                reason=b.invalid_reason,
            )
            for b in process.bids
            if b.state == "invalid"
        ],
        awards=[
            AwardNotice(
                award_id=a.id,
                organisation_id=a.organisation_id,
                organisation_name=_name(process, a.organisation_id),
                rank=a.rank,
                state=a.state,
                reason=a.reason,
                decided_at=_utc(a.updated_at),
            )
            for a in process.awards
        ],
    )


async def contract_notice(
    session: AsyncSession, process: mapping.Process, contract: Contract
) -> ContractNotice:
    amendments = await ocds.fresh_rows(
        session,
        select(ContractAmendment)
        .where(ContractAmendment.contract_id == contract.id)
        .order_by(col(ContractAmendment.at), col(ContractAmendment.id)),
    )
    return ContractNotice(
        contract_id=contract.id,
        tender_id=contract.tender_id,
        project_id=contract.project_id,
        title=process.tender.title,
        organisation_id=contract.organisation_id,
        organisation_name=_name(process, contract.organisation_id),
        uscc=_uscc(process, contract.organisation_id),
        region_code=contract.region_code,
        regions=list(contract.regions),
        service_codes=list(contract.service_codes),
        monthly_capacity=dict(contract.monthly_capacity),
        original_value_fen=contract.original_value_fen,
        value_fen=contract.value_fen,
        settlement=contract.settlement,
        period_start=contract.period_start,
        period_end=contract.period_end,
        state=contract.state,
        state_reason=contract.state_reason,
        signed_at=_opt_utc(contract.signed_at),
        amendments=[
            AmendmentNotice(
                amendment_id=a.id, delta_fen=a.delta_fen, reason=a.reason, at=_utc(a.at)
            )
            for a in amendments
        ],
        version=contract.version,
        updated_at=_utc(contract.updated_at),
    )


def _numeric(summary: Mapping[str, Any]) -> dict[str, float | int | bool]:
    """Only the numbers of an acceptance summary: its text may name or quote people."""
    return {
        str(k): v
        for k, v in summary.items()
        if isinstance(v, bool | int | float) and not isinstance(v, str)
    }


def acceptance_notice(
    process: mapping.Process, acceptance: Acceptance, contract: Contract
) -> AcceptanceNotice:
    sessions, units = process.deliveries.get(acceptance.id, (0, 0))
    return AcceptanceNotice(
        acceptance_id=acceptance.id,
        contract_id=contract.id,
        tender_id=contract.tender_id,
        project_id=contract.project_id,
        organisation_id=contract.organisation_id,
        organisation_name=_name(process, contract.organisation_id),
        region_code=contract.region_code,
        period=acceptance.period,
        result=acceptance.result,
        recipients_invited=len(acceptance.invited_recipients),
        sessions_delivered=sessions,
        units_delivered=units,
        findings=_numeric(acceptance.summary or {}),
        published_at=_opt_utc(acceptance.published_at),
    )


# -------------------------------------------------------------------------------- writing


async def refresh_tender(
    session: AsyncSession, tender_id: str, *, ocds_prefix: str, now: datetime
) -> int:
    """Render every public document of the tender into the feeds (in the caller's write
    transaction); how many entries changed."""
    await public_feeds.lock(session)  # before reading: see the libs.common.feed docstring
    process = await ocds.load_process(session, tender_id)
    if process is None:
        return 0
    t = process.tender
    changed: list[int | None] = []
    if t.published_at is not None:
        notice = tender_notice(process)
        changed.append(
            await public_feeds.put(
                session,
                feed=TENDERS,
                key=t.id,
                document=notice.model_dump(mode="json"),
                region_code=t.region_code,
                group_key=t.project_id,
                state=t.state,
                published_at=notice.published_at,
                at=now,
            )
        )
    results = await results_notice(session, process)
    if results is not None:
        changed.append(
            await public_feeds.put(
                session,
                feed=RESULTS,
                key=t.id,
                document=results.model_dump(mode="json"),
                region_code=t.region_code,
                group_key=t.id,
                state=t.state,
                published_at=_opt_utc(t.published_at) or _utc(t.updated_at),
                at=now,
            )
        )
    contracts = {c.id: c for c in process.contracts}
    for contract in process.contracts:
        notice_c = await contract_notice(session, process, contract)
        changed.append(
            await public_feeds.put(
                session,
                feed=CONTRACTS,
                key=contract.id,
                document=notice_c.model_dump(mode="json"),
                region_code=contract.region_code,
                group_key=t.id,
                state=contract.state,
                published_at=notice_c.signed_at,
                at=now,
            )
        )
    for acceptance in process.acceptances:
        contract = contracts[acceptance.contract_id]
        notice_a = acceptance_notice(process, acceptance, contract)
        changed.append(
            await public_feeds.put(
                session,
                feed=ACCEPTANCES,
                key=acceptance.id,
                document=notice_a.model_dump(mode="json"),
                region_code=contract.region_code,
                group_key=t.id,
                state=acceptance.result,
                published_at=notice_a.published_at,
                at=now,
            )
        )
    changed.extend(await ocds.store_releases(session, process, prefix=ocds_prefix, at=now))
    return sum(1 for seq in changed if seq is not None)


# -------------------------------------------------------------------------------- reading


async def read_feed(
    db: Database,
    *,
    feed: str,
    after: int,
    limit: int,
    region: str | None = None,
    group_key: str | None = None,
) -> tuple[list[FeedEntry], bool]:
    async with db.session() as session:
        return await public_feeds.read(
            session, feed=feed, after=after, limit=limit, region=region, group_key=group_key
        )


async def list_feed(
    db: Database,
    *,
    feed: str,
    limit: int,
    offset: int,
    region: str | None = None,
    state: str | None = None,
    group_key: str | None = None,
) -> tuple[list[FeedEntry], int]:
    async with db.session() as session:
        return await public_feeds.page(
            session,
            feed=feed,
            limit=limit,
            offset=offset,
            region=region,
            state=state,
            group_key=group_key,
        )
