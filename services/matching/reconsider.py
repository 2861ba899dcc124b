"""Supply that appears puts the unmatched needs it may serve back in line.

The micro-batch (`allocation.runs.micro_batch`) runs for counties holding needs that no run
has considered yet (`need_view.considered_at IS NULL`). A need left unmatched (no capacity,
no cover) keeps its `considered_at`, so without this it would wait until a *new* need
arrived in its county or somebody ran an allocation by hand, even after capacity appeared.
Whatever adds supply calls `reconsider` in the same transaction: a contract starting,
growing or resuming, a match ending (its unit of capacity comes back), a charity offering
or freeing units. The next micro-batch then runs those counties again. Reconsidering too
much costs one extra run; too little leaves a person waiting, so callers pass every region
the new supply covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.regions import sql_inside
from services.matching import rules
from services.matching.contracts.models import Contract
from services.matching.library.models import ResourceView
from services.matching.models import NeedView

NEED = NeedView.__table__  # type: ignore[attr-defined]
CONTRACT = Contract.__table__  # type: ignore[attr-defined]
RESOURCE = ResourceView.__table__  # type: ignore[attr-defined]


def _outermost(regions: Iterable[str]) -> list[str]:
    """The regions not inside another one of them ("" is the whole country)."""
    out: list[str] = []
    for r in sorted(set(regions), key=len):
        if not any(r.startswith(o) for o in out):
            out.append(r)
    return out


async def reconsider(session: AsyncSession, regions: Iterable[str]) -> int:
    """Unmatched allocatable needs inside `regions` go to the next micro-batch again;
    how many did."""
    areas = _outermost(regions)
    if not areas:
        return 0
    query = update(NEED).where(
        NEED.c.status.in_(rules.ALLOCATABLE), NEED.c.considered_at.is_not(None)
    )
    if "" not in areas:
        query = query.where(or_(*(sql_inside(NEED.c.region_code, a) for a in areas)))
    result = await session.execute(query.values(considered_at=None))
    return int(getattr(result, "rowcount", 0) or 0)


async def supply_regions(
    session: AsyncSession,
    contract_ids: Sequence[str | None] = (),
    resource_ids: Sequence[str | None] = (),
) -> list[str]:
    """The regions contracts and charity resources serve (ids that are None are skipped)."""
    regions: list[str] = []
    for table, key, ids in (
        (CONTRACT, CONTRACT.c.id, contract_ids),
        (RESOURCE, RESOURCE.c.resource_id, resource_ids),
    ):
        wanted = sorted({i for i in ids if i})
        if wanted:
            rows = await session.execute(select(table.c.regions).where(key.in_(wanted)))
            regions += [r for (served,) in rows for r in served]
    return regions
