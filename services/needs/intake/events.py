"""Events of single-window intake (一门受理).

They never carry the applicant's name or any other direct identifier, nor the recipient
reference: who applied is not needed to count intakes or to chase an overdue one
(data minimisation); the intake id leads back to the record for those allowed to see it.
"""

from __future__ import annotations

from datetime import date

from libs.common.events import Event, new_event
from services.needs.intake.models import Intake

SERVICE = "needs"
ENTITY = "intake"


def intake_received(intake: Intake) -> Event:
    """`sa.needs.intake.received`: an application was recorded at the window."""
    return new_event(
        service=SERVICE,
        entity=ENTITY,
        verb="received",
        subject=intake.id,
        data={
            "intake_id": intake.id,
            "region_code": intake.region_code,
            "channel": intake.channel,
            "received_on": intake.received_on,
            "due_on": intake.due_on,
            "missing_documents": len(intake.missing_documents),
        },
    )


def intake_overdue(
    *,
    intake_id: str,
    region_code: str,
    channel: str,
    due_on: date,
    missing_documents: int,
    today: date,
) -> Event:
    """`sa.needs.intake.overdue`: the time limit (限时办理) ran out before completion.

    `days_overdue` counts calendar days past `due_on`; working days would need the calendar
    of `today`'s year, and an overdue notice must not fail for want of next year's holidays.
    """
    return new_event(
        service=SERVICE,
        entity=ENTITY,
        verb="overdue",
        subject=intake_id,
        data={
            "intake_id": intake_id,
            "region_code": region_code,
            "channel": channel,
            "due_on": due_on,
            "missing_documents": missing_documents,
            "days_overdue": (today - due_on).days,
        },
    )
