"""Event contracts of the needs service (stream NEEDS): what it publishes, payload by payload.

Built in services/needs/events.py and services/needs/intake/events.py. No event carries a
direct identifier of a recipient: needs carry the pseudonymous `recipient_ref`, intakes not
even that (data minimisation, see intake/events.py).
"""

from __future__ import annotations

from pydantic import Field

from libs.common.contracts import (
    Code,
    Count,
    Day,
    DivisionCode,
    EventContract,
    Id,
    Instant,
    Payload,
    RecipientRef,
    ServiceContracts,
    Text,
)

SERVICE = "needs"


class NeedItem(Payload):
    """A need item open for matching (需求项), as every need event carries it."""

    need_id: Id
    recipient_ref: RecipientRef
    region_code: DivisionCode
    service_code: Code = Field(description="Catalogue item (服务清单), e.g. `care`")
    urgency: int = Field(description="Priority from the assessment (higher is more urgent)")
    categories: list[Code] = Field(description="Recipient categories (救助对象类别)")
    quantity: int | None = Field(description="How much service, in `unit` (per month)")
    unit: str | None
    period_months: int | None


class NeedOpened(NeedItem):
    """`sa.needs.need.opened`: a need item is open for matching."""

    opened_at: Instant


class NeedCancelled(NeedItem):
    """`sa.needs.need.cancelled`: the need is withdrawn; matching stops serving it."""

    reason: Text | None
    cancelled_at: Instant


class IntakeReceived(Payload):
    """`sa.needs.intake.received`: an application recorded at the single window (一门受理)."""

    intake_id: Id
    region_code: DivisionCode
    channel: Code
    received_on: Day
    due_on: Day = Field(description="Time limit (限时办理), in working days from receipt")
    missing_documents: Count


class IntakeOverdue(Payload):
    """`sa.needs.intake.overdue`: the time limit ran out before the intake was completed."""

    intake_id: Id
    region_code: DivisionCode
    channel: Code
    due_on: Day
    missing_documents: Count
    days_overdue: Count = Field(description="Calendar days past `due_on`")


CONTRACTS = ServiceContracts(
    service=SERVICE,
    title="Needs service",
    description="Recipients' needs open for matching, and single-window intake.",
    events=(
        EventContract(
            SERVICE,
            "need",
            "opened",
            NeedOpened,
            "A need item is open for matching: the allocation engine takes it as demand.",
            consumers=("matching-needs", "matching-statistics-needs"),
        ),
        EventContract(
            SERVICE,
            "need",
            "cancelled",
            NeedCancelled,
            "A need item was cancelled before or during service.",
            consumers=("matching-need-cancellations", "matching-statistics-needs"),
        ),
        EventContract(
            SERVICE,
            "intake",
            "received",
            IntakeReceived,
            "An application was recorded at the single window, with its time limit.",
        ),
        EventContract(
            SERVICE,
            "intake",
            "overdue",
            IntakeOverdue,
            "An intake passed its time limit without being completed.",
        ),
    ),
)
