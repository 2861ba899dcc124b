"""The exact solve: a min-cost flow on the collapsed graph (OR-Tools `SimpleMinCostFlow`).

Nodes: one per group (supply = its number of needs), hub, level set, fairness node (offer ×
fairness region, when a cap is set) and target (offer or resource), and a sink.

Arcs (see `problem.py` for groups, hubs and levels):

* group → its hub ("link"): capacity = group size, cost 0;
* hub → level of its ocell: capacity = the hub's supply, unit cost = −value,
  value = hub priority × level fit (an integer: see `Scoring`);
* level set → each of its candidate offers (or the offer's fairness node): cost 0. A level
  is the candidates of one ocell with one fit; the value sits on the hub → level arc, so
  levels of different ocells holding the same candidates are one node (in bench instance B
  that turns 190,000 level → offer arcs into 47,000). A level of one candidate is that
  candidate's node;
* group → resource: capacity = group size, unit cost = −value (priority × fit);
* fairness node → its offer: capacity = the fairness cap, cost 0;
* target → sink: capacity = remaining capacity (offer) or quantity (resource), cost 0;
* the "unassigned" arc → sink, cost 0: from each hub (capacity = its supply; its groups'
  needs reach it through their links) and from each group without a hub. It keeps the flow
  feasible whatever the capacities and means nobody is forced onto a provider: a need is
  assigned exactly when that adds value (every value is ≥ 1, so whenever a candidate has
  room — no need is left out while one of its candidates could still take it).

Minimising cost maximises the total value. With integer capacities and costs the min-cost
flow has an integral optimum and the solver returns one, so the grouped optimum is the exact
optimum of the integer problem (no scaling, no rounding after the fact).

Pruning (`prune`, exact). A target whose capacity is at least every need that can reach it
(a *roomy* target) never turns anyone away. So a group that can reach a roomy target at
value v never ends unassigned, nor on an arc worth less than v, in any optimal flow: moving
such a unit to the roomy target is feasible and strictly better. Those arcs are removed
before solving; the set of optimal flows is unchanged, and removing arcs makes more targets
roomy, so it is repeated until nothing changes. (Not with a fairness cap: the cap can stop
a roomy offer.)

Partitions: nodes joined by arcs form connected components (an organisation covering two
cities joins them; one covering the province joins the province); components share
nothing, so solving them one by one gives the same optimum — partitioning by a fixed region
code instead could cut a component and lose it — and faster: OR-Tools' cost scaling grows
faster than the graph when one sink joins everything (8 disjoint copies of a 43,000-arc
component: 8.3× one copy's time with a sink each, 28× with one shared sink). Tiny
components are packed into batches (a disjoint union is still independent), so thousands of
them do not each pay the per-solve overhead. Solving batches on threads does not help: the
Python wrapper of OR-Tools 9.15 keeps the GIL while it solves (measured).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from ortools.graph.python import min_cost_flow
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from services.matching.engine.problem import OFFER, RESOURCE, IntArray, Problem, ranges

#: Tiny components are packed together into solves of about this many arcs. Only tiny
#: ones: a disjoint union solves slower than its parts (measured on bench instance B: 47
#: components in 47 solves 1.5 s, in 12 solves of ≥ 50,000 arcs 2.3 s, in 4 solves 4.9 s).
BATCH_ARCS = 2_000

Bools = npt.NDArray[np.bool_]


class SolveError(RuntimeError):
    """The solver did not report an optimum (a bug: the graph is always feasible)."""


@dataclass
class Flows:
    """An optimal flow as pairs (group, kind, src, count): `count` needs of group `group`
    go to candidate `src` (kind OFFER: an index into `Problem.cand_*`) or resource arc `src`
    (kind RESOURCE: an index into `Problem.rarc_*`)."""

    group: IntArray
    kind: IntArray
    src: IntArray
    count: IntArray


@dataclass
class SolveStats:
    components: int = 0
    largest_component_arcs: int = 0
    solves: int = 0
    graph_arcs: int = 0
    graph_nodes: int = 0
    pruned_arcs: int = 0
    build_seconds: float = 0.0
    solver_seconds: float = 0.0


@dataclass
class Alive:
    """Which arcs of the collapsed instance go into the graph (`prune`)."""

    harc: Bools  # hub → level
    rarc: Bools  # group → resource
    link: Bools  # group → its hub (False for groups without a hub)
    hub_unassigned: Bools  # hub → sink
    group_unassigned: Bools  # group → sink (groups without a live link)

    def count(self) -> int:
        return int(
            self.harc.sum()
            + self.rarc.sum()
            + self.link.sum()
            + self.hub_unassigned.sum()
            + self.group_unassigned.sum()
        )


def everything(problem: Problem) -> Alive:
    p = problem
    link = p.group_hub >= 0
    return Alive(
        harc=np.ones(len(p.harc_hub), dtype=bool),
        rarc=np.ones(len(p.rarc_group), dtype=bool),
        link=link,
        hub_unassigned=np.ones(p.n_hubs, dtype=bool),
        group_unassigned=~link,
    )


def prune(problem: Problem, max_rounds: int = 8) -> Alive:
    """The arcs left once those no optimal flow uses are removed (see the module
    docstring); everything when a fairness cap is set."""
    p = problem
    alive = everything(p)
    if p.fairness is not None or p.n_arcs == 0:
        return alive
    size = p.group_size.astype(np.float64)
    cand_level = np.repeat(np.arange(p.n_levels, dtype=np.int64), np.diff(p.level_start))
    active = p.target_eligible & (p.target_capacity > 0)
    capacity = p.target_capacity.astype(np.float64)
    n_t = p.n_targets
    # Groups without a hub read slot n_hubs (always 0) of per-hub arrays.
    hub_of = np.where(p.group_hub >= 0, p.group_hub, p.n_hubs)
    before = alive.count()
    for _ in range(max_rounds):
        linked = alive.link
        hub_supply = np.bincount(p.group_hub[linked], weights=size[linked], minlength=p.n_hubs)
        h_ok = alive.harc
        level_demand = np.bincount(
            p.harc_level[h_ok], weights=hub_supply[p.harc_hub[h_ok]], minlength=p.n_levels
        )
        r_ok = alive.rarc
        reach = np.bincount(
            p.cand_target, weights=level_demand[cand_level], minlength=n_t
        ) + np.bincount(p.rarc_target[r_ok], weights=size[p.rarc_group[r_ok]], minlength=n_t)
        roomy = active & (capacity >= reach) & (reach > 0)
        if not roomy.any():
            break
        level_roomy = np.bincount(cand_level, weights=roomy[p.cand_target], minlength=p.n_levels)
        # τ: the best value a hub (group) can take at a roomy target.
        tau_hub = np.zeros(p.n_hubs + 1, dtype=np.int64)
        at = h_ok & (level_roomy[p.harc_level] > 0)
        np.maximum.at(tau_hub, p.harc_hub[at], p.harc_value[at])
        tau_group = np.where(linked, tau_hub[hub_of], 0)
        at = r_ok & roomy[p.rarc_target]
        np.maximum.at(tau_group, p.rarc_group[at], p.rarc_value[at])
        alive.harc &= p.harc_value >= tau_hub[p.harc_hub]
        alive.rarc &= p.rarc_value >= tau_group[p.rarc_group]
        best_hub = np.zeros(p.n_hubs + 1, dtype=np.int64)
        np.maximum.at(best_hub, p.harc_hub[alive.harc], p.harc_value[alive.harc])
        alive.link &= best_hub[hub_of] >= tau_group
        alive.hub_unassigned &= tau_hub[: p.n_hubs] == 0
        alive.group_unassigned = ~alive.link & (tau_group == 0)
        after = alive.count()
        if after == before:
            break
        before = after
    return alive


@dataclass
class Graph:
    """The flow graph as arrays. Nodes: groups, hubs, level sets, fairness nodes, targets,
    in that order (`head == -1` is the sink); a hub fed by one group is that group's node
    and a level of one candidate is that candidate's node (no arc of their own). Arcs, in
    `parts` order: hub arcs, resource arcs, level-set arcs, links, fairness arcs, target →
    sink, unassigned from hubs, unassigned from groups."""

    tails: IntArray
    heads: IntArray
    caps: IntArray
    costs: IntArray
    n_nodes: int
    supply: IntArray
    parts: dict[str, slice]
    harcs: IntArray  # hub arc of each graph hub arc
    rarcs: IntArray  # resource arc of each graph resource arc
    links: IntArray  # group of each link arc
    hubs: IntArray  # hub of each hub unassigned arc
    lone_groups: IntArray  # groups that are their hub's node
    harc_set: IntArray  # level set each hub arc enters (-1: a one-candidate level)
    set_level: IntArray  # a level of each level set (its candidates give the arcs' order)
    set_arc_start: IntArray  # level set s's arcs: set_arc_start[s]:set_arc_start[s + 1]


def build_graph(problem: Problem, alive: Alive | None = None) -> Graph:
    p = problem
    alive = alive or everything(p)
    g_n, h_n = p.n_groups, p.n_hubs
    f_n, t_n = len(p.fnode_target), p.n_targets
    size = p.group_size
    linked = np.flatnonzero(alive.link)
    hub_groups = np.bincount(p.group_hub[linked], minlength=h_n)
    hub_supply = np.bincount(p.group_hub[linked], weights=size[linked], minlength=h_n)
    hub_supply = hub_supply.astype(np.int64)
    lone = hub_groups[p.group_hub[linked]] == 1
    lone_groups, links = linked[lone], linked[~lone]
    hub_node = g_n + np.arange(h_n, dtype=np.int64)
    hub_node[p.group_hub[lone_groups]] = lone_groups
    harcs = np.flatnonzero(alive.harc & (hub_supply[p.harc_hub] > 0))
    rarcs = np.flatnonzero(alive.rarc)

    # Level sets: the multi-candidate levels hub arcs enter, one node per candidate list.
    # A candidate's head is its fairness node or else its offer: head ids f_n + target.
    head_id = np.where(p.cand_fnode >= 0, p.cand_fnode, f_n + p.cand_target)
    level_size = np.diff(p.level_start)
    used_level = np.zeros(p.n_levels, dtype=bool)
    used_level[p.harc_level[harcs]] = True
    multi = np.flatnonzero(used_level & (level_size > 1))
    single = np.flatnonzero(used_level & (level_size == 1))
    level_set = np.full(p.n_levels, -1, dtype=np.int64)
    heads_list = head_id.tolist()
    starts = p.level_start.tolist()
    sets: dict[tuple[int, ...], int] = {}
    for lv in multi.tolist():
        level_set[lv] = sets.setdefault(tuple(heads_list[starts[lv] : starts[lv + 1]]), len(sets))
    s_n = len(sets)
    set_level = np.zeros(s_n, dtype=np.int64)
    set_level[level_set[multi]] = multi
    set0 = g_n + h_n
    f0 = set0 + s_n
    t0 = f0 + f_n
    cand_head = f0 + head_id
    level_node = np.full(p.n_levels, -1, dtype=np.int64)
    level_node[single] = cand_head[p.level_start[single]]
    level_node[multi] = set0 + level_set[multi]
    set_owner, set_cand, set_arc_start = ranges(
        p.level_start[set_level], p.level_start[set_level + 1]
    )
    into_set = level_set[p.harc_level[harcs]]
    set_inflow = np.bincount(
        into_set[into_set >= 0],
        weights=hub_supply[p.harc_hub[harcs[into_set >= 0]]],
        minlength=s_n,
    )

    # Which fairness nodes and targets the graph reaches.
    reached = np.concatenate((head_id[p.level_start[single]], head_id[set_cand]))
    used_fnode = np.zeros(f_n, dtype=bool)
    used_fnode[reached[reached < f_n]] = True
    fnodes = np.flatnonzero(used_fnode)
    used_target = np.zeros(t_n, dtype=bool)
    used_target[reached[reached >= f_n] - f_n] = True
    used_target[p.rarc_target[rarcs]] = True
    used_target[p.fnode_target[fnodes]] = True
    targets = np.flatnonzero(used_target)
    hubs_out = np.flatnonzero(alive.hub_unassigned & (hub_supply > 0))
    groups_out = np.flatnonzero(alive.group_unassigned & (size > 0))

    parts: dict[str, slice] = {}
    tails: list[IntArray] = []
    heads: list[IntArray] = []
    caps: list[IntArray] = []
    costs: list[IntArray] = []

    def add(name: str, t: IntArray, h: IntArray, c: IntArray, cost: IntArray | None) -> None:
        start = sum(len(x) for x in tails)
        parts[name] = slice(start, start + len(t))
        tails.append(t)
        heads.append(h)
        caps.append(c.astype(np.int64))
        costs.append(np.zeros(len(t), dtype=np.int64) if cost is None else cost)

    add(
        "harc",
        hub_node[p.harc_hub[harcs]],
        level_node[p.harc_level[harcs]],
        hub_supply[p.harc_hub[harcs]],
        -p.harc_value[harcs],
    )
    add(
        "rarc",
        p.rarc_group[rarcs],
        t0 + p.rarc_target[rarcs],
        size[p.rarc_group[rarcs]],
        -p.rarc_value[rarcs],
    )
    add(
        "set",
        set0 + set_owner,
        cand_head[set_cand],
        set_inflow[set_owner].astype(np.int64),
        None,
    )
    add("link", links, hub_node[p.group_hub[links]], size[links], None)
    add("fnode", f0 + fnodes, t0 + p.fnode_target[fnodes], p.fnode_cap[fnodes], None)
    minus = np.full(len(targets), -1, dtype=np.int64)
    add("target", t0 + targets, minus, p.target_capacity[targets], None)
    add("hub_out", hub_node[hubs_out], np.full(len(hubs_out), -1), hub_supply[hubs_out], None)
    add("group_out", groups_out, np.full(len(groups_out), -1), size[groups_out], None)

    supply = np.zeros(t0 + t_n, dtype=np.int64)
    in_graph = np.zeros(g_n, dtype=bool)
    in_graph[linked] = True
    in_graph[p.rarc_group[rarcs]] = True
    in_graph[groups_out] = True
    supply[:g_n][in_graph] = size[in_graph]
    return Graph(
        tails=np.concatenate(tails),
        heads=np.concatenate(heads),
        caps=np.concatenate(caps),
        costs=np.concatenate(costs),
        n_nodes=t0 + t_n,
        supply=supply,
        parts=parts,
        harcs=harcs,
        rarcs=rarcs,
        links=links,
        hubs=hubs_out,
        lone_groups=lone_groups,
        harc_set=into_set,
        set_level=set_level,
        set_arc_start=set_arc_start,
    )


def _batches(graph: Graph, partition: bool, stats: SolveStats) -> tuple[IntArray, int]:
    """Batch of every node (-1: not in the graph): connected components, tiny ones packed
    together (see `BATCH_ARCS`)."""
    n = graph.n_nodes
    inner = graph.heads >= 0
    used = np.zeros(n, dtype=bool)
    used[graph.tails] = True
    if not partition:
        stats.components, stats.largest_component_arcs = 1, len(graph.tails)
        return np.where(used, 0, -1), 1
    tails, heads = graph.tails[inner], graph.heads[inner]
    adjacency = coo_matrix((np.ones(len(tails), dtype=np.int8), (tails, heads)), shape=(n, n))
    _, labels = connected_components(adjacency.tocsr(), directed=False)
    comp = np.full(n, -1, dtype=np.int64)
    _, dense_ids = np.unique(labels[used], return_inverse=True)
    comp[used] = dense_ids.ravel()
    n_comp = int(comp.max(initial=-1)) + 1
    comp_arcs = np.bincount(comp[graph.tails], minlength=n_comp)
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
    return np.where(comp >= 0, batch_of_comp[np.maximum(comp, 0)], -1), n_batches


def _stable_order(values: IntArray) -> IntArray:
    """`np.argsort(values, kind="stable")`, as a radix sort when values fit in 16 bits
    (a third of the time on 600,000 arcs); values are ≥ -1."""
    if len(values) and int(values.max()) < (1 << 16) - 1:
        return np.argsort((values + 1).astype(np.uint16), kind="stable")
    return np.argsort(values, kind="stable")


def solve_graph(
    graph: Graph, *, partition: bool = True, stats: SolveStats | None = None
) -> IntArray:
    """An optimal flow on every arc of `graph`."""
    stats = stats if stats is not None else SolveStats()
    started = time.perf_counter()
    n_arcs = len(graph.tails)
    flows = np.zeros(n_arcs, dtype=np.int64)
    if n_arcs == 0:
        return flows
    node_batch, n_batches = _batches(graph, partition, stats)
    # Local node ids per batch; each batch's sink is the id after its last node.
    # Stable, so a batch keeps the nodes' order (which the solver is sensitive to); a radix
    # sort when the batch numbers fit 16 bits.
    order = _stable_order(node_batch)
    skip = int((node_batch < 0).sum())
    batch_sizes = np.bincount(node_batch[node_batch >= 0], minlength=n_batches)
    first = skip + np.concatenate(([0], np.cumsum(batch_sizes)[:-1])).astype(np.int64)
    local = np.full(graph.n_nodes, -1, dtype=np.int64)
    in_order = order[skip:]
    local[in_order] = np.arange(len(in_order)) - (first - skip)[node_batch[in_order]]
    arc_batch = node_batch[graph.tails]
    arc_order = _stable_order(arc_batch)
    arc_first = np.searchsorted(arc_batch[arc_order], np.arange(n_batches + 1))
    local_tails = local[graph.tails].astype(np.int32)
    local_heads = np.where(
        graph.heads >= 0, local[np.maximum(graph.heads, 0)], batch_sizes[arc_batch]
    ).astype(np.int32)
    stats.graph_arcs = n_arcs
    stats.graph_nodes = int(batch_sizes.sum()) + n_batches
    stats.build_seconds += time.perf_counter() - started

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
        flows[picked] = mcf.flows(np.arange(len(picked), dtype=np.int32))
        return spent

    # Largest first: the batches are independent, and the order costs nothing.
    batches = [b for b in range(n_batches) if arc_first[b + 1] > arc_first[b]]
    stats.solver_seconds += sum(run(b) for b in reversed(batches))
    stats.solves += len(batches)
    return flows


def north_west(in_amount: IntArray, out_amount: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Split consecutive supplies against consecutive demands whose totals agree node by
    node (north-west corner rule): (in index, out index, amount) per piece."""
    cum_in = np.cumsum(in_amount)
    cum_out = np.cumsum(out_amount)
    ends = np.union1d(cum_in, cum_out).astype(np.int64)
    if len(ends) == 0:
        return ends, ends, ends
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
    return (
        np.searchsorted(cum_in, starts, side="right"),
        np.searchsorted(cum_out, starts, side="right"),
        ends - starts,
    )


