"""The allocation engine core (services.matching.engine), with the real OR-Tools solver.

Hand-made cases with known answers, then properties on small random instances checked
against independent exact solvers: scipy's `linear_sum_assignment` on unit capacity columns
(and `milp` when a fairness cap makes unit columns insufficient).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, linear_sum_assignment, milp

from services.matching.engine import (
    AllocationResult,
    Assignment,
    CharityResource,
    EngineOptions,
    FairnessCap,
    Need,
    NeedColumns,
    OrganisationSupply,
    Reason,
    Scoring,
    Unassigned,
    allocate,
    bare_solve,
    build_problem,
    division_prefix,
    greedy_allocate,
)
from services.matching.engine.flow import build_graph, everything, prune

SCORING = Scoring()


def need(
    need_id: str,
    region: str = "220102001001",
    service: str = "care",
    urgency: int = 2,
    waiting: int = 0,
    categories: tuple[str, ...] = ("dibao",),
) -> Need:
    return Need(need_id, f"ref-{need_id}", region, service, urgency, waiting, categories)


def org(
    organisation_id: str,
    capacity: dict[str, int],
    regions: tuple[str, ...] = ("220102",),
    *,
    credit: float | None = 80,
    satisfaction: float | None = 0.8,
    status: str = "admitted",
    eligible: bool = True,
) -> OrganisationSupply:
    return OrganisationSupply(
        organisation_id, capacity, regions, credit, satisfaction, status, eligible
    )


def outcomes(result: AllocationResult) -> dict[str, Assignment | Unassigned]:
    return {
        result.problem.needs[i].need_id: result.outcome(i) for i in range(len(result.problem.needs))
    }


def provider(out: Assignment | Unassigned) -> str | None:
    if isinstance(out, Unassigned):
        return None
    return out.organisation_id or out.resource_id


# --------------------------------------------------------------------------- known answers


def test_capacity_binds_and_the_most_urgent_are_served() -> None:
    needs = [need("low", urgency=1), need("high", urgency=4), need("mid", urgency=3)]
    result = allocate(needs, [org("A", {"care": 2})])
    got = outcomes(result)
    assert provider(got["high"]) == provider(got["mid"]) == "A"
    left = got["low"]
    assert isinstance(left, Unassigned)
    assert left.reason is Reason.capacity_exhausted
    assert "capacity of organisation A for care used up: 2/2" in left.explanation.text
    held = left.explanation.candidates[0]
    assert held.constraint.binding and held.lowest_score_held is not None
    assert held.lowest_score_held >= held.score  # it holds needs worth more
    served = got["high"]
    assert isinstance(served, Assignment)
    assert served.explanation.constraints[0].binding  # capacity 2/2 bound it
    assert result.capacity_used() == {("A", "care"): 2}


def test_closer_provider_is_preferred_and_explained() -> None:
    orgs = [
        org("county", {"care": 5}, ("220102",)),
        org("township", {"care": 5}, ("220102001",)),
        org("city", {"care": 5}, ("2201",)),
    ]
    result = allocate([need("n")], orgs)
    out = result.outcome(0)
    assert isinstance(out, Assignment)
    assert out.organisation_id == "township"
    assert out.explanation.covering_prefix == "220102001"
    assert out.explanation.fit.closeness_digits == 9
    assert out.explanation.better_candidates == 0
    assert out.explanation.candidates == 3


def test_when_the_closest_is_full_the_explanation_names_it() -> None:
    orgs = [org("near", {"care": 1}, ("220102001",)), org("far", {"care": 5}, ("2201",))]
    needs = [need("first", urgency=4), need("second", urgency=1)]
    got = outcomes(allocate(needs, orgs))
    assert provider(got["first"]) == "near"
    second = got["second"]
    assert isinstance(second, Assignment) and second.organisation_id == "far"
    assert second.explanation.better_candidates == 1
    blocked = second.explanation.passed_over[0]
    assert blocked.id == "near"
    assert blocked.constraint.text == "capacity of organisation near for care used up: 1/1"
    assert "higher-scoring candidate(s) had no room" in second.explanation.text


@pytest.mark.parametrize("status", ["suspended", "exited", "blacklisted"])
def test_ineligible_organisations_are_never_chosen(status: str) -> None:
    orgs = [
        org("bad", {"care": 10}, ("220102001001",), credit=100, satisfaction=1.0, status=status),
        org("ok", {"care": 10}, ("2201",), credit=20, satisfaction=0.1),
    ]
    result = allocate([need("a"), need("b")], orgs)
    assert {provider(o) for o in outcomes(result).values()} == {"ok"}


def test_all_ineligible_is_the_reason_when_only_ineligible_cover() -> None:
    orgs = [
        org("s", {"care": 10}, status="suspended"),
        org("x", {"care": 10}, eligible=False),
    ]
    out = allocate([need("n")], orgs).outcome(0)
    assert isinstance(out, Unassigned)
    assert out.reason is Reason.all_ineligible
    assert "organisation s is suspended" in out.explanation.text
    assert "organisation x is not eligible" in out.explanation.text
    assert (out.explanation.covering, out.explanation.eligible) == (2, 0)


def test_no_coverage_when_no_contract_covers_item_or_region() -> None:
    orgs = [org("A", {"counselling": 5}), org("B", {"care": 5}, ("220103",))]
    out = allocate([need("n")], orgs).outcome(0)
    assert isinstance(out, Unassigned)
    assert out.reason is Reason.no_coverage
    assert out.explanation.covering == 0
    assert "no contract or charity resource covers care in 220102001001" in out.explanation.text


def test_capacity_used_before_the_run_is_capacity_exhausted() -> None:
    out = allocate([need("n")], [org("A", {"care": 0})]).outcome(0)
    assert isinstance(out, Unassigned)
    assert out.reason is Reason.capacity_exhausted
    assert "no capacity left before this run" in out.explanation.text
    assert out.explanation.candidates[0].constraint.kind == "no_capacity"


def test_charity_resource_only_for_matching_categories() -> None:
    res = CharityResource("R", ("care",), ("220102",), ("child_in_difficulty",), remaining=5)
    needs = [
        need("adult", categories=("dibao",)),
        need("child", categories=("dibao", "child_in_difficulty")),
    ]
    got = outcomes(allocate(needs, [], [res]))
    child = got["child"]
    assert isinstance(child, Assignment) and child.resource_id == "R"
    assert child.organisation_id is None
    adult = got["adult"]
    assert isinstance(adult, Unassigned) and adult.reason is Reason.no_coverage
    assert "target other categories" in adult.explanation.text


def test_resource_and_organisation_work_together() -> None:
    res = CharityResource("R", ("care",), ("220102001",), ("tekun",), remaining=1)
    needs = [need(f"n{i}", categories=("tekun",), urgency=2) for i in range(3)]
    result = allocate(needs, [org("A", {"care": 1})], [res])
    assert result.assigned_count == 2
    assert result.resource_used() == {"R": 1}
    assert result.capacity_used() == {("A", "care"): 1}


def test_ineligible_resource_is_never_used() -> None:
    res = CharityResource("R", ("care",), ("220102",), ("dibao",), 5, eligible=False)
    out = allocate([need("n")], [], [res]).outcome(0)
    assert isinstance(out, Unassigned) and out.reason is Reason.all_ineligible


def test_fairness_cap_limits_one_organisation_in_a_region() -> None:
    needs = [need(f"n{i}") for i in range(10)]
    orgs = [
        org("best", {"care": 10}, ("220102001",), credit=100, satisfaction=1.0),
        org("other", {"care": 10}, ("2201",), credit=50, satisfaction=0.5),
    ]
    unfair = allocate(needs, orgs)
    assert unfair.capacity_used() == {("best", "care"): 10}
    fair = allocate(needs, orgs, fairness=FairnessCap(0.5))
    assert fair.capacity_used() == {("best", "care"): 5, ("other", "care"): 5}
    moved = [a for a in fair.assignments() if a.organisation_id == "other"]
    assert moved[0].explanation.passed_over[0].constraint.kind == "fairness_cap"
    assert "fairness cap of organisation best for care in 220102" in moved[0].explanation.text
    # The cap is per region: needs of another county have their own.
    more = [*needs, *(need(f"m{i}", region="220103001001") for i in range(4))]
    wide = [org("best", {"care": 20}, ("2201",)), org("other", {"care": 20}, ("22",))]
    split = allocate(more, wide, fairness=FairnessCap(0.5))
    per_region = Counter((a.organisation_id, a.region_code[:6]) for a in split.assignments())
    assert per_region[("best", "220102")] == 5 and per_region[("best", "220103")] == 2


def test_optimum_beats_greedy_where_greedy_blocks_a_lower_priority_need() -> None:
    # A (urgent) may use X (fit 13) or Y (fit 10); B only X. Greedy gives X to A and leaves
    # B out (8 × 13 = 104); the optimum sends A to Y and B to X (8 × 10 + 2 × 13 = 106).
    needs = [
        need("A", urgency=4, categories=()),
        need("B", urgency=1, region="220103001001", categories=()),
    ]
    orgs = [
        org("X", {"care": 1}, ("2201",), credit=100, satisfaction=1.0),
        org("Y", {"care": 1}, ("220102",), credit=40, satisfaction=0.4),
    ]
    best = allocate(needs, orgs)
    got = outcomes(best)
    assert (provider(got["A"]), provider(got["B"])) == ("Y", "X")
    assert best.total_score == 106
    greedy = greedy_allocate(needs, orgs)
    assert greedy.assigned_count == 1 and greedy.total_score == 104


def test_longest_waiting_first_within_a_group() -> None:
    # Same priority (both one 30-day step), one place: the longer wait gets it.
    needs = [need("newer", waiting=35), need("older", waiting=55)]
    got = outcomes(allocate(needs, [org("A", {"care": 1})]))
    assert provider(got["older"]) == "A" and provider(got["newer"]) is None


def test_villages_collapse_when_nobody_covers_a_village() -> None:
    needs = [need(f"n{i}", region=f"220102001{i % 7 + 1:03d}") for i in range(70)]
    problem = build_problem(needs, [org("A", {"care": 100})])
    assert problem.n_groups == 1 and problem.group_size.tolist() == [70]


def test_service_regions_restrict_an_item_to_its_contract_area() -> None:
    o = OrganisationSupply(
        "A",
        {"care": 5, "counselling": 5},
        ("2201",),
        service_regions={"counselling": ("220103",)},
    )
    needs = [need("c1", service="counselling"), need("c2", service="care")]
    got = outcomes(allocate(needs, [o]))
    assert provider(got["c2"]) == "A"
    assert isinstance(got["c1"], Unassigned) and got["c1"].reason is Reason.no_coverage


def test_explanation_is_json_ready() -> None:
    import json

    result = allocate([need("a"), need("b", service="x")], [org("A", {"care": 1})])
    for i in range(2):
        payload = json.loads(json.dumps(result.outcome(i).as_dict()))
        assert payload["priority"]["total"] >= 1


def test_division_prefix_normalises_and_rejects() -> None:
    assert division_prefix("220100") == "2201"
    assert division_prefix("220102000000") == "220102"
    assert division_prefix("220102001000") == "220102001"
    assert division_prefix("220000") == "22"
    assert division_prefix("220102001001") == "220102001001"
    for bad in ("2201a", "22010", ""):
        with pytest.raises(ValueError):
            division_prefix(bad)


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError):
        need("n", region="2201")
    with pytest.raises(ValueError):
        need("n", urgency=5)
    with pytest.raises(ValueError):
        Scoring(urgency_points={1: 0, 2: 1, 3: 2, 4: 3})
    with pytest.raises(ValueError):
        FairnessCap(0)


def test_empty_inputs() -> None:
    assert allocate([], []).total_score == 0
    result = allocate([need("n")], [])
    assert result.unassigned_count == 1


# --------------------------------------------------------------------------- oracle

VILLAGES = ("220102001001", "220102001002", "220102002001", "220103001001", "220201001001")
PREFIXES = (
    "22",
    "2201",
    "2202",
    "220102",
    "220103",
    "220102001",
    "220102002",
    "220102001001",
    "220201001001",
)
SERVICES = ("care", "counselling")
CATEGORIES = ("tekun", "dibao", "child_in_difficulty", "temporary_aid")
FINE = Scoring(
    urgency_points={1: 3, 2: 7, 3: 12, 4: 20},
    waiting_points_per_step=2,
    waiting_step_days=20,
    waiting_cap_steps=4,
    vulnerability_points={"tekun": 5, "child_in_difficulty": 4, "dibao": 2},
    credit_points=13,
    satisfaction_points=9,
)


@dataclass
class Instance:
    needs: list[Need]
    orgs: list[OrganisationSupply]
    resources: list[CharityResource]
    scoring: Scoring


@st.composite
def instances(draw: st.DrawFn) -> Instance:
    needs = [
        Need(
            f"n{i}",
            f"r{i}",
            draw(st.sampled_from(VILLAGES)),
            draw(st.sampled_from(SERVICES)),
            draw(st.integers(1, 4)),
            draw(st.integers(0, 100)),
            tuple(draw(st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True))),
        )
        for i in range(draw(st.integers(0, 10)))
    ]
    orgs = [
        OrganisationSupply(
            f"o{k}",
            draw(st.dictionaries(st.sampled_from(SERVICES), st.integers(0, 3), max_size=2)),
            tuple(draw(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2))),
            draw(st.sampled_from([None, 0.0, 35.0, 60.0, 87.5, 100.0])),
            draw(st.sampled_from([None, 0.0, 0.3, 0.5, 0.9, 1.0])),
            draw(st.sampled_from(["admitted"] * 4 + ["suspended", "exited", "blacklisted"])),
            draw(st.booleans()) or draw(st.booleans()),
        )
        for k in range(draw(st.integers(0, 4)))
    ]
    resources = [
        CharityResource(
            f"c{k}",
            tuple(draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=2, unique=True))),
            (draw(st.sampled_from(PREFIXES)),),
            tuple(draw(st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True))),
            draw(st.integers(0, 3)),
            credit_score=draw(st.sampled_from([None, 70.0])),
            eligible=draw(st.booleans()) or draw(st.booleans()),
        )
        for k in range(draw(st.integers(0, 3)))
    ]
    return Instance(needs, orgs, resources, draw(st.sampled_from([SCORING, FINE])))


@dataclass
class Target:
    kind: str
    id: str
    service: str | None  # offers: their service; resources: None (any of theirs)
    capacity: int
    eligible: bool
    source: OrganisationSupply | CharityResource


def targets(inst: Instance) -> list[Target]:
    out = [
        Target("organisation", o.organisation_id, s, cap, o.is_eligible, o)
        for o in inst.orgs
        for s, cap in o.capacity.items()
    ]
    out += [
        Target("resource", r.resource_id, None, r.remaining, r.eligible, r) for r in inst.resources
    ]
    return out


def covering(n: Need, t: Target) -> int:
    """Closeness digits if t covers n (any eligibility or capacity), else 0."""
    src = t.source
    if isinstance(src, OrganisationSupply):
        if t.service != n.service_code:
            return 0
        prefixes = src.regions_for(n.service_code)
    else:
        if n.service_code not in src.service_codes:
            return 0
        if not set(src.target_categories) & set(n.categories):
            return 0
        prefixes = src.regions
    return max((len(p) for p in prefixes if n.region_code.startswith(p)), default=0)


def value(inst: Instance, n: Need, t: Target) -> int:
    """The value of n at t computed from the raw inputs (0: not allowed)."""
    close = covering(n, t)
    if not close or not t.eligible or t.capacity <= 0:
        return 0
    sc = inst.scoring
    fit = sc.closeness_points[close] + sc.credit(t.source.credit_score)
    fit += sc.satisfaction(t.source.satisfaction)
    return sc.priority(n) * fit


def lsa_optimum(inst: Instance) -> int:
    """Exact optimum: one column per unit of capacity, one zero column per need."""
    ts = targets(inst)
    columns = [t for t in ts for _ in range(max(0, t.capacity))]
    n = len(inst.needs)
    if n == 0:
        return 0
    matrix = np.zeros((n, len(columns) + n), dtype=np.int64)
    for i, nd in enumerate(inst.needs):
        for j, t in enumerate(columns):
            matrix[i, j] = value(inst, nd, t)
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    return int(matrix[rows, cols].sum())


def milp_optimum(inst: Instance, fairness: FairnessCap) -> int:
    """Exact optimum with the fairness cap, as an integer program over (need, target)."""
    ts = targets(inst)
    pairs = [
        (i, j, value(inst, nd, t))
        for i, nd in enumerate(inst.needs)
        for j, t in enumerate(ts)
        if value(inst, nd, t) > 0
    ]
    if not pairs:
        return 0
    rows: list[list[int]] = []
    upper: list[int] = []
    for i in range(len(inst.needs)):
        rows.append([k for k, (a, _, _) in enumerate(pairs) if a == i])
        upper.append(1)
    for j, t in enumerate(ts):
        rows.append([k for k, (_, b, _) in enumerate(pairs) if b == j])
        upper.append(t.capacity)
    # Fairness: per (offer, region) the cap from the region's open needs of the item.
    demand = Counter(
        (nd.region_code[: fairness.region_digits], nd.service_code) for nd in inst.needs
    )
    groups: dict[tuple[int, str], list[int]] = {}
    for k, (i, j, _) in enumerate(pairs):
        if ts[j].kind == "organisation":
            groups.setdefault((j, inst.needs[i].region_code[: fairness.region_digits]), []).append(
                k
            )
    for (j, region), ks in groups.items():
        rows.append(ks)
        upper.append(fairness.cap(demand[(region, ts[j].service or "")]))
    a = np.zeros((len(rows), len(pairs)))
    for r, ks in enumerate(rows):
        a[r, ks] = 1
    res = milp(
        c=-np.array([v for _, _, v in pairs], dtype=float),
        constraints=LinearConstraint(a, -np.inf, np.array(upper, dtype=float)),
        integrality=np.ones(len(pairs)),
        bounds=Bounds(0, 1),
    )
    assert res.success
    return round(-res.fun)


def check_feasible(inst: Instance, result: AllocationResult, fairness: FairnessCap | None) -> None:
    """Every assignment allowed and scored as the raw inputs say; no capacity exceeded."""
    by_id = {(t.kind, t.id, t.service): t for t in targets(inst)}
    used: Counter[tuple[str, str, str | None]] = Counter()
    fair_used: Counter[tuple[str, str, str]] = Counter()
    total = 0
    for i, nd in enumerate(inst.needs):
        out = result.outcome(i)
        if isinstance(out, Unassigned):
            continue
        key: tuple[str, str, str | None]
        if out.organisation_id is not None:
            key = ("organisation", out.organisation_id, nd.service_code)
            if fairness:
                fair_used[
                    (out.organisation_id, nd.service_code, nd.region_code[: fairness.region_digits])
                ] += 1
        else:
            assert out.resource_id is not None
            key = ("resource", out.resource_id, None)
        t = by_id[key]
        assert value(inst, nd, t) == out.score > 0
        used[key] += 1
        total += out.score
    assert total == result.total_score
    for key, count in used.items():
        assert count <= by_id[key].capacity
    if fairness:
        demand = Counter(
            (nd.region_code[: fairness.region_digits], nd.service_code) for nd in inst.needs
        )
        for (_, service, region), count in fair_used.items():
            assert count <= fairness.cap(demand[(region, service)])


def check_reasons(inst: Instance, result: AllocationResult) -> None:
    """Reason codes recomputed from the raw inputs; nothing left out while a candidate had
    room (the value of any assignment is positive)."""
    ts = targets(inst)
    remaining: dict[tuple[str, str, str | None], int] = {
        (t.kind, t.id, t.service): t.capacity for t in ts
    }
    for a in result.assignments():
        if a.organisation_id is not None:
            remaining[("organisation", a.organisation_id, a.service_code)] -= 1
        else:
            remaining[("resource", a.resource_id or "", None)] -= 1
    for u in result.unassigned():
        nd = inst.needs[result.index_of(u.need_id)]
        cover = [t for t in ts if covering(nd, t)]
        eligible = [t for t in cover if t.eligible]
        if not cover:
            assert u.reason is Reason.no_coverage
        elif not eligible:
            assert u.reason is Reason.all_ineligible
        else:
            assert u.reason is Reason.capacity_exhausted
            assert all(remaining[(t.kind, t.id, t.service)] <= 0 for t in eligible)
            assert all(c.constraint.binding for c in u.explanation.candidates)
    for a in result.assignments():
        assert all(c.constraint.binding for c in a.explanation.passed_over)


def check_explanation_counts(inst: Instance, result: AllocationResult) -> None:
    """The counts an explanation gives (computed in bulk), recounted from the raw inputs:
    candidates = eligible covering targets with capacity; better = those of them that
    would have scored higher."""
    ts = targets(inst)
    for a in result.assignments():
        nd = inst.needs[result.index_of(a.need_id)]
        values = [value(inst, nd, t) for t in ts]
        allowed = [v for v in values if v > 0]
        assert a.explanation.candidates == len(allowed)
        assert a.explanation.better_candidates == sum(1 for v in allowed if v > a.score)
        assert len(a.explanation.passed_over) == min(
            result.explain_top, sum(1 for v in allowed if v > a.score)
        )
        assert [c.score for c in a.explanation.passed_over] == sorted(
            (c.score for c in a.explanation.passed_over), reverse=True
        )


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(instances())
def test_engine_equals_the_assignment_oracle(inst: Instance) -> None:
    result = allocate(inst.needs, inst.orgs, inst.resources, scoring=inst.scoring)
    assert result.total_score == lsa_optimum(inst)
    check_feasible(inst, result, None)
    check_reasons(inst, result)
    check_explanation_counts(inst, result)
    # Grouping, pruning and partitioning do not change the optimum.
    for options in (
        EngineOptions(collapse=False),
        EngineOptions(partition=False),
        EngineOptions(prune=False),
        EngineOptions(collapse=False, partition=False, prune=False),
    ):
        other = allocate(
            inst.needs, inst.orgs, inst.resources, scoring=inst.scoring, options=options
        )
        assert other.total_score == result.total_score
        check_feasible(inst, other, None)
    problem = build_problem(inst.needs, inst.orgs, inst.resources, scoring=inst.scoring)
    assert bare_solve(problem)[0] == result.total_score
    greedy = greedy_allocate(inst.needs, inst.orgs, inst.resources, scoring=inst.scoring)
    check_feasible(inst, greedy, None)
    assert greedy.total_score <= result.total_score


@PROPERTY
@given(instances(), st.sampled_from([0.2, 0.34, 0.5, 0.9]), st.sampled_from([4, 6, 9]))
def test_engine_with_fairness_equals_the_integer_program(
    inst: Instance, share: float, digits: int
) -> None:
    fairness = FairnessCap(share, region_digits=digits)
    result = allocate(
        inst.needs, inst.orgs, inst.resources, scoring=inst.scoring, fairness=fairness
    )
    assert result.total_score == milp_optimum(inst, fairness)
    check_feasible(inst, result, fairness)
    plain = allocate(
        inst.needs,
        inst.orgs,
        inst.resources,
        scoring=inst.scoring,
        fairness=fairness,
        options=EngineOptions(collapse=False, partition=False),
    )
    assert plain.total_score == result.total_score
    greedy = greedy_allocate(
        inst.needs, inst.orgs, inst.resources, scoring=inst.scoring, fairness=fairness
    )
    check_feasible(inst, greedy, fairness)
    assert greedy.total_score <= result.total_score


def test_larger_random_instance_against_the_oracle() -> None:
    """A few hundred needs: grouping, levels, hubs and components all at work."""
    rng = np.random.default_rng(7)
    villages = [f"2201{c:02d}{t:03d}{v:03d}" for c in (2, 3, 4) for t in (1, 2, 3) for v in (1, 2)]
    needs = [
        Need(
            f"n{i}",
            f"r{i}",
            villages[rng.integers(len(villages))],
            SERVICES[rng.integers(2)],
            int(rng.integers(1, 5)),
            int(rng.integers(0, 120)),
            (CATEGORIES[rng.integers(4)],),
        )
        for i in range(300)
    ]
    prefixes = ["2201", "220102", "220103", "220104", "220102001", "220103002"]
    orgs = [
        OrganisationSupply(
            f"o{k}",
            {SERVICES[rng.integers(2)]: int(rng.integers(1, 15))},
            (prefixes[rng.integers(len(prefixes))],),
            float(rng.integers(30, 101)),
            float(rng.random()),
            "admitted" if rng.random() < 0.9 else "suspended",
        )
        for k in range(25)
    ]
    resources = [
        CharityResource(
            f"c{k}",
            (SERVICES[rng.integers(2)],),
            (prefixes[rng.integers(len(prefixes))],),
            (CATEGORIES[rng.integers(4)], CATEGORIES[rng.integers(4)]),
            int(rng.integers(1, 10)),
        )
        for k in range(8)
    ]
    inst = Instance(needs, orgs, resources, SCORING)
    result = allocate(needs, orgs, resources)
    assert result.stats["groups"] < len(needs)
    assert result.total_score == lsa_optimum(inst)
    check_feasible(inst, result, None)
    check_reasons(inst, result)
    flat = allocate(needs, orgs, resources, options=EngineOptions(collapse=False))
    assert flat.total_score == result.total_score


def test_outcomes_are_deterministic() -> None:
    needs: Sequence[Need] = [need(f"n{i}", urgency=1 + i % 4, waiting=i) for i in range(30)]
    orgs = [org("A", {"care": 7}), org("B", {"care": 6}, ("2201",))]
    first = allocate(needs, orgs)
    second = allocate(needs, orgs, options=EngineOptions(partition=False))
    assert first.need_target().tolist() == second.need_target().tolist()


# --------------------------------------------------------------------------- columns


def columns_of(needs: Sequence[Need]) -> NeedColumns:
    """The needs as columns built by hand (not through `from_needs`), vocabularies in an
    order of their own: what a caller with its own encoding would pass."""
    regions = sorted({n.region_code for n in needs}, reverse=True)
    services = sorted({n.service_code for n in needs})
    sets = sorted({n.categories for n in needs})
    return NeedColumns(
        need_id=[n.need_id for n in needs],
        recipient_ref=np.array([n.recipient_ref for n in needs], dtype=object),
        region=np.array([regions.index(n.region_code) for n in needs], dtype=np.int32),
        regions=regions,
        service=np.array([services.index(n.service_code) for n in needs], dtype=np.int64),
        services=services,
        urgency=np.array([n.urgency for n in needs], dtype=np.int8),
        waiting_days=np.array([n.waiting_days for n in needs], dtype=np.int64),
        categories=np.array([sets.index(n.categories) for n in needs], dtype=np.int64),
        category_sets=sets,
    )


@PROPERTY
@given(instances(), st.sampled_from([None, FairnessCap(0.5, region_digits=6)]))
def test_columns_give_the_same_result_as_objects(
    inst: Instance, fairness: FairnessCap | None
) -> None:
    by_objects = allocate(
        inst.needs, inst.orgs, inst.resources, scoring=inst.scoring, fairness=fairness
    )
    by_columns = allocate(
        columns_of(inst.needs),
        inst.orgs,
        inst.resources,
        scoring=inst.scoring,
        fairness=fairness,
    )
    assert by_columns.total_score == by_objects.total_score
    assert by_columns.need_target().tolist() == by_objects.need_target().tolist()
    for i in range(len(inst.needs)):
        a, b = by_objects.outcome(i), by_columns.outcome(i)
        assert type(a) is type(b)
        assert a.as_dict() == b.as_dict()
        assert (a.need_id, a.recipient_ref, a.region_code, a.service_code) == (
            b.need_id,
            b.recipient_ref,
            b.region_code,
            b.service_code,
        )
    assert by_columns.capacity_used() == by_objects.capacity_used()
    assert by_columns.resource_used() == by_objects.resource_used()


def test_columns_round_trip_and_view() -> None:
    needs = [
        need("a", "220102001001", "care", 3, 40, ("tekun",)),
        need("b", "220103001002", "counselling", 1, 0, ()),
        need("c", "220102001001", "care", 4, 5, ("dibao", "tekun")),
    ]
    cols = NeedColumns.from_needs(needs)
    assert len(cols) == 3 and [cols.need(i) for i in range(3)] == needs
    assert cols.regions == ["220102001001", "220103001002"]  # distinct, first seen first
    problem = build_problem(cols, [org("A", {"care": 5})])
    assert problem.source_needs is None
    assert list(problem.needs) == needs and problem.needs[-1] == needs[2]
    assert problem.needs[0:2] == needs[0:2]
    assert build_problem(needs, []).needs is needs
    # A view converts back without copying.
    assert NeedColumns.from_needs(problem.needs) is cols


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"regions": ["2201"]}, "not 12 digits"),
        ({"urgency": np.array([0])}, "urgency"),
        ({"waiting_days": np.array([-1])}, "negative"),
        ({"service": np.array([1])}, "indexes outside"),
        ({"categories": np.array([-1])}, "indexes outside"),
        ({"recipient_ref": []}, "recipient refs"),
        ({"region": np.array([0, 0])}, "shape"),
        ({"urgency": np.array([1.5])}, "not integer"),
    ],
)
def test_columns_are_validated(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "need_id": ["n"],
        "recipient_ref": ["r"],
        "region": np.array([0]),
        "regions": ["220102001001"],
        "service": np.array([0]),
        "services": ["care"],
        "urgency": np.array([2]),
        "waiting_days": np.array([3]),
        "categories": np.array([0]),
        "category_sets": [("dibao",)],
    }
    NeedColumns(**fields)  # type: ignore[arg-type]
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        NeedColumns(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- graph


def test_pruning_removes_what_no_optimum_uses_and_keeps_the_optimum() -> None:
    # "near" has room for every need that can reach it: nobody should be left out or sent
    # to the far organisation, so those arcs go; "tight" is short and keeps its arcs.
    needs = [need(f"n{i}", urgency=1 + i % 4) for i in range(6)]
    needs += [need(f"m{i}", region="220103001001") for i in range(4)]
    orgs = [
        org("near", {"care": 6}, ("220102",)),
        org("far", {"care": 20}, ("2201",), credit=30, satisfaction=0.2),
        org("tight", {"care": 2}, ("220103",)),
    ]
    problem = build_problem(needs, orgs)
    alive = prune(problem)
    full = everything(problem)
    assert alive.count() < full.count()
    county = [
        g for g in range(problem.n_groups) if problem.group_ocell[g] == problem.group_ocell[0]
    ]
    assert not any(alive.hub_unassigned[problem.group_hub[g]] for g in county)
    pruned = allocate(needs, orgs)
    kept = allocate(needs, orgs, options=EngineOptions(prune=False))
    assert pruned.total_score == kept.total_score
    assert (
        pruned.capacity_used()
        == kept.capacity_used()
        == {
            ("near", "care"): 6,
            ("tight", "care"): 2,
            ("far", "care"): 2,
        }
    )
    assert pruned.stats["pruned_arcs"] > 0 and kept.stats["pruned_arcs"] == 0


def test_no_pruning_with_a_fairness_cap() -> None:
    needs = [need(f"n{i}") for i in range(4)]
    problem = build_problem(needs, [org("A", {"care": 10})], fairness=FairnessCap(0.5))
    assert prune(problem).count() == everything(problem).count()


def test_equal_candidate_lists_share_one_level_node() -> None:
    # Two townships covered by the same two county organisations at the same fit: their
    # levels hold the same candidates, so the graph has one node for both.
    needs = [need(f"a{i}", region="220102001001") for i in range(3)]
    needs += [need(f"b{i}", region="220102002001", urgency=3) for i in range(3)]
    orgs = [
        org("X", {"care": 2}, ("220102",)),
        org("Y", {"care": 2}, ("220102",)),
        org("T", {"care": 1}, ("220102001",)),
    ]
    problem = build_problem(needs, orgs)
    assert len(problem.ocells) == 2
    graph = build_graph(problem)
    assert len(graph.set_level) == 1
    result = allocate(needs, orgs)
    assert (
        result.total_score
        == allocate(needs, orgs, options=EngineOptions(collapse=False, prune=False)).total_score
    )
    assert sum(result.capacity_used().values()) == 5


def test_explanations_rendered_in_bulk_equal_those_made_on_demand() -> None:
    needs = [need(f"n{i}", urgency=1 + i % 4, waiting=i) for i in range(14)]
    orgs = [
        org("A", {"care": 3}, ("220102001",), credit=95),
        org("B", {"care": 2}, ("2201",)),
        org("C", {"care": 4}),
    ]
    on_demand, bulk = allocate(needs, orgs), allocate(needs, orgs)
    bulk.render_all()
    for i in range(len(needs)):
        a, b = on_demand.outcome(i), bulk.outcome(i)
        assert a.as_dict() == b.as_dict()
        if isinstance(b, Assignment):
            ex = b.explanation
            stored = ex.as_dict()
            # The view's objects give the stored parts, and fields read the stored form.
            assert stored["fit"] == ex.fit.as_dict()
            assert stored["constraints"] == [c.as_dict() for c in ex.constraints]
            assert stored["passed_over"] == [c.as_dict() for c in ex.passed_over]
            assert (ex.kind, ex.id, ex.score, ex.text) == (
                stored["provider_kind"],
                stored["provider_id"],
                stored["score"],
                stored["text"],
            )
            # as_dict hands out a new top-level dict: changing it changes nothing stored.
            stored["text"] = "changed"
            assert ex.as_dict()["text"] != "changed"
    assert any(isinstance(on_demand.outcome(i), Unassigned) for i in range(len(needs)))
    assert any(
        o.explanation.passed_over
        for o in (bulk.outcome(i) for i in range(len(needs)))
        if isinstance(o, Assignment)
    )


def test_bulk_rendering_restores_the_garbage_collector() -> None:
    import gc

    result = allocate([need("a"), need("b")], [org("A", {"care": 1})])
    assert gc.isenabled()
    assert result.render_all() == (1, 1)
    assert gc.isenabled()
    records = result.outcomes()
    assert gc.isenabled()
    assert [r.need_id for r in records] == ["a", "b"]
    assert [type(r) for r in records] == [Assignment, Unassigned]
    assert [r.as_dict() for r in records] == [result.outcome(i).as_dict() for i in range(2)]
    gc.disable()
    try:
        allocate([need("a")], [org("A", {"care": 1})]).render_all()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_equal_resource_lists_share_one_resource_level_node() -> None:
    # Two resources covering the county at the same fit, two groups using both (different
    # categories, so different signatures): each group has one arc into one shared
    # resource level node, which has an arc per resource; the bare graph keeps one arc
    # per (group, resource).
    needs = [need(f"a{i}", categories=("dibao",)) for i in range(3)]
    needs += [need(f"b{i}", urgency=3, categories=("tekun",)) for i in range(3)]
    resources = [
        CharityResource("R1", ("care",), ("220102",), ("dibao", "tekun"), 2),
        CharityResource("R2", ("care",), ("220102",), ("dibao", "tekun", "x"), 2),
        CharityResource("R3", ("care",), ("220102001",), ("tekun",), 1),
    ]
    problem = build_problem(needs, [], resources)
    graph = build_graph(problem)
    bare = build_graph(problem, reduced=False)
    assert len(graph.set_rlevel) == 1
    rarc = graph.parts["rarc"]
    assert rarc.stop - rarc.start < len(problem.rarc_group) == bare.parts["rarc"].stop
    result = allocate(needs, [], resources)
    assert result.total_score == bare_solve(problem)[0]
    assert (
        result.total_score
        == allocate(needs, [], resources, options=EngineOptions(collapse=False)).total_score
    )
    assert result.resource_used() == {"R1": 2, "R2": 2, "R3": 1}
    # Explanations stay per (group, resource).
    providers = {o.need_id: provider(o) for o in outcomes(result).values()}
    assert sorted(p for p in providers.values() if p) == ["R1", "R1", "R2", "R2", "R3"]


def test_ocells_with_equal_candidates_share_hubs_and_keep_their_explanations() -> None:
    # An ineligible township organisation gives township 001 an ocell of its own, with the
    # same candidates as the rest of the county: one hub serves both, and each need's
    # explanation still counts its own ocell's covering candidates.
    needs = [need(f"a{i}", region="220102001001") for i in range(2)]
    needs += [need(f"b{i}", region="220102002001") for i in range(2)]
    orgs = [
        org("X", {"care": 1}, ("220102",)),
        org("T", {"care": 5}, ("220102001",), status="suspended"),
    ]
    problem = build_problem(needs, orgs)
    assert len(problem.ocells) == 2 and problem.n_hubs == 1
    result = allocate(needs, orgs)
    assert result.total_score == lsa_optimum(Instance(needs, orgs, [], SCORING))
    for k in range(len(result.pair_group)):
        oc = problem.group_ocell[result.pair_group[k]]
        lo, hi = problem.ocell_cand_start[oc], problem.ocell_cand_start[oc + 1]
        assert lo <= result.pair_src[k] < hi
    covering = {
        o.need_id[0]: o.explanation.covering
        for o in outcomes(result).values()
        if isinstance(o, Unassigned)
    }
    assert covering == {"a": 2, "b": 1}


@st.composite
def resource_instances(draw: st.DrawFn) -> Instance:
    """Needs of one county, many resources covering it, few organisations and few
    distinct credit scores: resource levels of several resources, shared by groups of
    different signatures."""
    inst = draw(instances())
    needs = [
        Need(
            f"n{i}",
            f"r{i}",
            draw(st.sampled_from(VILLAGES[:3])),
            draw(st.sampled_from(SERVICES)),
            draw(st.integers(1, 4)),
            draw(st.integers(0, 100)),
            tuple(draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True))),
        )
        for i in range(draw(st.integers(1, 12)))
    ]
    resources = [
        CharityResource(
            f"c{k}",
            tuple(draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=2, unique=True))),
            (draw(st.sampled_from(("2201", "220102", "220102"))),),
            tuple(draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True))),
            draw(st.integers(0, 4)),
            credit_score=draw(st.sampled_from([None, None, None, 70.0])),
            eligible=draw(st.booleans()) or draw(st.booleans()),
        )
        for k in range(draw(st.integers(2, 8)))
    ]
    return Instance(needs, inst.orgs[:1], resources, inst.scoring)


@PROPERTY
@given(resource_instances())
def test_resource_levels_keep_the_optimum_and_explanations(inst: Instance) -> None:
    result = allocate(inst.needs, inst.orgs, inst.resources, scoring=inst.scoring)
    assert result.total_score == lsa_optimum(inst)
    problem = build_problem(inst.needs, inst.orgs, inst.resources, scoring=inst.scoring)
    assert bare_solve(problem)[0] == result.total_score
    for options in (EngineOptions(collapse=False), EngineOptions(prune=False)):
        other = allocate(
            inst.needs, inst.orgs, inst.resources, scoring=inst.scoring, options=options
        )
        assert other.total_score == result.total_score
    check_feasible(inst, result, None)
    check_reasons(inst, result)
    check_explanation_counts(inst, result)
    bulk = allocate(inst.needs, inst.orgs, inst.resources, scoring=inst.scoring)
    bulk.render_all()
    for i in range(len(inst.needs)):
        assert bulk.outcome(i).as_dict() == result.outcome(i).as_dict()


def test_graph_contractions_keep_the_optimum() -> None:
    # Two townships share the county organisations' hub (equal candidate lists): the
    # needs without resources are the hub's host and an absorbed group, the needs with a
    # resource link to it. "Solo" is entered by one arc only, which then goes to the sink.
    needs = [need(f"a{i}", region="220102001001", categories=("tekun",)) for i in range(3)]
    needs += [need(f"b{i}", region="220102002001", categories=("tekun",)) for i in range(3)]
    needs += [need(f"c{i}", region="220102002001", categories=("tekun", "dibao")) for i in range(3)]
    needs += [need(f"d{i}", region="220103001001", service="counselling") for i in range(2)]
    orgs = [
        org("X", {"care": 3}, ("220102",)),
        org("T", {"care": 3}, ("220102001",), status="suspended"),
        org("Solo", {"counselling": 1}, ("220103",)),
    ]
    resources = [CharityResource("R", ("care",), ("220102002",), ("dibao",), 2)]
    problem = build_problem(needs, orgs, resources)
    graph = build_graph(problem)
    assert len(graph.hosts) == 2 and len(graph.absorbed) == 1 and len(graph.links) == 1
    target = graph.parts["target"]
    assert target.stop - target.start < len(np.unique(problem.cand_target)) + 1
    bare = build_graph(problem, reduced=False)
    assert len(bare.absorbed) == 0 and len(bare.tails) > len(graph.tails)
    result = allocate(needs, orgs, resources)
    assert (
        result.total_score
        == bare_solve(problem)[0]
        == lsa_optimum(Instance(needs, orgs, resources, SCORING))
    )
    check_feasible(Instance(needs, orgs, resources, SCORING), result, None)
    assert result.capacity_used() == {("X", "care"): 3, ("Solo", "counselling"): 1}
    assert result.resource_used() == {"R": 2}
