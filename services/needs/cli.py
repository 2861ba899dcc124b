"""`sa needs …` commands."""

from libs.common.service_cli import service_cli

app = service_cli("needs", help="Needs service: recipients, needs, intake")
