"""Allocation end to end: a run over 100,000 open needs in the matching service's database.

The instance is the engine benchmark's instance A (`bench_allocation_engine.generate`, the
same seed): 100,000 open needs across 100 counties of two provinces, 5,000 organisations
each under one contract (its capacities and coverage; suspended organisations' contracts
paused, exited and blacklisted ones' terminated), 2,000 charity resources (the ineligible
ones withdrawn). It is seeded by bulk insert into a real database built by the service's own
migrations — SQLite always, PostgreSQL too when DATABASE_URL points at a server — and one
`run_allocation` (what `POST /allocations/run` calls for an operator of the whole country)
allocates every need: load (needs and supply), solve (the engine, then the plan with every
explanation), write (matches with explanations, resource allocations, need statuses and
reasons, outbox events, in transactions of 5,000 needs with capacity re-checked in SQL).

Measured in a subprocess per database (`python -m bench.bench_allocation_e2e URL`), after
seeding: wall and CPU time of the run and of each phase (`RunReport.seconds`); memory as the
subprocess's peak resident set (`VmHWM`, reset through /proc/self/clear_refs once the data
is seeded and the instance freed, so it is the peak while the run ran) and its growth above
the RSS before the run. RSS rather than tracemalloc: OR-Tools and the database drivers
allocate outside Python's allocator.

Checks (a failure fails the benchmark): every need considered; matched + unmatched = all;
no contract's monthly capacity and no resource's remaining exceeded (counted in SQL); one
active match per need; one `need.matched` per match and one `resource.allocated` per
allocation in the outbox; the run's total score equals the optimum of the engine on the
same instance in memory (so the database path loses nothing). BENCH_ALLOC_E2E_NEEDS scales
the instance down (organisations, resources and counties in proportion) for a quick look.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, select, text

from bench.bench_allocation_engine import SPECS, Instance, generate, reset_peak_rss
from bench.common import ROOT, BenchContext, Figure, console, proc_status_kb
from libs.common.db import sync_url
from libs.common.migrations import upgrade_to_head
from services.matching.allocation.runs import run_allocation
from services.matching.allocation.supply import ALLOCATION, MATCH, NEED, ORG, RESOURCE
from services.matching.contracts.models import Contract
from services.matching.engine import Need, allocate
from services.matching.models import event_tables
from services.matching.settings import MatchingSettings

NAME = "allocation_e2e"
DESCRIPTION = "allocation run over 100k open needs in the database: load, solve, write"

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in China
MIGRATIONS = ROOT / "services" / "matching" / "migrations"
CONTRACT = Contract.__table__  # type: ignore[attr-defined]


def instance() -> Instance:
    spec = SPECS["A"]
    n = int(os.environ.get("BENCH_ALLOC_E2E_NEEDS", spec.needs))
    if n != spec.needs:
        scale = n / spec.needs
        spec = dataclasses.replace(
            spec,
            needs=n,
            organisations=max(10, round(spec.organisations * scale)),
            resources=max(4, round(spec.resources * scale)),
            counties=max(2, round(spec.counties * scale)),
        )
    return generate(spec)


def _rows(inst: Instance, objects: list[Need]) -> dict[str, list[dict[str, Any]]]:
    """The instance as rows of matching's tables."""
    needs = [
        {
            "need_id": n.need_id,
            "recipient_ref": n.recipient_ref,
            "region_code": n.region_code,
            "service_code": n.service_code,
            "urgency": n.urgency,
            "categories": list(n.categories),
            "opened_at": NOW - timedelta(days=n.waiting_days),
            "status": "open",
        }
        for n in objects
    ]
    orgs, contracts = [], []
    state_of = {"admitted": "active", "suspended": "paused"}
    for o in inst.organisations:
        orgs.append(
            {
                "organisation_id": o.organisation_id,
                "registered": True,
                "offer_version": 1,
                "service_regions": list(o.regions),
                "capacities": dict(o.capacity),
                "status": o.status,
                "status_version": 1,
                "qualifications": {},
                "credit_score": o.credit_score,
                "score_version": 1,
                "satisfaction": o.satisfaction,
                "updated_at": NOW,
            }
        )
        contracts.append(
            {
                "id": str(uuid.uuid4()),
                "tender_id": str(uuid.uuid4()),
                "award_id": str(uuid.uuid4()),
                "project_id": str(uuid.uuid4()),
                "organisation_id": o.organisation_id,
                "region_code": o.regions[0][:6],
                "service_codes": list(o.capacity),
                "regions": list(o.regions),
                "monthly_capacity": dict(o.capacity),
                "original_value_fen": 1_000_000,
                "value_fen": 1_000_000,
                "settlement": "按月结算",
                "obligations": ["no_subcontracting"],
                "period_start": date(2026, 1, 1),
                "period_end": date(2026, 12, 31),
                "state": state_of.get(o.status, "terminated"),
                "version": 2,
                "created_at": NOW,
                "updated_at": NOW,
                "signed_at": NOW,
            }
        )
    resources = [
        {
            "resource_id": r.resource_id,
            "charity_id": r.charity_id or "charity",
            "kind": "service",
            "service_codes": list(r.service_codes),
            "regions": list(r.regions),
            "target_categories": list(r.target_categories),
            "remaining": r.remaining,
            "unit": "人次",
            "valid_from": date(2026, 1, 1),
            "valid_until": date(2026, 12, 31),
            "status": "offered" if r.eligible else "withdrawn",
            "version": 1,
            "updated_at": NOW,
        }
        for r in inst.resources
    ]
    return {"needs": needs, "orgs": orgs, "contracts": contracts, "resources": resources}


