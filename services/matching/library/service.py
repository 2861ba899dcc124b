"""Projections of the providers' library and of credit's scores (event-carried state).

Matching keeps its own copy of what it needs from other services: purchasing projects (项目库)
to open tenders, experts (专家库) to draw panels, charity resources (慈善资源) to serve needs,
and each organisation's offer and credit score (社会力量库, 信用) to decide who may bid.

Every row keeps the producer's version of what it last applied: an event whose version is not
newer than the row's is stale (late, replayed or redelivered out of order) and changes nothing.
Payload errors raise `BadPayload`; the event handlers turn it into a dead letter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.library.models import ExpertView, ProjectView, ResourceView
from services.matching.models import OrganisationView


class BadPayload(ValueError):
    """An event payload this projection can never apply (missing or malformed fields)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None or isinstance(value, dict | list):
        raise BadPayload(f"{key} missing or not a scalar")
    return str(value)


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or value is None:
        raise BadPayload(f"{key} missing or not an integer")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise BadPayload(f"{key} is not an integer: {value!r}") from exc


def _date(data: Mapping[str, Any], key: str, *, optional: bool = False) -> date | None:
    value = data.get(key)
    if value is None:
        if optional:
            return None
        raise BadPayload(f"{key} missing")
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise BadPayload(f"{key} is not a date: {value!r}") from exc


def _required_date(data: Mapping[str, Any], key: str) -> date:
    value = _date(data, key)
    assert value is not None  # _date raises for a missing required date
    return value


