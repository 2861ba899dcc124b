"""Event contracts of the matching service (stream MATCHING): the market and allocation.

Built in services/matching/tenders/events.py (tenders, bids), evaluation/events.py (results
and awards), contracts/events.py (contracts, deliveries, acceptance) and events.py (matches).
(Not `contracts.py`: services/matching/contracts/ is the package of purchase contracts.)

Scores and weights are decimal strings, money is in fen. A bid's price and content never
travel before opening. Recipients appear only as pseudonymous refs; the names that travel are
public ones: organisations' names in results (评审结果公告) and the panel's members.
"""

from __future__ import annotations

from pydantic import Field

from libs.common.contracts import (
    Code,
    Count,
    Day,
    DecimalText,
    DivisionCode,
    EventContract,
    Fen,
    Id,
    Instant,
    PackId,
    Payload,
    RecipientRef,
    RegionScope,
    ServiceContracts,
    Text,
    Version,
)

SERVICE = "matching"

# --------------------------------------------------------------------------- tenders, bids


class TenderFacts(Payload):
    """What every tender event carries; `version` is the tender's own counter."""

    tender_id: Id
    project_id: Id
    region_code: DivisionCode
    method: Code = Field(description="Purchasing method (采购方式)")
    version: Version


class TenderPublished(TenderFacts):
    """`sa.matching.tender.published`: the purchase is open for bids."""

    title: str = Field(max_length=200)
    service_codes: list[Code]
    budget_fen: Fen
    bid_deadline: Instant | None
    published_at: Instant | None
    invited: list[Id] = Field(description="Organisations invited (invited methods)")
    qualification_requirements: list[str]
    publicity_until: Day | None = Field(description="Single source: end of publicity")
    previous_tender_id: Id | None = Field(description="The failed tender this one follows")
    pack: PackId


class TenderCancelled(TenderFacts):
    """`sa.matching.tender.cancelled`."""

    from_state: Code
    reason: Text | None
    cancelled_at: Instant


class TenderFailed(TenderFacts):
    """`sa.matching.tender.failed`: too few valid bids (废标) or nobody left to award."""

    reason: Text | None
    rule: str | None = Field(description="The clause the failure follows")
    valid_bids: Count
    after_failure: list[Code] = Field(description="Methods the project may be bought by now")
    failed_at: Instant


class OpenedBid(Payload):
    bid_id: Id
    organisation_id: Id
    state: Code = Field(description="valid | invalid")


class TenderEvaluating(TenderFacts):
    """`sa.matching.tender.evaluating`: bids opened, the panel may start."""

    valid_bids: Count
    bids: list[OpenedBid]
    panel_size: Count
    high_value: bool
    opened_at: Instant


class Criterion(Payload):
    code: Code
    name: str = Field(max_length=200, description="Label of the criterion (评审因素)")
    weight: DecimalText


class CriterionScore(Payload):
    name: str = Field(max_length=200, description="Label of the criterion")
    weight: DecimalText
    mean: DecimalText = Field(description="Mean of the panel's scores (0–100)")
    weighted: DecimalText


class BidResult(Payload):
    bid_id: Id
    organisation_id: Id
    organisation_name: str | None = Field(description="Registered name (public)")
    price_fen: Fen
    criteria: dict[str, CriterionScore] = Field(description="Criterion code → scores")
    quality_score: DecimalText
    price_score: DecimalText
    total: DecimalText
    credit_score: DecimalText | None
    rank: int = Field(ge=1)


class InvalidBid(Payload):
    bid_id: Id
    organisation_id: Id
    organisation_name: str | None = Field(description="Registered name (public)")
    reason: Text | None


class TenderEvaluated(TenderFacts):
    """`sa.matching.tender.evaluated`: the results notice (评审结果公告) — every bidder's
    per-criterion and price scores, the rank, and the panel."""

    title: str = Field(max_length=200)
    price_weight: DecimalText
    criteria: list[Criterion]
    panel: list[str] = Field(description="Names of the panel's members (public)")
    results: list[BidResult]
    invalid: list[InvalidBid]
    rules: list[str] = Field(description="Clauses the scoring method follows")
    evaluated_at: Instant


class BidSubmitted(Payload):
    """`sa.matching.bid.submitted`: who bid on what, when — never the sealed price."""

    tender_id: Id
    bid_id: Id
    organisation_id: Id
    version: Version
    submitted_at: Instant


