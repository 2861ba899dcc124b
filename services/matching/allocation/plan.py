"""From the engine's result to what a run writes: a planned match per assigned need, with its
stored explanation, and a "why not" per need left unassigned, with the capacity figures.

The engine explains a match by score parts (priority: urgency, waiting, vulnerability; fit:
region closeness, credit score, satisfaction) and the constraints around the choice; here
the explanation gains what the engine does not know: the basis (contract, charity resource,
registered capacity), the contract, the provider's raw credit score and satisfaction, and
the binding constraints as a list. An unassigned need's "why not" gains, for every covering
candidate, this month's figures (contract capacity, used before the run, taken in it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.matching import rules
from services.matching.allocation.supply import NeedRow, Snapshot
from services.matching.engine import AllocationResult, Assignment, Unassigned, division_prefix
from services.matching.rules import Basis

#: Covering candidates a "why not" lists with their figures.
FIGURES_TOP = 5


@dataclass(slots=True)
class Planned:
    """A match the run intends to write (re-checked against capacity at write time).

    Its explanation is the part shared by every need the engine sent the same way (one
    dict per provider and group, `shared`) plus the need's own priority parts."""

    row: NeedRow
    basis: Basis
    organisation_id: str | None
    contract_id: str | None
    resource_id: str | None
    score: int
    shared: dict[str, Any]
    priority: dict[str, Any]

    @property
    def explanation(self) -> dict[str, Any]:
        return {**self.shared, "priority": self.priority}


@dataclass(slots=True)
class Left:
    """A need the run leaves unmatched, and why."""

    row: NeedRow
    code: str
    text: str
    detail: dict[str, Any]


def binding_constraints(explanation: dict[str, Any]) -> list[str]:
    """What bound the choice: the chosen provider's limits that are reached, then those of
    every better candidate passed over (their capacity or fairness cap used up)."""
    out = [c["text"] for c in explanation.get("constraints", ()) if c.get("binding")]
    out += [p["constraint"]["text"] for p in explanation.get("passed_over", ())]
    return out


class _Figures:
    """Per covering candidate of a need: status and this month's capacity figures."""

    def __init__(self, snapshot: Snapshot, result: AllocationResult) -> None:
        supply = snapshot.supply
        problem = result.problem
        self.snapshot = snapshot
        self.offers: dict[tuple[str, str], list[int]] = {}
        for i, org in enumerate(supply.organisations):
            for service in org.capacity:
                for prefix in {division_prefix(r) for r in org.regions}:
                    self.offers.setdefault((service, prefix), []).append(i)
        self.resources: dict[tuple[str, str], list[int]] = {}
        for i, res in enumerate(supply.resources):
            for service in res.service_codes:
                for prefix in {division_prefix(r) for r in res.regions}:
                    self.resources.setdefault((service, prefix), []).append(i)
        used = result.target_used.tolist()
        refs = problem.target_ref.tolist()
        self.taken: dict[tuple[int, str], int] = {}
        for t in range(problem.n_offers):
            self.taken[(refs[t], problem.target_service[t])] = int(used[t])
        self.res_taken = {refs[t]: int(used[t]) for t in range(problem.n_offers, problem.n_targets)}
        self._cache: dict[tuple[str, str, tuple[str, ...]], list[dict[str, Any]]] = {}

    def of(self, region: str, service: str, categories: tuple[str, ...]) -> list[dict[str, Any]]:
        key = (region, service, categories)
        found = self._cache.get(key)
        if found is not None:
            return found
        supply = self.snapshot.supply
        prefixes = [region[:n] for n in (12, 9, 6, 4, 2)]
        figures: list[dict[str, Any]] = []
        seen: set[int] = set()
        for prefix in prefixes:
            for i in self.offers.get((service, prefix), ()):
                if i in seen:
                    continue
                seen.add(i)
                offer = supply.offers[i]
                monthly = offer.monthly.get(service, 0)
                used = offer.used.get(service, 0)
                taken = self.taken.get((i, service), 0)
                figures.append(
                    {
                        "kind": "organisation",
                        "id": offer.organisation_id,
                        "basis": offer.basis.value,
                        "contract_id": offer.contract_id,
                        "status": offer.status,
                        "eligible": offer.eligible,
                        "covering_prefix": prefix,
                        "monthly_capacity": monthly,
                        "used_before_run": used,
                        "taken_in_run": taken,
                        "left": max(0, monthly - used - taken),
                    }
                )
        wanted = set(categories)
        seen = set()
        for prefix in prefixes:
            for i in self.resources.get((service, prefix), ()):
                res = supply.resources[i]
                if i in seen or not wanted & set(res.target_categories):
                    continue
                seen.add(i)
                taken = self.res_taken.get(i, 0)
                figures.append(
                    {
                        "kind": "resource",
                        "id": res.resource_id,
                        "basis": Basis.charity_resource.value,
                        "status": res.status,
                        "eligible": res.is_eligible,
                        "covering_prefix": prefix,
                        "remaining_before_run": res.remaining,
                        "taken_in_run": taken,
                        "left": max(0, res.remaining - taken),
                    }
                )
        self._cache[key] = figures
        return figures


