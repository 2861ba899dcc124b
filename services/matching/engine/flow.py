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
* group → resource level (the group's usable resources of one fit, `problem.py`): capacity =
  group size, unit cost = −value (priority × fit); a resource level of several resources
  is a level set like the organisation ones (→ each resource, cost 0; equal resource lists
  are one node), one of one resource is that resource's node. In bench instance A that
  turns 84,700 group → resource arcs into 47,000 plus 3,900 set arcs (the solve takes
  about 10 % less); `bare_solve` keeps one arc per (group, resource);
* fairness node → its offer: capacity = the fairness cap, cost 0;
* target → sink: capacity = remaining capacity (offer) or quantity (resource), cost 0;
* the "unassigned" arc → sink, cost 0: from each hub (capacity = its supply; its groups'
  needs reach it through their links) and from each group without a hub. It keeps the flow
  feasible whatever the capacities and means nobody is forced onto a provider: a need is
  assigned exactly when that adds value (every value is ≥ 1, so whenever a candidate has
  room — no need is left out while one of its candidates could still take it).

Fewer nodes (exact contractions; the solve time follows the nodes at least as much as the
arcs, measured):

* a hub's *host*: the hub's only group, or else its first group without resource arcs, is
  the hub's node (no link, no node of the hub's own): flow entering it from the other
  groups can only take the hub's arcs, as it should. The hub's other groups without
  resource arcs are *absorbed*: their supply is put on the host node (all of it goes
  through the hub anyway), no node, no link;
* a target entered by one arc: that arc goes to the sink instead, its capacity capped by
  the target's (the arc's flow is the target's). Bench instance A: 5,100 of 9,500 targets,
  B: 19,400 of 31,100 (the solve takes 9 % and 12 % less).

`bare_solve` builds the graph without these, without resource levels and with a hub per
(ocell, priority) (`problem.unshared_hubs`): the reference the bench checks the engine
against does not share the engine's reductions.

Minimising cost maximises the total value. With integer capacities and costs the min-cost
flow has an integral optimum and the solver returns one, so the grouped optimum is the exact
optimum of the integer problem (no scaling, no rounding after the fact).

Pruning (`prune`, exact; it reasons on the per-resource arcs, before they are joined into
resource levels: a group's arcs into one level have one value, so it keeps all or none of
them). A target whose capacity is at least every need that can reach it
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

from services.matching.engine.problem import (
    OFFER,
    RESOURCE,
    IntArray,
    Problem,
    ranges,
    unshared_hubs,
)

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
    """The flow graph as arrays. Nodes: groups, hubs, level sets (organisation ones, then
    resource ones), fairness nodes, targets, in that order (`head == -1` is the sink); a
    hub with a host is that group's node and a level of one candidate is that candidate's
    node (no arc of their own); nodes without arcs are unused. Arcs, in `parts` order: hub
    arcs, resource arcs (one per group and resource level), level-set arcs, links,
    fairness arcs, target → sink (targets entered by more than one arc), unassigned from
    hubs, unassigned from groups."""

    tails: IntArray
    heads: IntArray
    caps: IntArray
    costs: IntArray
    n_nodes: int
    supply: IntArray
    parts: dict[str, slice]
    harcs: IntArray  # hub arc of each graph hub arc
    rarcs: IntArray  # first resource arc of the run each graph resource arc stands for
    links: IntArray  # group of each link arc
    hubs: IntArray  # hub of each hub unassigned arc
    hosts: IntArray  # groups that are their hub's node
    absorbed: IntArray  # groups whose supply is their hub's host node's
    harc_set: IntArray  # level set each hub arc enters (-1: a one-candidate level)
    set_level: IntArray  # a level of each organisation level set (its candidates, in order)
    set_rlevel: IntArray  # a resource level of each resource level set (numbered after them)
    set_arc_start: IntArray  # level set s's arcs: set_arc_start[s]:set_arc_start[s + 1]
    rarc_set: IntArray  # level set each graph resource arc enters (-1: one resource)