class BidChanged(Payload):
    """`sa.matching.bid.replaced|withdrawn`."""

    tender_id: Id
    bid_id: Id
    organisation_id: Id
    version: Version
    updated_at: Instant


# --------------------------------------------------------------------------- awards


class AwardDecision(Payload):
    """`sa.matching.award.offered|refused|excluded`: the succession of offers (递补)."""

    award_id: Id
    tender_id: Id
    project_id: Id
    bid_id: Id
    organisation_id: Id
    region_code: DivisionCode
    rank: int = Field(ge=1)
    state: Code = Field(description="offered | accepted | refused | excluded")
    reason: Text | None
    decided_at: Instant


class AwardAccepted(AwardDecision):
    """`sa.matching.award.accepted|made`: accepted by the organisation, with everything a
    contract needs (the project's terms are null when matching has not seen the project)."""

    service_codes: list[Code]
    method: Code
    title: str = Field(max_length=200)
    pack: PackId
    tender_version: Version
    price_fen: Fen | None
    total: DecimalText | None
    period_start: Day | None
    period_end: Day | None
    quantity: int | None
    unit: str | None


# --------------------------------------------------------------------------- contracts


class ContractFacts(Payload):
    """What every contract event carries; `version` is the contract's own counter."""

    contract_id: Id
    award_id: Id
    tender_id: Id
    project_id: Id
    organisation_id: Id
    region_code: DivisionCode
    version: Version


class ContractSigned(ContractFacts):
    """`sa.matching.contract.signed`: in force; the allocation engine counts it as supply."""

    regions: list[RegionScope]
    service_codes: list[Code]
    monthly_capacity: dict[str, int] = Field(description="Catalogue code → units a month")
    value_fen: Fen
    period_start: Day
    period_end: Day
    signed_at: Instant | None


class ContractRefused(ContractFacts):
    """`sa.matching.contract.refused`: the organisation would not sign (拒签)."""

    reason: Text | None
    refused_at: Instant


class ContractAmended(ContractFacts):
    """`sa.matching.contract.amended`: a supplementary agreement (补充合同)."""

    amendment_id: Id
    delta_fen: Fen
    capacity_changes: dict[str, int]
    value_fen: Fen
    original_value_fen: Fen
    monthly_capacity: dict[str, int]
    reason: Text
    amended_at: Instant


class ContractMoved(ContractFacts):
    """`sa.matching.contract.paused|resumed|completed|terminated`."""

    reason: Text | None
    from_state: Code
    at: Instant


class ServiceDelivered(Payload):
    """`sa.matching.service.delivered`: a confirmed service session (服务记录)."""

    delivery_id: Id
    match_id: Id
    need_id: Id
    recipient_ref: RecipientRef
    organisation_id: Id
    contract_id: Id | None
    units: int
    delivered_on: Day
    confirmed_by: Code | None = Field(description="recipient | proxy")
    confirmed_at: Instant | None


class AcceptanceFacts(Payload):
    """`sa.matching.acceptance.opened|published`: acceptance of a period (履约验收)."""

    acceptance_id: Id
    contract_id: Id
    project_id: Id
    organisation_id: Id
    region_code: DivisionCode
    period: str = Field(max_length=7, description="YYYY-MM or YYYY-Qn")
    invited_recipients: list[RecipientRef] = Field(
        description="Pseudonymous refs of recipients served in the period"
    )
    result: Code | None = Field(description="qualified | unqualified (null until published)")
    summary: dict[str, float] = Field(
        description="The acceptance figures only (counts, scores, rates): no free text"
    )
    created_at: Instant
    published_at: Instant | None


# --------------------------------------------------------------------------- allocation


class NeedMatched(Payload):
    """`sa.matching.need.matched`: a run linked a need to a provider — an organisation under
    a contract, or a charity resource (`organisation_id` null) — with its score."""

    match_id: Id
    need_id: Id
    recipient_ref: RecipientRef
    organisation_id: Id | None
    contract_id: Id | None = None
    resource_id: Id | None = None
    basis: Code | None = Field(
        default=None, description="contract | charity_resource | registered_capacity"
    )
    region_code: DivisionCode
    service_code: Code
    score: float
    run_id: Id
    matched_at: Instant