def figure_text(f: dict[str, Any], service: str) -> str:
    if f["kind"] == "resource":
        return (
            f"resource {f['id']}: {f['remaining_before_run']} unit(s) left before this run, "
            f"{f['taken_in_run']} taken in it"
        )
    under = f"contract {f['contract_id']}" if f["contract_id"] else "registered capacity"
    used = f["used_before_run"] + f["taken_in_run"]
    return (
        f"organisation {f['id']} ({under}): {used}/{f['monthly_capacity']} {service} "
        "matched this month"
    )


def _why_not(u: Unassigned, figures: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    detail = {**u.as_dict(), "capacity_figures": figures[:FIGURES_TOP]}
    text = u.explanation.text
    if u.reason.value == rules.UnmatchedCode.capacity_exhausted and figures:
        eligible = [f for f in figures if f["eligible"]][:3]
        if eligible:
            text += " — capacity this month: " + "; ".join(
                figure_text(f, u.service_code) for f in eligible
            )
    detail["text"] = text
    return text, detail


def plan(
    snapshot: Snapshot, result: AllocationResult, *, run_id: str
) -> tuple[list[Planned], list[Left]]:
    """The matches to write and the needs left, in the order of `snapshot.rows`."""
    supply = snapshot.supply
    problem = result.problem
    pairs = result.need_pair.tolist()
    # (Not `result.need_target()`: it indexes an empty array when nothing was assigned.)
    pair_target = result.pair_target.tolist()
    targets = [pair_target[k] if k >= 0 else -1 for k in pairs]
    refs = problem.target_ref.tolist()
    figures = _Figures(snapshot, result)
    result.render_all()  # every explanation in bulk; `outcome(i)` below reads them
    base: dict[int, tuple[dict[str, Any], Basis]] = {}
    planned: list[Planned] = []
    left: list[Left] = []
    for i, row in enumerate(snapshot.rows):
        out = result.outcome(i)
        if isinstance(out, Unassigned):
            need = snapshot.needs[i]
            text, detail = _why_not(
                out, figures.of(need.region_code, need.service_code, need.categories)
            )
            detail["run_id"] = run_id
            left.append(Left(row, out.reason.value, text, detail))
            continue
        assert isinstance(out, Assignment)
        t, k = targets[i], pairs[i]
        found = base.get(k)
        if found is None:
            shared = out.explanation.as_dict()
            if t < problem.n_offers:
                offer = supply.offers[refs[t]]
                basis, contract_id = offer.basis, offer.contract_id
                credit, satisfaction = offer.credit_score, offer.satisfaction
            else:
                res = supply.resources[refs[t]]
                basis, contract_id = Basis.charity_resource, None
                credit, satisfaction = res.credit_score, res.satisfaction
            # (The binding constraints are read from `constraints` and `passed_over` when
            # shown, `binding_constraints()`; the run is the match's own column.)
            shared.update(
                basis=basis.value,
                contract_id=contract_id,
                provider={"credit_score": credit, "satisfaction": satisfaction},
            )
            if basis is Basis.registered_capacity:
                shared["text"] = (
                    "registered capacity (walking skeleton: no contract signed yet): "
                    + shared["text"]
                )
            found = base[k] = (shared, basis)
        shared, basis = found
        planned.append(
            Planned(
                row,
                basis,
                out.organisation_id,
                shared["contract_id"],
                out.resource_id,
                out.score,
                shared,
                out.priority.as_dict(),
            )
        )
    for row, why in snapshot.invalid:
        code = rules.UnmatchedCode.invalid_need.value
        left.append(Left(row, code, why, {"reason": code, "text": why, "run_id": run_id}))
    return planned, left


def by_value(planned: Sequence[Planned]) -> list[Planned]:
    """Highest score first (stable): what keeps its place when a re-check finds less room."""
    return sorted(planned, key=lambda p: -p.score)
