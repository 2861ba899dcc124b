"""Event contracts of the credit service (stream CREDIT): admission, sanctions, the
dishonesty list, appeals and repair, evaluations and scores.

Built in services/credit/events.py (admission, 准入), sanctions/events.py (violations,
decisions, 失信联合惩戒, blacklist, appeals, repair) and performance/events.py (绩效评价,
信用评分). `decision_version` counts an organisation's status decisions and `version` its
score changes, so providers and matching drop a late event. The names that travel are
organisations' registered names (失信记录公示, 吉民发〔2018〕21号 §二(六)); a
violation's description and evidence never travel (they may quote recipients or staff).

One verb may come from more than one decision: `suspended`, `exited` and `blacklisted` are
imposed by a sanction, or restored when a heavier sanction ends; `rejected` comes from the
admission review, or when a lifted sanction leaves an organisation that was never admitted.
Their payloads require what every variant carries and list the rest as optional.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from libs.common.contracts import (
    Code,
    Count,
    Day,
    DivisionCode,
    EventContract,
    Id,
    Instant,
    JsonObject,
    PackId,
    Payload,
    ServiceContracts,
    Text,
    Uscc,
    Version,
)

SERVICE = "credit"

# --------------------------------------------------------------------------- decisions


class Decision(Payload):
    """What every `sa.credit.organisation.*` decision carries."""

    organisation_id: Id
    decision_version: Version = Field(
        description="Counts the organisation's status decisions; a consumer drops older ones"
    )
    summary: Text = Field(description="The decision in one sentence, with its reason")
    decided_at: Instant


class Condition(Payload):
    """One admission condition (承接主体条件) and whether it is met; the condition
    `override` records a confirmed admission override (四眼原则) and who made it."""

    condition: Code
    met: bool
    rule: str = Field(description="The clause the condition comes from")
    description: Text
    override_id: Id | None = None
    outcome: Literal["admitted", "rejected"] | None = None
    proposed_by: str | None = Field(default=None, description="Operator who proposed it")
    confirmed_by: str | None = Field(default=None, description="Another operator confirmed")


class AdmissionDecided(Decision):
    """`sa.credit.organisation.admitted`: the admission review (准入) with every reason."""

    review_id: Id
    outcome: Literal["admitted", "rejected"]
    reasons: list[Condition]
    pack: PackId


class SanctionFields(Decision):
    """A decision that imposes a sanction, or restores a status after one ended."""

    status: Code | None = Field(description="The organisation's status after the decision")
    reason: Text
    sanction: Code | None = Field(
        default=None, description="warning | rectification | suspension | exit | blacklist"
    )
    sanction_id: Id | None = None
    violation_id: Id | None = None
    legal_basis: list[str] | None = Field(default=None, description="Clauses the decision cites")
    starts_on: Day | None = None
    ends_on: Day | None = Field(default=None, description="End of a ban or suspension")
    deadline: Day | None = Field(default=None, description="Of a rectification order")
    deciding_authority: str | None = None
    cause: Code | None = Field(default=None, description="What ended the earlier sanction")
    cause_id: Id | None = None


class SanctionOrdered(SanctionFields):
    """`sa.credit.organisation.warned|rectification_ordered`: status and version unchanged.

    A rectification ordered after an unqualified evaluation (民发〔2012〕196号 §三(五))
    names the evaluation."""

    sanction: Code
    legal_basis: list[str]
    deciding_authority: str
    evaluation_id: Id | None = None
    contract_id: Id | None = None
    period: str | None = None
    total: float | None = None
    pass_mark: float | None = None


class StatusDecision(SanctionFields):
    """`sa.credit.organisation.suspended|exited|reinstated`."""

    status: Code


class Blacklisted(StatusDecision):
    """`sa.credit.organisation.blacklisted`: listed as dishonest (失信名单) for a period."""

    blacklist_id: Id | None = None
    uscc: Uscc | None = None
    name: str | None = Field(default=None, description="Registered name (public list)")
    severity: Code | None = None
    ban_until: Day | None = None


class Rejected(Decision):
    """`sa.credit.organisation.rejected`: by the admission review (review_id, outcome,
    reasons, pack) or restored after a sanction (status, cause, cause_id, reason)."""

    review_id: Id | None = None
    outcome: Literal["admitted", "rejected"] | None = None
    reasons: list[Condition] | None = None
    pack: PackId | None = None
    status: Code | None = None
    cause: Code | None = None
    cause_id: Id | None = None
    reason: Text | None = None


# --------------------------------------------------------------------------- violations


class ViolationRecorded(Payload):
    """`sa.credit.violation.recorded`: the organisation is notified and may respond
    (陈述申辩) by `response_due`."""

    violation_id: Id
    organisation_id: Id
    contract_id: Id | None
    kind: Code
    severity: Code = Field(description="minor | general | serious")
    response_due: Day
    notified_at: Instant


class ViolationResponded(Payload):
    violation_id: Id
    organisation_id: Id
    responded_at: Instant | None


class ViolationDismissed(Payload):
    violation_id: Id
    organisation_id: Id
    reason: Text
    decided_at: Instant


# --------------------------------------------------------------------------- the dishonesty list


class BanPeriod(Payload):
    starts_on: Day
    ends_on: Day = Field(description="Exclusive end")
    last_day: Day


class JointPunishment(Payload):
    """`sa.credit.joint_punishment.notified`: a ban for other departments (失信联合惩戒)."""

    organisation_id: Id
    blacklist_id: Id
    uscc: Uscc
    name: str = Field(max_length=200, description="Registered name (public list)")
    violation: str | None
    violation_kind: Code | None
    legal_basis: list[str]
    sanction: str
    period: BanPeriod
    deciding_authority: str | None


class BlacklistLifted(Payload):
    """`sa.credit.blacklist.expired|repaired|overturned`: the listing ends."""

    blacklist_id: Id
    organisation_id: Id
    uscc: Uscc
    sanction_id: Id | None
    starts_on: Day
    ends_on: Day
    lifted_on: Day | None
    reason: Text | None


class SanctionEnded(Payload):
    """`sa.credit.sanction.completed|overturned|lifted`."""

    sanction_id: Id
    organisation_id: Id
    kind: Code
    on: Day
    reason: Text


class AppealFacts(Payload):
    """`sa.credit.appeal.filed|decided` (复核)."""

    appeal_id: Id
    sanction_id: Id
    organisation_id: Id
    state: Code = Field(description="filed | upheld | dismissed")
    filed_at: Instant
    decided_at: Instant | None


class RepairFacts(Payload):
    """`sa.credit.repair.filed|decided` (信用修复)."""

    repair_id: Id
    blacklist_id: Id
    organisation_id: Id
    state: Code = Field(description="filed | approved | refused")
    filed_at: Instant
    decided_at: Instant | None


# --------------------------------------------------------------------------- performance


class EvaluationRecorded(Payload):
    """`sa.credit.evaluation.recorded`: a published performance evaluation (绩效评价),
    recipients' satisfaction weighted most. No recipient refs."""

    evaluation_id: Id
    contract_id: Id
    organisation_id: Id
    region_code: DivisionCode
    period: str = Field(max_length=10, description="YYYY, YYYY-Hn, YYYY-Qn or YYYY-MM")
    purchaser_score: float | None
    satisfaction_score: float | None = Field(description="0–100, mean of the responses")
    satisfaction: float | None = Field(description="0–1, this evaluation")
    organisation_satisfaction: float | None = Field(
        description="0–1, recency-weighted over the organisation's published evaluations"
    )
    third_party_score: float | None
    responses: Count
    weights: JsonObject = Field(description="purchaser, recipients, third_party, rule, …")
    total: float | None
    pass_mark: float
    result: Code | None
    published_at: Instant | None


