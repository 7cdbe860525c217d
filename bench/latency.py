"""4. End to end with realistic source latency: the decision against its slowest source."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from audit import AuditQuery
from bench.common import in_process_app, pct, prepare_bodies, table
from datasources.stub.world import population_ids

GOAL_MS = 50  # p99 of a decision beyond its slowest source


def run(quick: bool) -> str:
    latency = "lognormal:150:800"
    app, key = in_process_app(stub_latency_ms=latency)
    client = app.test_client()
    n = 120 if quick else 600
    bodies = prepare_bodies(client, key, population_ids(n, 4242))
    headers = {"Authorization": f"Bearer {key}"}

    def decide(body: dict) -> dict:
        r = app.test_client().post("/v1/applications", json=body, headers=headers)
        if r.status_code != 201:
            raise RuntimeError(f"decision failed: {r.get_json()}")
        return r.get_json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(decide, bodies))
    store = app.extensions["flashloan"].store
    slowest, elapsed, overhead = [], [], []
    for answer in answers:
        # The decision's one record carries every source's outcome, its latency among them.
        record = next(store.iter_records(AuditQuery(application_id=answer["application_id"],
                                                    kinds=("decision.made",))))
        worst = max(s["latency_ms"] for s in record.payload["sources"].values())
        slowest.append(worst)
        elapsed.append(answer["elapsed_ms"])
        overhead.append(answer["elapsed_ms"] - worst)
    app.extensions["flashloan"].close()
    rows = [[name, f"{pct(v, 50):.1f}", f"{pct(v, 99):.1f}"]
            for name, v in (("slowest source of the request", slowest),
                            ("whole decision", elapsed),
                            ("decision − its slowest source", overhead))]
    verdict = ("within" if pct(overhead, 99) <= GOAL_MS else "NOT within")
    return "\n".join([
        "## 4. End to end with realistic source latency",
        "",
        f"{n} decisions, 8 at a time, in process on SQLite; every source's latency is "
        f"log-normal with median 150 ms and p99 800 ms (`FLASHLOAN_STUB_LATENCY_MS={latency}`).",
        "The last row is, per request, the decision's elapsed time minus the latency of its "
        "own slowest source.",
        "",
        table(["", "p50 ms", "p99 ms"], rows),
        "",
        f"p99 of the decision beyond its slowest source: {pct(overhead, 99):.1f} ms — "
        f"{verdict} the {GOAL_MS} ms goal.",
    ])
