from libs.common.migrations import run_env
from services.credit.models import metadata

run_env(metadata)
