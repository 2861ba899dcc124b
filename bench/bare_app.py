"""Reference servers for the HTTP benchmarks, each run as its own process.

    python -m bench.bare_app PORT          # FastAPI: `GET /ping` and `POST /echo`, uvicorn
                                           # (uvloop + httptools)
    python -m bench.bare_app PORT --plain  # the same app on asyncio + h11 (uvicorn, pure Python)
    python -m bench.bare_app PORT --raw    # a trivial HTTP/1.1 server on uvloop (no framework)

The FastAPI app is the baseline `POST /needs` is compared with: the same server stack as a
service (`libs.common.service.serve`: one uvicorn worker, uvloop, httptools, no access log)
and nothing else. Its `POST /echo` is a reference: a POST with `POST /needs`'s body, validated
into a model and answered with a response model (201), and nothing else (no auth, database,
encryption, event or tracing): the framework's own floor for such a request. The raw server
answers every request with a fixed 200 and is there to measure the load generator's own
ceiling: whatever rate the generator reaches against it is the most it can report for any
server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence
from typing import cast

import httptools
import uvloop
from fastapi import FastAPI
from pydantic import BaseModel, Field

HOST = "127.0.0.1"

app = FastAPI(title="bare", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/ping")
async def ping() -> dict[str, str]:
    """The whole endpoint: a small JSON object."""
    return {"status": "ok"}


class EchoIn(BaseModel):
    """The shape of `POST /needs`'s body."""

    recipient_ref: str = Field(min_length=1, max_length=36)
    service_code: str = Field(min_length=1, max_length=64)
    urgency: int = Field(ge=1, le=4)


class EchoOut(EchoIn):
    id: str
    status: str


@app.post("/echo", status_code=201, response_model=EchoOut)
async def echo(body: EchoIn) -> EchoOut:
    """A POST's framework floor: the body validated, a response model written back."""
    return EchoOut(id="need-1", status="open", **body.model_dump())


def serve_fastapi(port: int, *, plain: bool = False) -> None:
    """The bare app under uvicorn, configured as `libs.common.service.serve` runs services;
    with `plain`, on asyncio + h11 instead (the stack of PITFALLS.md's "about 3,000 req/s",
    the figure issue 4's target was written against; services never run on it)."""
    import uvicorn

    uvicorn.run(
        app,
        host=HOST,
        port=port,
        loop="asyncio" if plain else "uvloop",
        http="h11" if plain else "httptools",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


_RAW_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n"
    b'{"status":"ok"}'
)


class _RawHTTP(asyncio.Protocol):
    """Keep-alive HTTP/1.1: a fixed response for every complete request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        if self.transport is not None:
            self.transport.write(_RAW_RESPONSE)


async def _serve_raw(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(_RawHTTP, HOST, port, reuse_address=True, backlog=1024)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app", description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--raw", action="store_true", help="the trivial server, no framework")
    parser.add_argument("--plain", action="store_true", help="FastAPI on asyncio + h11")
    args = parser.parse_args(argv)
    if args.raw:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(_serve_raw(args.port))
    else:
        serve_fastapi(args.port, plain=args.plain)


if __name__ == "__main__":
    main()
