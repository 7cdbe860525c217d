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
    ROOT,
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


# One load for both servers: the setting the reference was first measured with.
LOAD = ("-t1", "-c8")
# The reference's fastest gunicorn setting on this machine; like production, without the
# control socket that every gunicorn of the user would otherwise share in $HOME.
REFERENCE_OPTIONS = ("--worker-class", "sync", "--workers", "2", "--no-control-socket")
# Measured once (2026-11-29, this 2-core machine near idle): two rounds of 15 s under LOAD,
# alternating the two.
SYNC_AGAINST_GTHREAD = ("measured once under this load: 913-1230 requests/s with 2 sync "
                        "workers against 693-705 with 2 gthread workers × 8 threads")


def wrk(url: str, script: Path, seconds: int) -> dict:
    """Run wrk; return requests per second, latency percentiles and errors."""
    out = subprocess.run(["wrk", *LOAD, f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout

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
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:  # "connect 0, read 1, write 0, timeout 0"
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {"rps": rps, "p50": latency("50"), "p99": latency("99"), "requests": total,
            "errors": errors}


def measured_load(server: Server, script: Path, seconds: int) -> dict:
    """Run wrk against ``server``; add the server's CPU milliseconds per request to its result.

    The CPU time is the master's and its workers' (user + system) across the run; wrk's own
    is not counted.
    """
    cpu_before = server.cpu_seconds()
    result = wrk(f"http://127.0.0.1:{server.port}", script, seconds)
    cpu_s = server.cpu_seconds() - cpu_before
    result["cpu_ms"] = 1000 * cpu_s / result["requests"] if result["requests"] else float("nan")
    result["ready_s"] = server.ready_s
    result["rss_mb"] = server.worker_rss_mb()
    return result


def _service_run(database_url: str, seconds: int, people: int) -> dict:
    from service.persistence.migrations import upgrade

    folder = Path(tempfile.mkdtemp(prefix="flashloan-bench-"))
    upgrade(database_url)
    port = free_port()
    env = {"FLASHLOAN_VAR_DIR": str(folder), "FLASHLOAN_DATABASE_URL": database_url,
           "FLASHLOAN_RATE_LIMIT": "100000000/minute", "FLASHLOAN_ENV": "development",
           "FLASHLOAN_WORKERS": "2"}
    # Production's gunicorn settings as they stand; only the address and the access log differ.
    argv = gunicorn_argv("service.web.wsgi:app", port,
                         "--config", str(ROOT / "service" / "web" / "gunicorn_conf.py"))
    with Server(argv, env, port, "/readyz") as server:
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
        result = measured_load(server, script, seconds)
    shutil.rmtree(folder, ignore_errors=True)
    return result


def reference_run(seconds: int, options: tuple[str, ...] = REFERENCE_OPTIONS) -> dict:
    """Load the reference app under gunicorn with ``options``."""
    from datasources.stub.world import generate, records_at
    from scoring.online.features import features_for_application

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
    with Server(gunicorn_argv("bench.reference_app:app", port, *options), {}, port,
                None) as server:
        result = measured_load(server, script, seconds)
    shutil.rmtree(folder, ignore_errors=True)
    return result


GOAL = 0.35  # full decisions on SQLite, as a share of the reference's throughput
AIM = 1.0  # where the goal is headed


def _verdict(runs: dict[str, dict], reference_rps: float) -> str:
    ratio = runs["SQLite"]["rps"] / reference_rps
    errors = sum(r["errors"] for r in runs.values())
    met = ratio >= GOAL and errors == 0
    beside = "".join(f" {name}: {r['rps'] / reference_rps:.2f}×." for name, r in runs.items()
                     if name != "SQLite")
    return (f"Full decisions on SQLite: {ratio:.2f}× the reference's throughput, "
            f"{errors} errors (goal: at least {GOAL}× with no errors; the aim stays {AIM}×) — "
            f"{'met' if met else 'not met'}.{beside}")


def _row(name: str, r: dict, ratio: str) -> list[object]:
    return [name, f"{r['rps']:.0f}", f"{r['p50']:.1f}", f"{r['p99']:.1f}", r["errors"], ratio,
            f"{r['cpu_ms']:.2f}"]


def run(quick: bool) -> str:
    if shutil.which("wrk") is None:
        return "## 2-3. HTTP load\n\nSkipped: `wrk` is not installed (`apt-get install wrk`)."
    seconds = 5 if quick else 15
    people = 100 if quick else 300
    # The reference runs before and after the service, and the ratio is taken to the mean of
    # the two: on a shared 2-core machine the speed drifts from minute to minute.
    before = reference_run(seconds)
    runs = {"SQLite": _service_run(f"sqlite:///{tempfile.mkdtemp()}/bench.db", seconds, people)}
    if postgres_problem() is None:
        with fresh_postgres_schema(prefix="bench") as url:
            runs["PostgreSQL"] = _service_run(url, seconds, people)
    after = reference_run(seconds)
    reference_rps = (before["rps"] + after["rps"]) / 2
    rows = [_row(f"reference (model only), {when}", r, f"{r['rps'] / reference_rps:.2f}")
            for when, r in (("before", before), ("after", after))]
    rows += [_row(f"full decision, {name}", r, f"**{r['rps'] / reference_rps:.2f}**")
             for name, r in runs.items()]
    memory = [[name, ", ".join(f"{m:.0f}" for m in r["rss_mb"]), f"{r['ready_s']:.1f}"]
              for name, r in {"reference": after, **runs}.items()]
    return "\n".join([
        "## 2-3. HTTP load: full decisions against the reference app",
        "",
        f"`wrk {' '.join(LOAD)} -d{seconds}s` on this machine against each server in turn. "
        "The reference runs under gunicorn with 2 sync workers, its fastest setting here "
        f"({SYNC_AGAINST_GTHREAD}); the service under its production settings, "
        "`service/web/gunicorn_conf.py` as it stands (gthread, `FLASHLOAN_WORKERS=2`, its default "
        "threads per worker), with only the address and the access log overridden. "
        "The service decides each request in full "
        "(validation, consent, five zero-latency stub sources, features, policy, score, SHAP, "
        "reasons, audit); the reference only computes the margin and `pred_contribs` of a "
        "posted feature vector with the same `model.json`. Ratios are to the mean of the "
        "reference's two runs, one before and one after the service's. Errors are non-2xx "
        "answers and socket errors. CPU per request is the user and system time of the "
        "server's gunicorn master and workers over the run, divided by the requests wrk made "
        "(wrk's own time is not counted, nor PostgreSQL's server processes).",
        "",
        table(["server", "requests/s", "p50 ms", "p99 ms", "errors", "ratio to reference",
               "CPU ms per request"], rows),
        "",
        _verdict(runs, reference_rps),
        "",
        "## 7. Memory per worker and time to ready",
        "",
        table(["server", "worker RSS after load (MB)", "start to ready (s)"], memory),
    ])
