"""Every table of the needs service, so Alembic sees the whole schema."""

from services.needs.assessments.models import Assessment
from services.needs.intake.models import Intake
from services.needs.models import metadata

__all__ = ["Assessment", "Intake", "metadata"]
