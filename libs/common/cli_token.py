"""`sa token`: development tokens.

`sa token mint --role operator` prints only the token, so it composes in a shell:

    curl -H "Authorization: Bearer $(sa token mint --role purchaser --region 220102)" ...

Tokens are HS256 with the development secret (or `SA_JWT_SECRET`); production verifies
tokens through the identity provider's JWKS and refuses these.
"""

from __future__ import annotations

import json
from typing import Annotated

import jwt
import typer

from libs.common.auth import DEV_JWT_SECRET, ORG_BOUND_ROLES, Role, is_region_code, mint_token

app = typer.Typer(help="Development tokens", no_args_is_help=True)


@app.callback()
def _token() -> None:
    """Development tokens (HS256, for local use and tests only)."""
    # A callback keeps `mint` a sub-command even while it is the only one, so the command
    # line is `sa token mint` both standalone and when mounted under `sa`.


@app.command()
def mint(
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="Role claim.",
            case_sensitive=False,
            show_default=False,
        ),
    ],
    region: Annotated[
        str,
        typer.Option(help='Division-code prefix, "" = whole country, e.g. 22 or 220102.'),
    ] = "",
    org_id: Annotated[
        str | None,
        typer.Option("--org-id", help="Organisation id; required for organisation and charity."),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(help="Subject claim (default: dev-<role>)."),
    ] = None,
    ttl_hours: Annotated[
        float,
        typer.Option("--ttl-hours", help="Lifetime in hours (> 0)."),
    ] = 8.0,
    secret: Annotated[
        str,
        typer.Option(
            envvar="SA_JWT_SECRET",
            help="HS256 secret (default: $SA_JWT_SECRET, else the development secret).",
            # Never print a secret (possibly taken from the environment) in --help.
            show_default=False,
        ),
    ] = DEV_JWT_SECRET,
    issuer: Annotated[str, typer.Option(help="Issuer claim.")] = "sa-dev",
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the claims and the token as JSON."),
    ] = False,
) -> None:
    """Mint a token; prints only the token unless --json."""
    if ttl_hours <= 0:
        raise typer.BadParameter("must be greater than 0", param_hint="--ttl-hours")
    # Checked here as well as in mint_token so the error names the option to fix.
    if not is_region_code(region):
        raise typer.BadParameter("must be 0-12 digits, e.g. 22 or 220102", param_hint="--region")
    if role in ORG_BOUND_ROLES and not org_id:
        raise typer.BadParameter(f"required for role {role.value}", param_hint="--org-id")
    try:
        token = mint_token(
            secret=secret,
            subject=subject or f"dev-{role.value}",
            role=role,
            region=region,
            org_id=org_id,
            issuer=issuer,
            ttl_seconds=max(1, round(ttl_hours * 3600)),  # sub-second TTLs round up
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if as_json:
        # Decoded without verification: we just signed it and only want to show the claims.
        claims = jwt.decode(token, options={"verify_signature": False})
        typer.echo(json.dumps({"claims": claims, "token": token}, indent=2, ensure_ascii=False))
    else:
        typer.echo(token)