def seed(url: str, inst: Instance, objects: list[Need]) -> float:
    """Migrate and bulk-insert the instance (executemany, one transaction); seconds."""
    t0 = time.perf_counter()
    upgrade_to_head(database_url=url, script_location=MIGRATIONS)
    rows = _rows(inst, objects)
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            for table, key in (
                (ORG, "orgs"),
                (CONTRACT, "contracts"),
                (RESOURCE, "resources"),
                (NEED, "needs"),
            ):
                for i in range(0, len(rows[key]), 10_000):
                    conn.execute(table.insert(), rows[key][i : i + 10_000])
    finally:
        engine.dispose()
    return time.perf_counter() - t0


def verify(url: str) -> dict[str, Any]:
    """Counts and checks of what the run wrote, in SQL."""
    engine = create_engine(sync_url(url))
    problems: list[str] = []
    try:
        with engine.connect() as conn:

            def one(q: Any) -> int:
                return int(conn.execute(q).scalar_one() or 0)

            active = MATCH.c.state == "active"
            out: dict[str, Any] = {
                "needs": one(select(func.count()).select_from(NEED)),
                "considered": one(
                    select(func.count()).select_from(NEED).where(NEED.c.considered_at.is_not(None))
                ),
                "matched": one(
                    select(func.count()).select_from(NEED).where(NEED.c.status == "matched")
                ),
                "matches": one(select(func.count()).select_from(MATCH).where(active)),
                "match_needs": one(
                    select(func.count(func.distinct(MATCH.c.need_id))).where(active)
                ),
                "allocations": one(select(func.count()).select_from(ALLOCATION)),
                "total_score": one(select(func.sum(MATCH.c.score)).where(active)),
            }
            outbox = event_tables.outbox
            for subject in ("sa.matching.need.matched", "sa.matching.resource.allocated"):
                out[subject] = one(
                    select(func.count()).select_from(outbox).where(outbox.c.nats_subject == subject)
                )
            used = {
                (c, s): int(n)
                for c, s, n in conn.execute(
                    select(MATCH.c.contract_id, MATCH.c.service_code, func.count())
                    .where(active, MATCH.c.contract_id.is_not(None))
                    .group_by(MATCH.c.contract_id, MATCH.c.service_code)
                ).all()
            }
            caps = {
                cid: (json.loads(cap) if isinstance(cap, str) else cap, state)
                for cid, cap, state in conn.execute(
                    select(CONTRACT.c.id, CONTRACT.c.monthly_capacity, CONTRACT.c.state)
                ).all()
            }
            for (cid, service), n in used.items():
                cap, state = caps[cid]
                if state != "active" or n > int(cap.get(service, 0)):
                    problems.append(f"contract {cid} ({state}) {service}: {n} > {cap}")
            taken: dict[str, int] = dict(
                conn.execute(
                    select(ALLOCATION.c.resource_id, func.sum(ALLOCATION.c.quantity)).group_by(
                        ALLOCATION.c.resource_id
                    )
                ).all()
            )
            remaining: dict[str, int] = dict(
                conn.execute(select(RESOURCE.c.resource_id, RESOURCE.c.remaining)).all()
            )
            for rid, n in taken.items():
                if int(n) > int(remaining[rid]):
                    problems.append(f"resource {rid}: {n} > {remaining[rid]}")
            if "sqlite" in url:
                pages = conn.execute(text("PRAGMA page_count")).scalar_one()
                size = conn.execute(text("PRAGMA page_size")).scalar_one()
                out["database_mb"] = round(int(pages) * int(size) / 2**20, 1)
            else:
                out["database_mb"] = round(
                    int(
                        conn.execute(
                            text("SELECT pg_database_size(current_database())")
                        ).scalar_one()
                    )
                    / 2**20,
                    1,
                )
    finally:
        engine.dispose()
    if out["considered"] != out["needs"]:
        problems.append(f"{out['needs'] - out['considered']} need(s) never considered")
    if out["matches"] != out["match_needs"] or out["matched"] != out["matches"]:
        problems.append(
            f"{out['matches']} active matches for {out['match_needs']} needs, "
            f"{out['matched']} needs matched"
        )
    if out["sa.matching.need.matched"] != out["matches"]:
        problems.append(f"{out['sa.matching.need.matched']} need.matched for {out['matches']}")
    if out["sa.matching.resource.allocated"] != out["allocations"]:
        problems.append("resource.allocated events ≠ allocations")
    out["problems"] = problems
    return out


