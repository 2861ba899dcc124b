"""Full recompute of credit scores (信用评价): 20,000 organisations, 200,000 evaluations.

A SQLite database is brought to the credit service's head revision with its own migrations
and seeded directly with plain `sqlite3` bulk inserts (not timed as the recompute): N
organisations spread over the three provinces' packs, 10 published evaluations each over
the last four years on 2 contracts, one served-recipient aggregate per contract (deliveries
and on-time counts), and a decided violation with its sanction for 2 % of them.

The timed step is the real code path, `services.credit.performance.service.recompute_all`,
as `POST /scores/recompute` runs it: read organisations, current versions, deductions and
delivery aggregates; stream the published evaluations ordered by organisation; compute each
organisation's score in one pass; write `CreditScore`, `ScoreChange` and outbox events in
batches of 1,000 with executemany.

Figures:

* the first recompute (every organisation gets its first score: N rows of each kind);
* the same again (nothing changed: reads and compares, writes nothing);
* the first recompute once more on an identical copy of the seeded database, under
  `tracemalloc`: the peak of memory allocated by Python (`extra.tracemalloc_peak_mb`); slower,
  since every allocation is traced.

Memory: `peak_rss_mb` is the process's peak resident set (`ru_maxrss`) so far, which
includes whatever ran before in `python -m bench`; `extra.rss_growth_mb` is the growth of the
current resident set during the step (from /proc); `extra.tracemalloc_peak_mb` is Python's
own allocations at their peak. A wrong count is a FAIL. N: BENCH_CREDIT_SCORES_N (or `--n`).
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import tracemalloc
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from bench.common import BenchContext, Figure, console, env_int, rss_mb
from libs.common.db import Database
from libs.common.events import UnitOfWork
from libs.common.migrations import upgrade_to_head
from services.credit.app import MIGRATIONS
from services.credit.models import CreditScore, ScoreChange, event_tables
from services.credit.performance import service
from services.credit.performance.schemas import RecomputeReport

NAME = "credit_scores"
DESCRIPTION = "credit scores: full recompute of 20,000 organisations, 200,000 evaluations"

DEFAULT_N = 20_000
EVALUATIONS_PER_ORG = 10
BATCH_SIZE = 1000
SEED = 20261123
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
REGIONS = ("220102", "330106", "460105")  # Jilin, Zhejiang, Hainan packs
PACKS = {"22": "jilin@2026.1", "33": "zhejiang@2026.1", "46": "hainan@2026.1"}


def _ts(value: datetime) -> str:
    """How SQLAlchemy stores a DateTime on SQLite (UTC, no offset)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(path: Path, n: int) -> dict[str, int]:
    """Bulk-insert the data set with sqlite3; returns the row counts."""
    rng = random.Random(SEED)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # set-up only; the recompute runs with FULL
    stamp = _ts(NOW - timedelta(days=1500))
    counts = Counter[str]()
    orgs: list[tuple[Any, ...]] = []
    contracts: list[tuple[Any, ...]] = []
    served: list[tuple[Any, ...]] = []
    evaluations: list[tuple[Any, ...]] = []
    violations: list[tuple[Any, ...]] = []
    sanctions: list[tuple[Any, ...]] = []
    weights = json.dumps(
        {"purchaser": "0.30", "recipients": "0.40", "third_party": "0.30"}, ensure_ascii=False
    )

    def flush() -> None:
        for table, rows, width in (
            ("organisation_record", orgs, 10),
            ("contract_record", contracts, 9),
            ("served_recipient", served, 6),
            (
                "evaluation (id, contract_id, organisation_id, region_code, period, "
                "purchaser_score, purchaser_by, third_party_score, third_party_by, "
                "satisfaction_score, responses, weights, total, result, state, pack, "
                "created_at, published_at)",
                evaluations,
                18,
            ),
            (
                "violation (id, organisation_id, contract_id, kind, severity, description, "
                "evidence, state, recorded_by, recorded_at, notified_at, response_due)",
                violations,
                12,
            ),
            (
                "sanction (id, violation_id, organisation_id, kind, reason, legal_basis, "
                "starts_on, state, decided_by, deciding_authority, decided_at, "
                "decision_version)",
                sanctions,
                12,
            ),
        ):
            if rows:
                marks = ", ".join("?" * width)
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
                counts[table.split(" ")[0]] += len(rows)
                rows.clear()
        conn.commit()

    for i in range(n):
        org = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        region = REGIONS[i % len(REGIONS)]
        pack = PACKS[region[:2]]
        orgs.append(
            (
                org,
                f"52{i:016d}",
                f"社会工作服务中心{i}",
                "social_organisation",
                region,
                pack,
                "{}",
                "admitted",
                1,
                stamp,
            )
        )
        quality = rng.gauss(75, 12)  # some organisations are better than others
        for c in range(2):
            contract_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            contracts.append(
                (contract_id, org, None, region, "active", "2022-01-01", "2026-12-31", 1, stamp)
            )
            deliveries = rng.randint(5, 40)
            on_time = min(deliveries, round(deliveries * rng.uniform(0.7, 1.0)))
            served.append(
                (contract_id, "aggregate", "2022-01-10", "2026-11-01", deliveries, on_time)
            )
            for q in range(EVALUATIONS_PER_ORG // 2):
                published = NOW - timedelta(days=rng.randint(1, 4 * 365))
                parts = [min(100.0, max(0.0, round(rng.gauss(quality, 8), 2))) for _ in "pst"]
                total = round(0.3 * parts[0] + 0.4 * parts[1] + 0.3 * parts[2], 2)
                evaluations.append(
                    (
                        str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        contract_id,
                        org,
                        region,
                        f"{2022 + q}-Q{c + 1}",
                        parts[0],
                        "bench-purchaser",
                        parts[2],
                        "bench-evaluator",
                        parts[1],
                        rng.randint(3, 30),
                        weights,
                        total,
                        "qualified" if total >= 60 else "unqualified",
                        "published",
                        pack,
                        _ts(published - timedelta(days=30)),
                        _ts(published),
                    )
                )
        if rng.random() < 0.02:
            decided = NOW - timedelta(days=rng.randint(1, 900))
            violation_id = str(uuid.uuid4())
            violations.append(
                (
                    violation_id,
                    org,
                    None,
                    "breach_of_contract",
                    rng.choice(["minor", "general", "serious"]),
                    "bench",
                    "[]",
                    "decided",
                    "bench",
                    _ts(decided),
                    _ts(decided),
                    decided.date().isoformat(),
                )
            )
            sanctions.append(
                (
                    str(uuid.uuid4()),
                    violation_id,
                    org,
                    "warning",
                    "bench",
                    "[]",
                    decided.date().isoformat(),
                    "in_force",
                    "bench",
                    "bench",
                    _ts(decided),
                    1,
                )
            )
        if len(evaluations) >= 50_000:
            flush()
    flush()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return dict(counts)


async def stored(db: Database) -> tuple[int, int, int, dict[str, int]]:
    async with db.session() as session:
        scores = (await session.execute(select(func.count()).select_from(CreditScore))).scalar()
        changes = (await session.execute(select(func.count()).select_from(ScoreChange))).scalar()
        events = (
            await session.execute(select(func.count()).select_from(event_tables.outbox))
        ).scalar()
        grades: dict[str, int] = {
            str(grade): int(n)
            for grade, n in (
                await session.execute(
                    select(col(CreditScore.grade), func.count()).group_by(col(CreditScore.grade))
                )
            ).all()
        }
        sample = (await session.execute(select(CreditScore).limit(200))).scalars().all()
    for s in sample:  # the parts explain the score
        if round(sum(s.parts["terms"].values()), 2) != s.score:
            raise AssertionError(f"terms of {s.organisation_id} do not add up to {s.score}")
    return int(scores or 0), int(changes or 0), int(events or 0), grades


async def recompute(
    ctx: BenchContext, path: Path, *, label: str, n: int, want_changed: int, traced: bool = False
) -> Figure:
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:

        def uow() -> UnitOfWork:
            return UnitOfWork(db=db, tables=event_tables)

        rss_before = rss_mb()
        if traced:
            tracemalloc.start()
        with ctx.measure() as m:
            report: RecomputeReport = await service.recompute_all(
                db=db, uow_factory=uow, now=NOW, batch_size=BATCH_SIZE, reason="bench recompute"
            )
        peak = 0
        if traced:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        growth = rss_mb() - rss_before
        scores, changes, events, grades = await stored(db)
    finally:
        await db.dispose()
    fig = m.figure(
        bench=NAME,
        name=label,
        backend="sqlite",
        count=report.organisations,
        unit="org",
        note=f"{report.evaluations:,} evaluations read, {report.changed:,} changed, "
        f"batches of {BATCH_SIZE}",
    )
    fig.extra.update(
        evaluations=report.evaluations,
        changed=report.changed,
        unchanged=report.unchanged,
        skipped=report.skipped,
        credit_scores=scores,
        score_changes=changes,
        outbox_events=events,
        grades=grades,
        rss_growth_mb=round(growth, 1),
    )
    if traced:
        fig.extra["tracemalloc_peak_mb"] = round(peak / 1e6, 1)
        fig.note += f", tracemalloc peak {peak / 1e6:.0f} MB (traced: slower)"
    got = (report.organisations, report.changed, report.evaluations, scores)
    want = (n, want_changed, n * EVALUATIONS_PER_ORG, n)
    if got != want or changes != n or events != n:
        fig.ok = False
        ctx.fail(
            f"{label}: (organisations, changed, evaluations, scores) = {got}, want {want}; "
            f"score changes {changes}, outbox events {events}, want {n} each"
        )
    return fig


async def run(ctx: BenchContext) -> list[Figure]:
    n = ctx.n_override or env_int("BENCH_CREDIT_SCORES_N", DEFAULT_N)
    path = ctx.tmp / "credit-scores.db"
    upgrade_to_head(database_url=f"sqlite:///{path}", script_location=MIGRATIONS)
    with ctx.measure() as m:
        counts = seed(path, n)
    seeded = m.figure(
        bench=NAME,
        name="  set-up: seed (sqlite3 executemany)",
        backend="sqlite",
        count=counts.get("evaluation", 0),
        unit="eval",
        note=", ".join(f"{k} {v:,}" for k, v in counts.items()),
    )
    copy = ctx.tmp / "credit-scores-traced.db"
    shutil.copyfile(path, copy)
    console.print(
        f"[dim]credit scores: {n:,} organisations, {counts.get('evaluation', 0):,} published "
        f"evaluations ({path.stat().st_size / 1e6:.0f} MB)[/]"
    )
    first = await recompute(
        ctx, path, label="full recompute (all first scores)", n=n, want_changed=n
    )
    again = await recompute(
        ctx, path, label="full recompute again (no change)", n=n, want_changed=0
    )
    traced = await recompute(
        ctx, copy, label="full recompute under tracemalloc", n=n, want_changed=n, traced=True
    )
    return [seeded, first, again.compare_to(first), traced.compare_to(first)]


__all__ = ["DESCRIPTION", "NAME", "run"]
