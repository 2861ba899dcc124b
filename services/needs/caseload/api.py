"""HTTP route of the caseload report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from libs.common.auth import Principal, Role, require_roles
from libs.common.errors import Forbidden
from libs.common.service import RuntimeDep
from services.needs.caseload import service

router = APIRouter(prefix="/caseload", tags=["caseload"])


class TownshipCaseloadPublic(BaseModel):
    township: str
    county_name: str | None
    recipients: int
    by_category: dict[str, int]
    open_needs: int
    required_workers: int | None
    staffing_rule: str | None


@router.get("", response_model=list[TownshipCaseloadPublic])
async def get_caseload(
    runtime: RuntimeDep,
    actor: Annotated[Principal, Depends(require_roles(Role.operator, Role.purchaser))],
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
) -> list[TownshipCaseloadPublic]:
    """Per township (乡镇/街道): recipients by category, open needs, the staff the pack requires
    (Zhejiang tiers; Hainan "2+N"; none where a province sets no number)."""
    scope = region or actor.region
    if not scope.startswith(actor.region):
        raise Forbidden(detail="The region is outside your own.")
    rows = await service.caseload(db=runtime.db, scope=scope)
    return [TownshipCaseloadPublic(**vars(r)) for r in rows]
