"""1. The cost of one decision in process, step by step, with zero-latency stub sources."""

from __future__ import annotations

import time

from bench.common import in_process_app, pct, prepare_bodies, table
from datasources.stub.world import population_ids


def run(quick: bool) -> str:
    app, key = in_process_app()
    client = app.test_client()
    people = population_ids(100 if quick else 300, 2024)
    bodies = prepare_bodies(client, key, people)
    headers = {"Authorization": f"Bearer {key}"}
    for body in bodies:  # warm the stub world's cache and every code path
        client.post("/v1/applications", json=body, headers=headers)
    n = 500 if quick else 2000
    steps: dict[str, list[float]] = {}
    totals: list[float] = []
    # The write and its commit come after the answer's last step ("audited"): they are timed
    # around the group committer, here with one decision per commit (one client thread).
    committer = app.extensions["flashloan"].flow.committer
    submit, commits = committer.submit, []

    def timed_submit(work, cells=None) -> None:
        began = time.perf_counter()
        try:
            submit(work, cells)
        finally:
            commits.append((time.perf_counter() - began) * 1000)

    committer.submit = timed_submit
    for i in range(n):
        commits.clear()
        started = time.perf_counter()
        r = client.post("/v1/applications", json=bodies[i % len(bodies)], headers=headers)
        total = (time.perf_counter() - started) * 1000
        answer = r.get_json()
        if r.status_code != 201:
            raise RuntimeError(f"decision failed: {answer}")
        totals.append(total)
        inside = 0.0
        for step in answer["timeline"]:
            steps.setdefault(step["step"], []).append(step["ms"])
            inside += step["ms"]
        steps.setdefault("write and commit (one decision per commit)", []).append(commits[0])
        steps.setdefault("http, validation, auth, serialisation", []).append(
            total - inside - commits[0])
    app.extensions["flashloan"].close()
    rows = [[name, f"{pct(v, 50):.3f}", f"{pct(v, 99):.3f}"] for name, v in steps.items()]
    rows.append(["**whole request**", f"**{pct(totals, 50):.3f}**",
                 f"**{pct(totals, 99):.3f}**"])
    return "\n".join([
        "## 1. One decision in process, step by step",
        "",
        f"{n} decisions through the Flask test client on SQLite, five stub sources with no "
        "latency, one thread. Times in milliseconds. `audited` ends when the decision's audit "
        "records and application row are built (canonical JSON, hashes); their write and "
        "commit follow, outside the answer's timeline. With one client thread every commit "
        "(and its fsync) serves one decision; under load concurrent decisions share it.",
        "",
        table(["step", "p50 ms", "p99 ms"], rows),
    ])
