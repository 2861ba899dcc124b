"""Search latency of the resource library: `GET /organisations` and `GET /resources`.

Per database backend (SQLite always, PostgreSQL when DATABASE_URL is set):

1. a fresh database is built with the providers service's own migrations and seeded with
   bulk inserts (not through the API): ORGS organisations spread over Jilin's divisions
   (weighted towards the big cities; 1–4 capabilities, 1–3 service regions at county or city
   level, mixed statuses, scores and grades) with their search-index rows, CHARITIES
   charities and RESOURCES resources with their region and service rows;
2. the providers service runs as `sa run` starts it (`python -m services.providers`, env from
   `libs.common.stack.service_env`) on that database and the bench's private nats-server;
3. every query kind is sent REQUESTS times, one request at a time (latency, not throughput:
   nothing queues), with an operator token, after a short warm-up; the parameters vary per
   request (a random county, city, village, catalogue item).

Figures: the seeding (rows and seconds), the floor of one request (`GET /health`: auth-free
routing and HTTP on the same server), then p50/p99 per query kind and over all searches.
A non-200 answer, or a province-wide search whose total is not the number seeded, is a FAIL.
`GET /resources` belongs to the charities package; while it answers 404/405 its kinds are
reported as skipped rather than failed.

Environment: BENCH_PROVIDERS_SEARCH_ORGS (default 20000), _RESOURCES (50000), _CHARITIES
(2000), _REQUESTS (per query kind, 60), _WARMUP (requests per kind before measuring, 5).
`--n` sets the number of organisations.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Table, create_engine
from sqlalchemy.engine import Connection
from stdnum.cn import uscc as uscc_code

from bench.bench_needs_http import Server
from bench.common import BenchContext, Figure, console, env_int, peak_rss_mb
from libs.common.auth import Role, mint_token
from libs.common.db import sync_url
from libs.common.migrations import upgrade_to_head
from libs.common.natsserver import free_port
from libs.common.policy import RECIPIENT_CATEGORY_CODES, load_pack
from libs.common.settings import DEV_JWT_SECRET
from libs.common.stack import HOST, service_env
from libs.common.validators import counties_within, division
from services.providers.all_models import metadata
from services.providers.app import MIGRATIONS

NAME = "providers_search"
DESCRIPTION = "GET /organisations and /resources latency (p50/p99) over a seeded library"

PROVINCE = "22"  # Jilin
SEED = 20261123
CHUNK = 5_000
# Big cities hold more organisations (长春, 吉林市), the rest of the province fewer.
CITY_WEIGHTS = {"2201": 6.0, "2202": 3.0}
KINDS = {
    "social_organisation": 70,
    "enterprise": 15,
    "public_institution_class_ii": 10,
    "rural_collective": 5,
}
STATUSES = {
    "admitted": 60,
    "pending": 15,
    "suspended": 8,
    "rejected": 7,
    "exited": 5,
    "blacklisted": 5,
}
RESOURCE_KINDS = {"funds": "fen", "goods": "item", "volunteer_hours": "hour", "services": "visit"}
RESOURCE_STATUSES = {"offered": 80, "withdrawn": 8, "exhausted": 7, "expired": 5}
QUALIFIED = {
    "procurement_law_compliance": True,
    "independent_civil_liability": True,
    "facilities_staff_expertise": True,
    "governance_finance_assets": True,
}
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@dataclass(frozen=True)
class Settings:
    orgs: int
    resources: int
    charities: int
    requests: int
    warmup: int

    @classmethod
    def from_env(cls, n_override: int | None) -> Settings:
        return cls(
            orgs=n_override or env_int("BENCH_PROVIDERS_SEARCH_ORGS", 20_000),
            resources=env_int("BENCH_PROVIDERS_SEARCH_RESOURCES", 50_000),
            charities=env_int("BENCH_PROVIDERS_SEARCH_CHARITIES", 2_000),
            requests=env_int("BENCH_PROVIDERS_SEARCH_REQUESTS", 60),
            warmup=env_int("BENCH_PROVIDERS_SEARCH_WARMUP", 5),
        )


# --------------------------------------------------------------------------- seeding


@dataclass
class Geography:
    """Jilin's counties (weighted) and cities, from the bundled division table."""

    counties: list[str]
    weights: list[float]
    cities: list[str]
    names: dict[str, str]

    @classmethod
    def load(cls) -> Geography:
        counties = counties_within(PROVINCE)
        weights = [CITY_WEIGHTS.get(c[:4], 1.0) for c in counties]
        cities = sorted({c[:4] for c in counties if division(c[:4]) is not None})
        names = {}
        for code in counties:
            row = division(code)
            names[code] = row.name if row is not None else code
        return cls(counties, weights, cities, names)

    def county(self, rng: random.Random) -> str:
        return rng.choices(self.counties, self.weights)[0]

    def township(self, rng: random.Random, county: str | None = None) -> str:
        """A 9-digit township code (statistical classification) in a county."""
        return f"{county or self.county(rng)}{rng.randint(1, 20):03d}"

    def village(self, rng: random.Random) -> str:
        return f"{self.township(rng)}{rng.randint(1, 30):03d}"

    def neighbour(self, rng: random.Random, county: str) -> str:
        same_city = [c for c in self.counties if c[:4] == county[:4] and c != county]
        return rng.choice(same_city) if same_city else self.county(rng)


