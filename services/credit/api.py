"""HTTP routes of the credit service (violations, sanctions, the blacklist, the public
dishonesty list, appeals and repair: services/credit/sanctions/api.py)."""

from __future__ import annotations

from fastapi import APIRouter

from libs.common.auth import CurrentPrincipal
from libs.common.service import RuntimeDep
from services.credit import service
from services.credit.schemas import AdmissionPublic

router = APIRouter()


@router.get("/admissions/{organisation_id}", response_model=AdmissionPublic, tags=["admissions"])
async def get_admission(
    organisation_id: str, runtime: RuntimeDep, actor: CurrentPrincipal
) -> AdmissionPublic:
    """The latest admission review of an organisation, every condition with its clause."""
    review = await service.latest_admission(
        db=runtime.db, organisation_id=organisation_id, actor=actor
    )
    return AdmissionPublic.model_validate(review)
