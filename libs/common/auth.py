"""Bearer-token authentication and role/region authorisation shared by every service.

Tokens are JWTs. In development and tests they are HS256, signed with a shared secret
(`mint_token`, `sa token mint`). In production they are RS256/ES256 tokens from the
provincial identity provider, verified against its JWKS; in that mode symmetric algorithms
are refused outright, so a leaked development secret can never mint a production token.

A verified token becomes a `Principal`: who (subject), acting as what (`Role`), over which
administrative area (`region`, a division-code prefix) and, for organisations and charities,
on behalf of which organisation (`org_id`).

Routes depend on `CurrentPrincipal` or on `require_roles(...)`; the app factory puts a
`TokenVerifier` on `app.state.token_verifier`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from jwt.exceptions import InvalidSubjectError
from starlette.concurrency import run_in_threadpool

from libs.common.errors import Forbidden, NotFound, Unauthorized

log = logging.getLogger(__name__)

# Development default; `libs/common/settings.py` holds the same literal (it avoids importing
# this module) and refuses to start in production while it is still in use.
DEV_JWT_SECRET = "dev-only-insecure-secret-change-me"

# Division codes are 2 (province) … 12 (village) ASCII digits; "" is the whole country.
# `[0-9]`, not `\d`: `\d` would also accept non-ASCII digits such as "２２".
_REGION_RE = re.compile(r"[0-9]{0,12}")

# The identity provider signs with asymmetric keys; used when JWKS mode is configured
# without an explicit asymmetric algorithm list.
_DEFAULT_JWKS_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")

_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub", "role"]


class Role(StrEnum):
    """What a caller acts as; the value is what the `role` claim carries."""

    operator = "operator"  # provincial / county platform operator
    purchaser = "purchaser"  # county civil-affairs bureau, township government, street office
    organisation = "organisation"  # social-work organisation or other social force
    charity = "charity"  # charity offering resources
    expert = "expert"  # member of the expert library, sits on evaluation panels
    evaluator = "evaluator"  # third-party performance evaluator
    ministry = "ministry"  # ministry consuming events and statistics


# Roles that always act for one registered body, so their tokens must name it.
ORG_BOUND_ROLES: frozenset[Role] = frozenset({Role.organisation, Role.charity})


def is_region_code(value: str) -> bool:
    """True for "" or 1–12 ASCII digits (an administrative division code prefix)."""
    return _REGION_RE.fullmatch(value) is not None


@dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    `region` is a division-code prefix: "" covers the whole country, "22" Jilin,
    "220102" a single county. Access to a record located in `region_code` is allowed when
    the principal's region is a prefix of it.
    """

    subject: str
    role: Role
    region: str
    org_id: str | None = None

    def __post_init__(self) -> None:
        # Guard against principals built by hand (tests, service tooling) with a region that
        # would make `covers` meaningless, e.g. "Jilin".
        if not is_region_code(self.region):
            raise ValueError(f"region must be 0-12 ASCII digits, got {self.region!r}")

    def covers(self, region_code: str) -> bool:
        """Whether a record located in `region_code` lies inside this principal's area."""
        return region_code.startswith(self.region)

    def require_region(self, region_code: str) -> None:
        """Raise `NotFound` unless `region_code` is covered.

        404 rather than 403: a county operator must not learn that a recipient exists in
        another county.
        """
        if not self.covers(region_code):
            raise NotFound(detail="The requested resource was not found.")


@dataclass(frozen=True)
class AuthConfig:
    """How tokens are verified.

    Development: `secret` with HS256. Production: set `jwks_url`; tokens are then verified
    with the identity provider's public keys and HS* algorithms are never accepted
    (`secret` is ignored).
    """

    secret: str | None = None
    issuer: str = "sa-dev"
    audience: str = "sa-platform"
    algorithms: tuple[str, ...] = ("HS256",)
    jwks_url: str | None = None
    leeway_seconds: int = 30


def _unauthorized(reason: str) -> Unauthorized:
    # `reason` is short and machine-readable so clients can tell "refresh your token"
    # (expired) from "this token will never work" (bad signature, wrong issuer).
    return Unauthorized(detail=f"Bearer token rejected: {reason}.", extra={"reason": reason})


