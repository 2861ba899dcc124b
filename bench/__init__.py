"""Throughput benchmarks of the platform's shared mechanisms: `python -m bench [NAME ...]`.

Each benchmark module exposes `NAME`, `DESCRIPTION` and `async def run(ctx) -> list[Figure]`
and is listed in `bench.__main__.BENCHMARKS`; `bench.common` holds what they share (a
private nats-server, fresh databases, timing, tables, JSON output).
"""
