"""Unit tests for `libs.common.auth` and the `sa token` command (no network, no database)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import jwt
import pytest
import typer
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from typer.testing import CliRunner

from libs.common import settings
from libs.common.auth import (
    DEV_JWT_SECRET,
    AuthConfig,
    CurrentPrincipal,
    Principal,
    Role,
    TokenVerifier,
    mint_token,
    require_roles,
)
from libs.common.cli_token import app as token_cli
from libs.common.errors import PROBLEM_JSON, NotFound, Unauthorized, install_error_handlers

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256!"
JWKS_URL = "https://idp.example.gov.cn/.well-known/jwks.json"
IDP_ISSUER = "https://idp.example.gov.cn"

digits = st.text(alphabet="0123456789", max_size=12)


# --- factories -------------------------------------------------------------------------


def make_token(**overrides: Any) -> str:
    """A valid development token; keyword arguments override `mint_token` arguments."""
    kwargs: dict[str, Any] = {
        "secret": SECRET,
        "subject": "user-1",
        "role": Role.operator,
        "region": "22",
    }
    kwargs.update(overrides)
    return mint_token(**kwargs)


def make_claims(**overrides: Any) -> dict[str, Any]:
    """Raw claims of a valid token; an override of `None` removes the claim.

    For tokens `mint_token` refuses to produce (unknown role, missing claims, ...).
    """
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": "sa-dev",
        "aud": "sa-platform",
        "sub": "user-1",
        "role": "operator",
        "region": "22",
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def encode(claims: dict[str, Any], *, secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(AuthConfig(secret=SECRET))


def rejected(verifier: TokenVerifier, token: str) -> Unauthorized:
    """Verify `token`, expecting a 401; return the error for its reason."""
    with pytest.raises(Unauthorized) as info:
        verifier.verify(token)
    assert info.value.status == 401
    return info.value


# --- token verification ----------------------------------------------------------------


def test_round_trip_operator(verifier: TokenVerifier) -> None:
    principal = verifier.verify(make_token(subject="op-7", region="220102"))
    assert principal == Principal(subject="op-7", role=Role.operator, region="220102")


def test_round_trip_organisation_keeps_org_id(verifier: TokenVerifier) -> None:
    token = make_token(role="organisation", org_id="org-42", region="")
    principal = verifier.verify(token)
    assert principal.role is Role.organisation
    assert principal.org_id == "org-42"
    assert principal.region == ""


def test_region_claim_defaults_to_whole_country(verifier: TokenVerifier) -> None:
    principal = verifier.verify(encode(make_claims(region=None)))
    assert principal.region == ""


def test_expired_token_is_rejected(verifier: TokenVerifier) -> None:
    issued = datetime.now(UTC) - timedelta(hours=9)
    error = rejected(verifier, make_token(now=issued, ttl_seconds=8 * 3600))
    assert error.extra["reason"] == "expired"
    assert "expired" in error.detail


def test_leeway_accepts_a_token_expired_seconds_ago(verifier: TokenVerifier) -> None:
    # Clock skew between the identity provider and a pod must not log people out.
    issued = datetime.now(UTC) - timedelta(seconds=70)
    principal = verifier.verify(make_token(now=issued, ttl_seconds=60))
    assert principal.subject == "user-1"


def test_wrong_secret_is_a_bad_signature(verifier: TokenVerifier) -> None:
    error = rejected(verifier, make_token(secret=OTHER_SECRET))
    assert error.extra["reason"] == "bad signature"


def test_wrong_issuer_is_rejected(verifier: TokenVerifier) -> None:
    error = rejected(verifier, make_token(issuer="someone-else"))
    assert error.extra["reason"] == "wrong issuer"


def test_wrong_audience_is_rejected(verifier: TokenVerifier) -> None:
    error = rejected(verifier, make_token(audience="another-platform"))
    assert error.extra["reason"] == "wrong audience"


def test_unknown_role_is_rejected(verifier: TokenVerifier) -> None:
    error = rejected(verifier, encode(make_claims(role="superuser")))
    assert error.extra["reason"] == "unknown role"


@pytest.mark.parametrize("role", ["organisation", "charity"])
def test_org_bound_role_without_org_id_is_rejected(verifier: TokenVerifier, role: str) -> None:
    error = rejected(verifier, encode(make_claims(role=role)))
    assert "org_id" in error.extra["reason"]


@pytest.mark.parametrize("claim", ["exp", "iss", "aud", "sub", "role"])
def test_missing_required_claim_is_rejected(verifier: TokenVerifier, claim: str) -> None:
    error = rejected(verifier, encode(make_claims(**{claim: None})))
    assert error.extra["reason"] == f"missing claim {claim}"


@pytest.mark.parametrize("region", ["22a", "1234567890123", "２２", 22])
def test_bad_region_claim_is_rejected(verifier: TokenVerifier, region: object) -> None:
    error = rejected(verifier, encode(make_claims(region=region)))
    assert error.extra["reason"] == "bad region"


def test_unsigned_token_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(make_claims(), key="", algorithm="none")
    error = rejected(verifier, token)
    assert error.extra["reason"] == "algorithm not allowed"


@given(st.text(max_size=300))
def test_garbage_never_escapes_as_anything_but_401(garbage: str) -> None:
    verifier = TokenVerifier(AuthConfig(secret=SECRET))
    with pytest.raises(Unauthorized):
        verifier.verify(garbage)


def test_verifier_needs_a_secret_or_jwks() -> None:
    with pytest.raises(ValueError, match="secret"):
        TokenVerifier(AuthConfig())


def test_secret_with_asymmetric_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="HS"):
        TokenVerifier(AuthConfig(secret=SECRET, algorithms=("HS256", "RS256")))


def test_dev_secret_matches_settings() -> None:
    # settings.py keeps its own copy of the literal to stay light; they must not drift, or
    # the production guard would stop recognising the development secret.
    assert settings.DEV_JWT_SECRET == DEV_JWT_SECRET


# --- mint_token ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role": "superuser"}, "unknown role"),
        ({"role": Role.charity}, "org_id"),
        ({"region": "Jilin"}, "region"),
        ({"ttl_seconds": 0}, "ttl"),
        ({"now": datetime(2026, 1, 1)}, "timezone"),
        ({"subject": ""}, "subject"),
    ],
)
def test_mint_token_refuses_invalid_claims(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_token(**overrides)


# --- Principal and regions -------------------------------------------------------------


@given(region=digits, code=digits)
def test_covers_iff_prefix(region: str, code: str) -> None:
    principal = Principal(subject="s", role=Role.purchaser, region=region)
    assert principal.covers(code) == code.startswith(region)


@given(region=digits, suffix=digits)
def test_covers_everything_below_its_region(region: str, suffix: str) -> None:
    # Independent random codes rarely share a prefix; build codes inside the region too.
    principal = Principal(subject="s", role=Role.purchaser, region=region)
    code = (region + suffix)[:12]
    assert principal.covers(code)
    principal.require_region(code)


@given(code=digits)
def test_whole_country_covers_every_code(code: str) -> None:
    assert Principal(subject="s", role=Role.ministry, region="").covers(code)


def test_require_region_hides_other_counties_as_not_found() -> None:
    principal = Principal(subject="s", role=Role.operator, region="220102")
    with pytest.raises(NotFound):
        principal.require_region("220103001")
    with pytest.raises(NotFound):
        principal.require_region("22")  # a province-level record is outside a county's area


def test_principal_refuses_a_non_code_region() -> None:
    with pytest.raises(ValueError, match="region"):
        Principal(subject="s", role=Role.operator, region="Jilin")


# --- FastAPI dependencies --------------------------------------------------------------


def make_app(verifier: TokenVerifier) -> FastAPI:
    """A tiny app wired like a service: error handlers and a verifier on app.state."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.token_verifier = verifier

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"subject": principal.subject, "role": principal.role, "region": principal.region}

    @app.get("/admin")
    async def admin(
        principal: Annotated[Principal, Depends(require_roles(Role.operator, Role.ministry))],
    ) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.get("/recipients/{region_code}")
    async def recipient(region_code: str, principal: CurrentPrincipal) -> dict[str, str]:
        principal.require_region(region_code)
        return {"region_code": region_code}

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(verifier: TokenVerifier) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_missing_header_is_401_problem_with_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401
    assert body["reason"] == "missing"
    assert body["instance"] == "/admin"


