"""Allocation engine core: open needs → organisations and charity resources, in memory.

Two seeded, generated instances (the same every run), the two of issue 6:

* A: 100,000 open needs, 5,000 organisations, 2,000 charity resources, 100 counties;
* B: 1,000,000 open needs, 20,000 organisations (no resources, as the issue states it),
  400 counties.

Regions are statistical division codes: provinces of 8 cities, cities of 8–12 counties,
8–20 townships a county, 5–20 villages a township. Organisations cover one county (70 %),
two or three counties of a city (15 %), a whole city (5 %), one or two townships (9.5 %) or
the whole province (0.5 %, which joins a province into one component); they offer 1–3 of 8
direct services, 5–40 needs a month scaled so that capacity is about 85 % of demand; 6 %
are suspended, exited or blacklisted and 5 % have no credit score yet. Resources cover a
village, a township, a county or a city, target 1–3 recipient categories and have 2–50
units left; 3 % are ineligible. Needs: urgency 1–4 skewed to 1 (45/30/17/8 %), waiting days
exponential (mean 25), one or two categories (低保 most common). Default `Scoring`.

Each instance runs in its own subprocess (`python -m bench.bench_allocation_engine A`), so
its peak resident set is its own. Measured there, in this order:

* engine: `allocate()` (collapse, components, min-cost flows, disaggregation, what the
  explanations read) and then `render_all()` (every explanation object the run needs: one
  per (group, provider) pair, shared by its needs, and one per group left with unassigned
  needs). Wall and CPU time, repeated (BENCH_ALLOC_REPEAT; 3 for A, 2 for B): the figure is
  the fastest run (the machine is shared; all runs are in `extra`);
* memory: peak RSS of the subprocess (`VmHWM`, reset through /proc/self/clear_refs once the
  instance is generated, so it is the peak while the engine ran, instance included) and its
  growth above the RSS the instance already occupied. RSS, not tracemalloc: OR-Tools
  allocates in C++, which tracemalloc does not see;
* the exact optimum: a bare OR-Tools solve of the same collapsed instance in the same run
  (`bare_solve`: one `SimpleMinCostFlow` over the whole graph, no components, no
  explanations). Its time is given with the collapse that builds the graph (the bare
  figure: the engine is compared with it) and without (`extra.solver_only_seconds`). The
  engine's total must equal the optimum and is reported as a percentage of it;
* the greedy baseline (`greedy_problem`, most urgent first, best candidate with room) on
  the same collapsed instance: its total as a percentage of the optimum;
* per-need records: `outcome(i)` for every need (what the service does to store matches);
* checks: the engine's total equals the optimum; no capacity exceeded; 10,000 sampled
  outcomes re-checked from the raw inputs (coverage, eligibility, category, score). A failed
  check fails the run. The targets of the issue (A ≤ 1 s, B ≤ 2 s, ≤ 500 MB, engine within
  2× of the bare solve) are reported as met or missed in the notes, not failed: the machine
  has 2 cores shared with other work and its timings are noisy.

BENCH_ALLOC_INSTANCES=A runs only A; BENCH_ALLOC_UNCOLLAPSED=1 also solves A with one node
per need (`EngineOptions(collapse=False)`, slow) and checks the same optimum.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from bench.common import ROOT, BenchContext, Figure, console
from services.matching.engine import (
    AllocationResult,
    Assignment,
    CharityResource,
    EngineOptions,
    Need,
    OrganisationSupply,
    allocate,
    bare_solve,
    build_problem,
    division_prefix,
    greedy_problem,
)

T = TypeVar("T")

NAME = "allocation_engine"
DESCRIPTION = "allocation engine core: 100k needs / 5k orgs and 1M needs / 20k orgs, exact"

SERVICES = (
    "care",
    "rehabilitation",
    "hospital_escort",
    "counselling",
    "community_care",
    "resource_linking",
    "social_integration",
    "capacity_building",
)
SERVICE_WEIGHTS = (0.30, 0.12, 0.12, 0.12, 0.12, 0.08, 0.07, 0.07)
CATEGORIES = (
    "dibao",
    "dibao_edge",
    "tekun",
    "medical_aid",
    "temporary_aid",
    "child_in_difficulty",
    "left_behind_child",
    "rare_disease",
)
CATEGORY_WEIGHTS = (0.35, 0.15, 0.12, 0.10, 0.10, 0.07, 0.07, 0.04)
INELIGIBLE = ("suspended", "exited", "blacklisted")
PROVINCES = ("22", "33", "46", "51", "43", "37")


@dataclass(frozen=True)
class Spec:
    name: str
    needs: int
    organisations: int
    resources: int
    counties: int
    seed: int
    repeat: int
    target_seconds: float


SPECS = {
    "A": Spec("A", 100_000, 5_000, 2_000, 100, 20261101, 3, 1.0),
    "B": Spec("B", 1_000_000, 20_000, 0, 400, 20261102, 2, 2.0),
}
TARGET_MB = 500.0
TARGET_RATIO = 2.0  # engine ≤ 2 × bare solve
SAMPLE = 10_000


# --------------------------------------------------------------------------- instance


@dataclass
class Instance:
    needs: list[Need]
    organisations: list[OrganisationSupply]
    resources: list[CharityResource]


def _choice(
    rng: np.random.Generator, n: int, weights: Sequence[float] | npt.NDArray[np.float64]
) -> list[int]:
    w = np.asarray(weights, dtype=float)
    return [int(x) for x in rng.choice(len(w), size=n, p=w / w.sum())]


def generate(spec: Spec) -> Instance:
    """A deterministic instance for `spec` (see the module docstring for its shape)."""
    rng = np.random.default_rng(spec.seed)
    # ---- regions: provinces → cities → counties → townships → villages
    counties: list[str] = []
    city_of: list[int] = []
    cities: list[str] = []
    province_of_city: list[str] = []
    while len(counties) < spec.counties:
        c = len(cities)
        province = PROVINCES[c // 8]
        city = f"{province}{c % 8 + 1:02d}"
        cities.append(city)
        province_of_city.append(province)
        for k in range(min(int(rng.integers(8, 13)), spec.counties - len(counties))):
            counties.append(f"{city}{k + 1:02d}")
            city_of.append(c)
    townships: list[list[str]] = []
    villages: list[list[list[str]]] = []
    for code in counties:
        ts = [f"{code}{t + 1:03d}" for t in range(int(rng.integers(8, 21)))]
        townships.append(ts)
        villages.append([[f"{t}{v + 1:03d}" for v in range(int(rng.integers(5, 21)))] for t in ts])
    county_weight = rng.lognormal(0, 0.5, len(counties))
    counties_of_city: dict[int, list[int]] = {}
    for i, ci in enumerate(city_of):
        counties_of_city.setdefault(ci, []).append(i)

    # ---- needs
    n = spec.needs
    county = _choice(rng, n, county_weight)
    township = rng.random(n).tolist()
    village = rng.random(n).tolist()
    service = _choice(rng, n, SERVICE_WEIGHTS)
    urgency = [u + 1 for u in _choice(rng, n, (0.45, 0.30, 0.17, 0.08))]
    waited = np.minimum(rng.exponential(25, n).astype(int), 365).tolist()
    cat1 = _choice(rng, n, CATEGORY_WEIGHTS)
    cat2 = _choice(rng, n, CATEGORY_WEIGHTS)
    two = (rng.random(n) < 0.25).tolist()
    cat_sets = {
        (a, b): (CATEGORIES[a],) if a == b else tuple(sorted((CATEGORIES[a], CATEGORIES[b])))
        for a in range(len(CATEGORIES))
        for b in range(len(CATEGORIES))
    }
    needs = []
    for i in range(n):
        per_township = villages[county[i]]
        vs = per_township[int(township[i] * len(per_township))]
        needs.append(
            Need(
                f"N{i:07d}",
                f"R{i:07d}",
                vs[int(village[i] * len(vs))],
                SERVICES[service[i]],
                urgency[i],
                waited[i],
                cat_sets[(cat1[i], cat2[i] if two[i] else cat1[i])],
            )
        )
    demand = np.bincount(service, minlength=len(SERVICES)).astype(float)

    # ---- organisations
    m = spec.organisations
    kind = _choice(rng, m, (0.70, 0.15, 0.05, 0.095, 0.005))
    n_services = _choice(rng, m, (0.4, 0.4, 0.2))
    org_services: list[list[int]] = []
    raw_caps: list[list[float]] = []
    for k in n_services:
        picked = sorted(set(_choice(rng, k + 1, SERVICE_WEIGHTS)))  # repeats: fewer services
        org_services.append(picked)
        raw_caps.append(rng.uniform(5, 40, len(picked)).tolist())
    offered = np.zeros(len(SERVICES))
    for picked, raw in zip(org_services, raw_caps, strict=True):
        for sv, cap in zip(picked, raw, strict=True):
            offered[sv] += cap
    scale = 0.85 * demand / np.maximum(offered, 1)
    status = _choice(rng, m, (0.94, 0.03, 0.015, 0.015))
    credit = (40 + 60 * rng.beta(5, 2, m)).tolist()
    satisfaction = rng.beta(6, 2, m).tolist()
    unknown = (rng.random(m) < 0.05).tolist()
    homes = _choice(rng, m, county_weight)
    organisations = []
    for o in range(m):
        home = homes[o]
        home_city = city_of[home]
        regions: tuple[str, ...]
        if kind[o] == 0:
            regions = (counties[home],)
        elif kind[o] == 1:
            near = counties_of_city[home_city]
            extra = rng.choice(near, size=min(len(near), int(rng.integers(2, 4))), replace=False)
            regions = tuple(sorted({counties[home], *(counties[int(x)] for x in extra)}))
        elif kind[o] == 2:
            regions = (cities[home_city],)
        elif kind[o] == 3:
            ts_home = townships[home]
            picks = rng.integers(0, len(ts_home), int(rng.integers(1, 3)))
            regions = tuple(sorted({ts_home[int(x)] for x in picks}))
        else:
            regions = (province_of_city[home_city],)
        caps = {
            SERVICES[sv]: max(1, round(cap * scale[sv]))
            for sv, cap in zip(org_services[o], raw_caps[o], strict=True)
        }
        organisations.append(
            OrganisationSupply(
                f"ORG{o:05d}",
                caps,
                regions,
                credit_score=None if unknown[o] else round(credit[o], 1),
                satisfaction=None if unknown[o] else round(satisfaction[o], 2),
                status="admitted" if status[o] == 0 else INELIGIBLE[status[o] - 1],
            )
        )

    # ---- charity resources
    resources = []
    res_homes = _choice(rng, spec.resources, county_weight)
    levels = _choice(rng, spec.resources, (0.10, 0.40, 0.40, 0.10))
    for r in range(spec.resources):
        home = res_homes[r]
        ts_home = townships[home]
        t = int(rng.integers(0, len(ts_home)))
        if levels[r] == 0:
            in_township = villages[home][t]
            regions = (in_township[int(rng.integers(0, len(in_township)))],)
        elif levels[r] == 1:
            regions = (ts_home[t],)
        elif levels[r] == 2:
            regions = (counties[home],)
        else:
            regions = (cities[city_of[home]],)
        services = sorted(
            {SERVICES[x] for x in _choice(rng, int(rng.integers(1, 3)), SERVICE_WEIGHTS)}
        )
        targets = sorted(
            {CATEGORIES[x] for x in _choice(rng, int(rng.integers(1, 4)), (1, 1, 2, 1, 1, 3, 3, 2))}
        )
        resources.append(
            CharityResource(
                f"RES{r:05d}",
                tuple(services),
                regions,
                tuple(targets),
                remaining=int(rng.integers(2, 51)),
                charity_id=f"CH{r // 3:05d}",
                eligible=bool(rng.random() >= 0.03),
            )
        )
    return Instance(needs, organisations, resources)


# --------------------------------------------------------------------------- measuring


def _status_kb(field: str) -> int:
    """A field of /proc/self/status in KiB (0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def check_sample(inst: Instance, result: AllocationResult, k: int, seed: int) -> list[str]:
    """Re-check k random outcomes from the raw inputs; the problems found."""
    problems: list[str] = []
    scoring = result.problem.scoring
    orgs = {o.organisation_id: o for o in inst.organisations}
    res = {r.resource_id: r for r in inst.resources}
    n = len(inst.needs)
    rng = np.random.default_rng(seed)
    for i in rng.choice(n, size=min(k, n), replace=False).tolist():
        need = inst.needs[i]
        out = result.outcome(i)
        if not isinstance(out, Assignment):
            continue
        src: OrganisationSupply | CharityResource
        if out.organisation_id is not None:
            org = src = orgs[out.organisation_id]
            ok = org.is_eligible and org.capacity.get(need.service_code, 0) > 0
            prefixes = org.regions_for(need.service_code)
        else:
            r = src = res[out.resource_id or ""]
            ok = r.eligible and r.remaining > 0 and need.service_code in r.service_codes
            ok = ok and bool(set(r.target_categories) & set(need.categories))
            prefixes = r.regions
        close = max(
            (len(q) for q in map(division_prefix, prefixes) if need.region_code.startswith(q)),
            default=0,
        )
        if not ok or not close:
            problems.append(
                f"{need.need_id}: not allowed at {out.organisation_id or out.resource_id}"
            )
            continue
        fit = scoring.fit_parts(close, src.credit_score, src.satisfaction).total
        if scoring.priority(need) * fit != out.score:
            problems.append(f"{need.need_id}: score {out.score} ≠ {scoring.priority(need) * fit}")
    return problems


def check_capacity(inst: Instance, result: AllocationResult) -> list[str]:
    problems = []
    caps = {o.organisation_id: o.capacity for o in inst.organisations}
    for (org_id, service), used in result.capacity_used().items():
        if used > caps[org_id].get(service, 0):
            problems.append(f"{org_id} {service}: {used} > {caps[org_id].get(service, 0)}")
    remaining = {r.resource_id: r.remaining for r in inst.resources}
    for res_id, used in result.resource_used().items():
        if used > remaining[res_id]:
            problems.append(f"{res_id}: {used} > {remaining[res_id]}")
    return problems


def measure(spec: Spec) -> dict[str, Any]:
    """Everything one instance reports (run in a subprocess of its own)."""
    out: dict[str, Any] = {"instance": spec.name}
    inst, out["generate_seconds"], _ = timed(lambda: generate(spec))
    out["shape"] = {
        "needs": len(inst.needs),
        "organisations": len(inst.organisations),
        "resources": len(inst.resources),
        "counties": spec.counties,
    }
    gc.collect()
    out["rss_before_mb"] = _status_kb("VmRSS") / 1024
    out["peak_reset"] = reset_peak_rss()
    repeat = int(os.environ.get("BENCH_ALLOC_REPEAT", spec.repeat))
    runs: list[dict[str, float]] = []
    result: AllocationResult | None = None
    for k in range(max(1, repeat)):
        result = None  # free the previous run's result before timing the next
        run, wall, cpu = timed(lambda: allocate(inst.needs, inst.organisations, inst.resources))
        result = run
        rendered, r_wall, r_cpu = timed(run.render_all)
        runs.append(
            {
                "allocate_seconds": wall,
                "allocate_cpu": cpu,
                "render_seconds": r_wall,
                "render_cpu": r_cpu,
                "seconds": wall + r_wall,
                "cpu": cpu + r_cpu,
                "solver_seconds": float(run.stats["solver_seconds"]),
                "build_seconds": float(run.stats["build_seconds"]),
            }
        )
        if k == 0:
            out["peak_rss_mb"] = _status_kb("VmHWM") / 1024
            out["explanations"] = {"pairs": rendered[0], "unassigned_groups": rendered[1]}
    assert result is not None
    out["runs"] = runs
    out["stats"] = {k: v for k, v in result.stats.items() if not k.endswith("seconds")}
    out["total_score"] = result.total_score
    out["assigned"] = result.assigned_count
    out["unassigned"] = result.unassigned_count
    reasons: dict[str, int] = {}
    sizes = result.problem.group_size - result.group_assigned
    for g in np.flatnonzero(result.group_reason >= 0).tolist():
        reason = result.why_not(g).reason.value
        reasons[reason] = reasons.get(reason, 0) + int(sizes[g])
    out["unassigned_reasons"] = reasons
    out["problems"] = check_capacity(inst, result) + check_sample(inst, result, SAMPLE, spec.seed)
    final = result
    _, out["records_seconds"], out["records_cpu"] = timed(
        lambda: [final.outcome(i) for i in range(len(inst.needs))]
    )

    problem, out["collapse_seconds"], out["collapse_cpu"] = timed(
        lambda: build_problem(inst.needs, inst.organisations, inst.resources)
    )
    (optimum, solver_only), bare_wall, bare_cpu = timed(lambda: bare_solve(problem))
    out["optimum"] = optimum
    out["bare_solver_seconds"] = solver_only
    out["bare_seconds"] = out["collapse_seconds"] + bare_wall
    out["bare_cpu"] = out["collapse_cpu"] + bare_cpu
    greedy, out["greedy_seconds"], out["greedy_cpu"] = timed(lambda: greedy_problem(problem))
    out["greedy_score"] = greedy.total_score
    out["greedy_assigned"] = greedy.assigned_count
    if spec.name == "A" and os.environ.get("BENCH_ALLOC_UNCOLLAPSED"):
        flat, out["uncollapsed_seconds"], _ = timed(
            lambda: allocate(
                inst.needs,
                inst.organisations,
                inst.resources,
                options=EngineOptions(collapse=False, partition=False),
            )
        )
        out["uncollapsed_score"] = flat.total_score
    out["peak_rss_end_mb"] = _status_kb("VmHWM") / 1024
    return out


# --------------------------------------------------------------------------- figures


def figures(ctx: BenchContext, m: dict[str, Any], spec: Spec) -> list[Figure]:
    """The figures of one instance's measurements, and its checks."""
    name = spec.name
    n = m["shape"]["needs"]
    best = min(m["runs"], key=lambda r: r["seconds"])
    optimum = m["optimum"]
    pct = 100 * m["total_score"] / optimum if optimum else 100.0
    greedy_pct = 100 * m["greedy_score"] / optimum if optimum else 100.0
    backend = f"{n // 1000}k needs"
    st = m["stats"]
    growth = m["peak_rss_mb"] - m["rss_before_mb"]
    ratio = best["seconds"] / m["bare_seconds"] if m["bare_seconds"] else 0.0
    met = {
        "time": best["seconds"] <= spec.target_seconds,
        "memory": growth <= TARGET_MB,
        "ratio": ratio <= TARGET_RATIO,
        "optimal": m["total_score"] == optimum,
    }

    def yes(ok: bool) -> str:
        return "met" if ok else "MISSED"

    engine = Figure(
        bench=NAME,
        name=f"{name}: engine (allocate + explanations)",
        backend=backend,
        count=n,
        seconds=best["seconds"],
        unit="needs",
        cpu_seconds=best["cpu"],
        peak_rss_mb=m["peak_rss_mb"],
        note=(
            f"score {pct:.3f} % of optimum; ≤ {spec.target_seconds:g} s {yes(met['time'])}; "
            f"+{growth:.0f} MB (≤ {TARGET_MB:.0f}) {yes(met['memory'])}; "
            f"{ratio:.2f}× bare (≤ 2) {yes(met['ratio'])}"
        ),
        extra={
            "runs": m["runs"],
            "total_score": m["total_score"],
            "optimum": optimum,
            "percent_of_optimum": pct,
            "assigned": m["assigned"],
            "unassigned": m["unassigned"],
            "unassigned_reasons": m["unassigned_reasons"],
            "explanations": m["explanations"],
            "graph": st,
            "rss_before_mb": round(m["rss_before_mb"], 1),
            "rss_growth_mb": round(growth, 1),
            "peak_rss_reset": m["peak_reset"],
            "engine_over_bare": round(ratio, 3),
            "targets_met": met,
            "shape": m["shape"],
            "generate_seconds": round(m["generate_seconds"], 2),
        },
    )
    alloc = Figure(
        bench=NAME,
        name=f"{name}:   part allocate()",
        backend=backend,
        count=n,
        seconds=best["allocate_seconds"],
        unit="needs",
        cpu_seconds=best["allocate_cpu"],
        peak_rss_mb=m["peak_rss_mb"],
        note=(
            f"{st['groups']:,} groups, {st['hubs']:,} hubs, {st['arcs']:,} value arcs, "
            f"{st['components']} components; solver {best['solver_seconds']:.2f} s"
        ),
    )
    render = Figure(
        bench=NAME,
        name=f"{name}:   part render_all()",
        backend=backend,
        count=m["explanations"]["pairs"] + m["explanations"]["unassigned_groups"],
        seconds=best["render_seconds"],
        unit="expl",
        cpu_seconds=best["render_cpu"],
        peak_rss_mb=m["peak_rss_mb"],
        note="one explanation per (group, provider) pair and per unassigned group",
    )
    bare = Figure(
        bench=NAME,
        name=f"{name}: bare OR-Tools solve (collapsed)",
        backend=backend,
        count=n,
        seconds=m["bare_seconds"],
        unit="needs",
        cpu_seconds=m["bare_cpu"],
        peak_rss_mb=m["peak_rss_end_mb"],
        note=(
            f"collapse {m['collapse_seconds']:.2f} s + one SimpleMinCostFlow "
            f"{m['bare_solver_seconds']:.2f} s; the exact optimum {optimum:,}"
        ),
        extra={"solver_only_seconds": m["bare_solver_seconds"], "optimum": optimum},
    )
    engine.compare_to(bare, target=1 / TARGET_RATIO)
    greedy = Figure(
        bench=NAME,
        name=f"{name}: greedy baseline",
        backend=backend,
        count=n,
        seconds=m["greedy_seconds"],
        unit="needs",
        cpu_seconds=m["greedy_cpu"],
        peak_rss_mb=m["peak_rss_end_mb"],
        note=(
            f"score {greedy_pct:.2f} % of optimum ({100 - greedy_pct:.2f} % worse); "
            f"{m['greedy_assigned']:,} assigned vs {m['assigned']:,}"
        ),
        extra={"total_score": m["greedy_score"], "percent_of_optimum": greedy_pct},
    )
    records = Figure(
        bench=NAME,
        name=f"{name}: per-need records",
        backend=backend,
        count=n,
        seconds=m["records_seconds"],
        unit="needs",
        cpu_seconds=m["records_cpu"],
        peak_rss_mb=m["peak_rss_end_mb"],
        note="outcome(i) for every need, explanations cached (what the service stores)",
    )
    out = [engine, alloc, render, bare, greedy, records]
    if "uncollapsed_seconds" in m:
        flat = Figure(
            bench=NAME,
            name=f"{name}: one node per need (no collapse)",
            backend=backend,
            count=n,
            seconds=m["uncollapsed_seconds"],
            unit="needs",
            peak_rss_mb=m["peak_rss_end_mb"],
            note=f"same optimum: {m['uncollapsed_score'] == optimum}",
        )
        out.append(flat)
        if m["uncollapsed_score"] != optimum:
            flat.ok = False
            ctx.fail(f"{name}: uncollapsed optimum {m['uncollapsed_score']} ≠ {optimum}")
    if not met["optimal"]:
        engine.ok = False
        ctx.fail(f"{name}: engine total {m['total_score']} ≠ optimum {optimum}")
    if m["greedy_score"] > optimum:
        greedy.ok = False
        ctx.fail(f"{name}: greedy {m['greedy_score']} beats the optimum {optimum}")
    if m["problems"]:
        engine.ok = False
        ctx.fail(f"{name}: {len(m['problems'])} check(s) failed: {m['problems'][:3]}")
    return out


async def run(ctx: BenchContext) -> list[Figure]:
    """Each instance in a subprocess of its own; figures from what it reports."""
    names = [
        x.strip().upper()
        for x in os.environ.get("BENCH_ALLOC_INSTANCES", ",".join(SPECS)).split(",")
        if x.strip()
    ]
    out: list[Figure] = []
    for name in names:
        spec = SPECS[name]
        console.print(
            f"[dim]allocation engine {name}: {spec.needs:,} needs, {spec.organisations:,} "
            f"organisations, {spec.resources:,} resources, {spec.counties} counties "
            f"(subprocess)[/]"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bench_allocation_engine",
            name,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await proc.communicate()
        if proc.returncode != 0:
            ctx.fail(f"{name}: subprocess exited {proc.returncode}")
            continue
        measured = json.loads(stdout.decode().strip().splitlines()[-1])
        out += figures(ctx, measured, spec)
    return out


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or argv[0].upper() not in SPECS:
        print(f"usage: python -m bench.bench_allocation_engine {{{','.join(SPECS)}}}")
        return 2
    print(json.dumps(measure(SPECS[argv[0].upper()])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["DESCRIPTION", "NAME", "run"]
