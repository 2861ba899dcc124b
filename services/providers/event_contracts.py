"""Event contracts of the providers service (stream PROVIDERS): the resource library.

Built in services/providers/events.py (organisations, 社会力量库), experts/events.py
(专家库), charities/events.py (慈善组织 and their resources) and projects/events.py (项目库
and the special-funds ledger). Names that travel are public ones: an organisation's or a
charity's registered name, an expert's name (experts are named on evaluation panels).
Staff names and experts' contact details never travel.
"""

from __future__ import annotations

from pydantic import Field

from libs.common.contracts import (
    Code,
    Count,
    Day,
    DivisionCode,
    EventContract,
    Fen,
    Id,
    Instant,
    PackId,
    Payload,
    RegionScope,
    ServiceContracts,
    Text,
    Uscc,
    Version,
)

SERVICE = "providers"

# --------------------------------------------------------------------------- organisations


class ServiceCapability(Payload):
    code: Code = Field(description="Catalogue item code")
    monthly_capacity: Count = Field(description="Units the organisation can serve per month")


class OrganisationOffer(Payload):
    """`sa.providers.organisation.registered`: a social force (社会力量) joined the library;
    credit reviews its admission (准入), matching learns its offer."""

    organisation_id: Id
    uscc: Uscc
    name: str = Field(max_length=200, description="Registered name (public)")
    kind: Code = Field(description="Contractor kind (承接主体), e.g. social_work_org")
    region_code: DivisionCode
    service_regions: list[RegionScope]
    services: list[ServiceCapability]
    qualifications: dict[str, bool] = Field(description="Admission condition code → met")
    pack: PackId
    registered_at: Instant
    registration_authority: str | None = Field(description="登记管理机关")
    evidence: dict[str, str] = Field(description="Admission condition code → evidence ref")
    version: Version


class OrganisationUpdated(OrganisationOffer):
    """`sa.providers.organisation.updated`: the offer at a new `version`, and what changed."""

    changed: list[str] = Field(description="Names of the fields that changed")
    updated_at: Instant


# --------------------------------------------------------------------------- experts


class Affiliation(Payload):
    """An expert's tie to an organisation (任职/董事/持股), for recusal (回避)."""

    affiliation_id: Id
    organisation_uscc: Uscc
    organisation_id: Id | None = Field(description="Null until the organisation registers")
    kind: Code = Field(description="employment | directorship | shareholding")
    started_on: Day
    ended_on: Day | None


class ExpertState(Payload):
    """`sa.providers.expert.registered|updated`: the expert's whole public state (专家库)."""

    expert_id: Id
    name: str = Field(max_length=100, description="The expert's name (named on panels)")
    region_code: DivisionCode
    fields: list[Code] = Field(description="Fields of expertise")
    available: bool
    unavailable_until: Day | None
    status: Code = Field(description="active | retired")
    title: str | None = Field(description="Professional title (职称)")
    version: Version
    affiliations: list[Affiliation]


# --------------------------------------------------------------------------- charities


class CharityRegistered(Payload):
    """`sa.providers.charity.registered`: a charity (慈善组织) joined the library."""

    charity_id: Id
    uscc: Uscc
    name: str = Field(max_length=200, description="Registered name (public)")
    charity_registration: str = Field(max_length=60, description="慈善组织登记/认定 number")
    registration_authority: str | None
    region_code: DivisionCode
    status: Code = Field(description="active | inactive")
    version: Version
    registered_at: Instant


class Movement(Payload):
    """The allocation (of matching) that changed `remaining`."""

    allocation_id: Id
    reason: Code = Field(description="allocated | released")
    delta: int = Field(description="Change of `remaining` (negative when allocated)")


class ResourceState(Payload):
    """A charity resource (慈善资源) at its `version`: every resource event carries it all."""

    resource_id: Id
    charity_id: Id
    kind: Code = Field(description="funds | goods | volunteer_hours | services")
    title: str = Field(max_length=200)
    service_codes: list[Code]
    regions: list[RegionScope]
    target_categories: list[Code] = Field(description="Recipient categories served")
    quantity: Count
    remaining: Count
    unit: str = Field(max_length=20)
    valid_from: Day
    valid_until: Day
    status: Code = Field(description="offered | withdrawn | exhausted | expired")
    version: Version
    movement: Movement | None = Field(
        default=None, description="Present when matching's allocation caused the change"
    )


class ResourceWithdrawn(ResourceState):
    """`sa.providers.resource.withdrawn`: the charity withdrew the offer."""

    reason: Text | None


# --------------------------------------------------------------------------- projects, funds


class FundRecorded(Payload):
    """`sa.providers.fund.recorded`: special funds added to a region's ledger for a year; the
    purchasing cap follows from them (2 % in Jilin, set by the province's pack)."""

    allocation_id: Id
    region_code: DivisionCode
    year: int
    source: Code = Field(description="central | provincial")
    amount_fen: Fen
    document: str = Field(max_length=200, description="Funding document number (文号)")
    base_fen: Fen
    cap_fen: Fen | None = Field(description="Null when the pack sets no cap")
    reserved_fen: Fen
    ledger_version: Version
    pack: PackId