def measure(url: str) -> dict[str, Any]:
    """Seed, run once (measured), verify, and compare with the engine in memory."""
    from libs.common.service import ServiceRuntime
    from services.matching.all_models import metadata
    from services.matching.models import event_tables as tables

    out: dict[str, Any] = {"backend": "postgresql" if url.startswith("postgresql") else "sqlite"}
    t0 = time.perf_counter()
    inst = instance()
    out["generate_seconds"] = time.perf_counter() - t0
    objects = inst.need_objects()  # what the service path reads back as `Need`s
    out["shape"] = {
        "needs": len(objects),
        "organisations": len(inst.organisations),
        "resources": len(inst.resources),
        "counties": len({n.region_code[:6] for n in objects}),
    }
    out["seed_seconds"] = seed(url, inst, objects)
    optimum = allocate(objects, inst.organisations, inst.resources).total_score
    del inst, objects
    settings = MatchingSettings(database_url=url, start_event_workers=False, environment="test")
    runtime = ServiceRuntime(settings, metadata=metadata, tables=tables, migrations=MIGRATIONS)
    gc.collect()
    out["rss_before_mb"] = proc_status_kb("VmRSS") / 1024
    out["peak_reset"] = reset_peak_rss()

    async def go() -> Any:
        try:
            return await run_allocation(runtime, scopes=[""], requested_by="bench", now=NOW)
        finally:
            await runtime.db.dispose()

    w0, c0 = time.perf_counter(), time.process_time()
    report = asyncio.run(go())
    out["seconds"] = time.perf_counter() - w0
    out["cpu_seconds"] = time.process_time() - c0
    out["peak_rss_mb"] = proc_status_kb("VmHWM") / 1024
    runtime.telemetry.shutdown()
    out["phases"] = dict(report.seconds)
    out["matched"] = report.matched
    out["unmatched"] = report.unmatched
    out["retried"] = report.retried
    out["engine"] = [
        {k: v for k, v in stats.items() if isinstance(v, int | float)} for stats in report.engine
    ]
    out["checks"] = verify(url)
    out["optimum"] = optimum
    if out["checks"]["total_score"] != optimum:
        out["checks"]["problems"].append(
            f"run total {out['checks']['total_score']} ≠ engine optimum {optimum}"
        )
    return out


