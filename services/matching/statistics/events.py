"""What the statistics publish and consume.

Published (stream MATCHING): `sa.matching.statistics.daily` {day, region_code, level,
needs_opened, needs_matched, needs_served, needs_fulfilled, needs_cancelled,
median_minutes_to_match, budget_reserved_fen, cap_fen, cap_used, evaluations,
average_satisfaction, active_organisations, active_by_grade {grade: count}, version,
computed_at}: one region's figures for one China day; a recomputation after late facts
carries a higher `version`. Counts and money only: nothing about any person.

Consumed, each into a fact table (statistics/models.py), idempotent and order-proof:
- NEEDS `sa.needs.need.opened | cancelled | fulfilled | expired` {need_id, region_code,
  opened_at | cancelled_at | …}: a need's milestones (the first of each counts). The needs
  service announces no fulfilment yet; `fulfilled` is counted once it does.
- MATCHING `sa.matching.need.matched` {need_id, region_code, matched_at} (the first match)
  and `sa.matching.service.delivered` {need_id, delivered_on, confirmed_at} (first served).
- PROVIDERS `sa.providers.fund.recorded` {region_code, year, base_fen, cap_fen,
  ledger_version} (newest ledger version wins); `sa.providers.project.approved`
  {project_id, region_code, budget_year, budget_fen, approved_at} and `.cancelled`
  {project_id, released_fen}; `sa.providers.organisation.registered | updated`
  {organisation_id, region_code, version} (home region, newest version wins).
- CREDIT `sa.credit.evaluation.recorded` {evaluation_id, region_code, satisfaction (0–1),
  published_at}; `sa.credit.score.changed` {organisation_id, grade, version};
  `sa.credit.organisation.<verb>` {organisation_id, decision_version} (status; warned and
  rectification_ordered change nothing).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.matching.statistics.models import (
    StatEvaluation,
    StatLedger,
    StatNeed,
    StatOrganisation,
    StatProject,
)

if TYPE_CHECKING:
    from services.matching.statistics.models import StatDaily

SERVICE = "matching"

# Credit decision verb → market status (the same reading as the market's own projection).
CREDIT_STATUS = {
    "admitted": "admitted",
    "rejected": "rejected",
    "suspended": "suspended",
    "exited": "exited",
    "blacklisted": "blacklisted",
    "reinstated": "admitted",
}


def statistics_daily(row: StatDaily) -> Event:
    return new_event(
        service=SERVICE,
        entity="statistics",
        verb="daily",
        subject=f"{row.region_code}:{row.day.isoformat()}",
        data={
            "day": row.day,
            "region_code": row.region_code,
            "level": {2: "province", 4: "city", 6: "county"}.get(len(row.region_code), "area"),
            "needs_opened": row.needs_opened,
            "needs_matched": row.needs_matched,
            "needs_served": row.needs_served,
            "needs_fulfilled": row.needs_fulfilled,
            "needs_cancelled": row.needs_cancelled,
            "median_minutes_to_match": row.median_minutes_to_match,
            "budget_reserved_fen": row.budget_reserved_fen,
            "cap_fen": row.cap_fen,
            "cap_used": row.cap_used,
            "evaluations": row.evaluations,
            "average_satisfaction": row.average_satisfaction,
            "active_organisations": row.active_organisations,
            "active_by_grade": dict(row.active_by_grade),
            "version": row.version,
            "computed_at": row.computed_at,
        },
    )


# ------------------------------------------------------------------------------ helpers


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        text = str(value)
        parsed = (
            datetime.fromisoformat(text)
            if "T" in text or " " in text
            else datetime.fromisoformat(text + "T00:00:00+08:00")
        )
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _earliest(old: datetime | None, new: datetime | None) -> datetime | None:
    if old is None:
        return new
    if new is None:
        return old
    old_aware = old.replace(tzinfo=UTC) if old.tzinfo is None else old
    return min(old_aware, new)


async def _get(uow: UnitOfWork, model: Any, key: Any, **defaults: Any) -> Any:
    row = await uow.session.get(model, key)
    if row is None:
        row = model(**defaults)
        uow.session.add(row)
    return row


def _required(event: Event, *names: str) -> list[Any]:
    try:
        values = [event.data[n] for n in names]
    except KeyError as exc:
        raise PermanentError(f"{event.type} without {exc.args[0]}") from exc
    if any(v in (None, "") for v in values):
        raise PermanentError(f"{event.type} with an empty {names}")
    return values


# ------------------------------------------------------------------------------ handlers


async def on_need_event(uow: UnitOfWork, event: Event) -> None:
    """needs: need.opened | cancelled | fulfilled | expired; matching: need.matched,
    service.delivered. The first time of each milestone counts; a late fact re-opens its day."""
    from services.matching.statistics import service

    (need_id,) = _required(event, "need_id")
    kind = ".".join(event.nats_subject.split(".")[2:])
    need = await _get(uow, StatNeed, str(need_id), need_id=str(need_id))
    region = event.data.get("region_code")
    if region and (kind == "need.opened" or need.region_code is None):
        need.region_code = str(region)
    try:
        if kind == "need.opened":
            at = _when(event.data.get("opened_at")) or event.time
            need.opened_at = _earliest(need.opened_at, at)
        elif kind == "need.matched":
            at = _when(event.data.get("matched_at")) or event.time
            need.matched_at = _earliest(need.matched_at, at)
        elif kind == "service.delivered":
            at = (
                _when(event.data.get("confirmed_at"))
                or _when(event.data.get("delivered_on"))
                or event.time
            )
            need.served_at = _earliest(need.served_at, at)
        elif kind == "need.fulfilled":
            at = _when(event.data.get("fulfilled_at")) or event.time
            need.fulfilled_at = _earliest(need.fulfilled_at, at)
        elif kind in ("need.cancelled", "need.expired"):
            at = _when(event.data.get("cancelled_at") or event.data.get("expired_at")) or event.time
            need.cancelled_at = _earliest(need.cancelled_at, at)
        else:
            return
    except ValueError as exc:
        raise PermanentError(f"{event.type} with an unreadable time: {exc}") from exc
    await service.mark_dirty(uow.session, at)


async def on_providers_event(uow: UnitOfWork, event: Event) -> None:
    from services.matching.statistics import service

    kind = ".".join(event.nats_subject.split(".")[2:])
    data = event.data
    try:
        if kind == "fund.recorded":
            region, year, version = _required(event, "region_code", "year", "ledger_version")
            ledger = await _get(
                uow, StatLedger, (str(region), int(year)), region_code=str(region), year=int(year)
            )
            if int(version) > ledger.version:
                ledger.version = int(version)
                ledger.base_fen = int(data.get("base_fen") or 0)
                cap = data.get("cap_fen")
                ledger.cap_fen = int(cap) if cap is not None else None
        elif kind == "project.approved":
            project_id, region, year = _required(event, "project_id", "region_code", "budget_year")
            project = await _get(
                uow,
                StatProject,
                str(project_id),
                project_id=str(project_id),
                region_code=str(region),
                budget_year=int(year),
            )
            project.region_code, project.budget_year = str(region), int(year)
            project.budget_fen = int(data.get("budget_fen") or 0)
            project.approved_at = _when(data.get("approved_at")) or event.time
            await service.mark_dirty(uow.session, project.approved_at, onwards=True)
        elif kind == "project.cancelled":
            (project_id,) = _required(event, "project_id")
            project = await uow.session.get(StatProject, str(project_id))
            if project is None:
                return  # never approved: it held nothing
            if project.cancelled_at is None:
                # The payload has no time of its own: the event's time is the cancellation's.
                project.cancelled_at = _when(data.get("cancelled_at")) or event.time
                project.released_fen = int(data.get("released_fen") or 0)
                await service.mark_dirty(uow.session, project.cancelled_at, onwards=True)
        elif kind in ("organisation.registered", "organisation.updated"):
            org_id, version = _required(event, "organisation_id", "version")
            org = await _get(uow, StatOrganisation, str(org_id), organisation_id=str(org_id))
            if int(version) > org.offer_version and data.get("region_code"):
                org.offer_version = int(version)
                org.region_code = str(data["region_code"])
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"{event.type} with unusable fields: {exc}") from exc


async def on_credit_event(uow: UnitOfWork, event: Event) -> None:
    from services.matching.statistics import service

    _, _, entity, verb = event.nats_subject.split(".")
    data = event.data
    try:
        if entity == "evaluation" and verb == "recorded":
            ev_id, region = _required(event, "evaluation_id", "region_code")
            published = _when(data.get("published_at")) or event.time
            row = await _get(
                uow,
                StatEvaluation,
                str(ev_id),
                evaluation_id=str(ev_id),
                region_code=str(region),
                published_at=published,
            )
            sat = data.get("satisfaction")
            row.satisfaction = float(sat) if sat is not None else None
            await service.mark_dirty(uow.session, published)
        elif entity == "score" and verb == "changed":
            org_id, version = _required(event, "organisation_id", "version")
            org = await _get(uow, StatOrganisation, str(org_id), organisation_id=str(org_id))
            if int(version) > org.score_version:
                org.score_version = int(version)
                org.grade = data.get("grade")
        elif entity == "organisation" and verb in CREDIT_STATUS:
            org_id, version = _required(event, "organisation_id", "decision_version")
            org = await _get(uow, StatOrganisation, str(org_id), organisation_id=str(org_id))
            if int(version) > org.status_version:
                org.status_version = int(version)
                org.status = CREDIT_STATUS[verb]
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"{event.type} with unusable fields: {exc}") from exc


subscriptions = [
    Subscription(
        durable="matching-statistics-needs",
        stream="NEEDS",
        subjects=["sa.needs.need.>"],
        handler=on_need_event,
    ),
    Subscription(
        durable="matching-statistics-market",
        stream="MATCHING",
        subjects=["sa.matching.need.matched", "sa.matching.service.delivered"],
        handler=on_need_event,
    ),
    Subscription(
        durable="matching-statistics-providers",
        stream="PROVIDERS",
        subjects=[
            "sa.providers.fund.recorded",
            "sa.providers.project.approved",
            "sa.providers.project.cancelled",
            "sa.providers.organisation.registered",
            "sa.providers.organisation.updated",
        ],
        handler=on_providers_event,
    ),
    Subscription(
        durable="matching-statistics-credit",
        stream="CREDIT",
        subjects=[
            "sa.credit.evaluation.recorded",
            "sa.credit.score.changed",
            "sa.credit.organisation.>",
        ],
        handler=on_credit_event,
    ),
]
