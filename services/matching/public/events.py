"""The consumer that keeps the public read model current (stream MATCHING, durable
`matching-public`).

Consumed: `sa.matching.tender.>` (published, evaluating, evaluated, failed, cancelled),
`sa.matching.award.>`, `sa.matching.contract.>` and `sa.matching.acceptance.published`,
each naming its tender (`tender_id`) or, for an acceptance, its contract. The handler renders
the tender's documents afresh from matching's own tables (`service.refresh_tender`), so the
order and repetition of events do not matter: a late or replayed event renders the current
state again, which changes nothing. Published: nothing (the feeds are the output).
"""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork
from services.matching.contracts.models import Contract
from services.matching.public import service

DURABLE = "matching-public"
SUBJECTS = (
    "sa.matching.tender.>",
    "sa.matching.award.>",
    "sa.matching.contract.>",
    "sa.matching.acceptance.published",
)


async def tender_of(uow: UnitOfWork, event: Event) -> str:
    """The tender an event is about; PermanentError when it names none we know."""
    tender_id = event.data.get("tender_id")
    if isinstance(tender_id, str) and tender_id:
        return tender_id
    contract_id = event.data.get("contract_id")
    if isinstance(contract_id, str) and contract_id:
        contract = await uow.session.get(Contract, contract_id)
        if contract is not None:
            return contract.tender_id
    raise PermanentError(f"{event.type} names no tender (tender_id or a known contract_id)")


def subscriptions(ocds_prefix: str) -> list[Subscription]:
    """The consumer, bound to the OCID prefix its releases are stamped with."""

    async def on_market_event(uow: UnitOfWork, event: Event) -> None:
        tender_id = await tender_of(uow, event)
        await service.refresh_tender(
            uow.session, tender_id, ocds_prefix=ocds_prefix, now=datetime.now(UTC)
        )

    return [
        Subscription(
            durable=DURABLE,
            stream="MATCHING",
            subjects=list(SUBJECTS),
            handler=on_market_event,
        )
    ]