async def test_non_bearer_scheme_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401


async def test_expired_token_is_401_with_reason(client: httpx.AsyncClient) -> None:
    token = make_token(now=datetime.now(UTC) - timedelta(days=1))
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["reason"] == "expired"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_wrong_role_is_403_naming_allowed_roles(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin", headers=bearer(make_token(role=Role.purchaser)))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["allowed_roles"] == ["operator", "ministry"]
    assert "operator" in body["detail"]
    assert "ministry" in body["detail"]


async def test_right_role_is_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin", headers=bearer(make_token(subject="op-1")))
    assert response.status_code == 200
    assert response.json() == {"subject": "op-1"}


async def test_current_principal_reaches_the_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer(make_token(role="expert", region="2201")))
    assert response.json() == {"subject": "user-1", "role": "expert", "region": "2201"}


async def test_other_county_is_404_own_county_is_200(client: httpx.AsyncClient) -> None:
    headers = bearer(make_token(role=Role.purchaser, region="220102"))
    assert (await client.get("/recipients/220103", headers=headers)).status_code == 404
    assert (await client.get("/recipients/220102007", headers=headers)).status_code == 200


def test_require_roles_needs_a_role() -> None:
    with pytest.raises(ValueError):
        require_roles()


# --- JWKS mode (production) ------------------------------------------------------------


