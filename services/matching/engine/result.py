"""From the flow to per-need outcomes with explanations.

Disaggregation. The flow arrives as *pairs* (group, candidate, count) (`flow.pairs_of`).
Within a group, its needs in order (most urgent, then longest waiting, then input order —
`Problem.need_order`) take its pairs in order (highest value first, then arc order). A
group's needs are interchangeable, so any such order is optimal; this one is deterministic,
gives the longest-waiting person the best-fit provider, and leaves out the most recently
opened needs first.

Explanations. Everything an explanation says is computed in bulk, as arrays, once per run
in O(pairs + arcs + groups) (`finish`): how much of each target's capacity and each
fairness cap was used, the lowest score held by each target, and per pair how many
candidates of its group scored higher and which `explain_top` of them (a prefix of its
ocell's candidates and of its resource arcs, both laid out best first). The explanations
are rendered from these on demand (or all at once, `render_all`) per *pair* (shared by
every need the pair carries) or per *group* (the "why not" of its unassigned needs) and
cached; a need's own record adds its priority parts. Rendering every outcome is
O(assignments + groups), never O(needs × providers).

A pair's explanation is rendered straight into its stored form, the JSON-ready dict, whose
parts many pairs name (a provider's capacity line, fit parts, a competitor passed over) are
made once and shared by reference: so they are read-only, and `as_dict` hands out a new
top-level dict over them. `MatchExplanation` is a view of that dict; the objects it names
are made only when read. (Making an object and then its dict per pair took twice as long.)

For an optimal flow every candidate better than the one chosen is blocked: its capacity or
fairness cap is used up (otherwise moving the need there would raise the total). Likewise
an unassigned need has no eligible candidate with room left. The explanations name these
blocked candidates with their figures.
"""

from __future__ import annotations

import gc
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from services.matching.engine.model import (
    CharityResource,
    FitParts,
    OrganisationSupply,
    PriorityParts,
    Reason,
)
from services.matching.engine.problem import OFFER, RESOURCE, IntArray, OCell, Problem, RSig

REASON_CODES: tuple[Reason, ...] = (
    Reason.no_coverage,
    Reason.capacity_exhausted,
    Reason.all_ineligible,
)


@dataclass(slots=True)
class Constraint:
    """A limit on a candidate: its capacity, a fairness cap, or its eligibility."""

    kind: str  # "capacity" | "fairness_cap" | "ineligible" | "no_capacity"
    holder: str  # "organisation <id>" or "resource <id>"
    used: int
    limit: int
    binding: bool
    text: str
    region: str | None = None
    _stored: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "holder": self.holder,
            "used": self.used,
            "limit": self.limit,
            "binding": self.binding,
            "text": self.text,
        }
        if self.region is not None:
            out["region"] = self.region
        return out

    def stored(self) -> dict[str, Any]:
        """`as_dict()`, made once and shared by every explanation naming this constraint
        (read-only)."""
        if self._stored is None:
            self._stored = self.as_dict()
        return self._stored


@dataclass(slots=True)
class Competitor:
    """A candidate the need did not get, and what stopped it."""

    kind: str  # "organisation" | "resource"
    id: str
    score: int  # what this need would have scored there
    fit: FitParts
    constraint: Constraint
    lowest_score_held: int | None  # lowest score among the needs it took in this run
    _stored: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "score": self.score,
            "fit": self.fit.as_dict(),
            "constraint": self.constraint.as_dict(),
            "lowest_score_held": self.lowest_score_held,
        }

    def stored(self) -> dict[str, Any]:
        """`as_dict()` with shared parts, made once (competitors are shared by many
        explanations; read-only)."""
        if self._stored is None:
            self._stored = {
                "kind": self.kind,
                "id": self.id,
                "score": self.score,
                "fit": self.fit.stored(),
                "constraint": self.constraint.stored(),
                "lowest_score_held": self.lowest_score_held,
            }
        return self._stored


