"""The greedy baseline the exact engine is compared with.

Groups are taken highest priority first (priority = urgency + waiting + vulnerability, so
the most urgent first; ties in group order); each takes its best-scoring candidates that
still have room, in turn, until its needs are placed or its candidates are full. This is a
caseworker's "most urgent first, best provider with room" rule on the same collapsed
instance (a group's needs are interchangeable, so greedy per group is greedy per need in
that order). It never beats the optimum.
"""

from __future__ import annotations

import numpy as np

from services.matching.engine.problem import OFFER, RESOURCE, IntArray, Problem


def greedy_pairs(problem: Problem) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """(group, kind, src, count) pairs of the greedy rule (kinds as in `AllocationResult`)."""
    p = problem
    cap_left = p.target_capacity.tolist()
    fair_left = p.fnode_cap.tolist()
    cand_target = p.cand_target.tolist()
    cand_fit = p.cand_fit.tolist()
    cand_fnode = p.cand_fnode.tolist()
    rarc_target = p.rarc_target.tolist()
    rarc_fit = p.rarc_fit.tolist()
    oc_start = p.ocell_cand_start.tolist()
    r_start = p.group_rarc_start.tolist()
    group_hub = p.group_hub.tolist()
    group_ocell = p.group_ocell.tolist()
    size = p.group_size.tolist()
    out_group: list[int] = []
    out_kind: list[int] = []
    out_src: list[int] = []
    out_count: list[int] = []
    order = np.lexsort((np.arange(p.n_groups), -p.group_priority)).tolist()
    for g in order:
        cands = [(-rarc_fit[r], RESOURCE, r) for r in range(r_start[g], r_start[g + 1])]
        if group_hub[g] >= 0:
            c = group_ocell[g]
            cands += [(-cand_fit[k], OFFER, k) for k in range(oc_start[c], oc_start[c + 1])]
        cands.sort()
        want = size[g]
        for _, kind, src in cands:
            if kind == OFFER:
                t, f = cand_target[src], cand_fnode[src]
            else:
                t, f = rarc_target[src], -1
            room = cap_left[t] if f < 0 else min(cap_left[t], fair_left[f])
            if room <= 0:
                continue
            take = min(want, room)
            cap_left[t] -= take
            if f >= 0:
                fair_left[f] -= take
            out_group.append(g)
            out_kind.append(kind)
            out_src.append(src)
            out_count.append(take)
            want -= take
            if want == 0:
                break
    return (
        np.array(out_group, dtype=np.int64),
        np.array(out_kind, dtype=np.int64),
        np.array(out_src, dtype=np.int64),
        np.array(out_count, dtype=np.int64),
    )