def _weighted(rng: random.Random, table: dict[str, int]) -> str:
    return rng.choices(list(table), list(table.values()))[0]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _credit_code(i: int, prefix: str) -> str:
    """A valid, unique unified social credit code per `i` (GB 32100 check character)."""
    serial = ""
    n = i
    for _ in range(7):
        n, r = divmod(n, len(_USCC_ALPHABET))
        serial = _USCC_ALPHABET[r] + serial
    body = f"{prefix}{serial}"
    return body + uscc_code.calc_check_digit(body)


def _grade(score: float) -> str:
    return "A" if score >= 90 else "B" if score >= 75 else "C" if score >= 60 else "D"


def organisation_rows(
    n: int, geo: Geography, catalogue: Sequence[str], rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Organisations with their service-region and capability index rows."""
    orgs: list[dict[str, Any]] = []
    regions: list[dict[str, Any]] = []
    caps: list[dict[str, Any]] = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        org_id = _uuid(rng)
        county = geo.county(rng)
        # Most register at county level; some at a township.
        region_code = county if rng.random() < 0.8 else geo.township(rng, county)
        served = {county}
        if rng.random() < 0.5:
            served.add(county[:4])  # the whole city
        if rng.random() < 0.3:
            served.add(geo.neighbour(rng, county))
        served_list = sorted(served)[: rng.randint(1, 3)]
        services = [
            {"code": code, "monthly_capacity": rng.randint(5, 200)}
            for code in rng.sample(list(catalogue), rng.randint(1, 4))
        ]
        status = _weighted(rng, STATUSES)
        scored = status != "pending" and rng.random() < 0.8
        score = round(rng.uniform(40, 100), 1) if scored else None
        created = start + timedelta(minutes=i * 50 + rng.randint(0, 40))
        orgs.append(
            {
                "id": org_id,
                "uscc": _credit_code(i, "5222"),
                "name": f"{geo.names[county]}第{i:05d}号社会工作服务中心",
                "kind": _weighted(rng, KINDS),
                "registration_authority": "民政局",
                "region_code": region_code,
                "service_regions": served_list,
                "services": services,
                "qualifications": QUALIFIED,
                "evidence": {},
                "pack": "jilin@2026.1",
                "status": status,
                "status_version": 0 if status == "pending" else 1,
                "status_reason": None,
                "credit_score": score,
                "credit_grade": _grade(score) if score is not None else None,
                "score_version": 1 if scored else 0,
                "version": 1,
                "created_at": created,
                "updated_at": created,
            }
        )
        regions += [{"organisation_id": org_id, "code": code} for code in served_list]
        caps += [{"organisation_id": org_id, **s} for s in services]
    return orgs, regions, caps


def charity_rows(n: int, geo: Geography, rng: random.Random) -> list[dict[str, Any]]:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        county = geo.county(rng)
        rows.append(
            {
                "id": _uuid(rng),
                "uscc": _credit_code(i, "5322"),
                "name": f"吉林省第{i:04d}号慈善基金会",
                "charity_registration": f"吉慈登字〔2025〕{i:04d}号",
                "registration_authority": "吉林省民政厅",
                "region_code": county,
                "status": "active",
                "version": 1,
                "created_by": "bench",
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def resource_rows(
    n: int,
    geo: Geography,
    catalogue: Sequence[str],
    charity_ids: Sequence[str],
    rng: random.Random,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Resources with their region and service index rows."""
    resources: list[dict[str, Any]] = []
    regions: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    categories = list(RECIPIENT_CATEGORY_CODES)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(n):
        resource_id = _uuid(rng)
        county = geo.county(rng)
        served = {rng.choice([county, county[:4], geo.township(rng, county)])}
        if rng.random() < 0.3:
            served.add(geo.neighbour(rng, county))
        codes = rng.sample(list(catalogue), rng.randint(1, 3))
        kind = rng.choice(list(RESOURCE_KINDS))
        quantity = rng.randint(10, 10_000) * (100 if kind == "funds" else 1)
        valid_from = date(2026, 1, 1) + timedelta(days=rng.randint(0, 240))
        created = start + timedelta(minutes=i * 20 + rng.randint(0, 15))
        resources.append(
            {
                "id": resource_id,
                "charity_id": rng.choice(charity_ids),
                "kind": kind,
                "title": f"慈善资源第{i:05d}号",
                "service_codes": codes,
                "regions": sorted(served),
                "target_categories": rng.sample(categories, rng.randint(1, 2)),
                "quantity": quantity,
                "remaining": rng.randint(0, quantity),
                "unit": RESOURCE_KINDS[kind],
                "valid_from": valid_from,
                "valid_until": valid_from + timedelta(days=rng.randint(30, 365)),
                "status": _weighted(rng, RESOURCE_STATUSES),
                "status_reason": None,
                "version": 1,
                "created_by": "bench",
                "created_at": created,
                "updated_at": created,
            }
        )
        regions += [{"resource_id": resource_id, "code": code} for code in sorted(served)]
        services += [{"resource_id": resource_id, "code": code} for code in codes]
    return resources, regions, services


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        conn.execute(table.insert(), rows[i : i + CHUNK])


def seed(database_url: str, settings: Settings, geo: Geography) -> dict[str, int]:
    """Migrate, then bulk-insert the library in one transaction; rows per table."""
    upgrade_to_head(database_url=database_url, script_location=MIGRATIONS)
    rng = random.Random(SEED)
    catalogue = [item.code for item in load_pack("jilin").catalogue]
    orgs, org_regions, caps = organisation_rows(settings.orgs, geo, catalogue, rng)
    charities = charity_rows(settings.charities, geo, rng)
    resources, res_regions, res_services = resource_rows(
        settings.resources, geo, catalogue, [c["id"] for c in charities], rng
    )
    named = {
        "organisation": orgs,
        "organisation_service_region": org_regions,
        "organisation_capability": caps,
        "charity": charities,
        "resource": resources,
        "resource_region": res_regions,
        "resource_service": res_services,
    }
    if "resource_category" in metadata.tables:  # the categories' search index, when kept
        named["resource_category"] = [
            {"resource_id": r["id"], "code": code}
            for r in resources
            for code in r["target_categories"]
        ]
    tables = [(metadata.tables[name], rows) for name, rows in named.items()]
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            for table, rows in tables:
                _insert(conn, table, rows)
        with engine.begin() as conn:
            # Fresh statistics, as a long-running database would have them.
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    return {table.name: len(rows) for table, rows in tables}


# --------------------------------------------------------------------------- queries


Params = dict[str, Any]


@dataclass(frozen=True)
class QueryKind:
    name: str
    path: str
    params: Callable[[random.Random], Params]
    resources: bool = False
    whole_province: bool = False  # the total must be every organisation seeded
    baseline: bool = False  # the floor of a request (auth, routing, HTTP), not a search


def query_kinds(geo: Geography, catalogue: Sequence[str]) -> list[QueryKind]:
    items = list(catalogue)

    def item(r: random.Random) -> str:
        return r.choice(items)

    def city(r: random.Random) -> str:
        return r.choice(geo.cities)

    county = geo.county
    return [
        QueryKind("baseline: GET /health", "/health", lambda r: {}, baseline=True),
        QueryKind("org: region = county", "/organisations", lambda r: {"region": county(r)}),
        QueryKind("org: region = city", "/organisations", lambda r: {"region": city(r)}),
        QueryKind(
            "org: region = province",
            "/organisations",
            lambda r: {"region": PROVINCE},
            whole_province=True,
        ),
        QueryKind("org: region = village", "/organisations", lambda r: {"region": geo.village(r)}),
        QueryKind("org: service", "/organisations", lambda r: {"service": item(r)}),
        QueryKind(
            "org: service ≥ capacity, -capacity",
            "/organisations",
            lambda r: {"service": item(r), "min_capacity": 100, "sort": "-capacity"},
        ),
        QueryKind("org: status=admitted", "/organisations", lambda r: {"status": "admitted"}),
        QueryKind("org: grade A|B", "/organisations", lambda r: {"grade": ["A", "B"]}),
        QueryKind("org: sort -credit_score", "/organisations", lambda r: {"sort": "-credit_score"}),
        QueryKind(
            "org: city, page 1",
            "/organisations",
            lambda r: {"region": city(r), "limit": 20, "offset": 0},
        ),
        QueryKind(
            "org: city, page 10",
            "/organisations",
            lambda r: {"region": city(r), "limit": 20, "offset": 180},
        ),
        QueryKind(
            "org: county+service+admitted, -score",
            "/organisations",
            lambda r: {
                "region": county(r),
                "service": item(r),
                "status": "admitted",
                "sort": "-credit_score",
            },
        ),
        QueryKind(
            "res: region+service+category",
            "/resources",
            lambda r: {
                "region": county(r),
                "service": item(r),
                "category": r.choice(list(RECIPIENT_CATEGORY_CODES)),
            },
            resources=True,
        ),
        QueryKind(
            "res: city, available_on",
            "/resources",
            lambda r: {
                "region": city(r),
                "available_on": (date(2026, 3, 1) + timedelta(days=r.randint(0, 200))).isoformat(),
            },
            resources=True,
        ),
        QueryKind(
            "res: service, sort",
            "/resources",
            lambda r: {"service": item(r), "status": "offered", "sort": "-created_at"},
            resources=True,
        ),
        QueryKind(
            "res: village, page 10",
            "/resources",
            lambda r: {"region": geo.village(r), "limit": 20, "offset": 180},
            resources=True,
        ),
    ]


@dataclass
class Sample:
    kind: QueryKind
    latencies_ms: list[float] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str | None = None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _rounds(rng: random.Random, kinds: Sequence[QueryKind], n: int) -> Iterator[QueryKind]:
    """Every kind n times, interleaved in a random order (no kind runs only when warm)."""
    order = [k for k in kinds for _ in range(n)]
    rng.shuffle(order)
    return iter(order)


async def measure(
    client: httpx.AsyncClient, kinds: Sequence[QueryKind], settings: Settings
) -> dict[str, Sample]:
    rng = random.Random(SEED + 1)
    samples = {k.name: Sample(k) for k in kinds}
    # Probe the resources route once: it belongs to another package and may be a stub.
    probe = await client.get("/resources", params={"limit": 1})
    if probe.status_code in (404, 405):
        for s in samples.values():
            if s.kind.resources:
                s.skipped = f"GET /resources answers {probe.status_code}"
    active = [k for k in kinds if samples[k.name].skipped is None]
    for kind in _rounds(rng, active, settings.warmup):
        await client.get(kind.path, params=kind.params(rng))
    for kind in _rounds(rng, active, settings.requests):
        sample = samples[kind.name]
        params = kind.params(rng)
        started = time.perf_counter()
        r = await client.get(kind.path, params=params)
        elapsed = time.perf_counter() - started
        sample.seconds += elapsed
        sample.latencies_ms.append(elapsed * 1000)
        sample.statuses[r.status_code] = sample.statuses.get(r.status_code, 0) + 1
        if r.status_code != 200:
            if sample.statuses[r.status_code] == 1:  # show the first failure of each kind
                console.print(f"[red]{kind.name}: {r.status_code} {r.text[:300]}[/]")
        elif not kind.baseline:
            sample.totals.append(int(r.json()["total"]))
    return samples


def latency_figure(name: str, backend: str, sample_ms: Sequence[float], seconds: float) -> Figure:
    p50, p99 = percentile(sample_ms, 50), percentile(sample_ms, 99)
    return Figure(
        bench=NAME,
        name=name,
        backend=backend,
        count=len(sample_ms),
        seconds=seconds,
        unit="req",
        peak_rss_mb=peak_rss_mb(),
        note=f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        extra={
            "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2),
            "mean_ms": round(statistics.fmean(sample_ms), 2),
            "max_ms": round(max(sample_ms), 2),
        },
    )


async def run_backend(
    ctx: BenchContext, settings: Settings, geo: Geography, backend: str
) -> list[Figure]:
    catalogue = [item.code for item in load_pack("jilin").catalogue]
    figures: list[Figure] = []
    async with ctx.fresh_database(backend, "providers-search") as db_url:
        started = time.perf_counter()
        counts = await asyncio.to_thread(seed, db_url, settings, geo)
        seed_seconds = time.perf_counter() - started
        rows = sum(counts.values())
        figures.append(
            Figure(
                bench=NAME,
                name="seed (migrations + bulk insert)",
                backend=backend,
                count=rows,
                seconds=seed_seconds,
                unit="row",
                peak_rss_mb=peak_rss_mb(),
                note=", ".join(f"{n:,} {t}" for t, n in counts.items()),
                extra={"rows": counts},
            )
        )
        console.print(f"[dim]{backend}: seeded {rows:,} rows in {seed_seconds:.1f} s[/]")
        port = free_port(HOST)
        env = service_env(
            "providers",
            port=port,
            nats_url=ctx.nats().url,
            var_dir=ctx.tmp,
            log_level="warning",
            base={**os.environ, "SA_PROVIDERS_DATABASE_URL": db_url},
        )
        server = Server.start(
            "providers service",
            ["-m", "services.providers"],
            port=port,
            log_path=ctx.tmp / f"providers-{backend}.log",
            env=env,
        )
        token = mint_token(secret=DEV_JWT_SECRET, subject="bench-operator", role=Role.operator)
        try:
            await server.wait_ready("/ready")
            async with httpx.AsyncClient(
                base_url=server.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60.0,
                trust_env=False,
            ) as client:
                samples = await measure(client, query_kinds(geo, catalogue), settings)
        finally:
            await server.stop()
    every: list[float] = []
    seconds = 0.0
    for sample in samples.values():
        if sample.skipped:
            figures.append(
                Figure(
                    bench=NAME,
                    name=sample.kind.name,
                    backend=backend,
                    count=0,
                    seconds=0.0,
                    unit="req",
                    note=f"skipped: {sample.skipped}",
                )
            )
            continue
        fig = latency_figure(sample.kind.name, backend, sample.latencies_ms, sample.seconds)
        fig.extra.update(
            status={str(k): v for k, v in sample.statuses.items()},
            mean_total=round(statistics.fmean(sample.totals), 1) if sample.totals else None,
        )
        if not sample.kind.baseline:
            fig.note += f", ~{fig.extra['mean_total'] or 0:,.0f} matches"
        failed = sum(n for code, n in sample.statuses.items() if code != 200)
        if failed:
            fig.ok = False
            ctx.fail(f"{NAME} ({backend}) {sample.kind.name}: {sample.statuses}")
        if sample.kind.whole_province and any(t != settings.orgs for t in sample.totals):
            fig.ok = False
            ctx.fail(
                f"{NAME} ({backend}): the province search found {set(sample.totals)} "
                f"organisations, {settings.orgs:,} were seeded"
            )
        figures.append(fig)
        if not sample.kind.baseline:
            every += sample.latencies_ms
            seconds += sample.seconds
    if every:
        overall = latency_figure("all searches", backend, every, seconds)
        figures.append(overall)
    return figures


async def run(ctx: BenchContext) -> list[Figure]:
    settings = Settings.from_env(ctx.n_override)
    geo = Geography.load()
    console.print(
        f"[dim]{NAME}: {settings.orgs:,} organisations, {settings.resources:,} resources, "
        f"{settings.charities:,} charities over {len(geo.counties)} Jilin counties; "
        f"{settings.requests} requests per query kind (+{settings.warmup} warm-up)[/]"
    )
    figures: list[Figure] = []
    for backend in ctx.database_backends():
        figures += await run_backend(ctx, settings, geo, backend)
    return figures


__all__ = ["DESCRIPTION", "NAME", "run"]
