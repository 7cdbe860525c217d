"""2, 3 and 7. HTTP load on `flashloan serve` (SQLite, PostgreSQL) against the reference app;
memory per worker and time from start to ready."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import requests

from bench.common import (
    Server,
    application_body,
    consent_body,
    free_port,
    gunicorn_argv,
    table,
)
from datasources.stub.world import population_ids
from tests.databases import fresh_postgres_schema, postgres_problem

_LUA = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "%s", nil, bodies[i])
end
"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def wrk(url: str, script: Path, seconds: int) -> dict:
    """Run wrk; return requests per second, latency percentiles and errors."""
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": latency("50"), "p99": latency("99"), "requests": total,
            "errors": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else "none"}


def _service_run(database_url: str, seconds: int, people: int) -> dict:
    from service.migrations import upgrade

    folder = Path(tempfile.mkdtemp(prefix="flashloan-bench-"))
    upgrade(database_url)
    port = free_port()
    env = {"FLASHLOAN_VAR_DIR": str(folder), "FLASHLOAN_DATABASE_URL": database_url,
           "FLASHLOAN_RATE_LIMIT": "100000000/minute", "FLASHLOAN_ENV": "development"}
    with Server(gunicorn_argv("service.wsgi:app", port, conf=True), env, port,
                "/readyz") as server:
        key = next(line.split()[2] for line in (folder / "dev-keys.txt").read_text().splitlines()
                   if line.startswith("channel "))
        headers = {"Authorization": f"Bearer {key}"}
        bodies = []
        with requests.Session() as http:
            for nid in population_ids(people, 77):
                r = http.post(f"http://127.0.0.1:{port}/v1/consents",
                              json=consent_body(nid, "dev-channel"), headers=headers, timeout=10)
                bodies.append(json.dumps(application_body(nid, r.json()["consent_id"]),
                                         ensure_ascii=False))
            for body in bodies:  # warm both workers' caches
                http.post(f"http://127.0.0.1:{port}/v1/applications", data=body.encode(),
                          headers={**headers, "Content-Type": "application/json"}, timeout=30)
        script = folder / "apply.lua"
        script.write_text(_LUA % (", ".join(_lua_string(b) for b in bodies), key,
                                  "/v1/applications"), encoding="utf-8")
        result = wrk(f"http://127.0.0.1:{port}", script, seconds)
        result["ready_s"] = server.ready_s
        result["rss_mb"] = server.worker_rss_mb()
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _reference_run(seconds: int) -> dict:
    from datasources.stub.world import generate, records_at
    from scoring.features import features_for_application

    ids = population_ids(50, 77)
    cols = generate(ids)
    vectors = []
    for i in range(len(ids)):
        x = features_for_application(records_at(cols, i), 20000, 12)
        vectors.append(json.dumps({"features": [None if v != v else float(v) for v in x]}))
    folder = Path(tempfile.mkdtemp(prefix="flashloan-bench-ref-"))
    script = folder / "score.lua"
    script.write_text(_LUA % (", ".join(_lua_string(v) for v in vectors), "none", "/score"),
                      encoding="utf-8")
    port = free_port()
    argv = gunicorn_argv("bench.reference_app:app", port, conf=False)
    with Server(argv, {}, port, None) as s:
        result = wrk(f"http://127.0.0.1:{port}", script, seconds)
        result["ready_s"] = s.ready_s
        result["rss_mb"] = s.worker_rss_mb()
    shutil.rmtree(folder, ignore_errors=True)
    return result


GOAL = 0.7  # full decisions on SQLite, as a share of the reference's throughput


def _verdict(runs: dict[str, dict], reference_rps: float) -> str:
    ratio = runs["SQLite"]["rps"] / reference_rps
    errors = sum(r["errors"] for r in runs.values())
    met = ratio >= GOAL and errors == 0
    return (f"Full decisions on SQLite: {ratio:.2f}× the reference's throughput, "
            f"{errors} errors (goal: at least {GOAL}× with no errors) — "
            f"{'met' if met else 'not met'}.")


def run(quick: bool) -> str:
    if shutil.which("wrk") is None:
        return "## 2-3. HTTP load\n\nSkipped: `wrk` is not installed (`apt-get install wrk`)."
    seconds = 5 if quick else 15
    people = 100 if quick else 300
    # The reference runs before and after the service, and the ratio is taken to the mean of
    # the two: on a shared 2-core machine the speed drifts from minute to minute.
    before = _reference_run(seconds)
    runs = {"SQLite": _service_run(f"sqlite:///{tempfile.mkdtemp()}/bench.db", seconds, people)}
    if postgres_problem() is None:
        with fresh_postgres_schema(prefix="bench") as url:
            runs["PostgreSQL"] = _service_run(url, seconds, people)
    after = _reference_run(seconds)
    reference_rps = (before["rps"] + after["rps"]) / 2
    rows = [[f"reference (model only), {when}", f"{r['rps']:.0f}", f"{r['p50']:.1f}",
             f"{r['p99']:.1f}", r["errors"], f"{r['rps'] / reference_rps:.2f}"]
            for when, r in (("before", before), ("after", after))]
    for name, r in runs.items():
        rows.append([f"full decision, {name}", f"{r['rps']:.0f}", f"{r['p50']:.1f}",
                     f"{r['p99']:.1f}", r["errors"], f"**{r['rps'] / reference_rps:.2f}**"])
    memory = [[name, ", ".join(f"{m:.0f}" for m in r["rss_mb"]), f"{r['ready_s']:.1f}"]
              for name, r in {"reference": after, **runs}.items()]
    return "\n".join([
        "## 2-3. HTTP load: full decisions against the reference app",
        "",
        f"`wrk -t2 -c16 -d{seconds}s` on this machine against gunicorn with 2 gthread workers "
        "× 8 threads (the same settings for both). The service decides each request in full "
        "(validation, consent, five zero-latency stub sources, features, policy, score, SHAP, "
        "reasons, audit); the reference only computes the margin and `pred_contribs` of a "
        "posted feature vector with the same `model.json`. Ratios are to the mean of the "
        "reference's two runs, one before and one after the service's.",
        "",
        table(["server", "requests/s", "p50 ms", "p99 ms", "errors", "ratio to reference"],
              rows),
        "",
        _verdict(runs, reference_rps),
        "",
        "## 7. Memory per worker and time to ready",
        "",
        table(["server", "worker RSS after load (MB)", "start to ready (s)"], memory),
    ])
