"""HTTP routes of the social-forces library (社会力量库): `/organisations` and their staff."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status
from pydantic import StringConstraints

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.errors import invalid
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.providers import service
from services.providers.models import Organisation
from services.providers.schemas import (
    OrganisationCreate,
    OrganisationPublic,
    OrganisationRegistered,
    OrganisationSort,
    OrganisationStatus,
    OrganisationUpdate,
    StaffCreate,
    StaffPublic,
    StaffUpdate,
)

router = APIRouter(prefix="/organisations", tags=["organisations"])

# Registration and maintenance: platform operators, or the organisation itself.
Registrar = Annotated[Principal, Depends(require_roles(Role.operator, Role.organisation))]
# Staff lists: who maintains them, and purchasers choosing whom to buy from.
StaffReader = Annotated[
    Principal, Depends(require_roles(Role.operator, Role.purchaser, Role.organisation))
]

Grade = Annotated[str, StringConstraints(min_length=1, max_length=10)]
_ETAG = re.compile(r'^\s*"(\d{1,9})"\s*$|^\s*(\d{1,9})\s*$')


def _etag(response: Response, org: Organisation) -> None:
    # The version is the entity tag: a client sends it back as If-Match to change safely.
    response.headers["ETag"] = f'"{org.version}"'


def _if_match(
    if_match: Annotated[
        str | None,
        Header(description='Optional: the ETag (`"<version>"`) the change is based on'),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ETAG.match(if_match)
    if found is None:
        raise invalid("header.If-Match", 'expected one entity tag such as "3"')
    return int(found.group(1) or found.group(2))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrganisationRegistered)
async def register_organisation(
    body: OrganisationCreate, runtime: RuntimeDep, actor: Registrar, response: Response
) -> OrganisationRegistered:
    """Register a social force (with its staff, optionally); credit reviews its admission
    from the `registered` event. Class-I public institutions, off-catalogue services, regions
    outside the province and dispatched staff below college level are refused with the
    clause."""
    async with runtime.unit_of_work() as uow:
        org, staff = await service.register_organisation(uow=uow, data=body, actor=actor)
    _etag(response, org)
    pack = service.pack_of(org)
    return OrganisationRegistered.model_validate(
        {
            **OrganisationPublic.model_validate(org).model_dump(),
            "staff": [service.staff_to_public(s, pack) for s in staff],
        }
    )


@router.get("/{organisation_id}", response_model=OrganisationPublic)
async def get_organisation(
    organisation_id: str, runtime: RuntimeDep, actor: CurrentPrincipal, response: Response
) -> OrganisationPublic:
    """One organisation; 404 when it does not reach the caller's region."""
    org = await service.get_organisation(
        db=runtime.db, organisation_id=organisation_id, actor=actor
    )
    _etag(response, org)
    return OrganisationPublic.model_validate(org)


@router.patch("/{organisation_id}", response_model=OrganisationPublic)
async def update_organisation(
    organisation_id: str,
    body: OrganisationUpdate,
    runtime: RuntimeDep,
    actor: Registrar,
    response: Response,
    if_match: Annotated[int | None, Depends(_if_match)],
) -> OrganisationPublic:
    """Change name, registration authority, service regions, services, qualifications or
    evidence (an operator of its region, or the organisation itself). `status` is not
    accepted: it changes only through credit's decisions. 412 when `If-Match` is stale."""
    async with runtime.unit_of_work() as uow:
        org = await service.update_organisation(
            uow=uow, organisation_id=organisation_id, data=body, actor=actor, if_match=if_match
        )
    _etag(response, org)
    return OrganisationPublic.model_validate(org)


@router.get("", response_model=Page[OrganisationPublic])
async def list_organisations(
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(
            pattern=r"^(\d{2}|\d{4}|\d{6}|\d{9}|\d{12})$",
            description="Organisations registered inside this area, or serving an area that "
            "covers it or lies inside it",
        ),
    ] = None,
    service_code: Annotated[
        str | None, Query(alias="service", max_length=60, description="Catalogue item code")
    ] = None,
    min_capacity: Annotated[
        int | None, Query(ge=0, description="Monthly capacity for `service` at least this")
    ] = None,
    status_: Annotated[list[OrganisationStatus] | None, Query(alias="status")] = None,
    grade: Annotated[
        list[Grade] | None, Query(description="Credit grade (信用等级); repeatable")
    ] = None,
    kind: Annotated[str | None, Query(max_length=50)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="Name contains")] = (
        None
    ),
    sort: OrganisationSort = "-created_at",
) -> Page[OrganisationPublic]:
    """Search the library. Every filter runs in the database on the index tables; the
    caller sees only organisations reaching its own region (and itself)."""
    rows, total = await service.list_organisations(
        db=runtime.db,
        actor=actor,
        search=service.OrganisationSearch(
            region=region,
            service=service_code,
            min_capacity=min_capacity,
            statuses=tuple(status_ or ()),
            grades=tuple(grade or ()),
            kind=kind,
            q=q,
            sort=sort,
        ),
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([OrganisationPublic.model_validate(o) for o in rows], total=total, page=page)


# --------------------------------------------------------------------------------------------
# Staff
# --------------------------------------------------------------------------------------------


@router.post(
    "/{organisation_id}/staff", status_code=status.HTTP_201_CREATED, response_model=StaffPublic
)
async def add_staff(
    organisation_id: str, body: StaffCreate, runtime: RuntimeDep, actor: Registrar
) -> StaffPublic:
    """Add a worker; a dispatched worker below college level is refused with the clause."""
    async with runtime.unit_of_work() as uow:
        staff, pack = await service.add_staff(
            uow=uow, organisation_id=organisation_id, data=body, actor=actor
        )
    return service.staff_to_public(staff, pack)


@router.get("/{organisation_id}/staff", response_model=Page[StaffPublic])
async def list_staff(
    organisation_id: str,
    runtime: RuntimeDep,
    actor: StaffReader,
    page: PageDep,
    active: bool | None = None,
    dispatched: bool | None = None,
) -> Page[StaffPublic]:
    """Workers of an organisation, in the order they were added."""
    rows, total, pack = await service.list_staff(
        db=runtime.db,
        organisation_id=organisation_id,
        actor=actor,
        active=active,
        dispatched=dispatched,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([service.staff_to_public(s, pack) for s in rows], total=total, page=page)


@router.patch("/{organisation_id}/staff/{staff_id}", response_model=StaffPublic)
async def update_staff(
    organisation_id: str, staff_id: str, body: StaffUpdate, runtime: RuntimeDep, actor: Registrar
) -> StaffPublic:
    """Change a worker; the dispatch rule is checked on the result."""
    async with runtime.unit_of_work() as uow:
        staff, pack = await service.update_staff(
            uow=uow, organisation_id=organisation_id, staff_id=staff_id, data=body, actor=actor
        )
    return service.staff_to_public(staff, pack)


@router.delete("/{organisation_id}/staff/{staff_id}", response_model=StaffPublic)
async def deactivate_staff(
    organisation_id: str, staff_id: str, runtime: RuntimeDep, actor: Registrar
) -> StaffPublic:
    """Deactivate a worker who left (kept for the record); repeating it changes nothing."""
    async with runtime.unit_of_work() as uow:
        staff, pack = await service.deactivate_staff(
            uow=uow, organisation_id=organisation_id, staff_id=staff_id, actor=actor
        )
    return service.staff_to_public(staff, pack)
