"""Audit trail: concurrent append throughput, and verify/export of a long chain in bounded memory.

Run alone with ``python -m bench --only audit [--quick]``. PostgreSQL figures are included
when the server named by ``FLASHLOAN_TEST_POSTGRES_URL`` (default: the local test database)
answers; a temporary schema is created and dropped.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.databases import POSTGRES_URL, fresh_postgres_schema, postgres_problem

ROOT = Path(__file__).resolve().parent.parent
LOAD_CHUNK = 5000

# Runs in a fresh interpreter so that its peak RSS is the operation's alone.
_MEASURE = """
import json, os, resource, sys, time
# A forked child starts with its parent's high-water mark; reset it (Linux 4.0+) so that the
# peak measured below is this process's alone.
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
except OSError:
    pass
def hwm_kib():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from audit.records import AuditQuery
from audit.store import AuditStore
url, op, end = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = AuditStore.from_url(url)
before = hwm_kib()
started = time.perf_counter()
if op == "verify":
    result = store.verify(end_seq=end)
    assert result.ok, result
    count = result.checked
else:
    count = 0
    with open(os.devnull, "w", encoding="utf-8") as sink:
        for line in store.export(op, AuditQuery(end_seq=end)):
            sink.write(line)
            count += 1
seconds = time.perf_counter() - started
store.dispose()
peak = hwm_kib()
print(json.dumps({"count": count, "seconds": seconds, "rss_before_kib": before,
                  "peak_rss_kib": peak}))