class TokenVerifier:
    """Turns a bearer token into a `Principal` or raises `Unauthorized`.

    Never raises anything else for a bad token: every PyJWT failure (and a JWKS endpoint
    that cannot be reached) becomes a 401 with a short reason, not a 500.
    """

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._jwks_client: jwt.PyJWKClient | None = None
        if config.jwks_url:
            asymmetric = tuple(a for a in config.algorithms if not a.upper().startswith("HS"))
            # The default ("HS256",) is the development setting; a deployment that only sets
            # `jwks_url` gets the usual asymmetric algorithms instead of nothing.
            self.algorithms: tuple[str, ...] = asymmetric or _DEFAULT_JWKS_ALGORITHMS
            # One client per verifier: it caches the parsed key set for `lifespan` seconds and
            # refetches once when an unknown `kid` shows up (key rotation). Individual keys
            # are not cached beyond that, so a key removed from the JWKS stops working within
            # five minutes.
            self._jwks_client = jwt.PyJWKClient(config.jwks_url, lifespan=300, timeout=5)
        else:
            if not config.secret:
                raise ValueError("AuthConfig needs either `secret` (development) or `jwks_url`")
            symmetric = tuple(a for a in config.algorithms if a.upper().startswith("HS"))
            if not symmetric or len(symmetric) != len(config.algorithms):
                # Mixing a shared secret with asymmetric algorithms invites algorithm
                # confusion; refuse the configuration instead of guessing.
                raise ValueError("with `secret`, `algorithms` must list only HS* algorithms")
            self.algorithms = symmetric

    @property
    def uses_jwks(self) -> bool:
        """True when verification may fetch keys over the network (blocking I/O)."""
        return self._jwks_client is not None

    # Verified tokens are remembered until they expire: a client sends the same token with
    # every request, and checking its signature each time costs more than the request.
    CACHE_SIZE = 4096

    def verify(self, token: str) -> Principal:
        """Verify signature, expiry, issuer and audience, then read the platform claims."""
        cache = self._cache
        hit = cache.get(token)
        if hit is not None:
            principal, expires_at = hit
            if time.time() < expires_at:
                return principal
            del cache[token]
        claims = self._decode(token)
        principal = self._principal_from_claims(claims)
        if len(cache) >= self.CACHE_SIZE:
            cache.pop(next(iter(cache)))  # the oldest entry (dicts keep insertion order)
        cache[token] = (principal, float(claims["exp"]))
        return principal

    def _signing_key(self, token: str) -> Any:
        if self._jwks_client is None:
            return self.config.secret
        # Check the algorithm before touching the network: an HS256 token (or garbage) must
        # not cause a JWKS fetch.
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in self.algorithms:
            raise jwt.InvalidAlgorithmError("algorithm not allowed")
        return self._jwks_client.get_signing_key_from_jwt(token)

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            key = self._signing_key(token)
            return jwt.decode(
                token,
                key=key,
                algorithms=list(self.algorithms),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("expired") from None
        except jwt.ImmatureSignatureError:
            raise _unauthorized("not yet valid") from None
        except jwt.InvalidIssuedAtError:
            raise _unauthorized("bad issued-at") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("bad signature") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"missing claim {exc.claim}") from None
        except jwt.InvalidAlgorithmError:
            raise _unauthorized("algorithm not allowed") from None
        except InvalidSubjectError:
            raise _unauthorized("bad subject") from None
        except jwt.DecodeError:
            raise _unauthorized("malformed token") from None
        except jwt.PyJWKClientConnectionError:
            # The identity provider is unreachable: log it (operators must know) and still
            # answer 401, as every token failure does.
            log.warning("JWKS endpoint unreachable: %s", self.config.jwks_url, exc_info=True)
            raise _unauthorized("signing keys unavailable") from None
        except jwt.PyJWKClientError:
            raise _unauthorized("unknown signing key") from None
        except jwt.PyJWTError:
            # Anything else PyJWT may add (key errors, new claim checks) is still a 401.
            raise _unauthorized("invalid token") from None
        except (ValueError, TypeError):
            # Defensive: malformed input must never surface as a 500.
            raise _unauthorized("malformed token") from None

    @staticmethod
    def _principal_from_claims(claims: dict[str, Any]) -> Principal:
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise _unauthorized("bad subject")
        role_claim = claims["role"]
        try:
            role = Role(role_claim)
        except ValueError:
            raise _unauthorized("unknown role") from None
        region = claims.get("region", "")
        if region is None:
            region = ""
        if not isinstance(region, str) or not is_region_code(region):
            raise _unauthorized("bad region")
        org_id = claims.get("org_id")
        if org_id is not None and (not isinstance(org_id, str) or not org_id):
            raise _unauthorized("bad org_id")
        if role in ORG_BOUND_ROLES and org_id is None:
            raise _unauthorized(f"role {role.value} requires org_id")
        return Principal(subject=subject, role=role, region=region, org_id=org_id)


