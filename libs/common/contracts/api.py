"""`GET /asyncapi.json`: the AsyncAPI document of the events a service publishes.

No login: event contracts are no secret (ministries build their consumers from them) and they
hold schemas only, never data.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from libs.common.contracts.asyncapi import service_document
from libs.common.contracts.registry import ServiceContracts


def asyncapi_router(contracts: ServiceContracts) -> APIRouter:
    router = APIRouter(tags=["ops"])
    # Built on first request, then kept: the registry does not change while the process runs.
    cache: dict[str, dict[str, Any]] = {}

    @router.get(
        "/asyncapi.json",
        summary="AsyncAPI 3.0 document of the events this service publishes",
        response_class=JSONResponse,
    )
    async def asyncapi() -> JSONResponse:
        if "document" not in cache:
            cache["document"] = service_document(contracts)
        return JSONResponse(cache["document"])

    return router