class ScoreChanged(Payload):
    """`sa.credit.score.changed`: the credit score and grade (信用等级), explained."""

    organisation_id: Id
    score: float
    grade: str = Field(max_length=10)
    version: Version = Field(description="Counts the organisation's score changes")
    reason: Text
    cause: Code = Field(description="evaluation | violation | sanction | repair | recompute")
    cause_id: Id | None
    old_score: float | None
    old_grade: str | None
    computed_at: Instant


#: Every `sa.credit.organisation.*` decision (providers' and matching's status projections,
#: matching's statistics of active organisations).
ALL_DECISIONS = (
    "matching-credit-decisions",
    "matching-statistics-credit",
    "providers-credit-decisions",
)
STATUS_CONSUMERS = ("matching-contracts-credit", *ALL_DECISIONS)
BARRING_CONSUMERS = ("matching-award-standing", *STATUS_CONSUMERS)
#: credit-public: the public dishonesty list and evaluation results (services/credit/public).
PUBLIC = "credit-public"

CONTRACTS = ServiceContracts(
    service=SERVICE,
    title="Credit service",
    description="Admission, violations and sanctions, the dishonesty list, appeals and "
    "credit repair, performance evaluations and credit scores.",
    events=(
        EventContract(
            SERVICE,
            "organisation",
            "admitted",
            AdmissionDecided,
            "The organisation passed the admission review (准入) and may take part.",
            consumers=ALL_DECISIONS,
        ),
        EventContract(
            SERVICE,
            "organisation",
            "rejected",
            Rejected,
            "The organisation failed the admission review, or a lifted sanction left an "
            "organisation that was never admitted.",
            consumers=ALL_DECISIONS,
        ),
        EventContract(
            SERVICE,
            "organisation",
            "warned",
            SanctionOrdered,
            "A warning (警告); status unchanged.",
            consumers=ALL_DECISIONS,
        ),
        EventContract(
            SERVICE,
            "organisation",
            "rectification_ordered",
            SanctionOrdered,
            "Rectification ordered (责令限期整改); status unchanged.",
            consumers=ALL_DECISIONS,
        ),
        EventContract(
            SERVICE,
            "organisation",
            "suspended",
            StatusDecision,
            "Suspended (暂停承接资格): contracts paused, awards pass to the next-ranked.",
            consumers=BARRING_CONSUMERS,
        ),
        EventContract(
            SERVICE,
            "organisation",
            "exited",
            StatusDecision,
            "Exited (退出): contracts terminated, needs taken over.",
            consumers=BARRING_CONSUMERS,
        ),
        EventContract(
            SERVICE,
            "organisation",
            "blacklisted",
            Blacklisted,
            "Listed as dishonest for a period: banned from purchases, contracts terminated.",
            consumers=(PUBLIC, *BARRING_CONSUMERS),
        ),
        EventContract(
            SERVICE,
            "organisation",
            "reinstated",
            StatusDecision,
            "Back to admitted after a sanction ended or was overturned.",
            consumers=STATUS_CONSUMERS,
        ),
        EventContract(
            SERVICE,
            "violation",
            "recorded",
            ViolationRecorded,
            "A violation was recorded; the organisation is notified and may respond.",
        ),
        EventContract(
            SERVICE,
            "violation",
            "responded",
            ViolationResponded,
            "The organisation responded to a violation (陈述申辩).",
        ),
        EventContract(
            SERVICE,
            "violation",
            "dismissed",
            ViolationDismissed,
            "A violation was dismissed after due process.",
        ),
        EventContract(
            SERVICE,
            "joint_punishment",
            "notified",
            JointPunishment,
            "A ban other departments act on (失信联合惩戒).",
        ),
        EventContract(
            SERVICE,
            "blacklist",
            "expired",
            BlacklistLifted,
            "A listing on the dishonesty list ended at the end of its period.",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "blacklist",
            "repaired",
            BlacklistLifted,
            "A listing ended by credit repair (信用修复).",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "blacklist",
            "overturned",
            BlacklistLifted,
            "A listing ended because its sanction was overturned on appeal.",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "sanction",
            "completed",
            SanctionEnded,
            "A sanction ran its course (period over, rectified).",
        ),
        EventContract(
            SERVICE,
            "sanction",
            "overturned",
            SanctionEnded,
            "A sanction was overturned on appeal.",
        ),
        EventContract(
            SERVICE,
            "sanction",
            "lifted",
            SanctionEnded,
            "A sanction was lifted by credit repair.",
        ),
        EventContract(
            SERVICE, "appeal", "filed", AppealFacts, "An organisation appealed a sanction."
        ),
        EventContract(SERVICE, "appeal", "decided", AppealFacts, "An appeal was decided."),
        EventContract(
            SERVICE,
            "repair",
            "filed",
            RepairFacts,
            "An organisation applied for credit repair.",
        ),
        EventContract(
            SERVICE, "repair", "decided", RepairFacts, "A credit repair application was decided."
        ),
        EventContract(
            SERVICE,
            "evaluation",
            "recorded",
            EvaluationRecorded,
            "A performance evaluation was published (its results are public, 向社会公开).",
            consumers=(PUBLIC, "matching-credit-evaluations", "matching-statistics-credit"),
        ),
        EventContract(
            SERVICE,
            "score",
            "changed",
            ScoreChanged,
            "An organisation's credit score or grade changed.",
            consumers=(
                "matching-credit-scores",
                "matching-statistics-credit",
                "providers-credit-scores",
            ),
        ),
    ),
)