def _strings(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise BadPayload(f"{key} is not a list")
    return [str(v) for v in value]


def _optional_number(data: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    """`data[key]` as a number in [low, high], or None when absent or null."""
    raw = data.get(key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise BadPayload(f"{key} is not a number: {raw!r}") from exc
    if not low <= value <= high:
        raise BadPayload(f"{key} outside {low:g}–{high:g}: {value}")
    return value


def _version(data: Mapping[str, Any]) -> int:
    version = _int(data, "version")
    if version < 1:
        raise BadPayload(f"version must be ≥ 1, got {version}")
    return version


# --------------------------------------------------------------------------------------------
# Organisations (社会力量) and their credit scores
# --------------------------------------------------------------------------------------------


async def organisation_view(session: AsyncSession, organisation_id: str) -> OrganisationView:
    """The organisation's row, created empty when this is the first event about it."""
    view = await session.get(OrganisationView, organisation_id)
    if view is None:
        view = OrganisationView(organisation_id=organisation_id, updated_at=_now())
        session.add(view)
    return view


def apply_offer(view: OrganisationView, data: Mapping[str, Any]) -> bool:
    """Apply an organisation's offer from `organisation.registered` or `.updated`.

    Fills service regions, capacities by catalogue code, credit code (USCC), name, kind and
    qualifications. Returns False (and changes nothing but `registered`) when the event's
    `version` is not newer than the offer already applied. A `registered` event without a
    version counts as version 1, the first state of any organisation.
    """
    try:
        regions = [str(s) for s in data["service_regions"]]
        capacities = {str(s["code"]): int(s["monthly_capacity"]) for s in data["services"]}
        qualifications = {
            str(k): v is True for k, v in dict(data.get("qualifications") or {}).items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise BadPayload(f"organisation offer without usable regions/services: {exc}") from exc
    version = _version(data) if "version" in data else 1
    # Any offer event means providers has registered the organisation.
    view.registered = True
    if version <= view.offer_version:
        return False
    view.service_regions = regions
    view.capacities = capacities
    view.qualifications = qualifications
    for key in ("uscc", "name", "kind"):
        if data.get(key) is not None:
            setattr(view, key, str(data[key]))
    view.offer_version = version
    view.updated_at = _now()
    return True


async def apply_score(session: AsyncSession, data: Mapping[str, Any]) -> bool:
    """`sa.credit.score.changed` {organisation_id, score, grade, version}: selection weights."""
    organisation_id = _str(data, "organisation_id")
    version = _version(data)
    score = _optional_number(data, "score", 0, 100)
    raw_grade = data.get("grade")
    grade = None if raw_grade is None else str(raw_grade)
    if grade is not None and not 1 <= len(grade) <= 10:
        raise BadPayload(f"unusable grade {raw_grade!r}")
    view = await organisation_view(session, organisation_id)
    if version <= view.score_version:
        return False
    view.credit_score = score
    view.credit_grade = grade
    view.score_version = version
    view.updated_at = _now()
    return True


async def apply_satisfaction(session: AsyncSession, data: Mapping[str, Any]) -> bool:
    """`sa.credit.evaluation.recorded`: the organisation's recipients' satisfaction (0–1,
    recency-weighted over its published evaluations), a selection weight (适配度). The
    evaluation's `published_at` orders them: an older one arriving late changes nothing
    (False). An evaluation without satisfaction responses leaves the figure as it was."""
    organisation_id = _str(data, "organisation_id")
    raw = data.get("published_at")
    try:
        published_at = datetime.fromisoformat(str(raw))
    except ValueError as exc:
        raise BadPayload(f"published_at is not an instant: {raw!r}") from exc
    if published_at.tzinfo is None:
        raise BadPayload(f"published_at without an offset: {raw!r}")
    satisfaction = _optional_number(data, "organisation_satisfaction", 0, 1)
    view = await organisation_view(session, organisation_id)
    seen = view.satisfaction_as_of
    if seen is not None and published_at <= (seen if seen.tzinfo else seen.replace(tzinfo=UTC)):
        return False
    view.satisfaction_as_of = published_at
    if satisfaction is not None:
        view.satisfaction = satisfaction
    view.updated_at = _now()
    return True


# --------------------------------------------------------------------------------------------
# Projects (项目库)
# --------------------------------------------------------------------------------------------


async def upsert_project(session: AsyncSession, data: Mapping[str, Any]) -> ProjectView | None:
    """`sa.providers.project.published`: the project as a tender needs it; None when stale."""
    project_id = _str(data, "project_id")
    version = _version(data)
    fields: dict[str, Any] = {
        "region_code": _str(data, "region_code"),
        "department": _str(data, "department"),
        "title": _str(data, "title"),
        "service_codes": _strings(data, "service_codes"),
        "quantity": _int(data, "quantity"),
        "unit": _str(data, "unit"),
        "budget_fen": _int(data, "budget_fen"),
        "purchasing_method": _str(data, "purchasing_method"),
        "period_start": _required_date(data, "period_start"),
        "period_end": _required_date(data, "period_end"),
        "qualification_requirements": _strings(data, "qualification_requirements"),
        "pack": _str(data, "pack"),
    }
    if not fields["service_codes"]:
        raise BadPayload("project without service_codes")
    if fields["budget_fen"] <= 0:
        raise BadPayload("project budget must be > 0 fen")
    view = await session.get(ProjectView, project_id)
    if view is not None and version <= view.version:
        return None
    if view is None:
        view = ProjectView(project_id=project_id, payload={}, updated_at=_now(), **fields)
        session.add(view)
    else:
        for key, value in fields.items():
            setattr(view, key, value)
    # The whole payload is kept: quality standards, specific conditions and the fund source
    # are shown with the tender but not queried.
    view.payload = dict(data)
    view.state = "published"
    view.version = version
    view.updated_at = _now()
    return view


async def cancel_project(session: AsyncSession, data: Mapping[str, Any]) -> ProjectView | None:
    """`sa.providers.project.cancelled`: the project is closed; None when stale.

    If the cancellation overtakes the publication (a redelivery can reorder them), a
    tombstone row records it at its version, so the older publication arriving later is
    ignored instead of reopening the project.
    """
    project_id = _str(data, "project_id")
    version = _version(data)
    view = await session.get(ProjectView, project_id)
    if view is not None and version <= view.version:
        return None
    if view is None:
        view = ProjectView(
            project_id=project_id,
            region_code=_str(data, "region_code"),
            department="",
            title="",
            service_codes=[],
            quantity=0,
            unit="",
            budget_fen=0,
            purchasing_method="",
            period_start=date.min,
            period_end=date.min,
            qualification_requirements=[],
            pack="",
            payload={"tombstone": True, **dict(data)},
            updated_at=_now(),
        )
        session.add(view)
    view.state = "cancelled"
    view.version = version
    view.updated_at = _now()
    return view


# --------------------------------------------------------------------------------------------
# Experts (专家库)
# --------------------------------------------------------------------------------------------

_AFFILIATION_KEYS = (
    "affiliation_id",
    "organisation_uscc",
    "organisation_id",
    "kind",
    "started_on",
    "ended_on",
)


def _affiliations(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("affiliations", [])
    if not isinstance(raw, list) or not all(isinstance(a, dict) for a in raw):
        raise BadPayload("affiliations is not a list of objects")
    out = []
    for a in raw:
        if not a.get("kind") or not (a.get("organisation_uscc") or a.get("organisation_id")):
            raise BadPayload("affiliation without kind or organisation")
        out.append({key: a.get(key) for key in _AFFILIATION_KEYS})
    return out


async def upsert_expert(session: AsyncSession, data: Mapping[str, Any]) -> ExpertView | None:
    """`sa.providers.expert.registered|updated`: an expert for panels; None when stale."""
    expert_id = _str(data, "expert_id")
    version = _version(data)
    fields: dict[str, Any] = {
        "name": _str(data, "name"),
        "region_code": _str(data, "region_code"),
        "fields": _strings(data, "fields"),
        "available": data.get("available", True) is True,
        "unavailable_until": _date(data, "unavailable_until", optional=True),
        "status": _str(data, "status"),
        "affiliations": _affiliations(data),
    }
    view = await session.get(ExpertView, expert_id)
    if view is not None and version <= view.version:
        return None
    if view is None:
        view = ExpertView(expert_id=expert_id, updated_at=_now(), **fields)
        session.add(view)
    else:
        for key, value in fields.items():
            setattr(view, key, value)
    view.version = version
    view.updated_at = _now()
    return view


# --------------------------------------------------------------------------------------------
# Charity resources (慈善资源)
# --------------------------------------------------------------------------------------------


async def upsert_resource(session: AsyncSession, data: Mapping[str, Any]) -> ResourceView | None:
    """`sa.providers.resource.offered|withdrawn|exhausted`; None when stale.

    `remaining` is providers' figure at that version (it already counts the allocations
    providers has seen); the allocation engine subtracts its own unconfirmed allocations.
    """
    resource_id = _str(data, "resource_id")
    version = _version(data)
    remaining = _int(data, "remaining")
    if remaining < 0:
        raise BadPayload(f"remaining must be ≥ 0, got {remaining}")
    fields: dict[str, Any] = {
        "charity_id": _str(data, "charity_id"),
        "kind": _str(data, "kind"),
        "service_codes": _strings(data, "service_codes"),
        "regions": _strings(data, "regions"),
        "target_categories": _strings(data, "target_categories"),
        "remaining": remaining,
        "unit": _str(data, "unit"),
        "valid_from": _required_date(data, "valid_from"),
        "valid_until": _required_date(data, "valid_until"),
        "status": _str(data, "status"),
    }
    view = await session.get(ResourceView, resource_id)
    if view is not None and version <= view.version:
        return None
    if view is None:
        view = ResourceView(resource_id=resource_id, updated_at=_now(), **fields)
        session.add(view)
    else:
        for key, value in fields.items():
            setattr(view, key, value)
    view.version = version
    view.updated_at = _now()
    return view