def figures(ctx: BenchContext, m: dict[str, Any]) -> list[Figure]:
    backend = m["backend"]
    n = m["shape"]["needs"]
    checks = m["checks"]
    growth = m["peak_rss_mb"] - m["rss_before_mb"]
    phases = m["phases"]
    run = Figure(
        bench=NAME,
        name="run: load + solve + write",
        backend=backend,
        count=n,
        seconds=m["seconds"],
        unit="needs",
        cpu_seconds=m["cpu_seconds"],
        peak_rss_mb=m["peak_rss_mb"],
        note=(
            f"{m['matched']:,} matched, {m['unmatched']:,} unmatched; peak RSS "
            f"+{growth:.0f} MB over {m['rss_before_mb']:.0f} MB; "
            f"score = engine optimum: {checks['total_score'] == m['optimum']}"
        ),
        extra={
            "shape": m["shape"],
            "phases": {k: round(v, 3) for k, v in phases.items()},
            "matched": m["matched"],
            "unmatched": m["unmatched"],
            "retried": m["retried"],
            "rss_before_mb": round(m["rss_before_mb"], 1),
            "rss_growth_mb": round(growth, 1),
            "peak_rss_reset": m["peak_reset"],
            "seed_seconds": round(m["seed_seconds"], 2),
            "generate_seconds": round(m["generate_seconds"], 2),
            "checks": {k: v for k, v in checks.items() if k != "problems"},
            "optimum": m["optimum"],
            "engine": m["engine"],
        },
    )
    out = [run]
    for phase, what in (
        ("load", "needs, contracts, resources, usage this month (column selects)"),
        ("solve", "engine + plan, in a worker thread"),
        ("engine", "  allocate(): exact min-cost flow per province"),
        ("plan", "  a match with its explanation, or a why-not with figures, per need"),
        ("write", "matches, allocations, needs, outbox; 5,000 needs per transaction"),
    ):
        out.append(
            Figure(
                bench=NAME,
                name=f"  {phase}",
                backend=backend,
                count=n,
                seconds=phases[phase],
                unit="needs",
                peak_rss_mb=m["peak_rss_mb"],
                note=what,
            )
        )
    out.append(
        Figure(
            bench=NAME,
            name="  events queued (outbox)",
            backend=backend,
            count=checks["sa.matching.need.matched"] + checks["sa.matching.resource.allocated"],
            seconds=phases["write"],
            unit="events",
            peak_rss_mb=m["peak_rss_mb"],
            note=(
                f"{checks['sa.matching.need.matched']:,} need.matched, "
                f"{checks['sa.matching.resource.allocated']:,} resource.allocated; "
                f"database {checks['database_mb']} MB"
            ),
        )
    )
    if checks["problems"]:
        run.ok = False
        ctx.fail(f"{backend}: {len(checks['problems'])} check(s) failed: {checks['problems'][:3]}")
    return out


async def run(ctx: BenchContext) -> list[Figure]:
    """One subprocess per database backend; figures from what each reports."""
    out: list[Figure] = []
    for backend in ctx.database_backends():
        async with ctx.fresh_database(backend, "alloc") as url:
            console.print(f"[dim]allocation e2e on {backend} (subprocess)[/]")
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.bench_allocation_e2e",
                url,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            stdout, _ = await proc.communicate()
            if proc.returncode != 0:
                ctx.fail(f"{backend}: subprocess exited {proc.returncode}")
                continue
            out += figures(ctx, json.loads(stdout.decode().strip().splitlines()[-1]))
    return out


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.bench_allocation_e2e DATABASE_URL")
        return 2
    print(json.dumps(measure(argv[0]), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["DESCRIPTION", "NAME", "run"]