def mint_token(
    *,
    secret: str,
    subject: str,
    role: Role | str,
    region: str = "",
    org_id: str | None = None,
    issuer: str = "sa-dev",
    audience: str = "sa-platform",
    ttl_seconds: int = 8 * 3600,
    now: datetime | None = None,
) -> str:
    """Mint an HS256 token for development and tests.

    Validates like `TokenVerifier` does, so it never produces a token that the platform
    would reject for its claims. Raises `ValueError` for an unknown role, a bad region,
    a missing `org_id` for organisation/charity, or a non-positive TTL.
    """
    try:
        role = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {role!r}; expected one of: {allowed}") from None
    if not subject:
        raise ValueError("subject must not be empty")
    if not is_region_code(region):
        raise ValueError(f"region must be 0-12 ASCII digits, got {region!r}")
    if role in ORG_BOUND_ROLES and not org_id:
        raise ValueError(f"role {role.value} requires org_id")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        # A naive datetime would be read as local time and shift `exp` by the UTC offset.
        raise ValueError("now must be timezone-aware")
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": role.value,
        "region": region,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    if org_id:
        claims["org_id"] = org_id
    return jwt.encode(claims, secret, algorithm="HS256")


class BearerPrincipal(HTTPBearer):
    """FastAPI dependency: the verified caller, or 401 (problem+json, WWW-Authenticate);
    with `roles`, also 403 for any other role.

    One dependency that is also the OpenAPI security scheme ("HTTPBearer"): reading the
    header, verifying and checking the role as separate dependencies cost FastAPI a
    resolution step each, on every request of every service.
    """

    def __init__(self, roles: Sequence[Role] = ()) -> None:
        super().__init__(
            auto_error=False,
            description="JWT issued by the identity provider",
            scheme_name="HTTPBearer",
        )
        self.allowed = frozenset(Role(r) for r in roles)
        self.allowed_names = [r.value for r in Role if r in self.allowed]  # declaration order

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
        if verifier is None:
            # A wiring bug, not a client error: fail loudly rather than let requests through.
            raise RuntimeError("app.state.token_verifier is not set; the app factory must set it")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(detail="A bearer token is required.", extra={"reason": "missing"})
        if verifier.uses_jwks:
            # PyJWKClient fetches with blocking urllib; keep it off the event loop.
            principal = await run_in_threadpool(verifier.verify, token)
        else:
            principal = verifier.verify(token)
        # Kept on the request so audit logging and error handlers can name the caller.
        request.state.principal = principal
        if self.allowed and principal.role not in self.allowed:
            raise Forbidden(
                detail=f"This action requires one of the roles: {', '.join(self.allowed_names)}.",
                extra={"allowed_roles": self.allowed_names},
            )
        return principal


current_principal = BearerPrincipal()

CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> BearerPrincipal:
    """Build a dependency that admits only the given roles (403 otherwise).

    Usage: `principal: Annotated[Principal, Depends(require_roles(Role.operator))]`.
    """
    if not roles:
        raise ValueError("require_roles needs at least one role")
    return BearerPrincipal(roles)