"""


def run(quick: bool) -> str:
    """Return the Markdown section of the audit benchmark."""
    processes, appends = (4, 250) if quick else (8, 500)
    sizes = {
        "SQLite (WAL)": 200_000 if quick else 1_000_000,
        "PostgreSQL": 50_000 if quick else 250_000,
    }
    lines = [
        "## Audit trail\n",
        f"Append: {processes} processes × {appends} appends at once, one record per "
        "transaction (chain lock, head read, insert, commit), then the chain is read back "
        "and verified. Long chain: decision-sized records (~0.5 kB payload) bulk-appended in "
        f"transactions of {LOAD_CHUNK:,}, each chunk prepared (canonical JSON, payload hash) "
        "in a second process while the previous one is chained and inserted (SQLite: with a "
        "128 MiB page cache for the loading connection); each verify "
        "and export then runs in a fresh process "
        "whose peak RSS is reported (export writes to /dev/null). Each is run over the first "
        "tenth of the chain and over all of it: equal peaks show that memory does not grow "
        "with the length of the chain. PostgreSQL's long chain is shorter only to keep the "
        "benchmark within minutes (its bulk load is index-bound at ~8,000 records/s here).\n",
    ]
    targets: list[tuple[str, Any]] = [("SQLite (WAL)", _sqlite_database)]
    problem = _postgres_problem()
    if problem is None:
        targets.append(("PostgreSQL", _postgres_database))
    append_rows, long_rows = [], []
    for name, database in targets:
        print(f"[bench] audit: {name} appends", file=sys.stderr, flush=True)
        with database() as url:
            append_rows.append(_append_throughput(name, url, processes, appends))
        print(f"[bench] audit: {name} {sizes[name]:,} records", file=sys.stderr, flush=True)
        with database() as url:
            long_rows.extend(_long_chain(name, url, sizes[name]))
    lines += [
        "| database | processes × appends | seconds | appends/s | chain 1..N gap-free | verify |",
        "|---|---|---|---|---|---|",
        *append_rows,
        "",
        "| database | operation | records | seconds | records/s | peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
        *long_rows,
    ]
    if problem is not None:
        lines.append(f"\nPostgreSQL skipped: {problem}")
    return "\n".join(lines) + "\n"


@contextmanager
def _sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        yield f"sqlite:///{folder}/audit.db"


def _postgres_database() -> AbstractContextManager[str]:
    return fresh_postgres_schema(POSTGRES_URL, "bench_audit")


def _postgres_problem() -> str | None:
    try:
        return postgres_problem(POSTGRES_URL)
    except ImportError as exc:  # no driver only means: no PostgreSQL figures
        return str(exc)


def _appender(url: str, worker: int, count: int, barrier: Any, results: Any) -> None:
    from audit.store import AuditStore

    store = AuditStore.from_url(url)
    try:
        barrier.wait(timeout=120)
        started = time.perf_counter()
        for i in range(count):
            store.append(
                "application.received", {"worker": worker, "i": i}, actor=f"channel:key_w{worker}"
            )
        results.put((started, time.perf_counter()))
    finally:
        store.dispose()


def _append_throughput(name: str, url: str, processes: int, appends: int) -> str:
    from audit.store import AuditStore
    from service.persistence.migrations import upgrade

    upgrade(url)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_appender, args=(url, w, appends, barrier, results))
        for w in range(processes)
    ]
    for process in workers:
        process.start()
    spans = [results.get(timeout=600) for _ in workers]
    for process in workers:
        process.join()
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    store = AuditStore.from_url(url)
    try:
        seqs = [record.seq for record in store.iter_records()]
        verified = store.verify()
    finally:
        store.dispose()
    total = processes * appends
    gap_free = "yes" if seqs == list(range(1, total + 1)) else "NO"
    return (
        f"| {name} | {processes} × {appends} | {seconds:.2f} | {total / seconds:,.0f} | "
        f"{gap_free} | {'ok' if verified.ok else verified.reason} |"
    )


def _long_chain(name: str, url: str, size: int) -> list[str]:
    from audit.store import AuditStore
    from service.persistence.migrations import upgrade

    upgrade(url)
    store = AuditStore.from_url(url)
    try:
        started = time.perf_counter()
        _bulk_load(store, size)
        load_seconds = time.perf_counter() - started
    finally:
        store.dispose()
    rows = [
        f"| {name} | bulk append (chunks of {LOAD_CHUNK:,}) | {size:,} | "
        f"{load_seconds:.1f} | {size / load_seconds:,.0f} | – |"
    ]
    for op, label in (("verify", "verify"), ("jsonl", "export JSON lines"), ("csv", "export CSV")):
        for end in (size // 10, size):
            print(f"[bench] audit: {name} {label} 1..{end:,}", file=sys.stderr, flush=True)
            measured = _measure(url, op, end)
            rows.append(
                f"| {name} | {label} | {measured['count']:,} | {measured['seconds']:.1f} | "
                f"{measured['count'] / measured['seconds']:,.0f} | "
                f"{measured['peak_rss_kib'] / 1024:.0f} |"
            )
    return rows


def _bulk_load(store: Any, size: int) -> None:
    """Append ``size`` records in chunks; a second process prepares the next chunk meanwhile.

    Preparing (checks, canonical JSON, payload hash) needs no lock, as in the service, which
    prepares a decision's records in the request thread; chaining, inserts and the commit
    stay in this process, one transaction per chunk.
    """
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        bases = range(0, size, LOAD_CHUNK)
        pending = pool.submit(_prepare_chunk, bases[0], size) if bases else None
        for k in range(len(bases)):
            prepared = pending.result()
            if k + 1 < len(bases):
                pending = pool.submit(_prepare_chunk, bases[k + 1], size)
            with store.writer() as writer:
                if writer.connection.dialect.name == "sqlite":
                    # A loader's page cache (128 MiB): the chain's indexes outgrow SQLite's
                    # 2 MiB default within the first 100,000 records.
                    writer.connection.exec_driver_sql("PRAGMA cache_size = -131072")
                writer.append_many(prepared)


_POOL: list[dict[str, Any]] = []
_KINDS = ("application.received", "source.fetched", "source.fetched", "decision.made")


def _prepare_chunk(base: int, size: int) -> list[Any]:
    from audit.writer import Entry, prepare

    if not _POOL:
        # A pool of payloads, each appended with its own sequence number, keeps the time
        # spent making test data out of the figures.
        rng = random.Random(20240601)
        _POOL.extend(_payload(rng, _KINDS[i % 4]) for i in range(1024))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        prepare(Entry(_KINDS[i % 4], _POOL[i % 1024] | {"n": i}, f"app-{i // 4:09d}",
                      "channel:key_bench", start + timedelta(seconds=i)))
        for i in range(base, min(base + LOAD_CHUNK, size))
    ]


def _payload(rng: random.Random, kind: str) -> dict[str, Any]:
    """A payload of about the size and shape the decision flow writes."""
    body: dict[str, Any] = {
        "subject": f"{rng.getrandbits(256):064x}",
        "consent_id": f"c-{rng.getrandbits(64):016x}",
        "features": {f"f{j:02d}": round(rng.uniform(0, 50_000), 2) for j in range(12)},
        "latency_ms": rng.randint(40, 900),
    }
    if kind == "decision.made":
        body |= {
            "outcome": rng.choice(("approved", "declined", "deferred")),
            "model_version": "2024.06",
            "reason_codes": rng.sample(["R_DTI", "R_INQ", "R_AGE", "R_INCOME", "R_HIST"], 2),
            "pd": round(rng.random() / 5, 6),
        }
    return body


def _measure(url: str, op: str, end: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE, url, op, str(end)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=3600,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench {op} failed: {completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
