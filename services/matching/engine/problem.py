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
  (cost 0) and only the hub carries organisation arcs.
* A *level* is (ocell, fit): the candidates of an ocell with equal fit. A hub has one arc
  per level (value priority × fit) and each level one arc per candidate (cost 0): every
  unit through hub h and level l is worth h's priority × l's fit whichever candidate of the
  level takes it, so this is the same as one arc per (hub, candidate), with
  hubs × levels + candidates arcs instead of hubs × candidates (fits are small integers:
  in bench instance A an ocell's 25 candidates share 7 or 8 levels).

Any flow on this graph splits into per-need assignments with the same total (needs of a
group are interchangeable, groups of a hub too for the organisations, candidates of a level
for the hub), and any per-need assignment sums into such a flow, so the optima are equal.
The tests check it against a solver that never groups (`EngineOptions(collapse=False)`: one
group and one hub per need) and against `scipy.optimize.linear_sum_assignment`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from services.matching.engine.model import (
    LEVELS,
    CharityResource,
    EngineOptions,
    FairnessCap,
    FitParts,
    Need,
    OrganisationSupply,
    Scoring,
    division_prefix,
)

IntArray = npt.NDArray[np.int64]
H = TypeVar("H", bound=Hashable)

OFFER, RESOURCE = 0, 1
_P10 = np.array([10**k for k in range(13)], dtype=np.int64)


@dataclass
class OCell:
    """Needs of one service whose organisation region (and fairness region) are equal."""

    service_code: str
    prefix: str  # organisation region: longest organisation prefix covering ("" none)
    fairness_region: str
    # Every offer covering the cell, eligible or not: (target, closeness digits).
    offers: list[tuple[int, int]]


@dataclass
class RSig:
    """Resources that may serve a group: covering region and service, matching category."""

    service_code: str
    prefix: str  # resource region: longest resource prefix covering ("" none)
    resources: list[tuple[int, int]]  # (target, closeness digits), eligible or not
    covering: int  # resources covering region and service, any category


@dataclass
class Problem:
    """A collapsed allocation instance (numpy arrays, dense indices).

    Targets: offers `0 … n_offers-1`, then resources.
    Groups: needs `need_order[group_start[g]:group_start[g + 1]]` (most urgent, then longest
    waiting, then input order first); `group_hub[g]` (-1: no organisation candidate);
    resource arcs `group_rarc_start[g]:group_rarc_start[g + 1]`.
    Candidates of ocell c: `ocell_cand_start[c]:ocell_cand_start[c + 1]` (`cand_*`), best
    fit first, in levels `ocell_level_start[c]:…`, level l being candidates
    `level_start[l]:level_start[l + 1]`. Hub h's arcs `hub_arc_start[h]:…` (`harc_*`) go to
    the levels of its ocell, best first. `cand_fnode` is the fairness node (-1 none).
    """

    needs: Sequence[Need]
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
    # cells
    ocells: list[OCell]
    rsigs: list[RSig]
    # needs and groups
    need_priority: IntArray
    need_rsig: IntArray
    need_group: IntArray
    need_order: IntArray
    group_start: IntArray
    group_size: IntArray
    group_priority: IntArray
    group_ocell: IntArray
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


def _factorize(values: list[H]) -> tuple[IntArray, list[H]]:
    """Dense codes of hashable values (first-seen order) and the distinct values."""
    distinct = list(dict.fromkeys(values))
    index = {v: i for i, v in enumerate(distinct)}
    codes = np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))
    return codes, distinct


def dense(keys: IntArray) -> tuple[IntArray, IntArray]:
    """(id of each key, first position of each id), ids in increasing key order."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    new = np.empty(len(keys), dtype=bool)
    if len(keys):
        new[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    ids = np.cumsum(new) - 1
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = ids
    return inverse, order[new]


def csr_gather(ptr: IntArray, which: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Expand rows `which` of a CSR layout: (owner position per item, data index per item,
    start of each owner's items in the output)."""
    counts = ptr[which + 1] - ptr[which]
    out_start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    total = int(out_start[-1])
    owner = np.repeat(np.arange(len(which), dtype=np.int64), counts)
    shift = np.repeat(ptr[which] - out_start[:-1], counts)
    return owner, shift + np.arange(total, dtype=np.int64), out_start