class NeedReassigned(Payload):
    """`sa.matching.need.reassigned`: a takeover (临时接管) moved the need from a barred
    organisation's contract to another provider, or to nobody (`organisation_id` null: the
    need is unplaced and reported to the purchaser)."""

    need_id: Id
    recipient_ref: RecipientRef
    region_code: DivisionCode
    service_code: Code
    match_id: Id | None
    organisation_id: Id | None = Field(description="The new provider (null: unplaced)")
    contract_id: Id | None
    to_organisation_id: Id | None
    to_resource_id: Id | None
    from_match_id: Id | None
    from_organisation_id: Id | None
    from_contract_id: Id | None
    reason: Text
    reason_code: Code
    rules: list[str] = Field(description="Clauses the takeover follows")
    score: float | None
    run_id: Id | None
    reassigned_at: Instant


class UnplacedNeed(Payload):
    need_id: Id
    recipient_ref: RecipientRef
    region_code: DivisionCode
    service_code: Code
    reason_code: Code = Field(description="no_coverage | capacity_exhausted | all_ineligible")
    reason: Text


class TakeoverUnplaced(Payload):
    """`sa.matching.takeover.unplaced`: needs a takeover could not place, reported to the
    purchaser at once."""

    organisation_id: Id
    contract_id: Id
    region_code: DivisionCode
    purchaser_region: DivisionCode
    reason: Text
    rules: list[str]
    run_id: Id
    needs: list[UnplacedNeed]
    reported_at: Instant


class ResourceAllocated(Payload):
    """`sa.matching.resource.allocated`: units of a charity resource taken for a need."""

    allocation_id: Id
    resource_id: Id
    quantity: int = Field(gt=0)
    need_id: Id
    match_id: Id


class ResourceReleased(Payload):
    """`sa.matching.resource.released`: the units of an allocation given back."""

    allocation_id: Id
    resource_id: Id
    quantity: int = Field(gt=0)
    need_id: Id
    reason: Text


class DailyStatistics(Payload):
    """`sa.matching.statistics.daily`: one region's figures for one China day (counts and
    money only, nothing about any person); a recomputation carries a higher `version`."""

    day: Day
    region_code: RegionScope
    level: Code = Field(description="province | city | county | area")
    needs_opened: Count
    needs_matched: Count
    needs_served: Count
    needs_fulfilled: Count
    needs_cancelled: Count
    median_minutes_to_match: float | None
    budget_reserved_fen: Fen
    cap_fen: Fen | None = Field(description="The purchasing cap (2 % of special funds)")
    cap_used: float | None = Field(description="Share of the cap reserved (0–1)")
    evaluations: Count
    average_satisfaction: float | None = Field(description="0–1")
    active_organisations: Count
    active_by_grade: dict[str, int] = Field(description="Credit grade → organisations")
    version: Version
    computed_at: Instant


#: matching-public: the public disclosure read models (services/matching/public).
PUBLIC = "matching-public"
TENDER_MARKET = (PUBLIC, "providers-projects-market")