@dataclass
class FakeIdentityProvider:
    """Signs tokens with an asymmetric key and serves its JWKS through `fetch_data`."""

    algorithm: str
    kid: str = "key-1"
    fetches: int = 0
    private_key: Any = field(init=False)
    jwks: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        if self.algorithm == "RS256":
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        else:
            self.private_key = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        self.jwks = {"keys": [jwk]}

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, key: Any = None) -> str:
        return jwt.encode(
            claims,
            key if key is not None else self.private_key,
            algorithm=self.algorithm,
            headers={"kid": kid or self.kid},
        )

    def fetch_data(self) -> dict[str, Any]:
        self.fetches += 1
        return self.jwks


@pytest.fixture(params=["RS256", "ES256"])
def idp(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FakeIdentityProvider:
    provider = FakeIdentityProvider(algorithm=request.param)

    def fake_fetch(_client: jwt.PyJWKClient) -> dict[str, Any]:
        return provider.fetch_data()

    # Replaces only the HTTP fetch: key-set parsing, caching and kid lookup stay real.
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fake_fetch)
    return provider


@pytest.fixture
def jwks_verifier() -> TokenVerifier:
    # `secret` is set too (as settings always carry one); JWKS mode must ignore it.
    return TokenVerifier(AuthConfig(secret=SECRET, issuer=IDP_ISSUER, jwks_url=JWKS_URL))


def idp_claims(**overrides: Any) -> dict[str, Any]:
    return make_claims(iss=IDP_ISSUER, **overrides)


def test_jwks_token_is_verified(jwks_verifier: TokenVerifier, idp: FakeIdentityProvider) -> None:
    token = idp.sign(idp_claims(role="charity", org_id="charity-9", region="22"))
    principal = jwks_verifier.verify(token)
    assert principal == Principal("user-1", Role.charity, "22", "charity-9")
    # The key set is cached: a second request does not fetch again.
    jwks_verifier.verify(token)
    assert idp.fetches == 1


def test_jwks_mode_refuses_hs256(jwks_verifier: TokenVerifier, idp: FakeIdentityProvider) -> None:
    # Signed with the very secret the config carries: still refused, without a JWKS fetch.
    token = make_token(issuer=IDP_ISSUER)
    error = rejected(jwks_verifier, token)
    assert error.extra["reason"] == "algorithm not allowed"
    assert idp.fetches == 0


def test_jwks_unknown_kid_is_rejected(
    jwks_verifier: TokenVerifier, idp: FakeIdentityProvider
) -> None:
    error = rejected(jwks_verifier, idp.sign(idp_claims(), kid="rotated-away"))
    assert error.extra["reason"] == "unknown signing key"


