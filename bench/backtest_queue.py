"""Decisions while backtests wait and run: a worker's decision p99 with no backtest queued,
with 20 queued (run one at a time in a process of their own), and, for comparison, with
backtests decided on a thread of the worker itself."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.common import in_process_app, pct, prepare_bodies, table
from datasources.stub.world import population_ids

GOAL = 1.2  # decision p99 with 20 backtests queued, as a multiple of its value with none
QUEUED = 20
CLIENTS = 4  # decisions asked at once, each as soon as the one before is answered


def _decide_for(app, key: str, bodies: list[dict], seconds: float) -> list[float]:
    """Decide ``bodies`` from ``CLIENTS`` threads for ``seconds``; return each decision's
    milliseconds, as the caller waits for it."""
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + seconds
    taken: list[float] = []
    lock = threading.Lock()
    # An applicant applies again under the same consent: a new application each time.
    cursor = itertools.cycle(bodies)

    def client() -> None:
        http = app.test_client()
        while time.monotonic() < deadline:
            with lock:
                body = next(cursor)
            started = time.perf_counter()
            r = http.post("/v1/applications", json=body, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if r.status_code != 201:
                raise RuntimeError(f"decision failed: {r.get_json()}")
            with lock:
                taken.append(elapsed)

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    return taken


def run(quick: bool) -> str:
    from scoring.governance.strategy import Strategy
    from service.usecases.api_keys import create_key
    from service.usecases.backtests.run import Backtest, run_backtest
    from service.web.backtest_report import report_html

    logged = 400 if quick else 2000
    # Short phases, many times over: on a shared machine the speed drifts from minute to
    # minute, and alternating spreads the drift over both kinds of phase alike.
    seconds, rounds = (10.0, 3) if quick else (30.0, 4)
    app, key = in_process_app(backtests_per_requester=QUEUED, backtest_queue_limit=QUEUED)
    wired = app.extensions["flashloan"]
    officer = {"Authorization": "Bearer " + create_key(wired.store.engine, "risk_officer",
                                                       "bench-officer")}
    client = app.test_client()
    bodies = prepare_bodies(client, key, population_ids(logged, 9090))
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(lambda b: app.test_client().post(
            "/v1/applications", json=b, headers={"Authorization": f"Bearer {key}"}), bodies))

    def phase(setup: Callable[[], Callable[[], str]] | None = None) -> tuple[list[float], str]:
        stop = setup() if setup else (lambda: "")
        taken = _decide_for(app, key, bodies, seconds)
        return taken, stop()

    def queue_twenty() -> Callable[[], str]:
        ids = []
        for _ in range(QUEUED):
            r = client.post("/v1/backtests", json={"strategy": "v1/2026.11"}, headers=officer)
            if r.status_code != 202:
                raise RuntimeError(f"backtest refused: {r.get_json()}")
            ids.append(r.get_json()["backtest_id"])

        def cancel_the_rest() -> str:
            """Say how the phase's backtests stood at its end, and cancel those left."""
            seen: dict[str, int] = {}
            # The newest first: the runner is not left to start one about to be cancelled.
            for backtest_id in reversed(ids):
                status = wired.backtests.get(backtest_id)["status"]
                seen[status] = seen.get(status, 0) + 1
                if status in ("queued", "running"):
                    client.delete(f"/v1/backtests/{backtest_id}", headers=officer)
            return ", ".join(f"{n} {status}" for status, n in sorted(seen.items()))

        return cancel_the_rest

    def on_a_thread() -> Callable[[], str]:
        done = threading.Event()
        backtest = Backtest(Strategy.parse("v1/2026.11"))

        def loop() -> None:
            while not done.is_set():
                run_backtest(wired.store, wired.engines, backtest, render=report_html)

        worker = threading.Thread(target=loop, daemon=True)
        worker.start()

        def stop() -> str:
            done.set()
            worker.join()
            return ""

        return stop

    none, queued, seen = [], [], []
    for _ in range(rounds):
        none += phase()[0]
        taken, statuses = phase(queue_twenty)
        queued += taken
        seen.append(statuses)
    none += phase()[0]
    threaded, _ = phase(on_a_thread)
    wired.close()

    baseline = pct(none, 99)
    ratio = pct(queued, 99) / baseline
    rows = [[name, len(v), f"{pct(v, 50):.1f}", f"{pct(v, 99):.1f}",
             f"{pct(v, 99) / baseline:.2f}"]
            for name, v in (("no backtest", none), (f"{QUEUED} backtests queued", queued),
                            ("backtests on a thread of the worker (before the queue)",
                             threaded))]
    verdict = "within" if ratio <= GOAL else "NOT within"
    return "\n".join([
        "## Decisions while backtests wait",
        "",
        f"One worker in process on SQLite (its request threads, as gunicorn's), {logged:,} "
        f"decisions logged, then {CLIENTS} clients each asking a decision as soon as the last "
        f"is answered (stub sources answering at once: the decision is all processor) for "
        f"{seconds:.0f} s per phase, in turn: with no backtest, then with {QUEUED} "
        "backtests of the champion over the whole log requested at the phase's start (the "
        "worker's runner claims them one at a time and runs each in a process of its own; "
        "those left are cancelled at the phase's end, when they stood at "
        f"{'; '.join(seen)}), {rounds} times, and with no backtest once more; then, for "
        "comparison, with backtests decided one after another on a thread of the worker, as "
        "they were before the queue. Milliseconds as the caller waits; the ratio is to the "
        "p99 of the phases without backtests.",
        "",
        table(["", "decisions", "p50 ms", "p99 ms", "p99 ratio"], rows),
        "",
        f"Decision p99 with {QUEUED} backtests queued: {ratio:.2f}× its value with none — "
        f"{verdict} the {GOAL}× goal.",
    ])
