"""`sa providers …` commands."""

from libs.common.service_cli import service_cli

app = service_cli("providers", help="Providers service: the resource library")
