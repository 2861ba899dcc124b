"""HTTP routes of the matching service: contracts (合同), delivery (服务记录), acceptance (验收).

- `POST /contracts` (purchaser): draw up the contract of an accepted award (pending);
- `POST /contracts/{id}/sign|refuse` (the organisation named in it);
- `POST /contracts/{id}/amendments` (purchaser): supplementary contract within 10 %;
- `POST /contracts/{id}/complete|terminate` (purchaser);
- `GET /contracts`, `GET /contracts/{id}`, `GET /contracts/{id}/amendments`;
- `POST /matches/{match_id}/deliveries` (the organisation holding the match);
- `POST /deliveries/{id}/confirm` (operator or purchaser, for the recipient or a proxy);
- `GET /contracts/{id}/deliveries`;
- `POST /contracts/{id}/acceptances` (purchaser), `POST /acceptances/{id}/result`,
  `GET /contracts/{id}/acceptances`, `GET /acceptances/{id}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from libs.common.auth import CurrentPrincipal, Principal, Role, require_roles
from libs.common.clock import clock_of
from libs.common.pagination import Page, PageDep
from libs.common.service import RuntimeDep
from services.matching.contracts import service
from services.matching.contracts.schemas import (
    AcceptanceCreate,
    AcceptancePublic,
    AcceptanceResultIn,
    AmendmentCreate,
    AmendmentPublic,
    AmendmentResult,
    ContractCreate,
    ContractDecision,
    ContractPublic,
    ContractSort,
    ContractState,
    DeliveryConfirm,
    DeliveryCreate,
    DeliveryPublic,
    DeliverySort,
)

router = APIRouter()

Purchaser = Annotated[Principal, Depends(require_roles(Role.purchaser))]
Organisation = Annotated[Principal, Depends(require_roles(Role.organisation))]
# Confirmation is taken down by the purchasing side for the recipient (or a proxy).
Confirmer = Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))]


async def current_time(request: Request) -> datetime:
    """Now, from the app's clock (tests replace `app.state.clock`)."""
    return clock_of(request.app.state)()


Now = Annotated[datetime, Depends(current_time)]
Id = Annotated[str, Query(max_length=36)]


def _public(contract: object) -> ContractPublic:
    return ContractPublic.model_validate(contract)


# ----------------------------------------------------------------------------------- contracts


@router.post(
    "/contracts",
    status_code=status.HTTP_201_CREATED,
    response_model=ContractPublic,
    tags=["contracts"],
)
async def create_contract(
    body: ContractCreate, runtime: RuntimeDep, actor: Purchaser, now: Now
) -> ContractPublic:
    """Draw up the contract of an accepted award (pending until the organisation signs).
    Refusals name the field and, for the term limit, the clause."""
    async with runtime.unit_of_work() as uow:
        contract = await service.create_contract(uow=uow, data=body, actor=actor, now=now)
    return _public(contract)