class MatchExplanation:
    """Why this provider: the score parts and the constraints around the choice (shared by
    every need the same pair carries).

    A view of the stored form (`stored()`: the JSON-ready dict, made in bulk by the result,
    `AllocationResult.render_all`): the plain fields read it, and the objects it names (fit
    parts, constraints, competitors passed over) are made on access."""

    __slots__ = ("_pair", "_result", "_stored")

    def __init__(self, result: AllocationResult, pair: int, stored: dict[str, Any]) -> None:
        self._result = result
        self._pair = pair
        self._stored = stored

    @property
    def kind(self) -> str:
        """ "organisation" | "resource" """
        return str(self._stored["provider_kind"])

    @property
    def id(self) -> str:
        return str(self._stored["provider_id"])

    @property
    def service_code(self) -> str:
        return str(self._stored["service_code"])

    @property
    def covering_prefix(self) -> str:
        return str(self._stored["covering_prefix"])

    @property
    def priority(self) -> int:
        return int(self._stored["priority"])

    @property
    def score(self) -> int:
        return int(self._stored["score"])

    @property
    def better_candidates(self) -> int:
        """How many candidates would have scored higher (all blocked)."""
        return int(self._stored["better_candidates"])

    @property
    def candidates(self) -> int:
        """Eligible candidates with capacity at the start of the run."""
        return int(self._stored["candidates"])

    @property
    def text(self) -> str:
        return str(self._stored["text"])

    @property
    def fit(self) -> FitParts:
        return self._result._pair_fit(self._pair)

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return self._result._pair_constraints(self._pair)

    @property
    def passed_over(self) -> tuple[Competitor, ...]:
        """Better candidates that were full (best first)."""
        return self._result._pair_passed(self._pair)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form to store: a new dict each call, whose nested parts (fit,
        constraints, competitors) are shared with other explanations and must not be
        modified (made once and shared: an explanation is stored as is)."""
        return {**self._stored}

    def stored(self) -> dict[str, Any]:
        """The stored form itself (shared, read-only)."""
        return self._stored

    def __repr__(self) -> str:
        return f"MatchExplanation({self._stored!r})"


@dataclass(slots=True)
class WhyNot:
    """Why a need was left unassigned (shared by the unassigned needs of a group)."""

    reason: Reason
    text: str
    covering: int  # candidates covering item and region, eligible or not
    eligible: int
    candidates: tuple[Competitor, ...]  # the best few, with what stopped each
    _stored: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """As `MatchExplanation.as_dict`: a new dict, nested parts shared (read-only)."""
        return {**self.stored()}

    def stored(self) -> dict[str, Any]:
        if self._stored is None:
            self._stored = {
                "reason": self.reason.value,
                "text": self.text,
                "covering": self.covering,
                "eligible": self.eligible,
                "candidates": [c.stored() for c in self.candidates],
            }
        return self._stored


@dataclass(slots=True)
class Assignment:
    need_id: str
    recipient_ref: str
    region_code: str
    service_code: str
    organisation_id: str | None
    resource_id: str | None
    score: int
    priority: PriorityParts
    explanation: MatchExplanation

    def as_dict(self) -> dict[str, Any]:
        """The explanation to store with the match (JSON-ready; nested parts shared with
        other records, read-only)."""
        return {**self.explanation.stored(), "priority": self.priority.as_dict()}


@dataclass(slots=True)
class Unassigned:
    need_id: str
    recipient_ref: str
    region_code: str
    service_code: str
    reason: Reason
    priority: PriorityParts
    explanation: WhyNot

    def as_dict(self) -> dict[str, Any]:
        return {**self.explanation.stored(), "priority": self.priority.as_dict()}


@dataclass
class AllocationResult:
    """The outcome of one run: per-need and per-pair arrays, explanations rendered on demand.

    Pairs are (group, candidate, count): `pair_kind` OFFER with `pair_src` a candidate
    index (`Problem.cand_*`), or RESOURCE with `pair_src` a resource arc (`Problem.rarc_*`).
    `need_pair[i]` is the pair that carries need i (-1: unassigned). `outcome(i)`,
    `assignments()` and `unassigned()` give the records with explanations.

    The explanation data, in bulk: `pair_better` (candidates of the pair's group that
    would have scored higher: all blocked), `pair_candidates` (its eligible candidates with
    capacity), `pair_passed_kind` / `pair_passed_src` (the best `explain_top` of the higher
    ones, -1 padded), `target_used`, `fnode_used`, `target_min_value`, `group_reason`.
    """

    method: str
    problem: Problem
    pair_group: IntArray
    pair_kind: IntArray
    pair_src: IntArray
    pair_count: IntArray
    pair_target: IntArray
    pair_closeness: IntArray
    pair_fit: IntArray
    pair_fnode: IntArray
    pair_value: IntArray
    pair_better: IntArray
    pair_candidates: IntArray
    pair_passed_kind: IntArray
    pair_passed_src: IntArray
    need_pair: IntArray
    total_score: int
    target_used: IntArray
    fnode_used: IntArray
    target_min_value: IntArray  # -1: took nothing
    group_assigned: IntArray
    group_reason: IntArray  # index into REASON_CODES for groups with a remainder, else -1
    explain_top: int = 3
    stats: dict[str, float | int] = field(default_factory=dict)
    _pair_cache: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)
    _views: dict[int, MatchExplanation] = field(default_factory=dict, repr=False)
    _group_cache: dict[int, WhyNot] = field(default_factory=dict, repr=False)
    _index: dict[str, int] | None = field(default=None, repr=False)
    _cache: _Lists | None = field(default=None, repr=False)
    _row_cache: _Rows | None = field(default=None, repr=False)

    # ---- counts and usage ------------------------------------------------------------

    @property
    def assigned_count(self) -> int:
        return int((self.need_pair >= 0).sum())

    @property
    def unassigned_count(self) -> int:
        return len(self.need_pair) - self.assigned_count

    def need_target(self) -> IntArray:
        """Target index per need (-1: unassigned)."""
        if len(self.pair_target) == 0:
            return np.full(len(self.need_pair), -1, dtype=np.int64)
        safe = np.maximum(self.need_pair, 0)
        return np.where(self.need_pair >= 0, self.pair_target[safe], -1)

    def need_score(self) -> IntArray:
        """Score per need (0: unassigned)."""
        if len(self.pair_value) == 0:
            return np.zeros(len(self.need_pair), dtype=np.int64)
        safe = np.maximum(self.need_pair, 0)
        return np.where(self.need_pair >= 0, self.pair_value[safe], 0)

    def capacity_used(self) -> dict[tuple[str, str], int]:
        """(organisation id, service code) → needs assigned in this run."""
        p = self.problem
        return {
            (p.target_id(t), p.target_service[t]): int(self.target_used[t])
            for t in np.flatnonzero(self.target_used[: p.n_offers] > 0).tolist()
        }

    def resource_used(self) -> dict[str, int]:
        """Resource id → quantity used in this run."""
        p = self.problem
        return {
            p.target_id(t): int(self.target_used[t])
            for t in (p.n_offers + np.flatnonzero(self.target_used[p.n_offers :] > 0)).tolist()
        }

    # ---- per need --------------------------------------------------------------------

    def index_of(self, need_id: str) -> int:
        """Position of a need in the input."""
        if self._index is None:
            ids = self.problem.columns.need_id
            self._index = {str(x): i for i, x in enumerate(ids)}
        return self._index[need_id]

    def priority_parts(self, i: int) -> PriorityParts:
        """The priority parts of need i (as `Scoring.priority_parts` gives them)."""
        c = self._cache or self._lists()
        r = self._row_cache or self._rows()
        days, category = r.waiting_days[i], r.categories[i]
        return PriorityParts(
            c.urgency_points[r.urgency[i]],
            min(days // c.waiting_step_days, c.waiting_cap_steps) * c.waiting_points,
            c.vulnerability[category],
            c.vulnerable[category],
            days,
        )

    def outcome(self, i: int) -> Assignment | Unassigned:
        """The record of need i (its position in the input), with its explanation."""
        # Called once per need (a million in a large run): plain lists, no numpy scalars.
        r = self._row_cache or self._rows()
        parts = self.priority_parts(i)
        need_id, ref = r.need_id[i], r.recipient_ref[i]
        region, service = r.regions[r.region[i]], r.services[r.service[i]]
        k = r.pair[i]
        if k < 0:
            why = self.why_not(r.group[i])
            return Unassigned(need_id, ref, region, service, why.reason, parts, why)
        ex = self.explain_pair(k)
        if ex.kind == "organisation":
            org_id, res_id = ex.id, None
        else:
            org_id, res_id = None, ex.id
        return Assignment(need_id, ref, region, service, org_id, res_id, ex.score, parts, ex)

    def _rows(self) -> _Rows:
        if self._row_cache is None:
            self._row_cache = _Rows.of(self.problem, self)
        return self._row_cache

    def outcomes(self) -> list[Assignment | Unassigned]:
        """`outcome(i)` for every need, in input order, made in one go (with the cyclic
        garbage collector paused, as in `render_all`: a million records take a third of
        the time)."""
        with _collector_paused():
            return [self.outcome(i) for i in range(len(self.need_pair))]

    def assignments(self) -> Iterator[Assignment]:
        for i in np.flatnonzero(self.need_pair >= 0).tolist():
            out = self.outcome(i)
            assert isinstance(out, Assignment)
            yield out

    def unassigned(self) -> Iterator[Unassigned]:
        for i in np.flatnonzero(self.need_pair < 0).tolist():
            out = self.outcome(i)
            assert isinstance(out, Unassigned)
            yield out

    def render_all(self) -> tuple[int, int]:
        """Build (and cache) every explanation this result needs, in its stored form too
        (`stored`: what `as_dict` copies): one per pair and one per group with unassigned
        needs. Returns their numbers."""
        with _collector_paused():
            n_pairs = len(self.pair_group)
            self._render_pairs(range(n_pairs))
            groups = np.flatnonzero(self.group_reason >= 0).tolist()
            for g in groups:
                self.why_not(g).stored()
        return n_pairs, len(groups)

    # ---- explanations ----------------------------------------------------------------
    # Explanations read plain lists (numpy scalar access is slow) and cache what many
    # pairs share: a target's capacity line, a fairness line, fit parts, competitors.

    def _lists(self) -> _Lists:
        if self._cache is None:
            self._cache = _Lists.of(self.problem, self)
        return self._cache

    def _candidate(self, kind: int, src: int) -> tuple[int, int, int, int]:
        """(target, closeness digits, fit, fairness node) of a candidate."""
        c = self._lists()
        if kind == OFFER:
            return c.cand_target[src], c.cand_close[src], c.cand_fit[src], c.cand_fnode[src]
        return c.rarc_target[src], c.rarc_close[src], c.rarc_fit[src], -1

    def _fit(self, t: int, closeness: int) -> FitParts:
        """Fit parts of target t at a closeness (as `Problem.fit_parts`, from lists)."""
        c = self._lists()
        key = (t, closeness)
        fit = c.fits.get(key)
        if fit is None:
            fit = c.fits[key] = FitParts(
                closeness, c.closeness_points[closeness], c.credit[t], c.satisfaction[t]
            )
        return fit

    def _capacity(self, t: int) -> Constraint:
        c = self._lists()
        found = c.capacities.get(t)
        if found is not None:
            return found
        p = self.problem
        used, limit = c.target_used[t], c.target_capacity[t]
        holder = c.labels[t]
        what = f"{holder} for {p.target_service[t]}" if t < p.n_offers else holder
        if limit == 0:
            con = Constraint(
                "no_capacity", holder, 0, 0, True, f"{what} had no capacity left before this run"
            )
        else:
            full = used >= limit
            text = (
                f"capacity of {what} used up: {used}/{limit}"
                if full
                else f"capacity of {what}: {used}/{limit} used"
            )
            con = Constraint("capacity", holder, used, limit, full, text)
        c.capacities[t] = con
        return con

    def _fairness(self, f: int) -> Constraint:
        c = self._lists()
        found = c.fairness.get(f)
        if found is not None:
            return found
        p = self.problem
        t = int(p.fnode_target[f])
        used, limit = int(self.fnode_used[f]), int(p.fnode_cap[f])
        region = p.fnode_region[f]
        holder = c.labels[t]
        share = p.fairness.max_share if p.fairness else 1.0
        full = used >= limit
        text = (
            f"fairness cap of {holder} for {p.target_service[t]} in {region} "
            f"({share:.0%} of {int(p.fnode_open_needs[f])} open needs) "
            + (f"reached: {used}/{limit}" if full else f"{used}/{limit} used")
        )
        con = Constraint("fairness_cap", holder, used, limit, full, text, region)
        c.fairness[f] = con
        return con

    def _competitor(self, priority: int, kind: int, src: int) -> Competitor:
        """Candidate (kind, src) for a group of this priority, with what stops it (shared by
        every candidate entry of the same target, closeness and fairness node)."""
        c = self._lists()
        t, closeness, fit, f = self._candidate(kind, src)
        key = (priority, t, closeness, f)
        found = c.competitors.get(key)
        if found is not None:
            return found
        blocker = self._capacity(t)
        if not blocker.binding and f >= 0:
            blocker = self._fairness(f)
        low = c.target_min[t]
        found = c.competitors[key] = Competitor(
            "organisation" if kind == OFFER else "resource",
            c.ids[t],
            priority * fit,
            self._fit(t, closeness),
            blocker,
            low if low >= 0 else None,
        )
        return found

    def _ranges(self, g: int) -> tuple[int, int, int, int]:
        """Group g's candidates: its ocell's offers (if it has a hub) and its resource arcs,
        as two index ranges, each best fit first."""
        c = self._lists()
        lo = hi = 0
        if c.group_hub[g] >= 0:
            oc = c.group_ocell[g]
            lo, hi = c.oc_start[oc], c.oc_start[oc + 1]
        return lo, hi, c.r_start[g], c.r_start[g + 1]

    def _better(
        self, ranges: tuple[int, int, int, int], above: int, top: int
    ) -> tuple[int, list[tuple[int, int]]]:
        """How many candidates in `ranges` (`_ranges(g)`) have fit > `above`, and the best
        `top` of them as (kind, src). Both ranges are sorted by fit, so this bisects and
        reads prefixes."""
        c = self._lists()
        lo, hi, rlo, rhi = ranges
        n_o = bisect_left(c.cand_negfit, -above, lo, hi) - lo
        n_r = bisect_left(c.rarc_negfit, -above, rlo, rhi) - rlo
        if n_r == 0:
            return n_o, [(OFFER, i) for i in range(lo, lo + min(n_o, top))]
        firsts = [(c.cand_negfit[i], OFFER, i) for i in range(lo, lo + min(n_o, top))]
        firsts += [(c.rarc_negfit[i], RESOURCE, i) for i in range(rlo, rlo + min(n_r, top))]
        firsts.sort()
        return n_o + n_r, [(kind, src) for _, kind, src in firsts[:top]]

    def explain_pair(self, k: int) -> MatchExplanation:
        """Why the needs of pair k went to its provider (rendered once, then cached)."""
        view = self._views.get(k)
        if view is None:
            stored = self._pair_cache.get(k)
            if stored is None:
                self._render_pairs((k,))
                stored = self._pair_cache[k]
            # One view per pair, as `outcome` reads it once per need.
            view = self._views[k] = MatchExplanation(self, k, stored)
        return view

    def _pair_fit(self, k: int) -> FitParts:
        c = self._lists()
        return self._fit(c.pair_target[k], c.pair_close[k])

    def _pair_constraints(self, k: int) -> tuple[Constraint, ...]:
        c = self._lists()
        capacity = self._capacity(c.pair_target[k])
        f = c.pair_fnode[k]
        return (capacity, self._fairness(f)) if f >= 0 else (capacity,)

    def _pair_passed(self, k: int) -> tuple[Competitor, ...]:
        c = self._lists()
        priority = c.group_priority[c.pair_group[k]]
        at = k * c.top
        return tuple(
            self._competitor(priority, c.passed_kind[j], c.passed_src[j])
            for j in range(at, at + c.top)
            if c.passed_kind[j] >= 0
        )

    def _constraint_entry(self, t: int, f: int) -> tuple[list[dict[str, Any]], str]:
        """The stored constraints of a pair at target t (fairness node f, -1: none) and
        the "bound by" part of its text (cached: shared by the pairs at t)."""
        c = self._lists()
        constraints = (self._capacity(t), self._fairness(f)) if f >= 0 else (self._capacity(t),)
        binding = [con.text for con in constraints if con.binding]
        entry = c.constraint_entries[(t, f)] = (
            [con.stored() for con in constraints],
            "; bound by " + "; ".join(binding) if binding else "",
        )
        return entry

    def _render_pairs(self, ks: Iterable[int]) -> None:
        """Render the stored form of pairs `ks` (cached): the one loop that makes them, for
        one pair on demand or for all (`render_all`). Run once per pair (a hundred thousand
        in a large run), so it reads local plain lists and caches of the parts many pairs
        share (constraints, competitors, fit parts: stored once, shared by reference)."""
        c = self._cache or self._lists()
        cache = self._pair_cache
        pair_group, pair_kind, pair_target = c.pair_group, c.pair_kind, c.pair_target
        pair_close, pair_fit, pair_fnode = c.pair_close, c.pair_fit, c.pair_fnode
        pair_better, pair_candidates = c.pair_better, c.pair_candidates
        group_priority, group_ocell, group_rsig = c.group_priority, c.group_ocell, c.group_rsig
        top, passed_kind, passed_src = c.top, c.passed_kind, c.passed_src
        passed_target, passed_close, passed_fnode = c.passed_target, c.passed_close, c.passed_fnode
        competitors, entries, fits = c.competitors, c.constraint_entries, c.fits
        labels, ids = c.labels, c.ids
        ocells, rsigs = self.problem.ocells, self.problem.rsigs
        for k in ks:
            if k in cache:
                continue
            g, kind, t = pair_group[k], pair_kind[k], pair_target[k]
            closeness, fit_total, f = pair_close[k], pair_fit[k], pair_fnode[k]
            priority = group_priority[g]
            value = priority * fit_total
            constraints, bound = entries.get((t, f)) or self._constraint_entry(t, f)
            cell: OCell | RSig = ocells[group_ocell[g]] if kind == OFFER else rsigs[group_rsig[g]]
            prefix = cell.prefix[:closeness]
            fit = fits.get((t, closeness)) or self._fit(t, closeness)
            text = (
                f"{labels[t]} covers {prefix} ({closeness}-digit prefix); "
                f"score {value} = priority {priority} × fit {fit_total}{bound}"
            )
            passed: list[dict[str, Any]] = []
            at = k * top
            if top and passed_kind[at] >= 0:
                texts = []
                for j in range(at, at + top):
                    bk = passed_kind[j]
                    if bk < 0:
                        break
                    comp = competitors.get(
                        (priority, passed_target[j], passed_close[j], passed_fnode[j])
                    ) or self._competitor(priority, bk, passed_src[j])
                    passed.append(comp.stored())
                    texts.append(comp.constraint.text)
                text += f"; {pair_better[k]} higher-scoring candidate(s) had no room: " + "; ".join(
                    texts
                )
            cache[k] = {
                "provider_kind": "organisation" if kind == OFFER else "resource",
                "provider_id": ids[t],
                "service_code": cell.service_code,
                "covering_prefix": prefix,
                "score": value,
                "priority": priority,
                "fit": fit.stored(),
                "constraints": constraints,
                "passed_over": passed,
                "better_candidates": pair_better[k],
                "candidates": pair_candidates[k],
                "text": text,
            }

    def why_not(self, g: int) -> WhyNot:
        """Why the unassigned needs of group g got nothing (cached)."""
        cached = self._group_cache.get(g)
        if cached is not None:
            return cached
        p = self.problem
        c = self._lists()
        cols = p.columns
        code = int(self.group_reason[g])
        reason = REASON_CODES[code] if code >= 0 else Reason.capacity_exhausted
        first = int(p.need_order[int(p.group_start[g])])
        oc_i = c.group_ocell[g]
        oc = p.ocells[oc_i]
        rsig = c.group_rsig[g]
        rs = p.rsigs[rsig]
        service = oc.service_code
        region = cols.regions[int(cols.region[first])]
        covering = int(p.ocell_cover[oc_i] + p.rsig_cover[rsig])
        eligible = int(p.ocell_cover_eligible[oc_i] + p.rsig_cover_eligible[rsig])
        priority = c.group_priority[g]
        top = self.explain_top

        def everything() -> list[tuple[int, int]]:
            return p.ocell_offers(oc_i) + p.rsig_resources(rsig)

        def listed(t: int, lv: int, constraint: Constraint) -> Competitor:
            fit = self._fit(t, lv)
            return Competitor(
                "organisation" if t < p.n_offers else "resource",
                c.ids[t],
                priority * fit.total,
                fit,
                constraint,
                None,
            )

        candidates: tuple[Competitor, ...] = ()
        n_cands, best = self._better(self._ranges(g), 0, top)
        if reason is Reason.no_coverage:
            text = f"no contract or charity resource covers {service} in {region}"
            other = rs.covering - int(p.rsig_cover[rsig])
            if other:
                text += f" ({other} charity resource(s) cover it there but target other categories)"
        elif reason is Reason.all_ineligible:
            candidates = tuple(
                listed(
                    t,
                    lv,
                    Constraint(
                        "ineligible",
                        c.labels[t],
                        0,
                        0,
                        True,
                        f"{c.labels[t]} is {p.target_status(t)}",
                    ),
                )
                for t, lv in everything()[:top]
            )
            text = (
                f"all {covering} candidate(s) covering {service} in {region} are ineligible: "
                + ", ".join(comp.constraint.text for comp in candidates)
            )
        elif n_cands == 0:
            empty = [(t, lv) for t, lv in everything() if p.target_eligible[t]]
            candidates = tuple(listed(t, lv, self._capacity(t)) for t, lv in empty[:top])
            text = (
                f"the {eligible} eligible candidate(s) for {service} in {region} "
                "had no capacity left before this run"
            )
        else:
            candidates = tuple(self._competitor(priority, kind, src) for kind, src in best)
            text = (
                f"all {n_cands} eligible candidate(s) with capacity for {service} in "
                f"{region} were filled by higher-value needs: "
                + "; ".join(
                    comp.constraint.text
                    + (
                        f" (lowest score held {comp.lowest_score_held}, this need's {comp.score})"
                        if comp.lowest_score_held is not None
                        else ""
                    )
                    for comp in candidates
                )
            )
        why = WhyNot(reason, text, covering, eligible, candidates)
        self._group_cache[g] = why
        return why


@dataclass
class _Rows:
    """Plain-list copies of the per-need columns `outcome` reads."""

    need_id: Sequence[str]
    recipient_ref: Sequence[str]
    regions: Sequence[str]
    services: Sequence[str]
    region: list[int]
    service: list[int]
    urgency: list[int]
    waiting_days: list[int]
    categories: list[int]
    pair: list[int]
    group: list[int]

    @classmethod
    def of(cls, p: Problem, r: AllocationResult) -> _Rows:
        cols = p.columns

        def text(values: Sequence[str] | npt.NDArray[Any]) -> Sequence[str]:
            if isinstance(values, np.ndarray):
                return [str(v) for v in values.tolist()]
            return values

        return cls(
            need_id=text(cols.need_id),
            recipient_ref=text(cols.recipient_ref),
            regions=cols.regions,
            services=cols.services,
            region=cols.region.tolist(),
            service=cols.service.tolist(),
            urgency=cols.urgency.tolist(),
            waiting_days=cols.waiting_days.tolist(),
            categories=cols.categories.tolist(),
            pair=r.need_pair.tolist(),
            group=p.need_group.tolist(),
        )


@dataclass
class _Lists:
    """Plain-list copies of the arrays explanations read, and caches of shared parts."""

    cand_target: list[int]
    cand_close: list[int]
    cand_fit: list[int]
    cand_negfit: list[int]
    cand_fnode: list[int]
    rarc_target: list[int]
    rarc_close: list[int]
    rarc_fit: list[int]
    rarc_negfit: list[int]
    oc_start: list[int]
    r_start: list[int]
    group_hub: list[int]
    group_ocell: list[int]
    group_rsig: list[int]
    group_priority: list[int]
    pair_group: list[int]
    pair_kind: list[int]
    pair_target: list[int]
    pair_close: list[int]
    pair_fit: list[int]
    pair_fnode: list[int]
    pair_better: list[int]
    pair_candidates: list[int]
    top: int
    passed_kind: list[int]  # pair k's are k * top … k * top + top - 1
    passed_src: list[int]
    passed_target: list[int]
    passed_close: list[int]
    passed_fnode: list[int]
    target_used: list[int]
    target_capacity: list[int]
    target_min: list[int]
    ids: list[str]
    labels: list[str]
    credit: list[int]  # fit points per target
    satisfaction: list[int]
    closeness_points: list[int]
    urgency_points: list[int]
    waiting_step_days: int
    waiting_cap_steps: int
    waiting_points: int
    vulnerability: list[int]
    vulnerable: list[str | None]
    fits: dict[tuple[int, int], FitParts] = field(default_factory=dict)
    capacities: dict[int, Constraint] = field(default_factory=dict)
    fairness: dict[int, Constraint] = field(default_factory=dict)
    competitors: dict[tuple[int, int, int, int], Competitor] = field(default_factory=dict)
    constraint_entries: dict[tuple[int, int], tuple[list[dict[str, Any]], str]] = field(
        default_factory=dict
    )

    @classmethod
    def of(cls, p: Problem, r: AllocationResult) -> _Lists:
        ids = [o.organisation_id for o in p.organisations]
        target_ids = [ids[i] for i in p.target_ref[: p.n_offers].tolist()] + [
            res.resource_id for res in p.resources
        ]
        labels = [f"organisation {i}" for i in target_ids[: p.n_offers]] + [
            f"resource {i}" for i in target_ids[p.n_offers :]
        ]
        sc = p.scoring
        sources: list[OrganisationSupply | CharityResource] = [
            p.organisations[o] for o in p.target_ref[: p.n_offers].tolist()
        ]
        sources += p.resources
        closeness_points = [0] * 13
        for level, pts in sc.closeness_points.items():
            closeness_points[level] = pts
        urgency_points = [0] * 5
        for u, pts in sc.urgency_points.items():
            urgency_points[u] = pts
        vulnerable = [sc.vulnerability(tuple(cs)) for cs in p.columns.category_sets]
        passed_kind = r.pair_passed_kind.ravel()
        passed_src = r.pair_passed_src.ravel()
        is_org = passed_kind == OFFER
        org_src = np.where(is_org & (passed_src >= 0), passed_src, 0)
        res_src = np.where(~is_org & (passed_src >= 0), passed_src, 0)

        def at(array: npt.NDArray[Any], index: IntArray) -> IntArray:
            return array[index].astype(np.int64) if len(array) else np.zeros_like(index)

        cand_t, cand_c, cand_f = (
            at(p.cand_target, org_src),
            at(p.cand_closeness, org_src),
            at(p.cand_fnode, org_src),
        )
        rarc_t, rarc_c = at(p.rarc_target, res_src), at(p.rarc_closeness, res_src)
        return cls(
            cand_target=p.cand_target.tolist(),
            cand_close=p.cand_closeness.tolist(),
            cand_fit=p.cand_fit.tolist(),
            cand_negfit=(-p.cand_fit).tolist(),
            cand_fnode=p.cand_fnode.tolist(),
            rarc_target=p.rarc_target.tolist(),
            rarc_close=p.rarc_closeness.tolist(),
            rarc_fit=p.rarc_fit.tolist(),
            rarc_negfit=(-p.rarc_fit).tolist(),
            oc_start=p.ocell_cand_start.tolist(),
            r_start=p.group_rarc_start.tolist(),
            group_hub=p.group_hub.tolist(),
            group_ocell=p.group_ocell.tolist(),
            group_rsig=p.group_rsig.tolist(),
            group_priority=p.group_priority.tolist(),
            pair_group=r.pair_group.tolist(),
            pair_kind=r.pair_kind.tolist(),
            pair_target=r.pair_target.tolist(),
            pair_close=r.pair_closeness.tolist(),
            pair_fit=r.pair_fit.tolist(),
            pair_fnode=r.pair_fnode.tolist(),
            pair_better=r.pair_better.tolist(),
            pair_candidates=r.pair_candidates.tolist(),
            top=r.pair_passed_kind.shape[1],
            passed_kind=passed_kind.tolist(),
            passed_src=passed_src.tolist(),
            passed_target=np.where(is_org, cand_t, rarc_t).tolist(),
            passed_close=np.where(is_org, cand_c, rarc_c).tolist(),
            passed_fnode=np.where(is_org, cand_f, -1).tolist(),
            target_used=r.target_used.tolist(),
            target_capacity=p.target_capacity.tolist(),
            target_min=r.target_min_value.tolist(),
            ids=target_ids,
            labels=labels,
            credit=[sc.credit(s.credit_score) for s in sources],
            satisfaction=[sc.satisfaction(s.satisfaction) for s in sources],
            closeness_points=closeness_points,
            urgency_points=urgency_points,
            waiting_step_days=sc.waiting_step_days,
            waiting_cap_steps=sc.waiting_cap_steps,
            waiting_points=sc.waiting_points_per_step,
            vulnerability=[v for v, _ in vulnerable],
            vulnerable=[c for _, c in vulnerable],
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while records are made in bulk. Records and
    explanations are many small objects, and each collection rescans everything the run
    holds (a million-need run: millions of references): with it on, rendering every
    explanation took twice as long and every record three times (measured). Nothing made
    here is cyclic, so nothing is left for it to find; its state is restored after."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _higher(pair_key: IntArray, sorted_key: IntArray, lo: IntArray) -> IntArray:
    """How many entries of each pair's range (starting at `lo`, keys ascending) have a key
    below the pair's key: the candidates that scored higher."""
    return np.searchsorted(sorted_key, pair_key, side="left") - lo


