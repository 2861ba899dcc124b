from libs.common.migrations import run_env
from services.matching.all_models import metadata

run_env(metadata)
