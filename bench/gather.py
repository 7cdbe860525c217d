"""Benchmark the gatherer: overlap of slow sources, stub vs HTTP adapters, own overhead."""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from datasources import SCOPES
from datasources.base import Source
from datasources.consent import Consent, ConsentGate
from datasources.gather import Gatherer
from datasources.http import HttpSource, SourceHttpClient
from datasources.stub.adapters import StubWorld, build_stub_sources
from datasources.stub.behaviour import parse_latency
from datasources.stub.server import serve
from datasources.stub.world import population_ids

SUBJECT = "bench-subject"


def _gate() -> ConsentGate:
    now = datetime.now(UTC)
    consent = Consent("bench", SUBJECT, frozenset(SCOPES), "credit_application",
                      now - timedelta(hours=1), now + timedelta(days=1), "bench", "bench")
    return ConsentGate(lambda consent_id: consent)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _serve_child(latency: str, ports: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Run a stub source server in this (child) process and report its port."""
    serve("127.0.0.1", 0, StubWorld(), parse_latency(latency),
          ready=lambda server: ports.put(server.server_address[1]))


@contextlib.contextmanager
def _http_sources(latency: str, ids: list[str]) -> Iterator[dict[str, Source]]:
    """Yield HTTP sources of a stub server in its own process, as in production.

    In one process the client and server threads would share one interpreter lock, and the
    figures would measure that contention rather than the adapters.
    """
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    child = context.Process(target=_serve_child, args=(latency, ports), daemon=True)
    child.start()
    try:
        port = ports.get(timeout=60)
        with SourceHttpClient(f"http://127.0.0.1:{port}") as client:
            sources = {scope: HttpSource(scope, client) for scope in SCOPES}
            if not latency:  # let the server generate everyone once before timing
                _sequential(sources, ids, len(ids))
            yield sources
    finally:
        child.terminate()
        child.join(timeout=10)
        ports.close()
        ports.join_thread()


def _gathers(sources: Mapping[str, Source], ids: list[str], runs: int,
             deadline_s: float = 10.0) -> tuple[list[float], list[float]]:
    """Return wall times and sums of per-source latencies (ms) of ``runs`` gatherings."""
    walls, sums = [], []
    with Gatherer(sources, _gate(), deadline_s=deadline_s) as gatherer:
        gatherer.gather(ids[0], SUBJECT, "bench", SCOPES)  # start the pool's threads
        for i in range(runs):
            started = time.perf_counter()
            result = gatherer.gather(ids[i % len(ids)], SUBJECT, "bench", SCOPES)
            walls.append((time.perf_counter() - started) * 1000)
            sums.append(sum(o.latency_ms for o in result.outcomes.values()))
            if not result.sufficient:
                raise RuntimeError(f"benchmark gathering failed: {result.missing_reasons}")
    return walls, sums


def _sequential(sources: Mapping[str, Source], ids: list[str], runs: int) -> list[float]:
    """Return wall times (ms) of fetching the five sources one after another, no gatherer."""
    walls = []
    for i in range(runs):
        started = time.perf_counter()
        for source in sources.values():
            source.fetch(ids[i % len(ids)], timeout=10.0)
        walls.append((time.perf_counter() - started) * 1000)
    return walls


def _concurrent_gathers(sources: Mapping[str, Source], ids: list[str], runs: int,
                        threads: int = 8) -> list[float]:
    """Return wall times (ms) of ``runs`` gatherings made ``threads`` at a time."""
    walls: list[float] = []
    with Gatherer(sources, _gate(), threads_per_source=threads) as gatherer, \
            ThreadPoolExecutor(threads) as callers:
        def one(i: int) -> float:
            started = time.perf_counter()
            gatherer.gather(ids[i % len(ids)], SUBJECT, "bench", SCOPES)
            return (time.perf_counter() - started) * 1000

        walls.extend(callers.map(one, range(runs)))
    return walls


def _row(name: str, walls: list[float], unit: Callable[[float], str]) -> str:
    return (f"| {name} | {len(walls)} | {unit(statistics.median(walls))} | "
            f"{unit(_pct(walls, 0.99))} |")


def run(quick: bool) -> str:
    """Return the Markdown section of the gatherer benchmarks."""
    overlap_runs, overhead_runs, tail_runs = (3, 100, 80) if quick else (10, 500, 400)
    world = StubWorld()
    ids = population_ids(50, seed=7)
    for nid in ids:
        world.records(nid)  # generation cost is the stub's, not the gatherer's

    lines = ["## Gathering the sources", "",
             "Five sources, each answering after 300 ms: gathering in parallel should take "
             "about one source's time, not five.", "",
             "| adapters | runs | wall p50 (ms) | wall max (ms) | sum of source latencies p50 "
             "(ms) | sum / wall |", "|---|---|---|---|---|---|"]
    makers: list[tuple[str, Callable[[], contextlib.AbstractContextManager]]] = [
        ("stub", lambda: contextlib.nullcontext(build_stub_sources(world, "300"))),
        ("HTTP → stub server", lambda: _http_sources("300", ids)),
    ]
    for name, make in makers:
        with make() as sources:
            walls, sums = _gathers(sources, ids, overlap_runs)
        lines.append(f"| {name} | {overlap_runs} | {statistics.median(walls):.0f} | "
                     f"{max(walls):.0f} | {statistics.median(sums):.0f} | "
                     f"{statistics.median(sums) / statistics.median(walls):.2f}× |")

    micro = "{:.0f}".format
    lines += ["", "With zero latency, what the gatherer itself costs (consent check, pool "
              "hand-off, bookkeeping), against plain sequential calls; and the HTTP adapters "
              "against the stub server in its own process on localhost (one pooled keep-alive "
              "connection per pool thread).", "",
              "| path | runs | p50 (µs) | p99 (µs) |", "|---|---|---|---|"]
    stub = build_stub_sources(world)
    lines.append(_row("stub adapters, sequential, no gatherer",
                      [w * 1000 for w in _sequential(stub, ids, overhead_runs)], micro))
    lines.append(_row("stub adapters, gatherer",
                      [w * 1000 for w in _gathers(stub, ids, overhead_runs)[0]], micro))
    with _http_sources("", ids) as http:
        lines.append(_row("HTTP adapters, sequential, no gatherer",
                          [w * 1000 for w in _sequential(http, ids, overhead_runs)], micro))
        lines.append(_row("HTTP adapters, gatherer",
                          [w * 1000 for w in _gathers(http, ids, overhead_runs)[0]], micro))

    tail = "lognormal:150:800"
    delay = parse_latency(tail).for_scope("income_tax")
    rng = random.Random(1)
    one = [delay.sample_s(rng) * 1000 for _ in range(100_000)]
    slowest = [max(delay.sample_s(rng) for _ in SCOPES) * 1000 for _ in range(100_000)]
    measured = _concurrent_gathers(build_stub_sources(world, tail, seed=3), ids, tail_runs)
    ms = "{:.0f}".format
    lines += ["", f"Log-normal source latency (`{tail}`: median 150 ms, p99 800 ms per "
              "source). A gathering waits for its slowest source, so its median sits near a "
              "single source's upper quantiles: the deadline must be set against the tail of "
              "the slowest of five, not a source's median. Measured gatherings ran eight at a "
              "time on one gatherer.", "",
              "| what | samples | p50 (ms) | p99 (ms) |", "|---|---|---|---|",
              _row("one source (the configured distribution)", one, ms),
              _row("slowest of five (drawn from it)", slowest, ms),
              _row("gathering five (measured)", measured, ms), ""]
    return "\n".join(lines)