def _explain_bulk(
    p: Problem, group: IntArray, fit: IntArray, top: int
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Per pair: how many candidates of its group have a higher fit, how many candidates
    the group has, and the best `top` higher ones as (kind, src), -1 padded."""
    n = len(group)
    span = int(max(p.cand_fit.max(initial=0), p.rarc_fit.max(initial=0), fit.max(initial=0)))
    span += 2
    has_hub = p.group_hub[group] >= 0
    ocell = p.group_ocell[group] if n else group
    lo = np.where(has_hub, p.ocell_cand_start[ocell], 0)
    hi = np.where(has_hub, p.ocell_cand_start[ocell + 1], 0)
    cand_ocell = np.repeat(np.arange(len(p.ocells), dtype=np.int64), np.diff(p.ocell_cand_start))
    n_o = np.where(
        has_hub,
        _higher(ocell * span + (span - 1 - fit), cand_ocell * span + (span - 1 - p.cand_fit), lo),
        0,
    )
    rlo, rhi = p.group_rarc_start[group], p.group_rarc_start[group + 1]
    rarc_key = p.rarc_group * span + (span - 1 - p.rarc_fit)
    n_r = _higher(group * span + (span - 1 - fit), rarc_key, rlo)
    better = n_o + n_r
    candidates = (hi - lo) + (rhi - rlo)
    kind_out = np.full((n, top), -1, dtype=np.int64)
    src_out = np.full((n, top), -1, dtype=np.int64)
    if n and top > 0:
        j = np.arange(top, dtype=np.int64)
        take_o = j[None, :] < np.minimum(n_o, top)[:, None]
        take_r = j[None, :] < np.minimum(n_r, top)[:, None]
        row_o, col_o = np.nonzero(take_o)
        row_r, col_r = np.nonzero(take_r)
        src_o = lo[row_o] + col_o
        src_r = rlo[row_r] + col_r
        row = np.concatenate((row_o, row_r))
        kind = np.concatenate((np.full(len(row_o), OFFER), np.full(len(row_r), RESOURCE)))
        src = np.concatenate((src_o, src_r))
        negfit = np.concatenate((-p.cand_fit[src_o], -p.rarc_fit[src_r]))
        order = np.lexsort((src, kind, negfit, row))
        row, kind, src = row[order], kind[order], src[order]
        start = np.searchsorted(row, np.arange(n, dtype=np.int64))
        rank = np.arange(len(row), dtype=np.int64) - start[row]
        keep = rank < top
        kind_out[row[keep], rank[keep]] = kind[keep]
        src_out[row[keep], rank[keep]] = src[keep]
    return better, candidates, kind_out, src_out


def finish(
    problem: Problem,
    pair_group: IntArray,
    pair_kind: IntArray,
    pair_src: IntArray,
    pair_count: IntArray,
    *,
    method: str,
    explain_top: int = 3,
    stats: dict[str, float | int] | None = None,
) -> AllocationResult:
    """Hand pairs out to needs and compute what explanations read (O(pairs + n))."""
    p = problem
    n = p.n_needs
    is_org = pair_kind == OFFER

    def pick(array: npt.NDArray[Any], index: IntArray) -> IntArray:
        """array[index] as int64 (zeros when the array is empty: no such pairs)."""
        if len(array) == 0:
            return np.zeros(len(index), dtype=np.int64)
        return array[index].astype(np.int64)

    cand = np.where(is_org, pair_src, 0)
    rarc = np.where(is_org, 0, pair_src)
    target = np.where(is_org, pick(p.cand_target, cand), pick(p.rarc_target, rarc))
    closeness = np.where(is_org, pick(p.cand_closeness, cand), pick(p.rarc_closeness, rarc))
    fit = np.where(is_org, pick(p.cand_fit, cand), pick(p.rarc_fit, rarc))
    fnode = np.where(is_org, pick(p.cand_fnode, cand), -1)
    value = p.group_priority[pair_group] * fit

    # Order pairs by group, best first; a group's needs take them in that order.
    order = np.lexsort((pair_src, pair_kind, -value, pair_group))
    pair_group, pair_kind, pair_src, pair_count = (
        pair_group[order],
        pair_kind[order],
        pair_src[order],
        pair_count[order],
    )
    target, closeness, fit, fnode, value = (
        target[order],
        closeness[order],
        fit[order],
        fnode[order],
        value[order],
    )
    need_pair = np.full(n, -1, dtype=np.int64)
    if len(pair_group):
        excl = np.cumsum(pair_count) - pair_count
        new = np.ones(len(pair_group), dtype=bool)
        new[1:] = pair_group[1:] != pair_group[:-1]
        group_excl = np.maximum.accumulate(np.where(new, excl, 0))
        start = p.group_start[pair_group] + (excl - group_excl)
        within = np.arange(int(pair_count.sum()), dtype=np.int64) - np.repeat(excl, pair_count)
        positions = np.repeat(start, pair_count) + within
        need_pair[p.need_order[positions]] = np.repeat(
            np.arange(len(pair_group), dtype=np.int64), pair_count
        )

    target_used = np.bincount(target, weights=pair_count, minlength=p.n_targets)
    fair = fnode >= 0
    fnode_used = np.bincount(fnode[fair], weights=pair_count[fair], minlength=len(p.fnode_target))
    group_assigned = np.bincount(pair_group, weights=pair_count, minlength=p.n_groups)
    big = np.iinfo(np.int64).max
    target_min = np.full(p.n_targets, big, dtype=np.int64)
    np.minimum.at(target_min, target, value)
    target_min[target_min == big] = -1
    better, candidates, passed_kind, passed_src = _explain_bulk(p, pair_group, fit, explain_top)

    # Reason codes of groups with needs left over.
    left = p.group_size - group_assigned.astype(np.int64)
    rsig = p.group_rsig
    has_cands = (p.group_hub >= 0) | (p.group_rarc_start[1:] > p.group_rarc_start[:-1])
    eligible = p.ocell_cover_eligible[p.group_ocell] + p.rsig_cover_eligible[rsig]
    cover = p.ocell_cover[p.group_ocell] + p.rsig_cover[rsig]
    reason = np.where(
        has_cands | (eligible > 0),
        REASON_CODES.index(Reason.capacity_exhausted),
        np.where(
            cover > 0,
            REASON_CODES.index(Reason.all_ineligible),
            REASON_CODES.index(Reason.no_coverage),
        ),
    )
    return AllocationResult(
        method=method,
        problem=p,
        pair_group=pair_group,
        pair_kind=pair_kind,
        pair_src=pair_src,
        pair_count=pair_count,
        pair_target=target,
        pair_closeness=closeness,
        pair_fit=fit,
        pair_fnode=fnode,
        pair_value=value,
        pair_better=better,
        pair_candidates=candidates,
        pair_passed_kind=passed_kind,
        pair_passed_src=passed_src,
        need_pair=need_pair,
        total_score=int((pair_count * value).sum()),
        target_used=target_used.astype(np.int64),
        fnode_used=fnode_used.astype(np.int64),
        target_min_value=target_min,
        group_assigned=group_assigned.astype(np.int64),
        group_reason=np.where(left > 0, reason, -1).astype(np.int64),
        explain_top=explain_top,
        stats=dict(stats or {}),
    )
