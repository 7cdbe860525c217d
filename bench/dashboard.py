"""The monitoring dashboard at a million decisions, on SQLite and PostgreSQL.

Run alone with ``python -m bench --only dashboard [--quick]``. The database holds a million
decisions made over the last 30 days (a quarter of a million with ``--quick``): an
application row for each, a review for one in a hundred, and the roll-up the decisions'
transactions kept. The roll-up is written by the service's own code (decision_cells, merge,
Rollup.add): each decision's cells are those of a real decision of the shipped engine on an
applicant of the synthetic world, with sources' statuses and latencies drawn at random,
added up per five minutes of the last hour and per hour before. Then the console's page is
asked for as a signed-in risk officer (templates, charts and all) over every window, once
with every chart drawn anew and once with the charts kept from the load before
(:mod:`service.web.charts.cache`), and the drift API; and the roll-up's cost on the
decision path, one real decision's upsert in a transaction of its own, is timed.
"""

from __future__ import annotations

import random
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, insert, select

from bench.common import pct, table
from tests.databases import POSTGRES_URL, fresh_postgres_schema, postgres_problem

POOL = 20_000          # real decisions whose cells the million are drawn from
CHUNK = 200            # decisions per pre-merged chunk of the pool
REQUESTS = 15          # page loads per window, after one to warm up
STEPS = ("received", "consent_checked", "sources_gathered", "features_built", "scored",
         "policy_applied", "explained", "recourse_sought", "audited")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _pool_chunks(engine, references) -> tuple[list[dict], dict]:
    """Merged cells of POOL real decisions, in chunks of CHUNK; and the first one's cells."""
    from datasources.identity import parse_national_id
    from datasources.stub.world import generate, population_ids
    from scoring.online.features import features_for_frame
    from service.usecases.monitoring.cells import decision_cells, merge
    from service.usecases.monitoring.groups import groups_of

    ids = population_ids(POOL, 2026)
    history = pd.DataFrame(generate(ids))
    features = features_for_frame(history)[list(engine.model.spec.names)].to_numpy(dtype=float)
    decisions = engine.decide(features, age=history["age"].to_numpy(),
                              purpose=history["purpose"].to_numpy(),
                              term_months=history["term_months"].to_numpy())
    rng = random.Random(7)
    chunks, merged, first = [], {}, {}
    for i in range(POOL):
        sources = {scope: {"status": "ok" if rng.random() < 0.99 else "timeout",
                           "latency_ms": rng.lognormvariate(3.0, 0.5)}
                   for scope in ("provident_fund", "social_security", "income_tax",
                                 "credit_report", "court_records")}
        durations = {step: rng.lognormvariate(0.0, 0.8) for step in STEPS}
        payload = {**decisions.record(i), "sources": sources,
                   "decided_ms": sum(durations.values())}
        age = int(history["age"].iloc[i])
        cells = decision_cells(payload, groups=groups_of(parse_national_id(ids[i]), age),
                               durations_ms=durations, opened_breakers=(),
                               references=references)
        first = first or {k: list(v) for k, v in cells.items()}
        merge(merged, cells)
        if (i + 1) % CHUNK == 0:
            chunks.append(merged)
            merged = {}
    return chunks, first


def _scaled(chunks: list[dict], count: int, rng: random.Random) -> dict:
    """The cells of ``count`` decisions: whole chunks drawn at random, the rest scaled."""
    from service.usecases.monitoring.cells import merge

    merged: dict = {}
    whole, rest = divmod(count, CHUNK)
    for _ in range(whole):
        merge(merged, rng.choice(chunks))
    if rest:
        part = rng.choice(chunks)
        merge(merged, {k: [max(1, round(n * rest / CHUNK)), t * rest / CHUNK]
                       for k, (n, t) in part.items()})
    return merged


