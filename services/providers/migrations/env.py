from libs.common.migrations import run_env
from services.providers.models import metadata

run_env(metadata)