class ProjectApproved(Payload):
    """`sa.providers.project.approved`: the budget is reserved against the ledger."""

    project_id: Id
    region_code: DivisionCode
    budget_year: int
    budget_fen: Fen
    fund_source: Code
    pack: PackId
    ledger_reserved_fen: Fen
    ledger_cap_fen: Fen | None
    approved_at: Instant | None
    version: Version


class ProjectPublished(Payload):
    """`sa.providers.project.published`: everything matching needs to open a tender."""

    project_id: Id
    region_code: DivisionCode
    department: str = Field(max_length=200, description="Purchasing department (购买主体)")
    title: str = Field(max_length=200)
    service_codes: list[Code]
    quantity: int
    unit: str = Field(max_length=20)
    quality_standards: Text
    qualification_requirements: list[str]
    specific_conditions: Text | None
    budget_fen: Fen
    budget_year: int
    fund_source: Code
    period_start: Day
    period_end: Day
    stable_recurring: bool
    budget_secured: bool
    purchasing_method: Code
    pack: PackId
    published_at: Instant | None
    version: Version


class ProjectCancelled(Payload):
    """`sa.providers.project.cancelled`: withdrawn before award; budget back to the ledger."""

    project_id: Id
    region_code: DivisionCode
    from_state: Code
    reason: Text | None
    tender_id: Id | None
    budget_year: int
    released_fen: Fen
    version: Version


RESOURCE_CONSUMERS = ("matching-library-resources",)

CONTRACTS = ServiceContracts(
    service=SERVICE,
    title="Providers service",
    description="The resource library: organisations, experts, charities and their "
    "resources, purchasing projects and the special-funds ledger.",
    events=(
        EventContract(
            SERVICE,
            "organisation",
            "registered",
            OrganisationOffer,
            "A social force registered in the library; credit reviews its admission.",
            consumers=(
                "credit-organisation-registrations",
                "matching-organisations",
                "matching-statistics-providers",
                "providers-expert-affiliations",
            ),
        ),
        EventContract(
            SERVICE,
            "organisation",
            "updated",
            OrganisationUpdated,
            "An organisation's offer changed (regions, services, qualifications…).",
            consumers=("matching-organisation-updates", "matching-statistics-providers"),
        ),
        EventContract(
            SERVICE,
            "expert",
            "registered",
            ExpertState,
            "An expert joined the expert library (专家库).",
            consumers=("matching-library-experts",),
        ),
        EventContract(
            SERVICE,
            "expert",
            "updated",
            ExpertState,
            "An expert's public state or affiliations changed.",
            consumers=("matching-library-experts",),
        ),
        EventContract(
            SERVICE,
            "charity",
            "registered",
            CharityRegistered,
            "A charity joined the library.",
        ),
        EventContract(
            SERVICE,
            "resource",
            "offered",
            ResourceState,
            "A charity offers a resource: matching counts it as supply.",
            consumers=RESOURCE_CONSUMERS,
        ),
        EventContract(
            SERVICE,
            "resource",
            "withdrawn",
            ResourceWithdrawn,
            "A charity withdrew a resource.",
            consumers=RESOURCE_CONSUMERS,
        ),
        EventContract(
            SERVICE,
            "resource",
            "exhausted",
            ResourceState,
            "Allocations used up a resource (remaining reached 0).",
            consumers=RESOURCE_CONSUMERS,
        ),
        EventContract(
            SERVICE,
            "resource",
            "expired",
            ResourceState,
            "A resource's validity window ended.",
            consumers=RESOURCE_CONSUMERS,
        ),
        EventContract(
            SERVICE,
            "resource",
            "updated",
            ResourceState,
            "A resource's remaining quantity or status changed (matching's allocations).",
            consumers=RESOURCE_CONSUMERS,
        ),
        EventContract(
            SERVICE,
            "fund",
            "recorded",
            FundRecorded,
            "Special social-assistance funds were added to a region's ledger for a year.",
            consumers=("matching-statistics-providers",),
        ),
        EventContract(
            SERVICE,
            "project",
            "approved",
            ProjectApproved,
            "A purchasing project was approved; its budget counts against the 2 % cap.",
            consumers=("matching-statistics-providers",),
        ),
        EventContract(
            SERVICE,
            "project",
            "published",
            ProjectPublished,
            "A purchasing project was published: matching opens a tender for it.",
            consumers=("matching-library-projects",),
        ),
        EventContract(
            SERVICE,
            "project",
            "cancelled",
            ProjectCancelled,
            "A purchasing project was cancelled before award.",
            consumers=("matching-library-projects", "matching-statistics-providers"),
        ),
    ),
)
