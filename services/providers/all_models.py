"""Every table of the providers service, so Alembic sees the whole schema."""

from services.providers.charities.models import Charity, Resource
from services.providers.experts.models import Expert
from services.providers.models import metadata
from services.providers.projects.models import FundLedger, Project

__all__ = ["Charity", "Expert", "FundLedger", "Project", "Resource", "metadata"]