def _longest_prefix(
    region_int: IntArray, services: list[str], used: dict[tuple[str, int], list[int]]
) -> IntArray:
    """Length of the longest used prefix per (region, service); 0 when none covers."""
    out = np.zeros((len(region_int), len(services)), dtype=np.int64)
    for si, service in enumerate(services):
        for level in LEVELS:  # shortest first: a longer covering prefix overrides
            prefixes = used.get((service, level))
            if prefixes:
                hit = np.isin(region_int // _P10[12 - level], np.array(prefixes, np.int64))
                out[hit, si] = level
    return out


def _covering(
    index: dict[tuple[str, str], list[int]], service: str, prefix: str
) -> list[tuple[int, int]]:
    """Entries of `index` covering `prefix` for `service`, each with its longest level."""
    seen: dict[int, int] = {}
    for level in reversed(LEVELS):
        if level <= len(prefix):
            for t in index.get((service, prefix[:level]), ()):
                seen.setdefault(t, level)
    return list(seen.items())


def _candidates(
    entries: list[list[tuple[int, int]]],
    active: list[bool],
    eligible: list[bool],
    fit_of: list[int],
    closeness_points: list[int],
) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray, IntArray]:
    """CSR of the active entries per row, best fit first (then target), and per row the
    number of covering entries and of eligible ones: (start, target, closeness, fit,
    cover, cover_eligible)."""
    start = [0]
    target: list[int] = []
    close: list[int] = []
    fit: list[int] = []
    cover = np.zeros(len(entries), dtype=np.int64)
    cover_eligible = np.zeros(len(entries), dtype=np.int64)
    for k, row in enumerate(entries):
        cover[k] = len(row)
        cover_eligible[k] = sum(1 for t, _ in row if eligible[t])
        cands = sorted((-(closeness_points[lv] + fit_of[t]), t, lv) for t, lv in row if active[t])
        target += [t for _, t, _ in cands]
        close += [lv for _, _, lv in cands]
        fit += [-f for f, _, _ in cands]
        start.append(len(target))
    return (
        np.array(start, dtype=np.int64),
        np.array(target, dtype=np.int64),
        np.array(close, dtype=np.int64),
        np.array(fit, dtype=np.int64),
        cover,
        cover_eligible,
    )


# --------------------------------------------------------------------------- building


