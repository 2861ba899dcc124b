"""`python -m bench [NAME ...]`: run the benchmarks (all by default) and print a summary.

Every benchmark module is registered in `BENCHMARKS` and exposes `NAME`, `DESCRIPTION` and
`async def run(ctx: BenchContext) -> list[Figure]`. Each module's figures are printed as a
table and written to `var/bench/<NAME>.json`; the process exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import pstats
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from rich.table import Table

from bench.common import (
    OUTPUT_DIR,
    BenchContext,
    Figure,
    console,
    event_loop_name,
    print_figures,
    write_json,
)

# name → module; add new benchmark modules here.
BENCHMARKS: dict[str, str] = {
    "events": "bench.bench_events",
    "needs_import": "bench.bench_needs_import",
    "needs_http": "bench.bench_needs_http",
    "providers_search": "bench.bench_providers_search",
    "credit_scores": "bench.bench_credit_scores",
    "allocation_engine": "bench.bench_allocation_engine",
    "allocation_e2e": "bench.bench_allocation_e2e",
}

RunFn = Callable[[BenchContext], Awaitable[list[Figure]]]


@dataclass
class Outcome:
    """What one benchmark module produced."""

    name: str
    seconds: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    error: str | None = None
    json_path: str | None = None
    failures: list[str] = field(default_factory=list)


def load(name: str) -> ModuleType:
    module = importlib.import_module(BENCHMARKS[name])
    if not callable(getattr(module, "run", None)):
        raise TypeError(f"{BENCHMARKS[name]} has no run(ctx) coroutine function")
    return module


async def run_all(names: Sequence[str], ctx: BenchContext) -> list[Outcome]:
    loop = event_loop_name()
    console.print(f"[bold]bench[/]: {', '.join(names)} — event loop: {loop}")
    outcomes: list[Outcome] = []
    for name in names:
        outcome = Outcome(name)
        failures_before = len(ctx.failures)
        started = time.perf_counter()
        try:
            module = load(name)
            run: RunFn = module.run
            console.rule(f"{name}: {getattr(module, 'DESCRIPTION', '')}")
            outcome.figures = await run(ctx)
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            ctx.fail(f"{name}: crashed: {outcome.error}")
            console.print(traceback.format_exc(), markup=False)
        outcome.seconds = time.perf_counter() - started
        outcome.failures = ctx.failures[failures_before:]
        if outcome.figures:
            print_figures(f"{name} ({loop})", outcome.figures)
            path = write_json(
                name,
                outcome.figures,
                {
                    "event_loop": loop,
                    "seconds": round(outcome.seconds, 2),
                    "failures": outcome.failures,
                },
            )
            outcome.json_path = str(path.relative_to(OUTPUT_DIR.parents[1]))
        outcomes.append(outcome)
    return outcomes


def print_summary(outcomes: Sequence[Outcome], loop: str) -> None:
    table = Table(title=f"summary ({loop})", title_justify="left")
    table.add_column("benchmark")
    table.add_column("figures", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("result")
    table.add_column("json")
    for o in outcomes:
        if o.error:
            result = f"[bold red]CRASHED[/] {o.error}"
        elif o.failures:
            result = f"[bold red]FAIL[/] ({len(o.failures)} checks)"
        else:
            result = "[green]ok[/]"
        table.add_row(o.name, str(len(o.figures)), f"{o.seconds:.1f}", result, o.json_path or "")
    console.print(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default all: {', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "-n", "--n", type=int, default=None, help="message count for every benchmark"
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop implementation (default uvloop)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run under cProfile (main thread only); stats to var/bench/<names>.prof",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (databases, store)")
    return parser.parse_args(argv)


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        console.print("[yellow]uvloop is not installed; using asyncio's loop[/]")
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for name, module in BENCHMARKS.items():
            console.print(
                f"{name:12} {getattr(importlib.import_module(module), 'DESCRIPTION', '')}"
            )
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        console.print(
            f"[red]unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}[/]"
        )
        return 2
    if args.n is not None and args.n <= 0:
        console.print("[red]--n must be positive[/]")
        return 2
    names = list(args.names or BENCHMARKS)
    ctx = BenchContext(n_override=args.n, keep_files=args.keep)
    profiler = cProfile.Profile() if args.profile else None
    loop_name = "?"

    async def go() -> list[Outcome]:
        nonlocal loop_name
        loop_name = event_loop_name()
        return await run_all(names, ctx)

    try:
        with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
            if profiler is not None:
                profiler.enable()
            try:
                outcomes = runner.run(go())
            finally:
                if profiler is not None:
                    profiler.disable()
    finally:
        ctx.close()
    if ctx.keep_files:
        console.print(f"[dim]kept {ctx.tmp}[/]")
    if profiler is not None:
        report_profile(profiler, "-".join(names))
    print_summary(outcomes, loop_name)
    for failure in ctx.failures:
        console.print(f"[bold red]FAIL[/] {failure}")
    return 1 if ctx.failures else 0


def report_profile(profiler: cProfile.Profile, stem: str, top: int = 30) -> None:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{stem}.prof"
    profiler.dump_stats(path)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    console.print(out.getvalue(), markup=False, highlight=False)
    console.print(f"[dim]profile written to {path} (python -m pstats {path})[/]")


def _entry() -> Any:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