CONTRACTS = ServiceContracts(
    service=SERVICE,
    title="Matching service",
    description="The market (tenders, bids, panels, awards, contracts, deliveries, "
    "acceptance) and the allocation of needs to providers.",
    events=(
        EventContract(
            SERVICE,
            "tender",
            "published",
            TenderPublished,
            "A tender is open for bids (招标/采购公告).",
            consumers=TENDER_MARKET,
        ),
        EventContract(
            SERVICE,
            "tender",
            "cancelled",
            TenderCancelled,
            "A tender was cancelled; the project may be tendered again.",
            consumers=TENDER_MARKET,
        ),
        EventContract(
            SERVICE,
            "tender",
            "failed",
            TenderFailed,
            "A tender failed (废标): too few valid bids, or nobody left to award.",
            consumers=TENDER_MARKET,
        ),
        EventContract(
            SERVICE,
            "tender",
            "evaluating",
            TenderEvaluating,
            "Bids were opened; the evaluation panel may start.",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "tender",
            "evaluated",
            TenderEvaluated,
            "The results notice: every bidder's scores and rank, and the panel.",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "bid",
            "submitted",
            BidSubmitted,
            "An organisation submitted a sealed bid.",
        ),
        EventContract(
            SERVICE, "bid", "replaced", BidChanged, "A bid was replaced before the deadline."
        ),
        EventContract(
            SERVICE, "bid", "withdrawn", BidChanged, "A bid was withdrawn before the deadline."
        ),
        EventContract(
            SERVICE,
            "award",
            "offered",
            AwardDecision,
            "The award is offered to the best-ranked remaining bidder.",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "award",
            "refused",
            AwardDecision,
            "The offered organisation refused the award; the next-ranked is offered it.",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "award",
            "excluded",
            AwardDecision,
            "The offered organisation was barred by credit; the next-ranked is offered it.",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "award",
            "accepted",
            AwardAccepted,
            "The organisation accepted the award: the input of a contract.",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "award",
            "made",
            AwardAccepted,
            "The award announcement (中标/成交公告), after acceptance.",
            consumers=TENDER_MARKET,
        ),
        EventContract(
            SERVICE,
            "contract",
            "signed",
            ContractSigned,
            "A purchase contract is signed and in force.",
            consumers=("credit-contract-facts", PUBLIC, "providers-projects-market"),
        ),
        EventContract(
            SERVICE,
            "contract",
            "refused",
            ContractRefused,
            "The winner refused to sign (拒签): a breach for credit, the next offer follows.",
            consumers=("credit-contract-refusals", "matching-award-contract-refused", PUBLIC),
        ),
        EventContract(
            SERVICE,
            "contract",
            "amended",
            ContractAmended,
            "A contract's value or capacity changed (within 10 %).",
            consumers=(PUBLIC,),
        ),
        EventContract(
            SERVICE,
            "contract",
            "paused",
            ContractMoved,
            "A contract is paused while credit suspends the organisation.",
            consumers=("credit-contract-facts", PUBLIC, "matching-takeover"),
        ),
        EventContract(
            SERVICE,
            "contract",
            "resumed",
            ContractMoved,
            "A paused contract is in force again.",
            consumers=("credit-contract-facts", PUBLIC),
        ),
        EventContract(
            SERVICE,
            "contract",
            "completed",
            ContractMoved,
            "A contract ended at the end of its term.",
            consumers=("credit-contract-facts", PUBLIC, "providers-projects-market"),
        ),
        EventContract(
            SERVICE,
            "contract",
            "terminated",
            ContractMoved,
            "A contract was terminated early (exit, ban); its needs are taken over.",
            consumers=(
                "credit-contract-facts",
                PUBLIC,
                "matching-takeover",
                "providers-projects-market",
            ),
        ),
        EventContract(
            SERVICE,
            "service",
            "delivered",
            ServiceDelivered,
            "A service session was delivered and confirmed.",
            consumers=("credit-contract-facts", "matching-statistics-market", "needs-matches"),
        ),
        EventContract(
            SERVICE,
            "acceptance",
            "opened",
            AcceptanceFacts,
            "Acceptance of a contract period opened; served recipients are invited.",
        ),
        EventContract(
            SERVICE,
            "acceptance",
            "published",
            AcceptanceFacts,
            "The acceptance result of a contract period is published.",
            consumers=("credit-contract-facts", PUBLIC),
        ),
        EventContract(
            SERVICE,
            "need",
            "matched",
            NeedMatched,
            "A need was matched to a provider by an allocation run.",
            consumers=("matching-statistics-market", "needs-matches"),
        ),
        EventContract(
            SERVICE,
            "need",
            "reassigned",
            NeedReassigned,
            "A takeover moved a need to another provider, or left it unplaced.",
            consumers=("needs-matches",),
        ),
        EventContract(
            SERVICE,
            "takeover",
            "unplaced",
            TakeoverUnplaced,
            "Needs a takeover could not place, for the purchaser to act on at once.",
        ),
        EventContract(
            SERVICE,
            "resource",
            "allocated",
            ResourceAllocated,
            "Units of a charity resource were allocated to a need.",
            consumers=("providers-resource-allocations",),
        ),
        EventContract(
            SERVICE,
            "resource",
            "released",
            ResourceReleased,
            "Units of a charity resource were given back (the need was cancelled or moved).",
            consumers=("providers-resource-allocations",),
        ),
        EventContract(
            SERVICE,
            "statistics",
            "daily",
            DailyStatistics,
            "A region's daily figures: needs, time to match, spend against the cap, "
            "satisfaction, active organisations by grade.",
        ),
    ),
)
