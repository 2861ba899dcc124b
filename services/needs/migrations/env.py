from libs.common.migrations import run_env
from services.needs.models import metadata

run_env(metadata)