def test_jwks_forged_signature_is_rejected(
    jwks_verifier: TokenVerifier, idp: FakeIdentityProvider
) -> None:
    forger = FakeIdentityProvider(algorithm=idp.algorithm)
    token = idp.sign(idp_claims(), key=forger.private_key)  # right kid, wrong key
    assert rejected(jwks_verifier, token).extra["reason"] == "bad signature"


def test_jwks_endpoint_down_is_401(
    jwks_verifier: TokenVerifier, idp: FakeIdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(_client: jwt.PyJWKClient) -> dict[str, Any]:
        raise jwt.PyJWKClientConnectionError("connection refused")

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", unreachable)
    error = rejected(jwks_verifier, idp.sign(idp_claims()))
    assert error.extra["reason"] == "signing keys unavailable"


async def test_jwks_through_the_dependency(
    jwks_verifier: TokenVerifier, idp: FakeIdentityProvider
) -> None:
    transport = httpx.ASGITransport(app=make_app(jwks_verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        ok = await http.get("/admin", headers=bearer(idp.sign(idp_claims(role="ministry"))))
        refused = await http.get("/admin", headers=bearer(make_token(issuer=IDP_ISSUER)))
    assert ok.status_code == 200
    assert refused.status_code == 401


# --- `sa token mint` -------------------------------------------------------------------


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.delenv("SA_JWT_SECRET", raising=False)
    yield CliRunner()


def invoke(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(token_cli, ["mint", *args])


def dev_verifier(secret: str = DEV_JWT_SECRET) -> TokenVerifier:
    return TokenVerifier(AuthConfig(secret=secret))


def test_cli_prints_only_a_verifiable_token(runner: CliRunner) -> None:
    result = invoke(runner, "--role", "operator", "--region", "22")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1  # so `$(sa token mint ...)` captures exactly the token
    principal = dev_verifier().verify(lines[0])
    assert principal == Principal("dev-operator", Role.operator, "22")


def test_cli_uses_secret_from_environment(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SA_JWT_SECRET", OTHER_SECRET)
    result = invoke(runner, "--role", "purchaser", "--subject", "clerk-3")
    assert result.exit_code == 0, result.output
    principal = dev_verifier(OTHER_SECRET).verify(result.stdout.strip())
    assert principal.subject == "clerk-3"
    with pytest.raises(Unauthorized):
        dev_verifier().verify(result.stdout.strip())


def test_cli_json_shows_claims_and_token(runner: CliRunner) -> None:
    result = invoke(
        runner, "--role", "organisation", "--org-id", "org-5", "--ttl-hours", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    claims = payload["claims"]
    assert claims["role"] == "organisation"
    assert claims["org_id"] == "org-5"
    assert claims["exp"] - claims["iat"] == 3600
    assert dev_verifier().verify(payload["token"]).org_id == "org-5"


def test_cli_invalid_role_lists_the_roles(runner: CliRunner) -> None:
    result = invoke(runner, "--role", "superuser")
    assert result.exit_code == 2
    for role in Role:
        assert role.value in result.output


def test_cli_org_bound_role_needs_org_id(runner: CliRunner) -> None:
    result = invoke(runner, "--role", "charity")
    assert result.exit_code == 2
    assert "--org-id" in result.output


def test_cli_mounts_as_sa_token(runner: CliRunner) -> None:
    # How the `sa` root command mounts it: `sa token mint ...`.
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """Root."""

    root.add_typer(token_cli, name="token")
    result = runner.invoke(root, ["token", "mint", "--role", "evaluator"])
    assert result.exit_code == 0, result.output
    assert dev_verifier().verify(result.stdout.strip()).role is Role.evaluator


def test_verified_tokens_are_cached_until_they_expire() -> None:
    verifier = TokenVerifier(AuthConfig(secret="s" * 32))
    now = datetime.now(UTC)
    token = mint_token(secret="s" * 32, subject="u", role="operator", ttl_seconds=60, now=now)
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # served from the cache
    expired = mint_token(
        secret="s" * 32,
        subject="old",
        role="operator",
        ttl_seconds=1,
        now=now - timedelta(seconds=120),
    )
    with pytest.raises(Unauthorized):
        verifier.verify(expired)
    verifier._cache[expired] = (first, time.time() - 1)  # a stale entry is never served
    with pytest.raises(Unauthorized):
        verifier.verify(expired)
    assert expired not in verifier._cache
