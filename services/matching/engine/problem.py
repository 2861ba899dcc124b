"""The collapsed instance: needs grouped into interchangeable classes, candidate arcs built.

The model
---------
Targets are what takes needs: an *offer* (one organisation × one service code, with that
service's remaining monthly capacity) or a charity *resource* (remaining quantity, shared by
its service codes). A need *n* may go to target *t* when *t* is eligible, has capacity,
covers the need's item and region (and, for a resource, targets one of the recipient's
categories); the value is ``priority(n) × fit(n, t)`` (`Scoring`), an integer.

Why grouping is exact
---------------------
Two needs are interchangeable for the organisations when they share the service code, the
priority, the fairness region (first `FairnessCap.region_digits` digits, when a cap is set)
and the *organisation region*: the longest prefix of the region code that some organisation
offering that service uses as a coverage prefix (eligible or not). Every organisation prefix
covering a need is a prefix of its organisation region, so such needs are covered by the
same offers at the same closeness, whatever their village: the arcs and values are equal.
The same holds for resources with the *resource region* (longest resource prefix) and the
*resource signature*: the set of covering resources that target one of the recipient's
categories (categories no covering resource targets do not matter).

* An *ocell* is (service, organisation region, fairness region); its candidates are the
  eligible offers with capacity that cover it, best fit first. An *rsig* is (service,
  resource region, matching resources).
* A *group* is (ocell, rsig, priority): one node, supply = its number of needs. An rsig
  without any usable resource is left out of the key when the ocell has candidates (such
  needs differ only in resources they cannot use).
* A *hub* is (ocell, priority): the groups of a hub differ only in their resources, so their
  organisation arcs would be equal; each group sends its organisation-bound flow to its hub
  (cost 0) and only the hub carries organisation arcs. Ocells whose candidate lists are
  equal (same offers, closeness and fairness node, in order: an ineligible or full township
  organisation splits a county into ocells with the same candidates) share their hubs
  (bench instance A: 12,300 hubs instead of 13,600; B: 57,700 instead of 66,400); a
  hub's flow is split back onto each group's own ocell candidates at the same positions.
* A *level* is (ocell, fit): the candidates of an ocell with equal fit. A hub has one arc
  per level (value priority × fit) and each level one arc per candidate (cost 0): every
  unit through hub h and level l is worth h's priority × l's fit whichever candidate of the
  level takes it, so this is the same as one arc per (hub, candidate), with
  hubs × levels + candidates arcs instead of hubs × candidates (fits are small integers:
  in bench instance A an ocell's 25 candidates share 7 or 8 levels). Resources alike: a
  *resource level* is (rsig, fit), the usable resources of an rsig with equal fit, and a
  group has one arc per resource level (`flow.py`), not one per resource.

Any flow on this graph splits into per-need assignments with the same total (needs of a
group are interchangeable, groups of a hub too for the organisations, candidates of a level
for the hub), and any per-need assignment sums into such a flow, so the optima are equal.
The tests check it against a solver that never groups (`EngineOptions(collapse=False)`: one
group and one hub per need) and against `scipy.optimize.linear_sum_assignment`.

Building it in O(needs) numpy steps
-----------------------------------
Needs arrive as columns (`NeedColumns`; `Need` objects are converted first). Nothing is
done per need in Python: a need's *row* is its service and its region cut to the longest
prefix any coverage entry of that service has (or the fairness region, if longer) — needs
of one row cannot be told apart by coverage, so cells are computed per row (bench instance
B: 45,000 rows for a million needs in 67,000 villages) and read back per need with one
gather. Coverage lookups are sorted-key searches; one sort of the needs (by group, then
urgency, waiting and input position, all in one unique int64 key) gives both the groups
and the order of needs within them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from functools import cache
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from services.matching.engine.model import (
    LEVELS,
    CharityResource,
    EngineOptions,
    FairnessCap,
    FitParts,
    IntArray,
    Need,
    NeedColumns,
    NeedView,
    OrganisationSupply,
    Scoring,
    division_prefix,
)

OFFER, RESOURCE = 0, 1
_P10 = np.array([10**k for k in range(13)], dtype=np.int64)


@dataclass
class OCell:
    """Needs of one service whose organisation region (and fairness region) are equal."""

    service_code: str
    prefix: str  # organisation region: longest organisation prefix covering ("" none)
    fairness_region: str


@dataclass
class RSig:
    """Resources that may serve a group: covering region and service, matching category
    (the resources themselves: `Problem.rsig_resources`)."""

    service_code: str
    prefix: str  # resource region: longest resource prefix covering ("" none)
    covering: int  # resources covering region and service, any category


@dataclass
class Problem:
    """A collapsed allocation instance (numpy arrays, dense indices).

    Needs are `columns` (`NeedColumns`; `needs` shows them as `Need` objects).
    Targets: offers `0 … n_offers-1`, then resources.
    Groups: needs `need_order[group_start[g]:group_start[g + 1]]` (most urgent, then longest
    waiting, then input order first); `group_hub[g]` (-1: no organisation candidate);
    resource arcs `group_rarc_start[g]:group_rarc_start[g + 1]`.
    Every offer covering ocell c, eligible or not, is `cov_target[ocell_cov_start[c]:…]`
    (longest covering prefix first, with its length in `cov_closeness`).
    Candidates of ocell c: `ocell_cand_start[c]:ocell_cand_start[c + 1]` (`cand_*`), best
    fit first, in levels `ocell_level_start[c]:…`, level l being candidates
    `level_start[l]:level_start[l + 1]`. Hub h's arcs `hub_arc_start[h]:…` (`harc_*`) go to
    the levels of its ocell, best first. `cand_fnode` is the fairness node (-1 none).
    Resource arcs of group g: `group_rarc_start[g]:…` (`rarc_*`), best fit first; those of
    equal fit form a run into one resource level (`rarc_rlevel`), whose resources are
    `rcand_target[rlevel_start[r]:rlevel_start[r + 1]]` in the same order.
    """

    columns: NeedColumns
    organisations: Sequence[OrganisationSupply]
    resources: Sequence[CharityResource]
    scoring: Scoring
    fairness: FairnessCap | None
    # targets
    n_offers: int
    target_kind: npt.NDArray[np.int8]
    target_ref: IntArray  # organisation index (offers) or resource index
    target_service: list[str]  # service code of an offer ("" for resources)
    target_capacity: IntArray
    target_eligible: npt.NDArray[np.bool_]
    target_credit: IntArray  # fit points for the credit score (`Scoring.credit`)
    target_satisfaction: IntArray  # fit points for satisfaction (`Scoring.satisfaction`)
    # cells
    ocells: list[OCell]
    rsigs: list[RSig]
    ocell_cov_start: IntArray
    cov_target: IntArray
    cov_closeness: IntArray
    rsig_cov_start: IntArray
    rsig_cov_target: IntArray
    rsig_cov_closeness: IntArray
    # needs and groups
    need_priority: IntArray
    need_rsig: IntArray
    need_group: IntArray
    need_order: IntArray
    group_start: IntArray
    group_size: IntArray
    group_priority: IntArray
    group_ocell: IntArray
    group_rsig: IntArray
    group_hub: IntArray
    group_rarc_start: IntArray
    # organisation candidates per ocell, and their fit levels
    ocell_cand_start: IntArray
    cand_target: IntArray
    cand_closeness: npt.NDArray[np.int8]
    cand_fit: IntArray
    cand_fnode: IntArray
    ocell_level_start: IntArray
    level_start: IntArray
    level_fit: IntArray
    # hubs and their arcs to levels
    hub_ocell: IntArray
    hub_priority: IntArray
    hub_arc_start: IntArray
    harc_hub: IntArray
    harc_level: IntArray
    harc_value: IntArray
    # resource arcs (group → resource)
    rarc_group: IntArray
    rarc_target: IntArray
    rarc_closeness: npt.NDArray[np.int8]
    rarc_fit: IntArray
    rarc_value: IntArray
    # resource levels: the usable resources of an rsig with equal fit (`rcand_target`
    # `rlevel_start[r]:rlevel_start[r + 1]`); the resource level of each resource arc
    rcand_target: IntArray
    rlevel_start: IntArray
    rarc_rlevel: IntArray
    # fairness nodes
    fnode_target: IntArray
    fnode_region: list[str]
    fnode_cap: IntArray
    fnode_open_needs: IntArray
    # covering candidates (eligible or not) per ocell and per rsig, for the "why not"
    ocell_cover: IntArray
    ocell_cover_eligible: IntArray
    rsig_cover: IntArray
    rsig_cover_eligible: IntArray
    # the `Need` objects the problem was built from (None: built from columns)
    source_needs: Sequence[Need] | None = None

    @property
    def needs(self) -> Sequence[Need]:
        """The needs, in input order (made from the columns on access if built from them)."""
        if self.source_needs is not None:
            return self.source_needs
        return NeedView(self.columns)

    @property
    def n_needs(self) -> int:
        return len(self.columns)

    @property
    def n_groups(self) -> int:
        return len(self.group_size)

    @property
    def n_hubs(self) -> int:
        return len(self.hub_ocell)

    @property
    def n_levels(self) -> int:
        return len(self.level_fit)

    @property
    def n_targets(self) -> int:
        return len(self.target_kind)

    @property
    def n_arcs(self) -> int:
        """Arcs that carry value: hub → level and group → resource."""
        return len(self.harc_hub) + len(self.rarc_group)

    def ocell_offers(self, c: int) -> list[tuple[int, int]]:
        """Every offer covering ocell c, eligible or not: (target, closeness digits)."""
        lo, hi = int(self.ocell_cov_start[c]), int(self.ocell_cov_start[c + 1])
        targets, closeness = self.cov_target[lo:hi].tolist(), self.cov_closeness[lo:hi].tolist()
        return list(zip(targets, closeness, strict=True))

    def rsig_resources(self, s: int) -> list[tuple[int, int]]:
        """The resources of rsig s (covering, matching a category), eligible or not:
        (target, closeness digits)."""
        lo, hi = int(self.rsig_cov_start[s]), int(self.rsig_cov_start[s + 1])
        targets = self.rsig_cov_target[lo:hi].tolist()
        return list(zip(targets, self.rsig_cov_closeness[lo:hi].tolist(), strict=True))

    def target_id(self, t: int) -> str:
        ref = int(self.target_ref[t])
        if self.target_kind[t] == OFFER:
            return self.organisations[ref].organisation_id
        return self.resources[ref].resource_id

    def target_label(self, t: int) -> str:
        kind = "organisation" if self.target_kind[t] == OFFER else "resource"
        return f"{kind} {self.target_id(t)}"

    def target_status(self, t: int) -> str:
        ref = int(self.target_ref[t])
        if self.target_kind[t] == OFFER:
            org = self.organisations[ref]
            return org.status if org.status != "admitted" else "not eligible"
        res = self.resources[ref]
        return res.status if res.status != "available" else "not eligible"

    def fit_parts(self, t: int, closeness: int) -> FitParts:
        ref = int(self.target_ref[t])
        src = self.organisations[ref] if self.target_kind[t] == OFFER else self.resources[ref]
        return self.scoring.fit_parts(closeness, src.credit_score, src.satisfaction)


# --------------------------------------------------------------------------- helpers


def dense(keys: IntArray) -> tuple[IntArray, IntArray]:
    """(id of each key, a position of each id), ids in increasing key order."""
    # Not a stable sort (three times slower on a million keys): callers take any position
    # of an id as its representative, all of them being equal for what they read.
    order = np.argsort(keys)
    sorted_keys = keys[order]
    new = np.empty(len(keys), dtype=bool)
    if len(keys):
        new[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    ids = np.cumsum(new) - 1
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = ids
    return inverse, order[new]


def ranges(lo: IntArray, hi: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Expand the index ranges `lo[k]:hi[k]`: (k per item, index per item, start of each
    range's items in the output)."""
    counts = hi - lo
    out_start = np.zeros(len(lo) + 1, dtype=np.int64)
    np.cumsum(counts, out=out_start[1:])
    owner = np.repeat(np.arange(len(lo), dtype=np.int64), counts)
    index = np.arange(int(out_start[-1]), dtype=np.int64) + np.repeat(lo - out_start[:-1], counts)
    return owner, index, out_start


