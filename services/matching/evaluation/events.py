"""What the matching service publishes and consumes about evaluation and awards.

Published (stream MATCHING); scores are decimal strings, money in fen:
- `sa.matching.tender.evaluated` — the results notice (评审结果公告): {tender_id, project_id,
  region_code, method, version, title, price_weight, criteria [{code, name, weight}], panel
  [member names], results [{bid_id, organisation_id, organisation_name, price_fen, criteria
  {code: {name, weight, mean, weighted}}, quality_score, price_score, total, credit_score,
  rank}], invalid [{bid_id, organisation_id, organisation_name, reason}], rules,
  evaluated_at}. No bid content, no contact data.
- `sa.matching.award.offered | refused | excluded` {award_id, tender_id, project_id, bid_id,
  organisation_id, region_code, rank, state, reason, decided_at}: the succession of offers
  (递补); a refusal or exclusion is followed by the next offer or by `tender.failed`.
- `sa.matching.award.accepted` and `sa.matching.award.made`, both when the organisation
  accepts, with everything a contract needs: the fields above plus price_fen, service_codes,
  method, title, pack, total, and the project's period_start, period_end, quantity, unit (or
  null when matching has not seen the project). `accepted` is the input of contracts in this
  service; `made` is the award announcement (中标/成交) the providers service moves the
  project by. Nothing is announced as "made" before acceptance.
- `sa.matching.tender.failed` (the tenders package's payload) when nobody is left to award.

Consumed:
- stream CREDIT `sa.credit.organisation.suspended | exited | blacklisted` {organisation_id,
  decision_version}: an award offered to that organisation is excluded and the next-ranked
  gets the offer. A decision older than the one matching has applied changes nothing;
  replays find no offered award left, so they change nothing either.
- stream MATCHING `sa.matching.contract.refused` {award_id, reason} (the contracts package):
  the winner would not sign (拒签); the tender is under evaluation again and the next-ranked
  gets the offer. A replay finds the tender no longer awarded and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.matching.evaluation import rules
from services.matching.library.models import ProjectView
from services.matching.market.models import Award, Bid, Tender

SERVICE = "matching"

#: Credit decisions that bar an organisation from an award.
BARRING_SUBJECTS: tuple[str, ...] = (
    "sa.credit.organisation.suspended",
    "sa.credit.organisation.exited",
    "sa.credit.organisation.blacklisted",
)


def tender_evaluated(
    tender: Tender,
    *,
    criteria: Sequence[rules.Criterion],
    price_weight: Decimal,
    panel: Sequence[str],
    results: Sequence[rules.Result],
    invalid: Sequence[tuple[str, str, str | None]],
    names: Mapping[str, str | None],
    cited: Sequence[str],
    at: datetime,
) -> Event:
    """`sa.matching.tender.evaluated`: every bidder's scores and rank, and the panel."""
    return new_event(
        service=SERVICE,
        entity="tender",
        verb="evaluated",
        subject=tender.id,
        data={
            "tender_id": tender.id,
            "project_id": tender.project_id,
            "region_code": tender.region_code,
            "method": tender.method,
            "version": tender.version,
            "title": tender.title,
            "price_weight": price_weight,
            "criteria": [{"code": c.code, "name": c.name, "weight": c.weight} for c in criteria],
            "panel": list(panel),
            "results": [
                {
                    "bid_id": r.bid_id,
                    "organisation_id": r.organisation_id,
                    "organisation_name": names.get(r.organisation_id),
                    "price_fen": r.price_fen,
                    "criteria": {c.code: c.as_record() for c in r.criteria},
                    "quality_score": r.quality_score,
                    "price_score": r.price_score,
                    "total": r.total,
                    "credit_score": r.credit_score,
                    "rank": r.rank,
                }
                for r in results
            ],
            "invalid": [
                {
                    "bid_id": bid_id,
                    "organisation_id": org_id,
                    "organisation_name": names.get(org_id),
                    "reason": reason,
                }
                for bid_id, org_id, reason in invalid
            ],
            "rules": list(cited),
            "evaluated_at": at,
        },
    )


def contract_terms(
    *, bid: Bid | None, project: ProjectView | None, total: Any | None
) -> dict[str, Any]:
    """What a contract takes from the winning bid and the project, beyond the award itself."""
    return {
        "price_fen": bid.price_fen if bid else None,
        "total": Decimal(str(total)) if total is not None else None,
        "period_start": project.period_start if project else None,
        "period_end": project.period_end if project else None,
        "quantity": project.quantity if project else None,
        "unit": project.unit if project else None,
    }


def award_event(
    verb: str, award: Award, tender: Tender, *, extra: Mapping[str, Any] | None = None
) -> Event:
    """`sa.matching.award.<verb>` (offered | refused | excluded | accepted | made)."""
    data: dict[str, Any] = {
        "award_id": award.id,
        "tender_id": tender.id,
        "project_id": tender.project_id,
        "bid_id": award.bid_id,
        "organisation_id": award.organisation_id,
        "region_code": tender.region_code,
        "rank": award.rank,
        "state": award.state,
        "reason": award.reason,
        "decided_at": award.updated_at,
    }
    if verb in ("accepted", "made"):
        data.update(
            service_codes=list(tender.service_codes),
            method=tender.method,
            title=tender.title,
            pack=tender.pack,
            tender_version=tender.version,
        )
    data.update(extra or {})
    return new_event(service=SERVICE, entity="award", verb=verb, subject=award.id, data=data)


async def on_organisation_barred(uow: UnitOfWork, event: Event) -> None:
    """A credit decision bars an organisation: its offered awards pass to the next-ranked."""
    # Imported here: the use cases import this module's event builders.
    from services.matching.evaluation import service

    status = event.nats_subject.rsplit(".", 1)[1]
    try:
        organisation_id = str(event.data["organisation_id"])
        version = int(event.data["decision_version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(
            f"credit decision without organisation_id/decision_version: {exc}"
        ) from exc
    await service.exclude_for_credit(
        uow,
        organisation_id=organisation_id,
        status=status,
        version=version,
        event_type=event.nats_subject,
    )


async def on_contract_refused(uow: UnitOfWork, event: Event) -> None:
    """The winner refused to sign (拒签): the next-ranked bidder gets the offer."""
    from services.matching.evaluation import service

    try:
        award_id = str(event.data["award_id"])
    except (KeyError, TypeError) as exc:
        raise PermanentError(f"contract.refused without award_id: {exc}") from exc
    reason = event.data.get("reason")
    try:
        await service.reoffer_after_refused_contract(
            uow,
            award_id=award_id,
            reason=str(reason) if reason else None,
            event_type=event.nats_subject,
        )
    except LookupError as exc:
        raise PermanentError(str(exc)) from exc


subscriptions: list[Subscription] = [
    Subscription(
        durable="matching-award-standing",
        stream="CREDIT",
        subjects=list(BARRING_SUBJECTS),
        handler=on_organisation_barred,
    ),
    Subscription(
        durable="matching-award-contract-refused",
        stream="MATCHING",
        subjects=["sa.matching.contract.refused"],
        handler=on_contract_refused,
    ),
]
