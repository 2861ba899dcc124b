"""The engine's entry points: `allocate` (exact) and `greedy_allocate` (baseline)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from services.matching.engine.flow import solve_flow
from services.matching.engine.greedy import greedy_pairs
from services.matching.engine.model import (
    CharityResource,
    EngineOptions,
    FairnessCap,
    Need,
    NeedColumns,
    OrganisationSupply,
    Scoring,
)
from services.matching.engine.problem import Problem, build_problem
from services.matching.engine.result import AllocationResult, finish


def allocate(
    needs: Sequence[Need] | NeedColumns,
    organisations: Sequence[OrganisationSupply],
    resources: Sequence[CharityResource] = (),
    *,
    scoring: Scoring | None = None,
    fairness: FairnessCap | None = None,
    options: EngineOptions | None = None,
) -> AllocationResult:
    """Assign open needs to organisations and charity resources, maximising the total of
    priority × fit subject to every capacity (and the fairness cap, if given), exactly.

    `needs` are `Need` objects or, for large runs, the same as `NeedColumns` (no object
    per row; the results are the same). Returns an `AllocationResult`: `total_score`,
    per-need outcomes (`outcome(i)`, `assignments()`, `unassigned()`) with explanations,
    and capacity used per (organisation, service) and per resource. Deterministic for the
    same input (order included: ties between otherwise equal needs go to the earlier one in
    `needs`).
    """
    options = options or EngineOptions()
    t0 = time.perf_counter()
    problem = build_problem(
        needs, organisations, resources, scoring=scoring, fairness=fairness, options=options
    )
    t1 = time.perf_counter()
    result = allocate_problem(problem, options)
    result.stats.update(build_seconds=t1 - t0)
    return result


def allocate_problem(problem: Problem, options: EngineOptions | None = None) -> AllocationResult:
    """`allocate` on an already built problem (for benchmarks and tests)."""
    options = options or EngineOptions()
    t1 = time.perf_counter()
    flows, st = solve_flow(problem, partition=options.partition, prune_arcs=options.prune)
    t2 = time.perf_counter()
    result = finish(
        problem,
        flows.group,
        flows.kind,
        flows.src,
        flows.count,
        method="min_cost_flow",
        explain_top=options.explain_top,
    )
    t3 = time.perf_counter()
    result.stats.update(_shape(problem))
    result.stats.update(
        components=st.components,
        largest_component_arcs=st.largest_component_arcs,
        solves=st.solves,
        graph_arcs=st.graph_arcs,
        graph_nodes=st.graph_nodes,
        pruned_arcs=st.pruned_arcs,
        flow_seconds=t2 - t1,
        graph_seconds=st.build_seconds,
        solver_seconds=st.solver_seconds,
        finish_seconds=t3 - t2,
    )
    return result


def greedy_allocate(
    needs: Sequence[Need] | NeedColumns,
    organisations: Sequence[OrganisationSupply],
    resources: Sequence[CharityResource] = (),
    *,
    scoring: Scoring | None = None,
    fairness: FairnessCap | None = None,
    options: EngineOptions | None = None,
) -> AllocationResult:
    """The greedy baseline (`greedy.py`) on the same instance, as an `AllocationResult`."""
    options = options or EngineOptions()
    problem = build_problem(
        needs, organisations, resources, scoring=scoring, fairness=fairness, options=options
    )
    return greedy_problem(problem, options)


def greedy_problem(problem: Problem, options: EngineOptions | None = None) -> AllocationResult:
    options = options or EngineOptions()
    result = finish(
        problem, *greedy_pairs(problem), method="greedy", explain_top=options.explain_top
    )
    result.stats.update(_shape(problem))
    return result


def _shape(problem: Problem) -> dict[str, float | int]:
    return {
        "needs": problem.n_needs,
        "groups": problem.n_groups,
        "hubs": problem.n_hubs,
        "levels": problem.n_levels,
        "candidates": len(problem.cand_target),
        "arcs": problem.n_arcs,
        "targets": problem.n_targets,
        "ocells": len(problem.ocells),
        "rsigs": len(problem.rsigs),
        "fairness_nodes": len(problem.fnode_target),
    }
