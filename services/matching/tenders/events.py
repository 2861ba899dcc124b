"""What the matching service publishes about tenders and bids (stream MATCHING).

- `sa.matching.tender.published` {tender_id, project_id, method, region_code, title,
  service_codes, budget_fen, bid_deadline, published_at, invited, qualification_requirements,
  publicity_until, previous_tender_id, pack, version}: the purchase is open for bids;
- `sa.matching.tender.cancelled` {tender_id, project_id, region_code, from_state, reason,
  cancelled_at, version};
- `sa.matching.tender.failed` {tender_id, project_id, region_code, method, reason, rule,
  valid_bids, after_failure, failed_at, version}: fewer valid bids than the method needs
  (废标); the project may be bought again by one of `after_failure`;
- `sa.matching.tender.evaluating` {tender_id, project_id, region_code, method, valid_bids,
  bids [{bid_id, organisation_id, state}], panel_size, high_value, opened_at, version}: bids
  opened, the panel may start;
- `sa.matching.bid.submitted|replaced|withdrawn` {tender_id, bid_id, organisation_id,
  submitted_at | updated_at, version}: never the price or the content, which stay sealed
  until opening.

`version` is the tender's (or the bid's) own counter, so consumers can drop a late event.
Nothing is consumed here: project cancellations reach tenders through library.events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from libs.common.events import Event, Subscription, new_event
from services.matching.market.models import Bid, Tender

SERVICE = "matching"


def _tender_event(verb: str, tender: Tender, **data: object) -> Event:
    return new_event(
        service=SERVICE,
        entity="tender",
        verb=verb,
        subject=tender.id,
        data={
            "tender_id": tender.id,
            "project_id": tender.project_id,
            "region_code": tender.region_code,
            "method": tender.method,
            "version": tender.version,
            **data,
        },
    )


def tender_published(tender: Tender) -> Event:
    return _tender_event(
        "published",
        tender,
        title=tender.title,
        service_codes=list(tender.service_codes),
        budget_fen=tender.budget_fen,
        bid_deadline=tender.bid_deadline,
        published_at=tender.published_at,
        invited=list(tender.invited),
        qualification_requirements=list(tender.qualification_requirements),
        publicity_until=tender.publicity_until,
        previous_tender_id=tender.previous_tender_id,
        pack=tender.pack,
    )


def tender_cancelled(tender: Tender, *, from_state: str, at: datetime) -> Event:
    return _tender_event(
        "cancelled", tender, from_state=from_state, reason=tender.state_reason, cancelled_at=at
    )


def tender_failed(
    tender: Tender,
    *,
    rule: str | None,
    valid_bids: int,
    after_failure: Sequence[str],
    at: datetime,
) -> Event:
    return _tender_event(
        "failed",
        tender,
        reason=tender.state_reason,
        rule=rule,
        valid_bids=valid_bids,
        after_failure=list(after_failure),
        failed_at=at,
    )


def tender_evaluating(tender: Tender, bids: Sequence[Bid], *, at: datetime) -> Event:
    return _tender_event(
        "evaluating",
        tender,
        valid_bids=sum(1 for b in bids if b.state == "valid"),
        bids=[
            {"bid_id": b.id, "organisation_id": b.organisation_id, "state": b.state} for b in bids
        ],
        panel_size=tender.panel_size,
        high_value=tender.high_value,
        opened_at=at,
    )


def bid_event(verb: str, bid: Bid) -> Event:
    """`sa.matching.bid.<verb>`: who bid on what, when — nothing of the sealed offer."""
    data: dict[str, object] = {
        "tender_id": bid.tender_id,
        "bid_id": bid.id,
        "organisation_id": bid.organisation_id,
        "version": bid.version,
    }
    if verb == "submitted":
        data["submitted_at"] = bid.submitted_at
    else:
        data["updated_at"] = bid.updated_at
    return new_event(service=SERVICE, entity="bid", verb=verb, subject=bid.id, data=data)


subscriptions: list[Subscription] = []
