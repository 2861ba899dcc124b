"""Every table of the matching service, so Alembic sees the whole schema."""

from services.matching.contracts.models import Acceptance, Contract, ContractAmendment, Delivery
from services.matching.library.models import (
    ExpertView,
    ProjectView,
    ResourceAllocation,
    ResourceView,
)
from services.matching.market.models import Award, Bid, BidResult, Panel, PanelScore, Tender
from services.matching.models import metadata
from services.matching.public import models as public_models
from services.matching.statistics import models as statistics_models

__all__ = [
    "Acceptance",
    "Award",
    "Bid",
    "BidResult",
    "Contract",
    "ContractAmendment",
    "Delivery",
    "ExpertView",
    "Panel",
    "PanelScore",
    "ProjectView",
    "ResourceAllocation",
    "ResourceView",
    "Tender",
    "metadata",
    "public_models",
    "statistics_models",
]
