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

A pair's explanation (and a group's "why not") is rendered straight into its stored form,
the JSON-ready dict, whose parts many explanations name (a provider's capacity line, fit
parts, a competitor passed over) are made once, as dicts, and shared by reference: so they
are read-only, and `as_dict` hands out a new top-level dict over them. `MatchExplanation`
and `WhyNot` are views of that dict; the objects it names (`FitParts`, `Constraint`,
`Competitor`) are made from it only when read. (Making an object and then its dict per
pair took twice as long.) `render_all` finds the keys of the shared parts for every pair
and group at once with numpy (a part per distinct key, a competitor list per distinct
list), then makes each dict in one loop over plain lists; one pair on demand
(`explain_pair`, as `plan` does need by need) makes the same from the same caches.

For an optimal flow every candidate better than the one chosen is blocked: its capacity or
fairness cap is used up (otherwise moving the need there would raise the total). Likewise
an unassigned need has no eligible candidate with room left. The explanations name these
blocked candidates with their figures.
"""

from __future__ import annotations

import gc
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from services.matching.engine.model import (
    FitParts,
    PriorityParts,
    Reason,
)
from services.matching.engine.problem import OFFER, RESOURCE, IntArray, Problem, dense

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

    @classmethod
    def of_stored(cls, stored: dict[str, Any]) -> Constraint:
        """The constraint a stored form describes (`stored()` gives that very dict)."""
        con = cls(
            stored["kind"],
            stored["holder"],
            stored["used"],
            stored["limit"],
            stored["binding"],
            stored["text"],
            stored.get("region"),
        )
        con._stored = stored
        return con


def _fit_of(stored: dict[str, Any]) -> FitParts:
    """The fit parts a stored form describes (`stored()` gives that very dict)."""
    fit = FitParts(
        stored["covering_prefix_digits"],
        stored["region_closeness"],
        stored["credit"],
        stored["satisfaction"],
    )
    fit._stored = stored
    return fit


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

    @classmethod
    def of_stored(cls, stored: dict[str, Any]) -> Competitor:
        """The competitor a stored form describes (`stored()` gives that very dict)."""
        comp = cls(
            stored["kind"],
            stored["id"],
            stored["score"],
            _fit_of(stored["fit"]),
            Constraint.of_stored(stored["constraint"]),
            stored["lowest_score_held"],
        )
        comp._stored = stored
        return comp


class MatchExplanation:
    """Why this provider: the score parts and the constraints around the choice (shared by
    every need the same pair carries).

    A view of the stored form (`stored()`: the JSON-ready dict, made in bulk by the result,
    `AllocationResult.render_all`): the plain fields read it, and the objects it names (fit
    parts, constraints, competitors passed over) are made from it on access."""

    __slots__ = ("_stored",)

    def __init__(self, stored: dict[str, Any]) -> None:
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
        return _fit_of(self._stored["fit"])

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return tuple(Constraint.of_stored(con) for con in self._stored["constraints"])

    @property
    def passed_over(self) -> tuple[Competitor, ...]:
        """Better candidates that were full (best first)."""
        return tuple(Competitor.of_stored(comp) for comp in self._stored["passed_over"])

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


class WhyNot:
    """Why a need was left unassigned (shared by the unassigned needs of a group).

    A view of the stored form, as `MatchExplanation`: the competitors it names are made
    from it on access."""

    __slots__ = ("_stored", "reason")

    def __init__(self, reason: Reason, stored: dict[str, Any]) -> None:
        self.reason = reason
        self._stored = stored

    @property
    def text(self) -> str:
        return str(self._stored["text"])

    @property
    def covering(self) -> int:
        """Candidates covering item and region, eligible or not."""
        return int(self._stored["covering"])

    @property
    def eligible(self) -> int:
        return int(self._stored["eligible"])

    @property
    def candidates(self) -> tuple[Competitor, ...]:
        """The best few, with what stopped each."""
        return tuple(Competitor.of_stored(comp) for comp in self._stored["candidates"])

    def as_dict(self) -> dict[str, Any]:
        """As `MatchExplanation.as_dict`: a new dict, nested parts shared (read-only)."""
        return {**self._stored}

    def stored(self) -> dict[str, Any]:
        return self._stored

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WhyNot) and self._stored == other._stored

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"WhyNot({self._stored!r})"


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
            self._render_all_pairs()
            self._render_all_groups(np.flatnonzero(self.group_reason >= 0))
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
            self._render_all_pairs()
            groups = np.flatnonzero(self.group_reason >= 0)
            self._render_all_groups(groups)
        return n_pairs, len(groups)

    # ---- explanations ----------------------------------------------------------------
    # Explanations are made in their stored form (JSON-ready dicts) from plain lists
    # (numpy scalar access is slow). The parts many of them name (a target's capacity
    # line, a fairness line, fit parts, a competitor) are made once per key, cached and
    # shared by reference; the objects (`Constraint`, `Competitor`, `FitParts`) are made
    # from those dicts when read.

    def _lists(self) -> _Lists:
        if self._cache is None:
            self._cache = _Lists(self.problem, self)
        return self._cache

    def _candidate(self, kind: int, src: int) -> tuple[int, int, int, int]:
        """(target, closeness digits, fit, fairness node) of a candidate."""
        c = self._lists()
        if kind == OFFER:
            return c.cand_target[src], c.cand_close[src], c.cand_fit[src], c.cand_fnode[src]
        return c.rarc_target[src], c.rarc_close[src], c.rarc_fit[src], -1

    def _fit(self, t: int, closeness: int) -> dict[str, Any]:
        """Stored fit parts of target t at a closeness (as `Problem.fit_parts`)."""
        c = self._cache or self._lists()
        found = c.fits.get((t, closeness))
        return found if found is not None else self._make_fits(((t, closeness),))[0]

    def _make_fits(self, keys: Iterable[tuple[int, int]]) -> list[dict[str, Any]]:
        """`_fit` of each (target, closeness), made in one loop (and cached)."""
        c = self._cache or self._lists()
        fits, points, credit, satisfaction = c.fits, c.closeness_points, c.credit, c.satisfaction
        out = []
        for key in keys:
            found = fits.get(key)
            if found is None:
                t, closeness = key
                pts, cr, sat = points[closeness], credit[t], satisfaction[t]
                found = fits[key] = {
                    "total": pts + cr + sat,
                    "region_closeness": pts,
                    "covering_prefix_digits": closeness,
                    "credit": cr,
                    "satisfaction": sat,
                }
            out.append(found)
        return out

    def _capacity(self, t: int) -> dict[str, Any]:
        """The stored capacity constraint of target t."""
        c = self._cache or self._lists()
        found = c.capacities.get(t)
        return found if found is not None else self._make_capacities((t,))[0]

    def _make_capacities(self, targets: Iterable[int]) -> list[dict[str, Any]]:
        """`_capacity` of each target, made in one loop (and cached)."""
        c = self._cache or self._lists()
        p = self.problem
        caps, n_offers, services = c.capacities, p.n_offers, p.target_service
        used_of, limit_of, labels = c.target_used, c.target_capacity, c.labels
        out = []
        for t in targets:
            found = caps.get(t)
            if found is None:
                used, limit, holder = used_of[t], limit_of[t], labels[t]
                what = f"{holder} for {services[t]}" if t < n_offers else holder
                if limit == 0:
                    kind, used, binding = "no_capacity", 0, True
                    text = f"{what} had no capacity left before this run"
                else:
                    kind, binding = "capacity", used >= limit
                    text = (
                        f"capacity of {what} used up: {used}/{limit}"
                        if binding
                        else f"capacity of {what}: {used}/{limit} used"
                    )
                found = caps[t] = {
                    "kind": kind,
                    "holder": holder,
                    "used": used,
                    "limit": limit,
                    "binding": binding,
                    "text": text,
                }
            out.append(found)
        return out

    def _fairness(self, f: int) -> dict[str, Any]:
        """The stored fairness-cap constraint of fairness node f."""
        c = self._cache or self._lists()
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
        found = c.fairness[f] = {
            "kind": "fairness_cap",
            "holder": holder,
            "used": used,
            "limit": limit,
            "binding": full,
            "text": text,
            "region": region,
        }
        return found

    def _competitor(self, priority: int, t: int, closeness: int, f: int) -> dict[str, Any]:
        """The stored competitor: target t at a closeness (fairness node f, -1: none) for
        a group of this priority, with what stops it (shared by every candidate entry of
        the same key)."""
        c = self._cache or self._lists()
        found = c.competitors.get((priority, t, closeness, f))
        if found is not None:
            return found
        return self._make_competitors(((priority, t, closeness, f),))[0]

    def _make_competitors(self, keys: Iterable[tuple[int, int, int, int]]) -> list[dict[str, Any]]:
        """`_competitor` of each (priority, target, closeness, fairness node), made in one
        loop (and cached)."""
        c = self._cache or self._lists()
        comps, caps, fits = c.competitors, c.capacities, c.fits
        low_of, ids, n_offers = c.target_min, c.ids, c.n_offers
        out = []
        for key in keys:
            found = comps.get(key)
            if found is None:
                priority, t, closeness, f = key
                blocker = caps.get(t) or self._capacity(t)
                if not blocker["binding"] and f >= 0:
                    blocker = self._fairness(f)
                fit = fits.get((t, closeness)) or self._fit(t, closeness)
                low = low_of[t]
                found = comps[key] = {
                    "kind": "organisation" if t < n_offers else "resource",
                    "id": ids[t],
                    "score": priority * fit["total"],
                    "fit": fit,
                    "constraint": blocker,
                    "lowest_score_held": low if low >= 0 else None,
                }
            out.append(found)
        return out

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
            view = self._views[k] = MatchExplanation(stored)
        return view

    def _constraint_entry(self, t: int, f: int) -> tuple[list[dict[str, Any]], str]:
        """The stored constraints of a pair at target t (fairness node f, -1: none) and
        the "bound by" part of its text (cached: shared by the pairs at t)."""
        c = self._cache or self._lists()
        found = c.constraint_entries.get((t, f))
        return found if found is not None else self._make_entries(((t, f),))[0]

    def _make_entries(
        self, keys: Iterable[tuple[int, int]]
    ) -> list[tuple[list[dict[str, Any]], str]]:
        """`_constraint_entry` of each (target, fairness node), made in one loop (and
        cached)."""
        c = self._cache or self._lists()
        entries, caps = c.constraint_entries, c.capacities
        out = []
        for key in keys:
            found = entries.get(key)
            if found is None:
                t, f = key
                capacity = caps.get(t) or self._capacity(t)
                constraints = [capacity, self._fairness(f)] if f >= 0 else [capacity]
                binding = [con["text"] for con in constraints if con["binding"]]
                bound = "; bound by " + "; ".join(binding) if binding else ""
                found = entries[key] = (constraints, bound)
            out.append(found)
        return out

    def _render_pairs(self, ks: Iterable[int]) -> None:
        """Render the stored form of pairs `ks` (cached), one by one: what `explain_pair`
        does on demand (`_render_all_pairs` makes the same for all at once)."""
        c = self._cache or self._lists()
        cache = self._pair_cache
        competitors, entries, fits = c.competitors, c.constraint_entries, c.fits
        pc = c.pair_columns
        top = c.top
        passed_kind, passed_target, passed_close, passed_fnode = c.passed_columns
        for k in ks:
            if k in cache:
                continue
            g, kind, t = pc["group"][k], pc["kind"][k], pc["target"][k]
            closeness, fit_total, f = pc["close"][k], pc["fit"][k], pc["fnode"][k]
            priority = c.group_priority[g]
            value = priority * fit_total
            constraints, bound = entries.get((t, f)) or self._constraint_entry(t, f)
            cell = c.group_ocell[g] if kind == OFFER else c.n_ocells + c.group_rsig[g]
            prefix = c.cell_prefix[cell][:closeness]
            fit = fits.get((t, closeness)) or self._fit(t, closeness)
            text = (
                f"{c.labels[t]} covers {prefix} ({closeness}-digit prefix); "
                f"score {value} = priority {priority} × fit {fit_total}{bound}"
            )
            passed: list[dict[str, Any]] = []
            at = k * top
            if top and passed_kind[at] >= 0:
                for j in range(at, at + top):
                    if passed_kind[j] < 0:
                        break
                    key = (priority, passed_target[j], passed_close[j], passed_fnode[j])
                    passed.append(competitors.get(key) or self._competitor(*key))
                text += f"; {pc['better'][k]} higher-scoring candidate(s) had no room: " + (
                    "; ".join(_constraint_text(comp) for comp in passed)
                )
            cache[k] = {
                "provider_kind": "organisation" if kind == OFFER else "resource",
                "provider_id": c.ids[t],
                "service_code": c.cell_service[cell],
                "covering_prefix": prefix,
                "score": value,
                "priority": priority,
                "fit": fit,
                "constraints": constraints,
                "passed_over": passed,
                "better_candidates": pc["better"][k],
                "candidates": pc["candidates"][k],
                "text": text,
            }

    def _combos(
        self,
        priority: IntArray,
        slots: tuple[IntArray, IntArray, IntArray, IntArray],
        top: int,
        piece: Callable[[dict[str, Any]], str],
    ) -> tuple[IntArray, list[tuple[dict[str, Any], ...]], list[str]]:
        """Rows of `top` candidate slots (kind, target, closeness, fairness node; kind -1:
        empty, filled slots first) for groups of the given priority (one per row), as
        lists of stored competitors: an id per row (-1: none), then per id its competitors
        and their `piece` texts joined by "; ". Each competitor and each list is made
        once (keys found in bulk)."""
        kind, target, close, fnode = slots
        n = len(priority)
        combo = np.full(n, -1, dtype=np.int64)
        used = np.flatnonzero(kind >= 0)
        if not len(used):
            return combo, [], []
        s_priority = priority[used // top]
        s_target, s_close, s_fnode = target[used], close[used], fnode[used]
        key = _pack(
            (s_priority, s_close, s_target, s_fnode + 1),
            (
                int(s_priority.max()) + 1,
                13,
                int(s_target.max()) + 1,
                int(s_fnode.max()) + 2,
            ),
        )
        comp_of_slot, first = dense(key)
        u_target, u_close = s_target[first], s_close[first]
        self._make_capacities(np.unique(u_target).tolist())
        self._make_fits(zip(u_target.tolist(), u_close.tolist(), strict=True))
        comps = self._make_competitors(
            zip(
                s_priority[first].tolist(),
                u_target.tolist(),
                u_close.tolist(),
                s_fnode[first].tolist(),
                strict=True,
            )
        )
        pieces = [piece(comp) for comp in comps]
        flat = np.full(n * top, -1, dtype=np.int64)
        flat[used] = comp_of_slot
        grid = flat.reshape(n, top)
        rows = np.flatnonzero(grid[:, 0] >= 0)
        row_combo, first = dense(_pack(list(grid[rows].T + 1), [len(comps) + 1] * top))
        combo[rows] = row_combo
        parts: list[tuple[dict[str, Any], ...]] = []
        texts: list[str] = []
        for ids in grid[rows[first]].tolist():
            ids = [i for i in ids if i >= 0]
            parts.append(tuple(comps[i] for i in ids))
            texts.append("; ".join([pieces[i] for i in ids]))
        return combo, parts, texts

    def _render_all_pairs(self) -> None:
        """The stored form of every pair (those made on demand before are kept), as
        `_render_pairs` makes it: the keys of the shared parts are found in bulk (numpy),
        each part is made once, then one loop over plain lists makes the dicts."""
        c = self._cache or self._lists()
        p = self.problem
        n = len(self.pair_group)
        cache = self._pair_cache
        if n == 0 or len(cache) == n:
            return
        target, fnode, close = self.pair_target, self.pair_fnode, self.pair_closeness
        # Constraints (per target and fairness node) and fit parts (per target and
        # closeness): an id per pair, the part of each id.
        entry_id, first = dense(target * (len(p.fnode_target) + 1) + fnode + 1)
        self._make_capacities(np.unique(target).tolist())
        entry = self._make_entries(zip(target[first].tolist(), fnode[first].tolist(), strict=True))
        fit_id, first = dense(target * 13 + close)
        fit = self._make_fits(zip(target[first].tolist(), close[first].tolist(), strict=True))
        priority = p.group_priority[self.pair_group]
        combo_id, combo_parts, combo_texts = self._combos(
            priority, c.passed_np, c.top, _constraint_text
        )
        cell = np.where(
            self.pair_kind == OFFER,
            p.group_ocell[self.pair_group],
            len(p.ocells) + p.group_rsig[self.pair_group],
        )
        labels, ids, cell_prefix, cell_service = c.labels, c.ids, c.cell_prefix, c.cell_service
        kind_name = ("organisation", "resource")
        fresh = not cache
        rows = zip(
            range(n),
            self.pair_kind.tolist(),
            target.tolist(),
            close.tolist(),
            self.pair_fit.tolist(),
            priority.tolist(),
            self.pair_value.tolist(),
            entry_id.tolist(),
            fit_id.tolist(),
            cell.tolist(),
            combo_id.tolist(),
            self.pair_better.tolist(),
            self.pair_candidates.tolist(),
            strict=True,
        )
        for k, kind, t, closeness, fit_total, prio, value, e, fi, pc, combo, better, n_c in rows:
            if not fresh and k in cache:
                continue
            constraints, bound = entry[e]
            prefix = cell_prefix[pc][:closeness]
            text = (
                f"{labels[t]} covers {prefix} ({closeness}-digit prefix); "
                f"score {value} = priority {prio} × fit {fit_total}{bound}"
            )
            if combo >= 0:
                passed = list(combo_parts[combo])
                text += f"; {better} higher-scoring candidate(s) had no room: {combo_texts[combo]}"
            else:
                passed = []
            cache[k] = {
                "provider_kind": kind_name[kind],
                "provider_id": ids[t],
                "service_code": cell_service[pc],
                "covering_prefix": prefix,
                "score": value,
                "priority": prio,
                "fit": fit[fi],
                "constraints": constraints,
                "passed_over": passed,
                "better_candidates": better,
                "candidates": n_c,
                "text": text,
            }

    def _render_all_groups(self, groups: IntArray) -> None:
        """The "why not" of every group in `groups` (those made before are kept). The
        common case, candidates with capacity all filled by higher-value needs, is made
        as `_why_not` makes it, its competitors found in bulk; the others one by one."""
        c = self._cache or self._lists()
        p = self.problem
        cache = self._group_cache
        groups = groups[[g not in cache for g in groups.tolist()]] if cache else groups
        if not len(groups):
            return
        top = self.explain_top
        n_cands, _, kind, src = _explain_bulk(p, groups, np.zeros(len(groups), np.int64), top)
        reason = self.group_reason[groups]
        common = (reason == REASON_CODES.index(Reason.capacity_exhausted)) & (n_cands > 0)
        for g in groups[~common].tolist():
            cache[g] = self._why_not(g)
        if not common.any() or top == 0:
            for g in groups[common].tolist():
                cache[g] = self._why_not(g)
            return
        groups, n_cands = groups[common], n_cands[common]
        kind, src = kind[common].ravel(), src[common].ravel()
        combo_id, combo_parts, combo_texts = self._combos(
            p.group_priority[groups], (kind, *_slot_candidates(p, kind, src)), top, _why_text
        )
        ocell, rsig = p.group_ocell[groups], p.group_rsig[groups]
        covering = p.ocell_cover[ocell] + p.rsig_cover[rsig]
        eligible = p.ocell_cover_eligible[ocell] + p.rsig_cover_eligible[rsig]
        region = p.columns.region[p.need_order[p.group_start[groups]]]
        regions, services = c.regions, c.cell_service
        reason_value = Reason.capacity_exhausted.value
        rows = zip(
            groups.tolist(),
            n_cands.tolist(),
            ocell.tolist(),
            region.tolist(),
            covering.tolist(),
            eligible.tolist(),
            combo_id.tolist(),
            strict=True,
        )
        for g, n, oc, rg, cover, elig, combo in rows:
            stored = {
                "reason": reason_value,
                "text": f"all {n} eligible candidate(s) with capacity for {services[oc]} in "
                f"{regions[rg]} were filled by higher-value needs: {combo_texts[combo]}",
                "covering": cover,
                "eligible": elig,
                "candidates": list(combo_parts[combo]),
            }
            cache[g] = WhyNot(Reason.capacity_exhausted, stored)

    def why_not(self, g: int) -> WhyNot:
        """Why the unassigned needs of group g got nothing (cached)."""
        cached = self._group_cache.get(g)
        if cached is None:
            cached = self._group_cache[g] = self._why_not(g)
        return cached

    def _why_not(self, g: int) -> WhyNot:
        p = self.problem
        c = self._cache or self._lists()
        code = c.group_reason[g]
        reason = REASON_CODES[code] if code >= 0 else Reason.capacity_exhausted
        oc_i, rsig = c.group_ocell[g], c.group_rsig[g]
        service = c.cell_service[oc_i]
        region = c.regions[c.group_region[g]]
        covering = c.ocell_cover[oc_i] + c.rsig_cover[rsig]
        eligible = c.ocell_cover_eligible[oc_i] + c.rsig_cover_eligible[rsig]
        priority = c.group_priority[g]
        top = self.explain_top

        def everything() -> list[tuple[int, int]]:
            return p.ocell_offers(oc_i) + p.rsig_resources(rsig)

        def listed(t: int, lv: int, constraint: dict[str, Any]) -> dict[str, Any]:
            fit = self._fit(t, lv)
            return {
                "kind": "organisation" if t < c.n_offers else "resource",
                "id": c.ids[t],
                "score": priority * fit["total"],
                "fit": fit,
                "constraint": constraint,
                "lowest_score_held": None,
            }

        candidates: list[dict[str, Any]] = []
        n_cands, best = self._better(self._ranges(g), 0, top)
        if reason is Reason.no_coverage:
            text = f"no contract or charity resource covers {service} in {region}"
            other = c.rsig_covering[rsig] - c.rsig_cover[rsig]
            if other:
                text += f" ({other} charity resource(s) cover it there but target other categories)"
        elif reason is Reason.all_ineligible:
            for t, lv in everything()[:top]:
                label = c.labels[t]
                ineligible = {
                    "kind": "ineligible",
                    "holder": label,
                    "used": 0,
                    "limit": 0,
                    "binding": True,
                    "text": f"{label} is {p.target_status(t)}",
                }
                candidates.append(listed(t, lv, ineligible))
            text = (
                f"all {covering} candidate(s) covering {service} in {region} are ineligible: "
                + ", ".join(comp["constraint"]["text"] for comp in candidates)
            )
        elif n_cands == 0:
            empty = [(t, lv) for t, lv in everything() if c.target_eligible[t]]
            candidates = [listed(t, lv, self._capacity(t)) for t, lv in empty[:top]]
            text = (
                f"the {eligible} eligible candidate(s) for {service} in {region} "
                "had no capacity left before this run"
            )
        else:
            for kind, src in best:
                t, closeness, _, f = self._candidate(kind, src)
                candidates.append(
                    c.competitors.get((priority, t, closeness, f))
                    or self._competitor(priority, t, closeness, f)
                )
            text = (
                f"all {n_cands} eligible candidate(s) with capacity for {service} in "
                f"{region} were filled by higher-value needs: "
                + "; ".join(_why_text(comp) for comp in candidates)
            )
        stored = {
            "reason": reason.value,
            "text": text,
            "covering": covering,
            "eligible": eligible,
            "candidates": candidates,
        }
        return WhyNot(reason, stored)


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


class _Lists:
    """Plain-list copies of what explanations read, and caches of the stored parts they
    share. The long per-candidate and per-pair lists are made on first use: only
    explanations made one by one read them (`render_all` reads the arrays)."""

    def __init__(self, p: Problem, r: AllocationResult) -> None:
        self._p, self._r = p, r
        ids = [o.organisation_id for o in p.organisations]
        self.n_offers = p.n_offers
        self.n_ocells = len(p.ocells)
        self.ids = [ids[i] for i in p.target_ref[: p.n_offers].tolist()] + [
            res.resource_id for res in p.resources
        ]
        self.labels = [f"organisation {i}" for i in self.ids[: p.n_offers]] + [
            f"resource {i}" for i in self.ids[p.n_offers :]
        ]
        self.group_ocell: list[int] = p.group_ocell.tolist()
        self.group_rsig: list[int] = p.group_rsig.tolist()
        self.group_priority: list[int] = p.group_priority.tolist()
        self.group_reason: list[int] = r.group_reason.tolist()
        self.regions = p.columns.regions
        self.cell_prefix = [oc.prefix for oc in p.ocells] + [rs.prefix for rs in p.rsigs]
        self.cell_service = [oc.service_code for oc in p.ocells] + [
            rs.service_code for rs in p.rsigs
        ]
        self.ocell_cover: list[int] = p.ocell_cover.tolist()
        self.ocell_cover_eligible: list[int] = p.ocell_cover_eligible.tolist()
        self.rsig_cover: list[int] = p.rsig_cover.tolist()
        self.rsig_cover_eligible: list[int] = p.rsig_cover_eligible.tolist()
        self.rsig_covering = [rs.covering for rs in p.rsigs]
        self.top: int = r.pair_passed_kind.shape[1]
        self.target_used: list[int] = r.target_used.tolist()
        self.target_capacity: list[int] = p.target_capacity.tolist()
        self.target_eligible: list[bool] = p.target_eligible.tolist()
        self.target_min: list[int] = r.target_min_value.tolist()
        self.credit: list[int] = p.target_credit.tolist()  # fit points per target
        self.satisfaction: list[int] = p.target_satisfaction.tolist()
        sc = p.scoring
        self.closeness_points = [0] * 13
        for level, pts in sc.closeness_points.items():
            self.closeness_points[level] = pts
        self.urgency_points = [0] * 5
        for u, pts in sc.urgency_points.items():
            self.urgency_points[u] = pts
        self.waiting_step_days = sc.waiting_step_days
        self.waiting_cap_steps = sc.waiting_cap_steps
        self.waiting_points = sc.waiting_points_per_step
        vulnerable = [sc.vulnerability(tuple(cs)) for cs in p.columns.category_sets]
        self.vulnerability = [v for v, _ in vulnerable]
        self.vulnerable = [c for _, c in vulnerable]
        # stored parts, by key
        self.fits: dict[tuple[int, int], dict[str, Any]] = {}
        self.capacities: dict[int, dict[str, Any]] = {}
        self.fairness: dict[int, dict[str, Any]] = {}
        self.competitors: dict[tuple[int, int, int, int], dict[str, Any]] = {}
        self.constraint_entries: dict[tuple[int, int], tuple[list[dict[str, Any]], str]] = {}

    # Candidates (`_candidate`, `_better`).

    @cached_property
    def cand_target(self) -> list[int]:
        return self._p.cand_target.tolist()

    @cached_property
    def cand_close(self) -> list[int]:
        return self._p.cand_closeness.tolist()

    @cached_property
    def cand_fit(self) -> list[int]:
        return self._p.cand_fit.tolist()

    @cached_property
    def cand_negfit(self) -> list[int]:
        return (-self._p.cand_fit).tolist()

    @cached_property
    def cand_fnode(self) -> list[int]:
        return self._p.cand_fnode.tolist()

    @cached_property
    def rarc_target(self) -> list[int]:
        return self._p.rarc_target.tolist()

    @cached_property
    def rarc_close(self) -> list[int]:
        return self._p.rarc_closeness.tolist()

    @cached_property
    def rarc_fit(self) -> list[int]:
        return self._p.rarc_fit.tolist()

    @cached_property
    def rarc_negfit(self) -> list[int]:
        return (-self._p.rarc_fit).tolist()

    @cached_property
    def oc_start(self) -> list[int]:
        return self._p.ocell_cand_start.tolist()

    @cached_property
    def r_start(self) -> list[int]:
        return self._p.group_rarc_start.tolist()

    @cached_property
    def group_hub(self) -> list[int]:
        return self._p.group_hub.tolist()

    @cached_property
    def group_region(self) -> list[int]:
        """Region (index into `regions`) of each group's first need."""
        p = self._p
        return p.columns.region[p.need_order[p.group_start[:-1]]].tolist()

    # Pairs (`_render_pairs`): pair k's passed-over slots are k * top … k * top + top - 1.

    @cached_property
    def pair_columns(self) -> dict[str, list[int]]:
        r = self._r
        return {
            "group": r.pair_group.tolist(),
            "kind": r.pair_kind.tolist(),
            "target": r.pair_target.tolist(),
            "close": r.pair_closeness.tolist(),
            "fit": r.pair_fit.tolist(),
            "fnode": r.pair_fnode.tolist(),
            "better": r.pair_better.tolist(),
            "candidates": r.pair_candidates.tolist(),
        }

    @cached_property
    def passed_np(self) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """Each pair's passed-over slots: kind (-1: empty), target, closeness, fairness
        node."""
        r = self._r
        kind = r.pair_passed_kind.ravel()
        return (kind, *_slot_candidates(self._p, kind, r.pair_passed_src.ravel()))

    @cached_property
    def passed_columns(self) -> tuple[list[int], list[int], list[int], list[int]]:
        kind, target, close, fnode = self.passed_np
        return kind.tolist(), target.tolist(), close.tolist(), fnode.tolist()


