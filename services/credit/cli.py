"""`sa credit …` commands."""

from libs.common.service_cli import service_cli

app = service_cli("credit", help="Credit service: admission, sanctions and repair")