@router.get("/contracts", response_model=Page[ContractPublic], tags=["contracts"])
async def list_contracts(
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    page: PageDep,
    state: ContractState | None = None,
    organisation_id: Id | None = None,
    project_id: Id | None = None,
    tender_id: Id | None = None,
    region: Annotated[str | None, Query(pattern=r"^[0-9]{2,12}$")] = None,
    sort: ContractSort = "-created_at",
) -> Page[ContractPublic]:
    """Contracts: the purchasing side sees its region; organisations their own; signed
    contracts are public (合同依法公告)."""
    rows, total = await service.list_contracts(
        db=runtime.db,
        actor=actor,
        state=state,
        organisation_id=organisation_id,
        project_id=project_id,
        tender_id=tender_id,
        region=region,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([_public(c) for c in rows], total=total, page=page)


@router.get("/contracts/{contract_id}", response_model=ContractPublic, tags=["contracts"])
async def get_contract(
    contract_id: str, runtime: RuntimeDep, actor: CurrentPrincipal
) -> ContractPublic:
    return _public(await service.get_contract(db=runtime.db, contract_id=contract_id, actor=actor))


@router.post("/contracts/{contract_id}/sign", response_model=ContractPublic, tags=["contracts"])
async def sign_contract(
    contract_id: str, runtime: RuntimeDep, actor: Organisation, now: Now
) -> ContractPublic:
    """The organisation signs: the contract is in force (`contract.signed`)."""
    async with runtime.unit_of_work() as uow:
        contract = await service.sign_contract(
            uow=uow, contract_id=contract_id, actor=actor, now=now
        )
    return _public(contract)


@router.post("/contracts/{contract_id}/refuse", response_model=ContractPublic, tags=["contracts"])
async def refuse_contract(
    contract_id: str, body: ContractDecision, runtime: RuntimeDep, actor: Organisation, now: Now
) -> ContractPublic:
    """The organisation will not sign (拒签): the award is refused (`contract.refused`)."""
    async with runtime.unit_of_work() as uow:
        contract = await service.refuse_contract(
            uow=uow, contract_id=contract_id, actor=actor, reason=body.reason, now=now
        )
    return _public(contract)


@router.post(
    "/contracts/{contract_id}/amendments",
    status_code=status.HTTP_201_CREATED,
    response_model=AmendmentResult,
    tags=["contracts"],
)
async def amend_contract(
    contract_id: str, body: AmendmentCreate, runtime: RuntimeDep, actor: Purchaser, now: Now
) -> AmendmentResult:
    """A supplementary contract (补充合同); all together within 10 % of the original value
    (政府采购法 第四十九条)."""
    async with runtime.unit_of_work() as uow:
        done = await service.amend_contract(
            uow=uow, contract_id=contract_id, data=body, actor=actor, now=now
        )
    return AmendmentResult(
        amendment=AmendmentPublic.model_validate(done.amendment),
        contract=_public(done.contract),
        headroom_fen=done.headroom_fen,
    )


@router.get(
    "/contracts/{contract_id}/amendments",
    response_model=list[AmendmentPublic],
    tags=["contracts"],
)
async def list_amendments(
    contract_id: str, runtime: RuntimeDep, actor: CurrentPrincipal
) -> list[AmendmentPublic]:
    rows = await service.list_amendments(db=runtime.db, contract_id=contract_id, actor=actor)
    return [AmendmentPublic.model_validate(a) for a in rows]


@router.post("/contracts/{contract_id}/complete", response_model=ContractPublic, tags=["contracts"])
async def complete_contract(
    contract_id: str, runtime: RuntimeDep, actor: Purchaser, now: Now
) -> ContractPublic:
    """履约完毕: after the period ends, or earlier with a qualified acceptance."""
    async with runtime.unit_of_work() as uow:
        contract = await service.complete_contract(
            uow=uow, contract_id=contract_id, actor=actor, now=now
        )
    return _public(contract)


@router.post(
    "/contracts/{contract_id}/terminate", response_model=ContractPublic, tags=["contracts"]
)
async def terminate_contract(
    contract_id: str, body: ContractDecision, runtime: RuntimeDep, actor: Purchaser, now: Now
) -> ContractPublic:
    """终止合同执行, with the reason; the organisation's needs are to be taken over."""
    async with runtime.unit_of_work() as uow:
        contract = await service.terminate_contract(
            uow=uow, contract_id=contract_id, actor=actor, reason=body.reason, now=now
        )
    return _public(contract)


# ----------------------------------------------------------------------------------- delivery


@router.post(
    "/matches/{match_id}/deliveries",
    status_code=status.HTTP_201_CREATED,
    response_model=DeliveryPublic,
    tags=["delivery"],
)
async def record_delivery(
    match_id: str, body: DeliveryCreate, runtime: RuntimeDep, actor: Organisation, now: Now
) -> DeliveryPublic:
    """Record a session delivered (服务记录). Only the organisation holding the match may:
    anyone else is refused with the no-subcontracting clause (严禁服务转包)."""
    async with runtime.unit_of_work() as uow:
        delivery = await service.record_delivery(
            uow=uow, match_id=match_id, data=body, actor=actor, now=now
        )
    return DeliveryPublic.model_validate(delivery)


@router.post("/deliveries/{delivery_id}/confirm", response_model=DeliveryPublic, tags=["delivery"])
async def confirm_delivery(
    delivery_id: str, body: DeliveryConfirm, runtime: RuntimeDep, actor: Confirmer, now: Now
) -> DeliveryPublic:
    """The recipient (or a proxy) confirms the session: `service.delivered`."""
    async with runtime.unit_of_work() as uow:
        delivery = await service.confirm_delivery(
            uow=uow, delivery_id=delivery_id, by=body.by, actor=actor, now=now
        )
    return DeliveryPublic.model_validate(delivery)


@router.get(
    "/contracts/{contract_id}/deliveries",
    response_model=Page[DeliveryPublic],
    tags=["delivery"],
)
async def list_deliveries(
    contract_id: str,
    runtime: RuntimeDep,
    actor: CurrentPrincipal,
    page: PageDep,
    confirmed: bool | None = None,
    match_id: Id | None = None,
    sort: DeliverySort = "-delivered_on",
) -> Page[DeliveryPublic]:
    """Service records of a contract, for its purchasing side and its organisation."""
    rows, total = await service.list_deliveries(
        db=runtime.db,
        contract_id=contract_id,
        actor=actor,
        confirmed=confirmed,
        match_id=match_id,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of([DeliveryPublic.model_validate(d) for d in rows], total=total, page=page)


# --------------------------------------------------------------------------------- acceptance


@router.post(
    "/contracts/{contract_id}/acceptances",
    status_code=status.HTTP_201_CREATED,
    response_model=AcceptancePublic,
    tags=["acceptance"],
)
async def open_acceptance(
    contract_id: str, body: AcceptanceCreate, runtime: RuntimeDep, actor: Purchaser, now: Now
) -> AcceptancePublic:
    """Accept a period (履约验收): invites the recipients served under the contract in it."""
    async with runtime.unit_of_work() as uow:
        acceptance = await service.open_acceptance(
            uow=uow, contract_id=contract_id, period=body.period, actor=actor, now=now
        )
    return AcceptancePublic.model_validate(acceptance)


@router.get(
    "/contracts/{contract_id}/acceptances",
    response_model=list[AcceptancePublic],
    tags=["acceptance"],
)
async def list_acceptances(
    contract_id: str, runtime: RuntimeDep, actor: CurrentPrincipal
) -> list[AcceptancePublic]:
    rows = await service.list_acceptances(db=runtime.db, contract_id=contract_id, actor=actor)
    return [AcceptancePublic.model_validate(a) for a in rows]


@router.get("/acceptances/{acceptance_id}", response_model=AcceptancePublic, tags=["acceptance"])
async def get_acceptance(
    acceptance_id: str, runtime: RuntimeDep, actor: CurrentPrincipal
) -> AcceptancePublic:
    return AcceptancePublic.model_validate(
        await service.get_acceptance(db=runtime.db, acceptance_id=acceptance_id, actor=actor)
    )


@router.post(
    "/acceptances/{acceptance_id}/result",
    response_model=AcceptancePublic,
    tags=["acceptance"],
)
async def publish_acceptance(
    acceptance_id: str,
    body: AcceptanceResultIn,
    runtime: RuntimeDep,
    actor: Purchaser,
    now: Now,
) -> AcceptancePublic:
    """Publish the result (验收结果), with the refs of the recipients invited."""
    async with runtime.unit_of_work() as uow:
        acceptance = await service.publish_acceptance(
            uow=uow, acceptance_id=acceptance_id, data=body, actor=actor, now=now
        )
    return AcceptancePublic.model_validate(acceptance)