def _seed(app, decisions: int, chunks: list[dict]) -> dict:
    """Fill the database as 30 days of ``decisions`` decisions would have; return counts."""
    from service.persistence.tables import applications, monitoring_cells, reviews
    from service.usecases.monitoring.rollup import Rollup

    engine = app.extensions["flashloan"].store.engine
    now = datetime.now(UTC)
    start = now - timedelta(days=30)
    rollup, rng = Rollup(), random.Random(11)
    # Per five minutes for the last hour, per hour before it.
    slots = [start + timedelta(hours=h, minutes=30) for h in range(30 * 24 - 1)]
    slots += [now - timedelta(minutes=5 * k) for k in range(11, -1, -1)]
    per_slot = decisions // len(slots)
    started = time.perf_counter()
    for at in slots:
        cells = _scaled(chunks, per_slot if at < now - timedelta(hours=1) else per_slot // 12,
                        rng)
        with engine.begin() as conn:
            rollup.add(conn, cells, at)
    rollup_s = time.perf_counter() - started
    started = time.perf_counter()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    batch = 20_000
    with engine.begin() as conn:
        for first in range(0, decisions, batch):
            conn.execute(insert(applications), [
                {"application_id": f"a_{i:032x}", "channel": "bench", "key_id": "k",
                 "subject": f"{i:064x}", "consent_id": "c", "status": "approved",
                 "outcome": "approved", "grade": "B", "model_version": "v1",
                 "decided_by": "model", "created_at": stamp, "updated_at": stamp,
                 "answer": "{}"} for i in range(first, min(first + batch, decisions))])
        conn.execute(insert(reviews), [
            {"review_id": f"r_{i:032x}", "application_id": f"a_{i * 100:032x}",
             "channel": "bench", "key_id": "k", "reason": "bench",
             "state": "open" if i % 10 == 0 else "resolved",
             "outcome": None if i % 10 == 0 else ("overturned" if i % 4 == 0 else "upheld"),
             "created_at": (now - timedelta(hours=i % 700)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
             "resolved_at": None if i % 10 == 0 else stamp}
            for i in range(decisions // 100)])
    rows_s = time.perf_counter() - started
    with engine.connect() as conn:
        cells = conn.execute(select(func.count()).select_from(monitoring_cells)).scalar_one()
        apps = conn.execute(select(func.count()).select_from(applications)).scalar_one()
    return {"cells": cells, "applications": apps, "rollup_s": rollup_s, "rows_s": rows_s}


def _signed_in(app, key: str):
    client = app.test_client()
    page = client.get("/console/sign-in").get_data(as_text=True)
    response = client.post("/console/sign-in", data={
        "csrf_token": _CSRF.search(page).group(1), "api_key": key})
    assert response.status_code == 303, response.status_code
    return client


def _timed(call) -> list[float]:
    call()
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _measure(url: str, decisions: int, chunks_of) -> list[list[object]]:
    from service.persistence.migrations import upgrade
    from service.usecases.api_keys import create_key
    from service.web.app import create_app

    upgrade(url)
    folder = Path(tempfile.mkdtemp(prefix="flashloan-bench-"))
    app = create_app({"database_url": url, "env": "test", "var_dir": folder,
                      "rate_limit": "1000000/minute"})
    wired = app.extensions["flashloan"]
    try:
        seeded = _seed(app, decisions, chunks_of(wired))
        key = create_key(wired.store.engine, "risk_officer", "bench-officer")
        client = _signed_in(app, key)
        api = app.test_client()
        rows = []
        for window, by in (("hour", None), ("day", None), ("7d", None), ("30d", None),
                           ("30d", "hour")):
            path = f"/console/monitoring?window={window}" + (f"&by={by}" if by else "")

            def page(path: str = path, cold: bool = True) -> None:
                if cold:
                    wired.charts.clear()
                response = client.get(path)
                assert response.status_code == 200, response.status_code

            name = f"page, {window}" + (f" by {by}" if by else "")
            for label, cold in ((" — every chart drawn", True), (" — charts unchanged", False)):
                times = _timed(lambda page=page, cold=cold: page(cold=cold))
                rows.append([name + label, f"{statistics.median(times):.0f}",
                             f"{pct(times, 95):.0f}", f"{max(times):.0f}"])
        headers = {"Authorization": f"Bearer {key}"}
        times = _timed(lambda: api.get("/v1/monitoring/drift?window=30d", headers=headers))
        rows.append(["GET /v1/monitoring/drift, 30d", f"{statistics.median(times):.0f}",
                     f"{pct(times, 95):.0f}", f"{max(times):.0f}"])
        single = chunks_of(wired, first=True)
        from service.usecases.monitoring.rollup import Rollup

        rollup = Rollup()

        def upsert() -> None:
            with wired.store.engine.begin() as conn:
                rollup.add(conn, single, datetime.now(UTC))

        times = _timed(upsert)
        rows.append([f"one decision's roll-up ({len(single)} cells, in its five minutes; its "
                     "groups in its day), in a transaction of its own",
                     f"{statistics.median(times):.1f}", f"{pct(times, 95):.1f}",
                     f"{max(times):.1f}"])
        return [[f"{seeded['applications']:,} decisions, {seeded['cells']:,} roll-up rows "
                 f"(seeded in {seeded['rollup_s']:.0f} s + {seeded['rows_s']:.0f} s)", "", "",
                 ""], *rows]
    finally:
        wired.close()


def run(quick: bool) -> str:
    """Return the Markdown section of the dashboard benchmark."""
    decisions = 250_000 if quick else 1_000_000
    cache: dict[str, tuple[list[dict], dict]] = {}

    def chunks_of(wired, first: bool = False) -> Any:
        if "pool" not in cache:
            cache["pool"] = _pool_chunks(wired.engine, wired.flow.references)
        return cache["pool"][1] if first else cache["pool"][0]

    lines = ["## Monitoring dashboard\n",
             f"{decisions:,} decisions over the last 30 days (an application row each, a "
             "review for one in a hundred, and the roll-up their transactions kept), then the "
             "console's monitoring page as a signed-in risk officer, in process (templates "
             f"and charts included), {REQUESTS} loads per window after one to warm up; "
             "milliseconds.\n"]
    folder = Path(tempfile.mkdtemp(prefix="flashloan-bench-"))
    targets = [("SQLite (WAL)", f"sqlite:///{folder / 'dashboard.db'}")]
    problem = postgres_problem()
    header = ["", "p50 ms", "p95 ms", "max ms"]
    for name, url in targets:
        lines += [f"### {name}\n", table(header, _measure(url, decisions, chunks_of)), ""]
    if problem is None:
        with fresh_postgres_schema(POSTGRES_URL, prefix="bench") as url:
            lines += ["### PostgreSQL\n", table(header, _measure(url, decisions, chunks_of)),
                      ""]
    else:
        lines.append(f"PostgreSQL not measured: {problem}\n")
    lines.append("Every figure is read from the roll-up, whose size depends on the window and "
                 "the variety of decisions, not their number: the goal is a page in under "
                 "one second at a million decisions.\n")
    return "\n".join(lines)
