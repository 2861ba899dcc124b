"""Rate limiting of the public (no-login) endpoints: a token bucket per client IP.

Public disclosure lists need no account, so nothing but the address tells callers apart. Each
address gets a bucket of `burst` tokens refilled at `rate` per second; a request takes one,
and an empty bucket answers 429 (problem+json) with `Retry-After`. Buckets live in the
process (each replica limits on its own — the limit is a floor against floods, not an exact
quota) and the least recently seen addresses are forgotten beyond `max_clients`, so memory
stays bounded whatever the number of callers.

The limiter is `app.state.rate_limiter` when set (tests and hosts set their own), else one
with the defaults, created on first use. The client address is the TCP peer's: behind a
reverse proxy, have the proxy set the peer (uvicorn `--proxy-headers` from trusted hosts)
rather than trusting a client-supplied `X-Forwarded-For` here.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

DEFAULT_RATE = 10.0  # tokens per second
DEFAULT_BURST = 60


class TokenBucketLimiter:
    """Token buckets keyed by client address (`allow(key)` → seconds to wait, 0 if allowed)."""

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        # key → (tokens, time of the last refill); most recently used last.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> float:
        """Take a token for `key`: 0.0 when allowed, else the seconds until one is due."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


def limiter_of(request: Request) -> TokenBucketLimiter:
    state = request.app.state
    limiter: TokenBucketLimiter | None = getattr(state, "rate_limiter", None)
    if limiter is None:
        limiter = TokenBucketLimiter()
        state.rate_limiter = limiter
    return limiter


async def public_rate_limit(request: Request) -> None:
    """FastAPI dependency of every public route: 429 + Retry-After when the bucket is empty."""
    client = request.client.host if request.client is not None else "unknown"
    wait = limiter_of(request).allow(client)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise HTTPException(
            status_code=429,
            detail=f"Too many requests from this address; retry in {retry} s.",
            headers={"Retry-After": str(retry)},
        )


RateLimited = Annotated[None, Depends(public_rate_limit)]