def build_problem(
    needs: Sequence[Need],
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
    n = len(needs)

    # ---- targets: offers (organisation × service), then resources
    prefix_of = cache(division_prefix)
    offer_org: list[int] = []
    offer_service: list[str] = []
    offer_cap: list[int] = []
    offer_index: dict[tuple[str, str], list[int]] = {}
    for oi, org in enumerate(organisations):
        for service, cap in org.capacity.items():
            t = len(offer_org)
            offer_org.append(oi)
            offer_service.append(service)
            offer_cap.append(max(0, int(cap)))
            for p in sorted({prefix_of(r) for r in org.regions_for(service)}):
                offer_index.setdefault((service, p), []).append(t)
    n_offers = len(offer_org)
    res_index: dict[tuple[str, str], list[int]] = {}
    for ri, res in enumerate(resources):
        prefixes = sorted({prefix_of(r) for r in res.regions})
        for service in sorted(set(res.service_codes)):
            for p in prefixes:
                res_index.setdefault((service, p), []).append(n_offers + ri)
    target_kind = np.array([OFFER] * n_offers + [RESOURCE] * len(resources), dtype=np.int8)
    target_ref = np.array(offer_org + list(range(len(resources))), dtype=np.int64)
    target_capacity = np.array(offer_cap + [max(0, r.remaining) for r in resources], np.int64)
    target_eligible = np.array(
        [organisations[o].is_eligible for o in offer_org] + [r.is_eligible for r in resources],
        dtype=bool,
    )
    org_base = [
        scoring.credit(o.credit_score) + scoring.satisfaction(o.satisfaction) for o in organisations
    ]
    fit_base = [org_base[o] for o in offer_org] + [
        scoring.credit(r.credit_score) + scoring.satisfaction(r.satisfaction) for r in resources
    ]
    active = (target_eligible & (target_capacity > 0)).tolist()
    eligible_list = target_eligible.tolist()
    closeness_points = scoring.closeness_points

    # ---- needs as columns; priority
    region_codes, regions = _factorize(list(map(attrgetter("region_code"), needs)))
    service_codes, services = _factorize(list(map(attrgetter("service_code"), needs)))
    category_codes, category_sets = _factorize(list(map(attrgetter("categories"), needs)))
    urgency = np.fromiter(map(attrgetter("urgency"), needs), dtype=np.int64, count=n)
    waited = np.fromiter(map(attrgetter("waiting_days"), needs), dtype=np.int64, count=n)
    urgency_points = np.zeros(5, dtype=np.int64)
    for u, pts in scoring.urgency_points.items():
        urgency_points[u] = pts
    vulnerability = np.array(
        [scoring.vulnerability(cs)[0] for cs in category_sets] or [0], dtype=np.int64
    )
    steps = np.minimum(waited // scoring.waiting_step_days, scoring.waiting_cap_steps)
    need_priority = (
        urgency_points[urgency]
        + steps * scoring.waiting_points_per_step
        + vulnerability[category_codes]
    )

    # ---- ocells and resource regions per distinct (region, service)
    n_regions, n_services = len(regions), len(services)
    region_int = np.array([int(r) for r in regions], dtype=np.int64)
    org_used: dict[tuple[str, int], list[int]] = {}
    for s, p in offer_index:
        org_used.setdefault((s, len(p)), []).append(int(p))
    res_used: dict[tuple[str, int], list[int]] = {}
    for s, p in res_index:
        res_used.setdefault((s, len(p)), []).append(int(p))
    org_len = _longest_prefix(region_int, services, org_used)
    res_len = _longest_prefix(region_int, services, res_used)
    fr_digits = fairness.region_digits if fairness else 0
    fregion = region_int // _P10[12 - fr_digits] if fairness else np.zeros(n_regions, np.int64)
    pair = region_codes * n_services + service_codes  # row of a need in the tables below
    occupied = np.zeros(n_regions * n_services, dtype=bool)
    occupied[pair] = True

    def cells_of(length: IntArray, extra: IntArray) -> tuple[IntArray, list[list[int]]]:
        """Dense cell per (region, service) row from (prefix, length, service, extra)."""
        rows = np.flatnonzero(occupied)
        region_of, service_of = rows // n_services, rows % n_services
        size = length.ravel()[rows]
        prefix = region_int[region_of] // _P10[12 - size]
        key, _ = dense(prefix * 13 + size)  # prefix < 10¹²: no overflow
        key, _ = dense(key * n_services + service_of)
        key, first = dense(key * (int(extra.max(initial=0)) + 1) + extra[region_of])
        cell = np.full(n_regions * n_services, -1, dtype=np.int64)
        cell[rows] = key
        distinct = np.stack(
            [prefix[first], size[first], service_of[first], extra[region_of[first]]], axis=1
        )
        return cell, distinct.tolist()

    ocell_of_pair, ocell_rows = cells_of(org_len, fregion)
    rcell_of_pair, rcell_rows = cells_of(res_len, np.zeros(n_regions, np.int64))
    ocells = [
        OCell(
            services[si],
            f"{prefix:0{length}d}" if length else "",
            f"{fr:0{fr_digits}d}" if fairness else "",
            _covering(offer_index, services[si], f"{prefix:0{length}d}" if length else ""),
        )
        for prefix, length, si, fr in ocell_rows
    ]
    rcell_resources = [
        _covering(res_index, services[si], f"{prefix:0{length}d}" if length else "")
        for prefix, length, si, _ in rcell_rows
    ]
    rcell_prefix = [f"{prefix:0{length}d}" if length else "" for prefix, length, _, _ in rcell_rows]
    rcell_service = [services[si] for _, _, si, _ in rcell_rows]
    need_ocell = ocell_of_pair[pair]
    need_rcell = rcell_of_pair[pair]

    # ---- resource signatures: per (resource region, category set) the matching resources
    rsig_ids: dict[tuple[int, tuple[int, ...]], int] = {}
    rsigs: list[RSig] = []

    def rsig_of(rcell: int, matching: list[tuple[int, int]]) -> int:
        key = (rcell, tuple(t for t, _ in matching))
        found = rsig_ids.get(key)
        if found is None:
            found = rsig_ids[key] = len(rsigs)
            rsigs.append(
                RSig(
                    rcell_service[rcell],
                    rcell_prefix[rcell],
                    matching,
                    len(rcell_resources[rcell]),
                )
            )
        return found

    # Categories as bit masks: a resource serves a need when their masks intersect.
    bit: dict[str, int] = {}
    for r in resources:
        for cat in r.target_categories:
            bit.setdefault(cat, 1 << len(bit))
    target_mask = [sum(bit[c] for c in set(r.target_categories)) for r in resources]
    set_mask = np.array(
        [sum(bit.get(c, 0) for c in set(cs)) for cs in category_sets] or [0], dtype=np.int64
    )
    empty_sig = [rsig_of(k, []) for k in range(len(rcell_rows))]
    need_rsig = np.array(empty_sig, dtype=np.int64)[need_rcell] if n else need_rcell
    with_resources = np.array([bool(x) for x in rcell_resources] or [False], dtype=bool)
    sel = np.flatnonzero(with_resources[need_rcell] & (set_mask[category_codes] > 0))
    if len(sel):
        mask = set_mask[category_codes[sel]]
        mask_id, mask_first = dense(mask)
        inverse, first = dense(need_rcell[sel] * len(mask_first) + mask_id)
        sig = np.empty(len(first), dtype=np.int64)
        for k, (rcell, m) in enumerate(
            zip(need_rcell[sel[first]].tolist(), mask[first].tolist(), strict=True)
        ):
            matching = [
                (t, lv) for t, lv in rcell_resources[rcell] if target_mask[t - n_offers] & m
            ]
            sig[k] = rsig_of(rcell, matching)
        need_rsig[sel] = sig[inverse]

    # ---- candidates: offers per ocell, resources per rsig (active only), best fit first
    points = [0] * 13
    for level, pts in closeness_points.items():
        points[level] = pts
    (oc_start, cand_target, cand_close, cand_fit, oc_cover, oc_cover_el) = _candidates(
        [oc.offers for oc in ocells], active, eligible_list, fit_base, points
    )
    (rs_start, rs_target, rs_close, rs_fit, rs_cover, rs_cover_el) = _candidates(
        [rs.resources for rs in rsigs], active, eligible_list, fit_base, points
    )
    has_orgs = oc_start[1:] > oc_start[:-1]
    has_resources = rs_start[1:] > rs_start[:-1]

    # ---- groups (ocell, rsig, priority); needs most urgent, longest waiting first
    p_span = int(need_priority.max(initial=0)) + 1
    sub = (4 - urgency) * (1 << 20) + ((1 << 20) - 1 - np.minimum(waited, (1 << 20) - 1))
    if options.collapse:
        # An rsig nobody can use does not split needs that organisations can serve.
        key_rsig = np.where(has_orgs[need_ocell] & ~has_resources[need_rsig], -1, need_rsig)
        raw = (need_ocell * (len(rsigs) + 1) + key_rsig + 1) * p_span + need_priority
        if int(raw.max(initial=0)) < 1 << 40:
            # One sort gives both the groups and the order of needs within them.
            need_order = np.argsort((raw << 23) | sub, kind="stable")
            sorted_raw = raw[need_order]
            new = np.ones(n, dtype=bool)
            new[1:] = sorted_raw[1:] != sorted_raw[:-1]
            need_group = np.empty(n, dtype=np.int64)
            need_group[need_order] = np.cumsum(new) - 1
        else:
            need_group, _ = dense(raw)
            need_order = np.argsort((need_group << 23) | sub, kind="stable")
    else:
        need_group = np.arange(n, dtype=np.int64)
        need_order = need_group.copy()
    group_size = np.bincount(need_group, minlength=int(need_group.max(initial=-1)) + 1)
    group_start = np.concatenate(([0], np.cumsum(group_size))).astype(np.int64)
    first_need = need_order[group_start[:-1]]
    group_priority = need_priority[first_need]
    group_ocell = need_ocell[first_need]
    group_rsig = need_rsig[first_need]
    n_groups = len(group_size)

    # ---- fit levels: runs of equal fit within an ocell's candidates
    cand_ocell = np.repeat(np.arange(len(ocells), dtype=np.int64), np.diff(oc_start))
    new_level = np.ones(len(cand_target), dtype=bool)
    new_level[1:] = (cand_ocell[1:] != cand_ocell[:-1]) | (cand_fit[1:] != cand_fit[:-1])
    level_first = np.flatnonzero(new_level)
    level_start = np.append(level_first, len(cand_target)).astype(np.int64)
    level_fit = cand_fit[level_first]
    ocell_level_start = np.searchsorted(level_first, oc_start).astype(np.int64)

    # ---- hubs (ocell, priority) and their arcs to the ocell's levels
    group_hub = np.full(n_groups, -1, dtype=np.int64)
    with_orgs = np.flatnonzero(has_orgs[group_ocell])
    if options.collapse:
        hub_of, first_group = dense(group_ocell[with_orgs] * p_span + group_priority[with_orgs])
    else:
        hub_of = first_group = np.arange(len(with_orgs), dtype=np.int64)
    group_hub[with_orgs] = hub_of
    hub_ocell = group_ocell[with_orgs[first_group]]
    hub_priority = group_priority[with_orgs[first_group]]
    harc_hub, harc_level, hub_arc_start = csr_gather(ocell_level_start, hub_ocell)
    harc_value = hub_priority[harc_hub] * level_fit[harc_level]

    # ---- resource arcs: each group's usable resources
    rarc_group, r_idx, r_start = csr_gather(rs_start, group_rsig)
    rarc_fit = rs_fit[r_idx]

    # ---- fairness nodes: one per (offer, fairness region); cap from the region's open needs
    cand_fnode = np.full(len(cand_target), -1, dtype=np.int64)
    fnode_target = np.zeros(0, dtype=np.int64)
    fnode_region: list[str] = []
    fnode_cap = np.zeros(0, dtype=np.int64)
    fnode_open = np.zeros(0, dtype=np.int64)
    if fairness is not None and len(cand_target):
        ocell_fregion, fregions = _factorize([oc.fairness_region for oc in ocells])
        service_index = {s: i for i, s in enumerate(services)}
        ocell_service = np.array([service_index[oc.service_code] for oc in ocells], np.int64)
        n_fr = len(fregions)
        demand = np.bincount(
            ocell_fregion[need_ocell] * n_services + ocell_service[need_ocell],
            minlength=n_fr * n_services,
        )
        inverse, first = dense(cand_target * n_fr + ocell_fregion[cand_ocell])
        cand_fnode = inverse
        fnode_target = cand_target[first]
        fr_of = ocell_fregion[cand_ocell[first]]
        fnode_region = [fregions[i] for i in fr_of.tolist()]
        fnode_open = demand[fr_of * n_services + ocell_service[cand_ocell[first]]]
        fnode_cap = np.array([fairness.cap(int(d)) for d in fnode_open.tolist()], np.int64)

    return Problem(
        needs=needs,
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
        ocells=ocells,
        rsigs=rsigs,
        need_priority=need_priority,
        need_rsig=need_rsig,
        need_group=need_group,
        need_order=need_order,
        group_start=group_start,
        group_size=group_size.astype(np.int64),
        group_priority=group_priority,
        group_ocell=group_ocell,
        group_hub=group_hub,
        group_rarc_start=r_start,
        ocell_cand_start=oc_start,
        cand_target=cand_target,
        cand_closeness=cand_close.astype(np.int8),
        cand_fit=cand_fit,
        cand_fnode=cand_fnode,
        ocell_level_start=ocell_level_start,
        level_start=level_start,
        level_fit=level_fit,
        hub_ocell=hub_ocell,
        hub_priority=hub_priority,
        hub_arc_start=hub_arc_start,
        harc_hub=harc_hub,
        harc_level=harc_level,
        harc_value=harc_value,
        rarc_group=rarc_group,
        rarc_target=rs_target[r_idx],
        rarc_closeness=rs_close[r_idx].astype(np.int8),
        rarc_fit=rarc_fit,
        rarc_value=group_priority[rarc_group] * rarc_fit,
        fnode_target=fnode_target,
        fnode_region=fnode_region,
        fnode_cap=fnode_cap,
        fnode_open_needs=fnode_open,
        ocell_cover=oc_cover,
        ocell_cover_eligible=oc_cover_el,
        rsig_cover=rs_cover,
        rsig_cover_eligible=rs_cover_el,
    )