def build_graph(problem: Problem, alive: Alive | None = None, *, reduced: bool = True) -> Graph:
    """The graph of `problem` restricted to the `alive` arcs. `reduced`: with the
    reductions that do not come from the problem's layout (see the module docstring:
    resource levels, hosts, targets entered by one arc); without them, one arc per
    (group, resource), a hub node for every hub fed by several groups and an arc to the
    sink from every target (what `bare_solve` solves)."""
    p = problem
    alive = alive or everything(p)
    g_n, h_n = p.n_groups, p.n_hubs
    f_n, t_n = len(p.fnode_target), p.n_targets
    size = p.group_size
    linked = np.flatnonzero(alive.link)
    hub_groups = np.bincount(p.group_hub[linked], minlength=h_n)
    hub_supply = np.bincount(p.group_hub[linked], weights=size[linked], minlength=h_n)
    hub_supply = hub_supply.astype(np.int64)
    live = np.flatnonzero(alive.rarc)
    # A hub's host: a linked group whose node is the hub's node (no link, no node of the
    # hub's own). Its only group, or else its first group without resource arcs: the
    # other groups' flow entering that node can only take the hub's arcs, as it should.
    # The hub's other groups without resource arcs are absorbed: their supply is the
    # host node's too (all of it goes through the hub anyway), no node, no link.
    may_host = hub_groups[p.group_hub[linked]] == 1
    resourceless = np.zeros(len(linked), dtype=bool)
    if reduced:
        resourceless = np.bincount(p.rarc_group[live], minlength=g_n)[linked] == 0
    may_host = np.flatnonzero(may_host | resourceless)
    _, first = np.unique(p.group_hub[linked[may_host]], return_index=True)
    is_host = np.zeros(len(linked), dtype=bool)
    is_host[may_host[first]] = True
    hosts, absorbed = linked[is_host], linked[resourceless & ~is_host]
    links = linked[~is_host & ~resourceless]
    hub_node = g_n + np.arange(h_n, dtype=np.int64)
    hub_node[p.group_hub[hosts]] = hosts
    harcs = np.flatnonzero(alive.harc & (hub_supply[p.harc_hub] > 0))
    # Resource runs: a group's live arcs into one resource level, one graph arc. Pruning
    # keeps all of them or none (they have one value), so a run is the whole level.
    run_group = p.rarc_group[live]
    if reduced and len(live):
        run_rlevel = p.rarc_rlevel[live]
        new = np.ones(len(live), dtype=bool)
        new[1:] = (run_group[1:] != run_group[:-1]) | (run_rlevel[1:] != run_rlevel[:-1])
        rarcs, run_group, run_rlevel = live[new], run_group[new], run_rlevel[new]
        run_multi = np.diff(p.rlevel_start)[run_rlevel] > 1
    else:
        rarcs, run_rlevel = live, np.zeros(len(live), dtype=np.int64)
        run_multi = np.zeros(len(live), dtype=bool)

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
    so_n = len(sets)
    set_level = np.zeros(so_n, dtype=np.int64)
    set_level[level_set[multi]] = multi
    # Resource level sets alike (numbered after the organisation ones; their heads are
    # resources, never equal to an organisation set's).
    rmulti = np.unique(run_rlevel[run_multi])
    rlevel_set = np.full(len(p.rlevel_start) - 1, -1, dtype=np.int64)
    rheads_list = (f_n + p.rcand_target).tolist()
    rstarts = p.rlevel_start.tolist()
    for lv in rmulti.tolist():
        rlevel_set[lv] = sets.setdefault(
            tuple(rheads_list[rstarts[lv] : rstarts[lv + 1]]), len(sets)
        )
    s_n = len(sets)
    set_rlevel = np.zeros(s_n - so_n, dtype=np.int64)
    set_rlevel[rlevel_set[rmulti] - so_n] = rmulti
    set0 = g_n + h_n
    f0 = set0 + s_n
    t0 = f0 + f_n
    cand_head = f0 + head_id
    level_node = np.full(p.n_levels, -1, dtype=np.int64)
    level_node[single] = cand_head[p.level_start[single]]
    level_node[multi] = set0 + level_set[multi]
    set_owner, set_cand, set_arc_start = ranges(
        np.concatenate((p.level_start[set_level], p.rlevel_start[set_rlevel])),
        np.concatenate((p.level_start[set_level + 1], p.rlevel_start[set_rlevel + 1])),
    )
    n_org_arcs = int(set_arc_start[so_n])
    set_heads = np.concatenate(
        (head_id[set_cand[:n_org_arcs]], f_n + p.rcand_target[set_cand[n_org_arcs:]])
    )
    into_set = level_set[p.harc_level[harcs]]
    run_set = np.where(run_multi, rlevel_set[run_rlevel], -1)
    set_inflow = np.bincount(
        into_set[into_set >= 0],
        weights=hub_supply[p.harc_hub[harcs[into_set >= 0]]],
        minlength=s_n,
    ) + np.bincount(run_set[run_multi], weights=size[run_group[run_multi]], minlength=s_n)

    # Which fairness nodes and targets the graph reaches.
    reached = np.concatenate((head_id[p.level_start[single]], set_heads))
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
        run_group,
        np.where(run_multi, set0 + run_set, t0 + p.rarc_target[rarcs]),
        size[run_group],
        -p.rarc_value[rarcs],
    )
    add(
        "set",
        set0 + set_owner,
        f0 + set_heads,
        set_inflow[set_owner].astype(np.int64),
        None,
    )
    add("link", links, hub_node[p.group_hub[links]], size[links], None)
    add("fnode", f0 + fnodes, t0 + p.fnode_target[fnodes], p.fnode_cap[fnodes], None)
    if reduced:
        # A target entered by one arc: that arc goes to the sink instead, capped by the
        # target's capacity (its flow is the target's; a node and an arc fewer).
        into_target = np.concatenate(heads) - t0
        entered = np.bincount(into_target[into_target >= 0], minlength=t_n)
        once = np.zeros(t_n, dtype=bool)
        once[targets] = entered[targets] == 1
        for part, (h, c) in enumerate(zip(heads, caps, strict=True)):
            arc = np.flatnonzero(h >= t0)
            arc = arc[once[h[arc] - t0]]
            c[arc] = np.minimum(c[arc], p.target_capacity[h[arc] - t0])
            h[arc] = -1
            heads[part] = h
        targets = targets[~once[targets]]
    minus = np.full(len(targets), -1, dtype=np.int64)
    add("target", t0 + targets, minus, p.target_capacity[targets], None)
    add("hub_out", hub_node[hubs_out], np.full(len(hubs_out), -1), hub_supply[hubs_out], None)
    add("group_out", groups_out, np.full(len(groups_out), -1), size[groups_out], None)

    supply = np.zeros(t0 + t_n, dtype=np.int64)
    in_graph = np.zeros(g_n, dtype=bool)
    in_graph[hosts] = True
    in_graph[links] = True
    in_graph[run_group] = True
    in_graph[groups_out] = True
    supply[:g_n][in_graph] = size[in_graph]
    np.add.at(supply, hub_node[p.group_hub[absorbed]], size[absorbed])
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
        hosts=hosts,
        absorbed=absorbed,
        harc_set=into_set,
        set_level=set_level,
        set_rlevel=set_rlevel,
        set_arc_start=set_arc_start,
        rarc_set=run_set,
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

    First each level set's inflow (from hubs by hub, or from groups by group for a
    resource level set) is split against its outflow (to its candidates, best first), then
    each hub's inflow (from its groups, in group order) against its outflow (the pieces
    just made, best fit first, then the unassigned arc), by the north-west corner rule: the
    units entering a level set are interchangeable for it (each unit's value was paid on
    the arc it entered by, whichever candidate of the level takes it), and the groups of a
    hub have the same priority and the same offers, so any split has the same value. A
    resource arc into a one-resource level is a pair already.
    """
    p = problem
    pt = graph.parts
    h_flow = flows[pt["harc"]]
    used = np.flatnonzero(h_flow > 0)
    harc = graph.harcs[used]
    amount = h_flow[used]
    via_set = graph.harc_set[used]
    r_flow = flows[pt["rarc"]]
    r_used = np.flatnonzero(r_flow > 0)
    r_via = graph.rarc_set[r_used]
    # Hub arcs into one-candidate levels: that candidate.
    one = via_set < 0
    piece_hub = [p.harc_hub[harc[one]]]
    piece_cand = [p.level_start[p.harc_level[harc[one]]]]
    piece_amount = [amount[one]]
    # Resource arcs into one-resource levels: that resource arc.
    r_one = r_used[r_via < 0]
    res_group = [p.rarc_group[graph.rarcs[r_one]]]
    res_rarc = [graph.rarcs[r_one]]
    res_amount = [r_flow[r_one]]
    # Arcs into level sets (hub arcs and resource arcs, by set, then hub or group): split
    # against the sets' candidate arcs.
    many = np.flatnonzero(~one)
    r_many = r_used[r_via >= 0]
    if len(many) or len(r_many):
        e_set = np.concatenate((via_set[many], graph.rarc_set[r_many]))
        e_from = np.concatenate((p.harc_hub[harc[many]], p.rarc_group[graph.rarcs[r_many]]))
        e_amount = np.concatenate((amount[many], r_flow[r_many]))
        order = np.lexsort((e_from, e_set))
        in_i, out_i, split = north_west(e_amount[order], flows[pt["set"]])
        entry = order[in_i]
        # Position of the candidate in its set = position in the entering arc's level.
        s_of_out = np.searchsorted(graph.set_arc_start, out_i, side="right") - 1
        position = out_i - graph.set_arc_start[s_of_out]
        by_hub = entry < len(many)
        into = harc[many[entry[by_hub]]]
        piece_hub.append(p.harc_hub[into])
        piece_cand.append(p.level_start[p.harc_level[into]] + position[by_hub])
        piece_amount.append(split[by_hub])
        first = graph.rarcs[r_many[entry[~by_hub] - len(many)]]
        res_group.append(p.rarc_group[first])
        res_rarc.append(first + position[~by_hub])
        res_amount.append(split[~by_hub])
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
    # Hub split: each hub's groups in order: links, absorbed groups (all of their needs)
    # and its host (the rest of the hub's outflow).
    l_flow = flows[pt["link"]]
    fed = np.flatnonzero(l_flow > 0)
    absorbed = graph.absorbed
    absorbed_size = p.group_size[absorbed]
    feeders = np.concatenate((graph.links[fed], absorbed))
    hub_in = np.bincount(
        p.group_hub[feeders],
        weights=np.concatenate((l_flow[fed], absorbed_size)),
        minlength=p.n_hubs,
    )
    hub_out_total = np.bincount(hub, weights=amount, minlength=p.n_hubs)
    host_amount = (hub_out_total - hub_in).astype(np.int64)[p.group_hub[graph.hosts]]
    feeding = np.concatenate((graph.links[fed], absorbed, graph.hosts[host_amount > 0]))
    fed_amount = np.concatenate((l_flow[fed], absorbed_size, host_amount[host_amount > 0]))
    order = np.lexsort((feeding, p.group_hub[feeding]))
    in_i, out_i, split = north_west(fed_amount[order], amount)
    to_cand = cand[out_i] >= 0
    o_group = feeding[order][in_i][to_cand]
    # A hub's candidates are its ocell's; its groups' ocells list the same ones at the
    # same positions (`Problem`: hubs share equal candidate lists).
    o_cand = (
        cand[out_i][to_cand]
        - p.ocell_cand_start[p.hub_ocell[p.group_hub[o_group]]]
        + p.ocell_cand_start[p.group_ocell[o_group]]
    )
    r_group = np.concatenate(res_group)
    return Flows(
        group=np.concatenate((o_group, r_group)),
        kind=np.concatenate(
            (
                np.full(int(to_cand.sum()), OFFER, np.int64),
                np.full(len(r_group), RESOURCE, np.int64),
            )
        ),
        src=np.concatenate((o_cand, np.concatenate(res_rarc))),
        count=np.concatenate((split[to_cand], np.concatenate(res_amount))),
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
    graph = build_graph(unshared_hubs(problem), reduced=False)
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
