"""Public OCDS routes: the release feed and compiled records. No login, rate-limited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from libs.common.feed import SinceQuery, decode_cursor
from libs.common.ratelimit import RateLimited
from libs.common.service import RuntimeDep
from services.matching.ocds import service
from services.matching.ocds.settings import ocds_settings
from services.matching.public.schemas import RegionQuery

router = APIRouter(prefix="/ocds", tags=["ocds"])

OcidPath = Annotated[str, Path(max_length=80, pattern=r"^ocds-[a-z0-9]{6}-[A-Za-z0-9-]+$")]


@router.get("/releases")
async def releases(
    request: Request,
    runtime: RuntimeDep,
    _limited: RateLimited,
    since: SinceQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    region: RegionQuery = None,
) -> dict[str, Any]:
    """An OCDS 1.1 release package of the releases stored after `since`, in the order they
    were stored; `links.next` asks for what comes next (poll it to follow the feed)."""
    after = decode_cursor(since)
    entries, _more = await service.read_releases(
        runtime.db, after=after, limit=limit, region=region
    )
    next_uri = str(request.url.include_query_params(since=service.next_cursor(entries, after)))
    return service.release_package(
        [e.document for e in entries],
        uri=str(request.url),
        publisher_name=ocds_settings(runtime.settings).ocds_publisher,
        next_uri=next_uri,
    )


@router.get("/records/{ocid}")
async def record(
    ocid: OcidPath, request: Request, runtime: RuntimeDep, _limited: RateLimited
) -> dict[str, Any]:
    """An OCDS 1.1 record package: every release of the process and the compiled release."""
    compiled = await service.compiled_record(runtime.db, ocid)
    return service.record_package(
        [compiled],
        uri=str(request.url),
        publisher_name=ocds_settings(runtime.settings).ocds_publisher,
    )
