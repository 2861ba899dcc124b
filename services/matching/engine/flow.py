"""The exact solve: a min-cost flow on the collapsed graph (OR-Tools `SimpleMinCostFlow`).

Nodes: one per group (supply = its number of needs), hub, fit level, fairness node (offer ×
fairness region, when a cap is set) and target (offer or resource), and a sink.

Arcs (see `problem.py` for groups, hubs and levels):

* group → its hub ("link"): capacity = group size, cost 0;
* hub → level of its ocell: capacity = the hub's supply, unit cost = −value,
  value = hub priority × level fit (an integer: see `Scoring`);
* level → each candidate offer of the level (or the offer's fairness node): cost 0;
* group → resource: capacity = group size, unit cost = −value (priority × fit);
* fairness node → its offer: capacity = the fairness cap, cost 0;
* target → sink: capacity = remaining capacity (offer) or quantity (resource), cost 0;
* group → sink, the "unassigned" arc: capacity = group size, cost 0. It keeps the flow
  feasible whatever the capacities and means nobody is forced onto a provider: a need is
  assigned exactly when that adds value (every value is ≥ 1, so whenever a candidate has
  room — no need is left out while one of its candidates could still take it).

Minimising cost maximises the total value. With integer capacities and costs the min-cost
flow has an integral optimum and the solver returns one, so the grouped optimum is the exact
optimum of the integer problem (no scaling, no rounding after the fact).

Partitions: nodes joined by arcs form connected components (an organisation covering two
cities joins them; one covering the province joins the province); components share
nothing, so solving them one by one gives the same optimum — partitioning by a fixed region
code instead could cut a component and lose it — and faster (the solver's work grows faster
than the graph). Tiny components are packed into batches (a disjoint union is still
independent), so thousands of them do not each pay the per-solve overhead. Solving batches
on threads does not help: the Python wrapper of OR-Tools 9.15 keeps the GIL while it
solves (measured).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from services.matching.engine.problem import IntArray, Problem

#: Tiny components are packed together into solves of about this many arcs. Only tiny
#: ones: a disjoint union solves slower than its parts (measured on bench instance B: 47
#: components in 47 solves 1.5 s, in 12 solves of ≥ 50,000 arcs 2.3 s, in 4 solves 4.9 s).
BATCH_ARCS = 2_000


class SolveError(RuntimeError):
    """The solver did not report an optimum (a bug: the graph is always feasible)."""


@dataclass
class Flows:
    """Optimal flow on every hub arc, resource arc, candidate (level → offer) and group
    link (0 where the arc is not in the graph)."""

    harc: IntArray
    rarc: IntArray
    cand: IntArray
    link: IntArray


@dataclass
class SolveStats:
    components: int = 0
    largest_component_arcs: int = 0
    solves: int = 0
    graph_arcs: int = 0
    graph_nodes: int = 0
    build_seconds: float = 0.0
    solver_seconds: float = 0.0


@dataclass
class Graph:
    """The flow graph as arrays. Nodes: groups, hubs, levels, fairness nodes, targets, in
    that order (`head == -1` is the sink). Arcs: hub arcs, resource arcs, candidate arcs
    (for `cands`), links (for `linked` groups), then structural arcs.

    Two kinds of node are pass-through and left out: a hub fed by a single group is that
    group's node (no link arc), and a level holding a single candidate is that candidate's
    offer (or fairness) node (no candidate arc). Their flows are recovered after the solve.
    """

    tails: IntArray
    heads: IntArray
    caps: IntArray
    costs: IntArray
    n_nodes: int
    supply: IntArray
    cands: IntArray  # candidates with an arc of their own
    linked: IntArray  # groups with a link arc of their own
    lone_cands: IntArray  # candidates whose level is their offer node
    lone_groups: IntArray  # groups that are their hub's node
    fnode0: int
    target0: int

    def slices(self, n_harc: int, n_rarc: int) -> tuple[slice, slice, slice, slice]:
        a = n_harc
        b = a + n_rarc
        c = b + len(self.cands)
        return slice(0, a), slice(a, b), slice(b, c), slice(c, c + len(self.linked))


def build_graph(problem: Problem) -> Graph:
    p = problem
    g_n, h_n, l_n = p.n_groups, p.n_hubs, p.n_levels
    f_n, t_n = len(p.fnode_target), p.n_targets
    hub0, level0 = g_n, g_n + h_n
    f0 = level0 + l_n
    t0 = f0 + f_n
    with_hub = np.flatnonzero(p.group_hub >= 0)
    hub_groups = np.bincount(p.group_hub[with_hub], minlength=h_n)
    hub_supply = np.bincount(
        p.group_hub[with_hub], weights=p.group_size[with_hub], minlength=h_n
    ).astype(np.int64)
    lone_hub = hub_groups[p.group_hub[with_hub]] == 1
    linked, lone_groups = with_hub[~lone_hub], with_hub[lone_hub]
    hub_node = hub0 + np.arange(h_n, dtype=np.int64)
    hub_node[p.group_hub[lone_groups]] = lone_groups
    # Candidates of ocells that have a hub; a level with one candidate is that candidate.
    ocell_supply = np.bincount(p.hub_ocell, weights=hub_supply, minlength=len(p.ocells))
    cand_ocell = np.repeat(np.arange(len(p.ocells)), np.diff(p.ocell_cand_start))
    cand_level = np.repeat(np.arange(l_n), np.diff(p.level_start))
    cand_head = np.where(p.cand_fnode >= 0, f0 + p.cand_fnode, t0 + p.cand_target)
    in_use = ocell_supply[cand_ocell] > 0
    lone_level = np.diff(p.level_start) == 1
    lone = in_use & lone_level[cand_level]
    cands, lone_cands = np.flatnonzero(in_use & ~lone), np.flatnonzero(lone)
    level_node = level0 + np.arange(l_n, dtype=np.int64)
    level_node[cand_level[lone_cands]] = cand_head[lone_cands]
    in_graph = np.zeros(g_n, dtype=bool)
    in_graph[with_hub] = True
    in_graph[p.rarc_group] = True
    groups_in = np.flatnonzero(in_graph)
    used_target = np.zeros(t_n, dtype=bool)
    used_target[p.cand_target[in_use]] = True
    used_target[p.rarc_target] = True
    targets_in = np.flatnonzero(used_target)
    used_fnode = np.zeros(f_n, dtype=bool)
    used_fnode[p.cand_fnode[in_use & (p.cand_fnode >= 0)]] = True
    fnodes_in = np.flatnonzero(used_fnode)
    tails = np.concatenate(
        (
            hub_node[p.harc_hub],
            p.rarc_group,
            level0 + cand_level[cands],
            linked,
            f0 + fnodes_in,
            t0 + targets_in,
            groups_in,
        )
    )
    heads = np.concatenate(
        (
            level_node[p.harc_level],
            t0 + p.rarc_target,
            cand_head[cands],
            hub0 + p.group_hub[linked],
            t0 + p.fnode_target[fnodes_in],
            np.full(len(targets_in) + len(groups_in), -1),
        )
    )
    caps = np.concatenate(
        (
            hub_supply[p.harc_hub],
            p.group_size[p.rarc_group],
            ocell_supply[cand_ocell[cands]].astype(np.int64),
            p.group_size[linked],
            p.fnode_cap[fnodes_in],
            p.target_capacity[targets_in],
            p.group_size[groups_in],
        )
    )
    costs = np.zeros(len(tails), dtype=np.int64)
    costs[: len(p.harc_hub)] = -p.harc_value
    costs[len(p.harc_hub) : len(p.harc_hub) + len(p.rarc_group)] = -p.rarc_value
    supply = np.zeros(t0 + t_n, dtype=np.int64)
    supply[groups_in] = p.group_size[groups_in]
    return Graph(
        tails, heads, caps, costs, t0 + t_n, supply, cands, linked, lone_cands, lone_groups, f0, t0
    )


def _components(graph: Graph, n_edges: int, fnode_target: IntArray) -> tuple[IntArray, int]:
    """Component of every node; -1 for nodes outside the graph. Edges are the first
    `n_edges` arcs (hub, resource and candidate arcs, links); a fairness node joins its
    offer's component."""
    n = graph.n_nodes
    f0, t0 = graph.fnode0, graph.target0
    heads = graph.heads[:n_edges].copy()
    via_fnode = (heads >= f0) & (heads < t0)
    heads[via_fnode] = t0 + fnode_target[heads[via_fnode] - f0]
    tails = graph.tails[:n_edges]
    adjacency = coo_matrix((np.ones(n_edges, dtype=np.int8), (tails, heads)), shape=(n, n)).tocsr()
    _, labels = connected_components(adjacency, directed=False)
    labels = labels.astype(np.int64)
    labels[f0:t0] = labels[t0 + fnode_target]
    used = np.zeros(n, dtype=bool)
    used[tails] = True
    used[heads] = True
    used[f0:t0] = used[t0 + fnode_target]
    comp = np.full(n, -1, dtype=np.int64)
    _, dense_ids = np.unique(labels[used], return_inverse=True)
    comp[used] = dense_ids
    return comp, int(dense_ids.max(initial=-1)) + 1