def _slot_candidates(
    p: Problem, kind: IntArray, src: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """(target, closeness, fairness node) of candidate slots (kind, src); kind -1 (an empty
    slot) gives meaningless values."""
    is_org = kind == OFFER
    org_src = np.where(is_org & (src >= 0), src, 0)
    res_src = np.where(~is_org & (src >= 0), src, 0)

    def at(array: npt.NDArray[Any], index: IntArray) -> IntArray:
        return array[index].astype(np.int64) if len(array) else np.zeros_like(index)

    return (
        np.where(is_org, at(p.cand_target, org_src), at(p.rarc_target, res_src)),
        np.where(is_org, at(p.cand_closeness, org_src), at(p.rarc_closeness, res_src)),
        np.where(is_org, at(p.cand_fnode, org_src), -1),
    )


def _pack(columns: Sequence[IntArray], spans: Sequence[int]) -> IntArray:
    """One int64 per row of non-negative `columns` (each below its span), equal exactly
    when the rows are (columns are made dense first where the product would overflow)."""
    key = np.zeros(len(columns[0]) if columns else 0, dtype=np.int64)
    width = 1
    for column, span in zip(columns, spans, strict=True):
        if width * span >= 2**62:
            key, _ = dense(key)
            width = int(key.max(initial=0)) + 1
        key = key * span + column
        width *= span
    return key


def _constraint_text(comp: dict[str, Any]) -> str:
    """What a pair's text says of a stored competitor passed over."""
    return str(comp["constraint"]["text"])


def _why_text(comp: dict[str, Any]) -> str:
    """What a "why not" text says of a stored competitor."""
    low = comp["lowest_score_held"]
    text = str(comp["constraint"]["text"])
    if low is None:
        return text
    return f"{text} (lowest score held {low}, this need's {comp['score']})"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while records are made in bulk. Records and
    explanations are many small objects, and each collection rescans everything the run
    holds (a million-need run: millions of references): with it on, rendering every
    explanation took twice as long and every record three times (measured). Nothing made
    here is cyclic, so nothing is left for it to find; its state is restored after.

    The objects made meanwhile would still be scanned by the first young collection after
    it (0.1 s for a million-need run's explanations) and the next middle one, only to end
    in the oldest generation: `gc.freeze()` then `gc.unfreeze()` moves every tracked
    object there at once, unscanned (unless some caller froze objects itself: then they
    are left alone)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
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
        fit_of = np.concatenate((p.cand_fit[src_o], p.rarc_fit[src_r]))
        # By row, best fit first, offers before resources, then src (unique keys).
        order = np.argsort(
            _pack(
                (row, span - 1 - fit_of, kind, src),
                (n, span, 2, int(src.max(initial=0)) + 1),
            )
        )
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

    # Order pairs by group, best first; a group's needs take them in that order. (The
    # keys are unique: a group has one pair per candidate.)
    top_value = int(value.max(initial=0))
    order = np.argsort(
        _pack(
            (pair_group, top_value - value, pair_kind, pair_src),
            (p.n_groups, top_value + 1, 2, int(pair_src.max(initial=0)) + 1),
        )
    )
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
