"""The allocation engine: open needs → organisations and charity resources, exactly.

Pure and in memory (no database, no events): the matching service builds the inputs from
its projections and stores the outcomes. Entry point::

    result = allocate(needs, organisations, resources, fairness=FairnessCap(0.4))
    # or allocate(NeedColumns(...), …): the same needs as columns, for large runs
    for a in result.assignments():   # Assignment: need → organisation or resource
        a.organisation_id, a.resource_id, a.score, a.as_dict()   # explanation to store
    for u in result.unassigned():    # Unassigned: reason code + "why not"
        u.reason, u.as_dict()
    records = result.outcomes()      # every need's record at once (faster in bulk)

The model (objective, grouping, graph) is described in `problem.py` and `flow.py`; the
scores in `model.Scoring`; the explanations in `result.py`; the baseline in `greedy.py`.
"""

from services.matching.engine.engine import (
    allocate,
    allocate_problem,
    greedy_allocate,
    greedy_problem,
)
from services.matching.engine.flow import bare_solve, solve_flow
from services.matching.engine.model import (
    DEFAULT_CLOSENESS,
    DEFAULT_URGENCY,
    DEFAULT_VULNERABILITY,
    ELIGIBLE_STATUS,
    CharityResource,
    EngineOptions,
    FairnessCap,
    FitParts,
    Need,
    NeedColumns,
    OrganisationSupply,
    PriorityParts,
    Reason,
    Scoring,
    division_prefix,
    waiting_days,
)
from services.matching.engine.problem import Problem, build_problem
from services.matching.engine.result import (
    AllocationResult,
    Assignment,
    Competitor,
    Constraint,
    MatchExplanation,
    Unassigned,
    WhyNot,
)

__all__ = [
    "DEFAULT_CLOSENESS",
    "DEFAULT_URGENCY",
    "DEFAULT_VULNERABILITY",
    "ELIGIBLE_STATUS",
    "AllocationResult",
    "Assignment",
    "CharityResource",
    "Competitor",
    "Constraint",
    "EngineOptions",
    "FairnessCap",
    "FitParts",
    "MatchExplanation",
    "Need",
    "NeedColumns",
    "OrganisationSupply",
    "PriorityParts",
    "Problem",
    "Reason",
    "Scoring",
    "Unassigned",
    "WhyNot",
    "allocate",
    "allocate_problem",
    "bare_solve",
    "build_problem",
    "division_prefix",
    "greedy_allocate",
    "greedy_problem",
    "solve_flow",
    "waiting_days",
]
