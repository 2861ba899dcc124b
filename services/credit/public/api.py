"""The feed half of credit's public routes (`?since=` on `/public/dishonesty-list` and
`/public/evaluations`, which live with their lists in sanctions/ and performance/)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from libs.common.feed import FeedPage, decode_cursor, feed_page
from services.credit.public import service

M = TypeVar("M", bound=BaseModel)


async def feed(
    runtime: Any,
    feed_name: str,
    model: type[M],
    since: str,
    limit: int,
    *,
    region: str | None = None,
) -> FeedPage[M]:
    after = decode_cursor(since)
    entries, more = await service.read_feed(
        runtime.db, feed=feed_name, after=after, limit=limit, region=region
    )
    page: FeedPage[M] = FeedPage[model].model_validate(  # type: ignore[valid-type]
        feed_page(entries, after=after, has_more=more)
    )
    return page