def pairs_of(problem: Problem, graph: Graph, flows: IntArray) -> Flows:
    """(group, kind, src, count) pairs from an optimal flow on `graph`.

    First each level set's inflow (from hubs, by hub) is split against its outflow (to its
    candidates, best first), then each hub's inflow (from its groups, in group order)
    against its outflow (the pieces just made, best fit first, then the unassigned arc),
    by the north-west corner rule: the units entering a level set are interchangeable for
    it, and the groups of a hub have the same priority and the same offers, so any split
    has the same value. Resource arcs with flow are pairs already.
    """
    p = problem
    pt = graph.parts
    h_flow = flows[pt["harc"]]
    used = np.flatnonzero(h_flow > 0)
    harc = graph.harcs[used]
    amount = h_flow[used]
    via_set = graph.harc_set[used]
    # Hub arcs into one-candidate levels: that candidate.
    one = via_set < 0
    piece_hub = [p.harc_hub[harc[one]]]
    piece_cand = [p.level_start[p.harc_level[harc[one]]]]
    piece_amount = [amount[one]]
    # Hub arcs into level sets: split against the set's candidate arcs.
    many = np.flatnonzero(~one)
    if len(many):
        many = many[np.lexsort((p.harc_hub[harc[many]], via_set[many]))]
        s_flow = flows[pt["set"]]
        in_i, out_i, split = north_west(amount[many], s_flow)
        into = harc[many[in_i]]
        # Position of the candidate in its set = position in the entering hub's level.
        s_of_out = np.searchsorted(graph.set_arc_start, out_i, side="right") - 1
        position = out_i - graph.set_arc_start[s_of_out]
        piece_hub.append(p.harc_hub[into])
        piece_cand.append(p.level_start[p.harc_level[into]] + position)
        piece_amount.append(split)
    # The hub's unassigned arc comes after every candidate.
    hub_out = flows[pt["hub_out"]]
    out = np.flatnonzero(hub_out > 0)
    piece_hub.append(graph.hubs[out])
    piece_cand.append(np.full(len(out), -1, dtype=np.int64))
    piece_amount.append(hub_out[out])
    hub = np.concatenate(piece_hub)
    cand = np.concatenate(piece_cand)
    amount = np.concatenate(piece_amount)
    last = np.iinfo(np.int64).max
    order = np.lexsort((np.where(cand < 0, last, cand), hub))
    hub, cand, amount = hub[order], cand[order], amount[order]
    # Hub split: each hub's groups (links, and a lone group's whole outflow) in order.
    l_flow = flows[pt["link"]]
    fed = np.flatnonzero(l_flow > 0)
    lone_out = np.bincount(hub, weights=amount, minlength=p.n_hubs).astype(np.int64)
    lone_amount = lone_out[p.group_hub[graph.lone_groups]]
    feeding = np.concatenate((graph.links[fed], graph.lone_groups[lone_amount > 0]))
    fed_amount = np.concatenate((l_flow[fed], lone_amount[lone_amount > 0]))
    order = np.lexsort((feeding, p.group_hub[feeding]))
    in_i, out_i, split = north_west(fed_amount[order], amount)
    to_cand = cand[out_i] >= 0
    r_flow = flows[pt["rarc"]]
    r_used = np.flatnonzero(r_flow > 0)
    return Flows(
        group=np.concatenate((feeding[order][in_i][to_cand], p.rarc_group[graph.rarcs[r_used]])),
        kind=np.concatenate(
            (
                np.full(int(to_cand.sum()), OFFER, np.int64),
                np.full(len(r_used), RESOURCE, np.int64),
            )
        ),
        src=np.concatenate((cand[out_i][to_cand], graph.rarcs[r_used])),
        count=np.concatenate((split[to_cand], r_flow[r_used])),
    )


def solve_flow(
    problem: Problem, *, partition: bool = True, prune_arcs: bool = True
) -> tuple[Flows, SolveStats]:
    """An optimal flow of `problem` as pairs (see the module docstring)."""
    stats = SolveStats()
    started = time.perf_counter()
    alive = prune(problem) if prune_arcs else everything(problem)
    stats.pruned_arcs = everything(problem).count() - alive.count()
    graph = build_graph(problem, alive)
    stats.build_seconds = time.perf_counter() - started
    flows = solve_graph(graph, partition=partition, stats=stats)
    return pairs_of(problem, graph, flows), stats


def bare_solve(problem: Problem) -> tuple[int, float]:
    """The reference: one OR-Tools solve of the whole collapsed graph (every node and arc,
    one sink; no pruning, components, batches or explanations). Returns (optimal total
    value = −optimal cost, seconds to build and solve). The engine must reach the same."""
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