def solve_flow(problem: Problem, *, partition: bool = True) -> tuple[Flows, SolveStats]:
    """An optimal flow of `problem` (see the module docstring)."""
    stats = SolveStats()
    started = time.perf_counter()
    p = problem
    graph = build_graph(p)
    n_arcs = len(graph.tails)
    s_h, s_r, s_c, s_l = graph.slices(len(p.harc_hub), len(p.rarc_group))
    flows = Flows(
        harc=np.zeros(len(p.harc_hub), dtype=np.int64),
        rarc=np.zeros(len(p.rarc_group), dtype=np.int64),
        cand=np.zeros(len(p.cand_target), dtype=np.int64),
        link=np.zeros(p.n_groups, dtype=np.int64),
    )
    if p.n_arcs == 0:
        return flows, stats

    # Batch of every node: components packed into batches of ≥ BATCH_ARCS arcs.
    if partition:
        comp, n_comp = _components(graph, s_l.stop, p.fnode_target)
        arc_comp = comp[graph.tails]
        comp_arcs = np.bincount(arc_comp[arc_comp >= 0], minlength=n_comp)
        stats.components = n_comp
        stats.largest_component_arcs = int(comp_arcs.max(initial=0))
        batch_of_comp = np.empty(n_comp, dtype=np.int64)
        batch, filled = 0, 0
        for c in np.argsort(comp_arcs, kind="stable").tolist():
            batch_of_comp[c] = batch
            filled += int(comp_arcs[c])
            if filled >= BATCH_ARCS:
                batch, filled = batch + 1, 0
        n_batches = batch + (1 if filled else 0)
        node_batch = np.where(comp >= 0, batch_of_comp[np.maximum(comp, 0)], -1)
    else:
        node_batch = np.full(graph.n_nodes, -1, dtype=np.int64)
        node_batch[graph.tails] = 0
        node_batch[graph.heads[graph.heads >= 0]] = 0
        n_batches, stats.components, stats.largest_component_arcs = 1, 1, n_arcs

    # Local node ids per batch; each batch's sink is the id after its last node.
    order = np.argsort(node_batch, kind="stable")
    skip = int((node_batch < 0).sum())
    batch_sizes = np.bincount(node_batch[node_batch >= 0], minlength=n_batches)
    first = skip + np.concatenate(([0], np.cumsum(batch_sizes)[:-1])).astype(np.int64)
    local = np.full(graph.n_nodes, -1, dtype=np.int64)
    in_order = order[skip:]
    local[in_order] = np.arange(len(in_order)) - (first - skip)[node_batch[in_order]]
    arc_batch = node_batch[graph.tails]
    arc_order = np.argsort(arc_batch, kind="stable")
    arc_first = np.searchsorted(arc_batch[arc_order], np.arange(n_batches + 1))
    local_tails = local[graph.tails].astype(np.int32)
    local_heads = np.where(
        graph.heads >= 0, local[np.maximum(graph.heads, 0)], batch_sizes[arc_batch]
    ).astype(np.int32)
    flows_all = np.zeros(n_arcs, dtype=np.int64)
    stats.build_seconds = time.perf_counter() - started
    stats.graph_arcs = n_arcs
    stats.graph_nodes = int(batch_sizes.sum()) + n_batches

    def run(b: int) -> float:
        picked = arc_order[arc_first[b] : arc_first[b + 1]]
        nodes = order[first[b] : first[b] + batch_sizes[b]]
        supplies = np.append(graph.supply[nodes], -graph.supply[nodes].sum())
        mcf = min_cost_flow.SimpleMinCostFlow()
        mcf.add_arcs_with_capacity_and_unit_cost(
            local_tails[picked], local_heads[picked], graph.caps[picked], graph.costs[picked]
        )
        mcf.set_nodes_supplies(np.arange(len(supplies), dtype=np.int32), supplies)
        t0 = time.perf_counter()
        status = mcf.solve()
        spent = time.perf_counter() - t0
        if status != mcf.OPTIMAL:
            raise SolveError(f"min-cost flow status {status} on a batch of {len(picked)} arcs")
        flows_all[picked] = mcf.flows(np.arange(len(picked), dtype=np.int32))
        return spent

    batches = [b for b in range(n_batches) if arc_first[b + 1] > arc_first[b]]
    stats.solver_seconds = sum(run(b) for b in batches)
    stats.solves = len(batches)
    flows.harc = flows_all[s_h]
    flows.rarc = flows_all[s_r]
    flows.cand[graph.cands] = flows_all[s_c]
    flows.link[graph.linked] = flows_all[s_l]
    # Pass-through nodes: a lone candidate carries its level's inflow, a lone group its
    # hub's outflow.
    level_in = np.bincount(p.harc_level, weights=flows.harc, minlength=p.n_levels)
    cand_level = np.repeat(np.arange(p.n_levels), np.diff(p.level_start))
    flows.cand[graph.lone_cands] = level_in[cand_level[graph.lone_cands]].astype(np.int64)
    hub_out = np.bincount(p.harc_hub, weights=flows.harc, minlength=p.n_hubs)
    flows.link[graph.lone_groups] = hub_out[p.group_hub[graph.lone_groups]].astype(np.int64)
    return flows, stats


def bare_solve(problem: Problem) -> tuple[int, float]:
    """The reference: one OR-Tools solve of the whole collapsed graph (every node, one
    sink, no components, batches or explanations). Returns (optimal total value =
    −optimal cost, seconds to build and solve). The engine must reach the same total."""
    started = time.perf_counter()
    graph = build_graph(problem)
    sink = graph.n_nodes
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(
        graph.tails.astype(np.int32),
        np.where(graph.heads >= 0, graph.heads, sink).astype(np.int32),
        graph.caps,
        graph.costs,
    )
    supplies = np.append(graph.supply, -graph.supply.sum())
    mcf.set_nodes_supplies(np.arange(sink + 1, dtype=np.int32), supplies)
    status = mcf.solve()
    if status != mcf.OPTIMAL:
        raise SolveError(f"bare min-cost flow status {status}")
    return -int(mcf.optimal_cost()), time.perf_counter() - started