def csr_gather(ptr: IntArray, which: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Expand rows `which` of a CSR layout: (owner position per item, data index per item,
    start of each owner's items in the output)."""
    return ranges(ptr[which], ptr[which + 1])


def _starts(owner: IntArray, n: int) -> IntArray:
    """CSR starts of items sorted by owner (0 … n-1)."""
    out = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=out[1:])
    return out


def _key(service: IntArray, length: IntArray | int, prefix: IntArray) -> IntArray:
    """One int64 per (service, prefix length, prefix): prefixes are < 10¹²."""
    return (service * 13 + length) * _P10[12] + prefix


class _Coverage:
    """Coverage entries (target, service, prefix) sorted for lookup by covered prefix."""

    def __init__(self, target: list[int], service: list[int], prefix: list[str]) -> None:
        length = np.array([len(p) for p in prefix], dtype=np.int64)
        value = np.array([int(p) for p in prefix], dtype=np.int64)
        keys = _key(np.array(service, dtype=np.int64), length, value)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.target = np.array(target, dtype=np.int64)[order]
        self.length = length
        self.value = value
        self.service = np.array(service, dtype=np.int64)

    def longest(
        self, prefix: IntArray, length: IntArray, service: IntArray
    ) -> tuple[IntArray, IntArray]:
        """Per row (a `length`-digit prefix, service): the length of the longest entry
        prefix covering it (0: none) and that entry prefix's position in `keys` (-1: none),
        which names (service, prefix) with one small integer."""
        found_length = np.zeros(len(prefix), dtype=np.int64)
        position = np.full(len(prefix), -1, dtype=np.int64)
        if not len(self.keys):
            return found_length, position
        for level in LEVELS:  # shortest first: a longer covering prefix overrides
            rows = np.flatnonzero(length >= level)
            q = _key(service[rows], level, prefix[rows] // _P10[length[rows] - level])
            at = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
            hit = self.keys[at] == q
            found_length[rows[hit]] = level
            position[rows[hit]] = at[hit]
        return found_length, position

    def covering(
        self, service: IntArray, prefix: IntArray, length: IntArray
    ) -> tuple[IntArray, IntArray, IntArray]:
        """Per cell (service, prefix of `length` digits): the entries whose prefix is a
        prefix of it, each target once at its longest prefix, longest first, then by
        target. Returns CSR (start per cell, target, closeness digits)."""
        owners: list[IntArray] = []
        targets: list[IntArray] = []
        levels: list[IntArray] = []
        for lv in LEVELS:
            rows = np.flatnonzero(length >= lv)
            q = _key(service[rows], lv, prefix[rows] // _P10[length[rows] - lv])
            lo = np.searchsorted(self.keys, q, "left")
            hi = np.searchsorted(self.keys, q, "right")
            owner, index, _ = ranges(lo, hi)
            owners.append(rows[owner])
            targets.append(self.target[index])
            levels.append(np.full(len(index), lv, dtype=np.int64))
        cell = np.concatenate(owners)
        target = np.concatenate(targets)
        level = np.concatenate(levels)
        # One entry per (cell, target): its longest prefix. (Sorting one int64 key beats a
        # lexsort of three; cells, targets < 2³⁰, levels < 16.)
        span = int(target.max(initial=0)) + 1
        key = (cell * span + target) * 16 + (15 - level)
        order = np.argsort(key)
        key = key[order]
        keep = np.ones(len(key), dtype=bool)
        keep[1:] = (key[1:] >> 4) != (key[:-1] >> 4)
        cell, target, level = cell[order][keep], target[order][keep], level[order][keep]
        order = np.argsort((cell * 16 + (15 - level)) * span + target)
        return _starts(cell, len(service)), target[order], level[order]


def _candidates(
    start: IntArray,
    target: IntArray,
    level: IntArray,
    active: npt.NDArray[np.bool_],
    eligible: npt.NDArray[np.bool_],
    fit_base: IntArray,
    points: IntArray,
) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray, IntArray]:
    """From covering entries per row (CSR) to the active ones, best fit first (then
    target), and per row the number of covering entries and of eligible ones: (start,
    target, closeness, fit, cover, cover_eligible)."""
    n = len(start) - 1
    row = np.repeat(np.arange(n, dtype=np.int64), np.diff(start))
    cover = np.diff(start)
    cover_eligible = np.bincount(row[eligible[target]], minlength=n).astype(np.int64)
    keep = active[target]
    row, target, level = row[keep], target[keep], level[keep]
    fit = points[level] + fit_base[target]
    span, top = int(target.max(initial=0)) + 1, int(fit.max(initial=0))
    order = np.argsort((row * (top + 1) + (top - fit)) * span + target)  # unique keys
    return (
        _starts(row, n),
        target[order],
        level[order],
        fit[order],
        cover.astype(np.int64),
        cover_eligible,
    )


def fit_points(
    scoring: Scoring, sources: Sequence[OrganisationSupply | CharityResource]
) -> tuple[IntArray, IntArray]:
    """`Scoring.credit` and `Scoring.satisfaction` of each source, for all at once (the
    same floating-point operations in the same order, so the same integers)."""
    credit = np.array(
        [
            scoring.unknown_credit_score if s.credit_score is None else s.credit_score
            for s in sources
        ],
        dtype=np.float64,
    )
    satisfaction = np.array(
        [
            scoring.unknown_satisfaction if s.satisfaction is None else s.satisfaction
            for s in sources
        ],
        dtype=np.float64,
    )
    credit = np.floor(
        np.minimum(100.0, np.maximum(0.0, credit)) / 100 * scoring.credit_points + 0.5
    )
    satisfaction = np.floor(
        np.minimum(1.0, np.maximum(0.0, satisfaction)) * scoring.satisfaction_points + 0.5
    )
    return credit.astype(np.int64), satisfaction.astype(np.int64)


@dataclass
class _Hubs:
    group_hub: IntArray
    hub_ocell: IntArray
    hub_priority: IntArray
    hub_arc_start: IntArray
    harc_hub: IntArray
    harc_level: IntArray
    harc_value: IntArray

    @classmethod
    def of(
        cls,
        group_cell: IntArray | None,
        with_orgs: IntArray,
        group_ocell: IntArray,
        group_priority: IntArray,
        ocell_level_start: IntArray,
        level_fit: IntArray,
    ) -> _Hubs:
        """Hubs (cell, priority) of the groups `with_orgs` (None: a hub per group) and
        their arcs to the levels of the hub's (first group's) ocell."""
        group_hub = np.full(len(group_ocell), -1, dtype=np.int64)
        if group_cell is not None:
            span = int(group_priority.max(initial=0)) + 1
            hub_of, first = dense(group_cell[with_orgs] * span + group_priority[with_orgs])
        else:
            hub_of = first = np.arange(len(with_orgs), dtype=np.int64)
        group_hub[with_orgs] = hub_of
        hub_ocell = group_ocell[with_orgs[first]]
        hub_priority = group_priority[with_orgs[first]]
        harc_hub, harc_level, hub_arc_start = csr_gather(ocell_level_start, hub_ocell)
        return cls(
            group_hub,
            hub_ocell,
            hub_priority,
            hub_arc_start,
            harc_hub,
            harc_level,
            hub_priority[harc_hub] * level_fit[harc_level],
        )


def unshared_hubs(problem: Problem) -> Problem:
    """`problem` with a hub per (ocell, priority), as if no ocells shared their hubs (what
    `flow.bare_solve` solves: a reference independent of that reduction)."""
    p = problem
    with_orgs = np.flatnonzero(p.group_hub >= 0)
    hubs = _Hubs.of(
        p.group_ocell, with_orgs, p.group_ocell, p.group_priority, p.ocell_level_start, p.level_fit
    )
    return replace(p, **{f.name: getattr(hubs, f.name) for f in fields(hubs)})


def _same_lists(
    start: IntArray, target: IntArray, closeness: IntArray, fnode: IntArray
) -> IntArray:
    """An id per row of a CSR candidate layout, equal for rows whose candidates (target,
    closeness, fairness node, in order) are equal."""
    key = (target * 13 + closeness) * (int(fnode.max(initial=-1)) + 2) + fnode + 1
    keys = key.tolist()
    bounds = start.tolist()
    ids: dict[tuple[int, ...], int] = {}
    return np.array(
        [ids.setdefault(tuple(keys[a:b]), len(ids)) for a, b in pairwise(bounds)],
        dtype=np.int64,
    )


# --------------------------------------------------------------------------- building


def build_problem(
    needs: Sequence[Need] | NeedColumns,
    organisations: Sequence[OrganisationSupply],
    resources: Sequence[CharityResource] = (),
    *,
    scoring: Scoring | None = None,
    fairness: FairnessCap | None = None,
    options: EngineOptions | None = None,
) -> Problem:
    """Group the needs and lay out the candidate arcs (see the module docstring)."""
    scoring = scoring or Scoring()
    options = options or EngineOptions()
    if isinstance(needs, NeedColumns):
        cols, source = needs, None
    else:
        cols, source = NeedColumns.from_needs(needs), needs
    n = len(cols)
    # Services in code order, whatever the order of the vocabulary: the same needs make
    # the same problem (and the same ties broken the same way) however they are encoded.
    service_order = sorted(range(len(cols.services)), key=cols.services.__getitem__)
    services = [cols.services[i] for i in service_order]
    service_rank = np.zeros(len(service_order), dtype=np.int64)
    service_rank[service_order] = np.arange(len(service_order), dtype=np.int64)
    need_service = service_rank[cols.service]
    n_services = len(services)
    service_index = {s: i for i, s in enumerate(services)}

    # ---- targets: offers (organisation × service), then resources; coverage entries
    prefix_of = cache(division_prefix)
    offer_org: list[int] = []
    offer_service: list[str] = []
    offer_cap: list[int] = []
    o_target: list[int] = []
    o_service: list[int] = []
    o_prefix: list[str] = []
    for oi, org in enumerate(organisations):
        special = org.service_regions
        common: set[str] | None = None
        prefixes: set[str]
        for service, cap in org.capacity.items():
            t = len(offer_org)
            offer_org.append(oi)
            offer_service.append(service)
            offer_cap.append(max(0, int(cap)))
            si = service_index.get(service)
            if si is None:
                continue
            if special and service in special:
                prefixes = {prefix_of(r) for r in special[service]}
            else:
                if common is None:
                    common = {prefix_of(r) for r in org.regions}
                prefixes = common
            for p in prefixes:
                o_target.append(t)
                o_service.append(si)
                o_prefix.append(p)
    n_offers = len(offer_org)
    r_target: list[int] = []
    r_service: list[int] = []
    r_prefix: list[str] = []
    for ri, res in enumerate(resources):
        res_prefixes = {prefix_of(r) for r in res.regions}
        for service in set(res.service_codes):
            si = service_index.get(service)
            if si is not None:
                for p in res_prefixes:
                    r_target.append(n_offers + ri)
                    r_service.append(si)
                    r_prefix.append(p)
    org_cover = _Coverage(o_target, o_service, o_prefix)
    res_cover = _Coverage(r_target, r_service, r_prefix)
    target_kind = np.array([OFFER] * n_offers + [RESOURCE] * len(resources), dtype=np.int8)
    target_ref = np.array(offer_org + list(range(len(resources))), dtype=np.int64)
    target_capacity = np.array(offer_cap + [max(0, r.remaining) for r in resources], np.int64)
    org_eligible = [o.is_eligible for o in organisations]
    target_eligible = np.array(
        [org_eligible[o] for o in offer_org] + [r.is_eligible for r in resources], dtype=bool
    )
    sources: list[OrganisationSupply | CharityResource] = [*organisations, *resources]
    source_credit, source_satisfaction = fit_points(scoring, sources)
    source_of_target = np.concatenate(
        (
            np.array(offer_org, dtype=np.int64),
            len(organisations) + np.arange(len(resources), dtype=np.int64),
        )
    )
    target_credit = source_credit[source_of_target]
    target_satisfaction = source_satisfaction[source_of_target]
    fit_base = target_credit + target_satisfaction
    active = target_eligible & (target_capacity > 0)
    points = np.zeros(13, dtype=np.int64)
    for level, pts in scoring.closeness_points.items():
        points[level] = pts

    # ---- priority per need
    urgency_points = np.zeros(5, dtype=np.int64)
    for u, pts in scoring.urgency_points.items():
        urgency_points[u] = pts
    vulnerability = np.array(
        [scoring.vulnerability(tuple(cs))[0] for cs in cols.category_sets] or [0], dtype=np.int64
    )
    steps = np.minimum(cols.waiting_days // scoring.waiting_step_days, scoring.waiting_cap_steps)
    need_priority = (
        urgency_points[cols.urgency]
        + steps * scoring.waiting_points_per_step
        + vulnerability[cols.categories]
    )

    # ---- rows: needs of one service whose regions agree down to the longest prefix any
    # coverage entry (or the fairness region) of that service has: nothing finer can tell
    # them apart. A million needs over 67,000 villages make 45,000 rows, not 400,000.
    n_regions = len(cols.regions)
    region_int = np.array([int(r) for r in cols.regions], dtype=np.int64)
    fr_digits = fairness.region_digits if fairness else 0
    depth = np.full(n_services, fr_digits, dtype=np.int64)
    np.maximum.at(depth, org_cover.service, org_cover.length)
    np.maximum.at(depth, res_cover.service, res_cover.length)
    by_code = np.argsort(region_int, kind="stable")
    sorted_codes = region_int[by_code]
    coarse_of = np.empty((n_regions, n_services), dtype=np.int64)
    coarse_prefix: list[IntArray] = []
    coarse_service: list[IntArray] = []
    base = 0
    for s in range(n_services):
        prefix = sorted_codes // _P10[12 - depth[s]]
        new = np.ones(len(prefix), dtype=bool)
        new[1:] = prefix[1:] != prefix[:-1]
        coarse_of[by_code, s] = base + np.cumsum(new) - 1
        coarse_prefix.append(prefix[new])
        coarse_service.append(np.full(int(new.sum()), s, dtype=np.int64))
        base += int(new.sum())
    need_coarse = coarse_of.ravel()[cols.region * n_services + need_service]
    occupied = np.zeros(base, dtype=bool)
    occupied[need_coarse] = True
    rows = np.flatnonzero(occupied)
    row_service = np.concatenate(coarse_service)[rows] if base else rows
    row_prefix = np.concatenate(coarse_prefix)[rows] if base else rows
    row_depth = depth[row_service]
    fregion = row_prefix // _P10[row_depth - fr_digits]

    def cells_of(
        cover: _Coverage, extra: IntArray
    ) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """Dense cell per row: rows whose longest covering prefix (for the row's service)
        and `extra` agree. Returns (cell per row, then per cell: service, prefix, prefix
        length)."""
        length, position = cover.longest(row_prefix, row_depth, row_service)
        span = int(extra.max(initial=0)) + 1
        key = ((position + 1) * n_services + row_service) * span + extra
        cell, first = dense(key)
        size = length[first]
        prefix = row_prefix[first] // _P10[row_depth[first] - size]
        return cell, row_service[first], prefix, size

    def code(prefix: int, length: int) -> str:
        return f"{prefix:0{length}d}" if length else ""

    ocell_of_row, oc_service, oc_prefix, oc_len = cells_of(org_cover, fregion)
    oc_fregion = np.zeros(len(oc_service), dtype=np.int64)
    oc_fregion[ocell_of_row] = fregion
    ocells = [
        OCell(services[s], code(p, ln), f"{fr:0{fr_digits}d}" if fairness else "")
        for s, p, ln, fr in zip(
            oc_service.tolist(),
            oc_prefix.tolist(),
            oc_len.tolist(),
            oc_fregion.tolist(),
            strict=True,
        )
    ]
    ocell_cov_start, cov_target, cov_level = org_cover.covering(oc_service, oc_prefix, oc_len)
    rcell_of_row, rc_service, rc_prefix, rc_len = cells_of(res_cover, np.zeros(len(rows), np.int64))
    rc_start, rc_target, rc_level = res_cover.covering(rc_service, rc_prefix, rc_len)
    row_of_coarse = np.full(base, -1, dtype=np.int64)
    row_of_coarse[rows] = np.arange(len(rows), dtype=np.int64)
    need_row = row_of_coarse[need_coarse]
    need_ocell = ocell_of_row[need_row]
    need_rcell = rcell_of_row[need_row]

    # ---- resource signatures: per (resource cell, categories) the resources that match
    # Categories as bit masks: a resource serves a need when their masks intersect.
    bit: dict[str, int] = {}
    for r in resources:
        for cat in r.target_categories:
            bit.setdefault(cat, 1 << len(bit))
    if len(bit) > 62:
        raise ValueError(f"{len(bit)} distinct target categories: at most 62 are supported")
    target_mask = np.zeros(n_offers + len(resources), dtype=np.int64)
    target_mask[n_offers:] = [sum(bit[c] for c in set(r.target_categories)) for r in resources]
    set_mask = np.array(
        [sum(bit.get(c, 0) for c in set(cs)) for cs in cols.category_sets] or [0], dtype=np.int64
    )
    # The categories targeted by some resource of the cell are all that matter.
    rc_row = np.repeat(np.arange(len(rc_service), dtype=np.int64), np.diff(rc_start))
    rc_union = np.zeros(len(rc_service), dtype=np.int64)
    np.bitwise_or.at(rc_union, rc_row, target_mask[rc_target])
    need_mask = set_mask[cols.categories] & rc_union[need_rcell]
    n_rc = len(rc_service)
    # Signature candidates ("combos"): every resource cell with no category (its needs
    # match nothing), then each distinct (cell, categories) of needs that match something.
    sel = np.flatnonzero(need_mask)
    combo_of_sel, combo_first = dense(
        need_rcell[sel] * (int(need_mask.max(initial=0)) + 1) + need_mask[sel]
    )
    c_rcell = np.concatenate((np.arange(n_rc, dtype=np.int64), need_rcell[sel[combo_first]]))
    c_mask = np.concatenate((np.zeros(n_rc, dtype=np.int64), need_mask[sel[combo_first]]))
    owner, entry, _ = csr_gather(rc_start, c_rcell)
    matches = (target_mask[rc_target[entry]] & c_mask[owner]) != 0
    owner, entry = owner[matches], entry[matches]
    # Combos with the same matching resources in the same cell are one signature.
    position = entry - rc_start[c_rcell[owner]]
    if int(position.max(initial=0)) < 62:
        matched = np.zeros(len(c_rcell), dtype=np.int64)
        np.bitwise_or.at(matched, owner, np.left_shift(1, position))
    else:  # a cell with more resources than bits: name the matching lists instead
        lists: dict[tuple[int, ...], int] = {}
        bounds = _starts(owner, len(c_rcell)).tolist()
        targets = rc_target[entry].tolist()
        matched = np.array(
            [lists.setdefault(tuple(targets[a:b]), len(lists)) for a, b in pairwise(bounds)],
            dtype=np.int64,
        )
    _, rep, combo_rsig = np.unique(
        np.stack((c_rcell, matched), axis=1), axis=0, return_index=True, return_inverse=True
    )
    combo_rsig = combo_rsig.ravel().astype(np.int64)
    rsig_rcell = c_rcell[rep]
    rc_prefix_code = [
        code(p, ln) for p, ln in zip(rc_prefix.tolist(), rc_len.tolist(), strict=True)
    ]
    rc_service_list, rc_cover = rc_service.tolist(), np.diff(rc_start).tolist()
    rsigs = [
        RSig(services[rc_service_list[rc]], rc_prefix_code[rc], rc_cover[rc])
        for rc in rsig_rcell.tolist()
    ]
    need_rsig = combo_rsig[:n_rc][need_rcell]
    need_rsig[sel] = combo_rsig[n_rc:][combo_of_sel]
    # The matching resources of each signature (from its first combo), in cell order.
    is_rep = np.zeros(len(c_rcell), dtype=bool)
    is_rep[rep] = True
    keep = is_rep[owner]
    rep_rsig = combo_rsig[owner[keep]]
    order = np.argsort(rep_rsig, kind="stable")
    rs_cov_start = _starts(rep_rsig, len(rsigs))
    rs_cov_target = rc_target[entry[keep]][order]
    rs_cov_level = rc_level[entry[keep]][order]

    # ---- candidates: offers per ocell, resources per rsig (active only), best fit first
    (oc_start, cand_target, cand_close, cand_fit, oc_cover, oc_cover_el) = _candidates(
        ocell_cov_start, cov_target, cov_level, active, target_eligible, fit_base, points
    )
    (rs_start, rs_target, rs_close, rs_fit, rs_cover, rs_cover_el) = _candidates(
        rs_cov_start, rs_cov_target, rs_cov_level, active, target_eligible, fit_base, points
    )
    has_orgs = oc_start[1:] > oc_start[:-1]
    has_resources = rs_start[1:] > rs_start[:-1]

    # ---- groups (ocell, rsig, priority); needs most urgent, longest waiting first
    p_span = int(need_priority.max(initial=0)) + 1
    waited = cols.waiting_days
    # Within a group: most urgent, then longest waiting (22 bits), then input order.
    sub = (4 - cols.urgency) << 20 | ((1 << 20) - 1 - np.minimum(waited, (1 << 20) - 1))
    index_bits = max(1, (n - 1).bit_length())
    if options.collapse:
        # An rsig nobody can use does not split needs that organisations can serve.
        key_rsig = np.where(has_orgs[need_ocell] & ~has_resources[need_rsig], -1, need_rsig)
        raw = (need_ocell * (len(rsigs) + 1) + key_rsig + 1) * p_span + need_priority
        if int(raw.max(initial=0)).bit_length() + 22 + index_bits > 63:
            raw, _ = dense(raw)
        if int(raw.max(initial=0)).bit_length() + 22 + index_bits <= 63:
            # One sort gives both the groups and the order of needs within them. The keys
            # are unique (the input position is in them), so the fast unstable sort gives
            # the same order as a stable one (a third of its time on a million needs).
            shift = 22 + index_bits
            key = (raw << shift) | (sub << index_bits) | np.arange(n, dtype=np.int64)
            need_order = np.argsort(key)
            sorted_raw = key[need_order] >> shift
        else:  # more than about a million needs: a stable sort of (group, sub)
            need_order = np.argsort((raw << 22) | sub, kind="stable")
            sorted_raw = raw[need_order]
        new = np.ones(n, dtype=bool)
        new[1:] = sorted_raw[1:] != sorted_raw[:-1]
        need_group = np.empty(n, dtype=np.int64)
        need_group[need_order] = np.cumsum(new) - 1
    else:
        need_group = np.arange(n, dtype=np.int64)
        need_order = need_group.copy()
    group_size = np.bincount(need_group, minlength=int(need_group.max(initial=-1)) + 1)
    group_start = np.zeros(len(group_size) + 1, dtype=np.int64)
    np.cumsum(group_size, out=group_start[1:])
    first_need = need_order[group_start[:-1]]
    group_priority = need_priority[first_need]
    group_ocell = need_ocell[first_need]
    group_rsig = need_rsig[first_need]

    # ---- fit levels: runs of equal fit within an ocell's candidates
    cand_ocell = np.repeat(np.arange(len(ocells), dtype=np.int64), np.diff(oc_start))
    new_level = np.ones(len(cand_target), dtype=bool)
    new_level[1:] = (cand_ocell[1:] != cand_ocell[:-1]) | (cand_fit[1:] != cand_fit[:-1])
    level_first = np.flatnonzero(new_level)
    level_start = np.append(level_first, len(cand_target)).astype(np.int64)
    level_fit = cand_fit[level_first]
    ocell_level_start = np.searchsorted(level_first, oc_start).astype(np.int64)

    # ---- resource arcs: each group's usable resources; resource levels: runs of equal
    # fit within an rsig's resources (a group's arcs into one level have one value)
    rarc_group, r_idx, r_start = csr_gather(rs_start, group_rsig)
    rarc_fit = rs_fit[r_idx]
    rs_row = np.repeat(np.arange(len(rsigs), dtype=np.int64), np.diff(rs_start))
    new_rlevel = np.ones(len(rs_target), dtype=bool)
    new_rlevel[1:] = (rs_row[1:] != rs_row[:-1]) | (rs_fit[1:] != rs_fit[:-1])
    rlevel_start = np.append(np.flatnonzero(new_rlevel), len(rs_target)).astype(np.int64)

    # ---- fairness nodes: one per (offer, fairness region); cap from the region's open needs
    cand_fnode = np.full(len(cand_target), -1, dtype=np.int64)
    fnode_target = np.zeros(0, dtype=np.int64)
    fnode_region: list[str] = []
    fnode_cap = np.zeros(0, dtype=np.int64)
    fnode_open = np.zeros(0, dtype=np.int64)
    if fairness is not None and len(cand_target):
        fregions, ocell_fregion = np.unique(oc_fregion, return_inverse=True)
        ocell_fregion = ocell_fregion.astype(np.int64)
        n_fr = len(fregions)
        demand = np.bincount(
            ocell_fregion[need_ocell] * n_services + oc_service[need_ocell],
            minlength=n_fr * n_services,
        )
        inverse, first = dense(cand_target * n_fr + ocell_fregion[cand_ocell])
        cand_fnode = inverse
        fnode_target = cand_target[first]
        fr_of = ocell_fregion[cand_ocell[first]]
        fnode_region = [f"{int(fregions[i]):0{fr_digits}d}" for i in fr_of.tolist()]
        fnode_open = demand[fr_of * n_services + oc_service[cand_ocell[first]]]
        fnode_cap = np.array([fairness.cap(int(d)) for d in fnode_open.tolist()], np.int64)

    # ---- hubs (candidate list, priority) and their arcs to the levels of the hub's ocell.
    # Ocells whose candidate lists are equal (the same offers at the same closeness, fit
    # and fairness node, in the same order: an ineligible or full township organisation
    # splits a county's ocells but not their candidates) share their hubs.
    with_orgs = np.flatnonzero(has_orgs[group_ocell])
    hubs = _Hubs.of(
        _same_lists(oc_start, cand_target, cand_close, cand_fnode)[group_ocell]
        if options.collapse
        else None,
        with_orgs,
        group_ocell,
        group_priority,
        ocell_level_start,
        level_fit,
    )

    return Problem(
        columns=cols,
        organisations=organisations,
        resources=resources,
        scoring=scoring,
        fairness=fairness,
        n_offers=n_offers,
        target_kind=target_kind,
        target_ref=target_ref,
        target_service=offer_service + [""] * len(resources),
        target_capacity=target_capacity,
        target_eligible=target_eligible,
        target_credit=target_credit,
        target_satisfaction=target_satisfaction,
        ocells=ocells,
        rsigs=rsigs,
        ocell_cov_start=ocell_cov_start,
        cov_target=cov_target,
        cov_closeness=cov_level,
        rsig_cov_start=rs_cov_start,
        rsig_cov_target=rs_cov_target,
        rsig_cov_closeness=rs_cov_level,
        need_priority=need_priority,
        need_rsig=need_rsig,
        need_group=need_group,
        need_order=need_order,
        group_start=group_start,
        group_size=group_size.astype(np.int64),
        group_priority=group_priority,
        group_ocell=group_ocell,
        group_rsig=group_rsig,
        group_hub=hubs.group_hub,
        group_rarc_start=r_start,
        ocell_cand_start=oc_start,
        cand_target=cand_target,
        cand_closeness=cand_close.astype(np.int8),
        cand_fit=cand_fit,
        cand_fnode=cand_fnode,
        ocell_level_start=ocell_level_start,
        level_start=level_start,
        level_fit=level_fit,
        hub_ocell=hubs.hub_ocell,
        hub_priority=hubs.hub_priority,
        hub_arc_start=hubs.hub_arc_start,
        harc_hub=hubs.harc_hub,
        harc_level=hubs.harc_level,
        harc_value=hubs.harc_value,
        rarc_group=rarc_group,
        rarc_target=rs_target[r_idx],
        rarc_closeness=rs_close[r_idx].astype(np.int8),
        rarc_fit=rarc_fit,
        rarc_value=group_priority[rarc_group] * rarc_fit,
        rcand_target=rs_target,
        rlevel_start=rlevel_start,
        rarc_rlevel=(np.cumsum(new_rlevel) - 1)[r_idx],
        fnode_target=fnode_target,
        fnode_region=fnode_region,
        fnode_cap=fnode_cap,
        fnode_open_needs=fnode_open,
        ocell_cover=oc_cover,
        ocell_cover_eligible=oc_cover_el,
        rsig_cover=rs_cover,
        rsig_cover_eligible=rs_cover_el,
        source_needs=source,
    )
