"""`sa matching …` commands."""

from libs.common.service_cli import service_cli

app = service_cli("matching", help="Matching service: the market and allocation")
