"""Decisions during a single-source outage: outcomes and the cost of a fallback model."""

from __future__ import annotations

from collections import Counter

from bench.common import SCOPES, in_process_app, pct, prepare_bodies, table
from datasources.stub.world import population_ids

FAULT = "error:1.0"
OUTCOMES = ("approved", "declined", "deferred")
# The steps of the timeline that the model and the policy take: scoring, policy, reasons.
MODEL_STEPS = ("scored", "policy_applied", "explained")


def decide_everyone(people: list[str], stub_faults: str) -> dict[str, dict]:
    """Decide each applicant once on a fresh app; return each one's answer, by national ID."""
    app, key = in_process_app(stub_faults=stub_faults)
    try:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        answers = {}
        for nid, body in zip(people, prepare_bodies(client, key, people), strict=True):
            r = client.post("/v1/applications", json=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"decision failed: {r.get_json()}")
            answers[nid] = r.get_json()
        return answers
    finally:
        app.extensions["flashloan"].close()


def model_ms(answer: dict) -> float | None:
    """The time the model and policy took for a scored answer; None if it was not scored."""
    steps = {s["step"]: s["ms"] for s in answer["timeline"]}
    if "scored" not in steps:
        return None
    return sum(steps[name] for name in MODEL_STEPS)


def run(quick: bool) -> str:
    n = 60 if quick else 300
    people = population_ids(n, 2024)
    cases = {"every source answers": decide_everyone(people, "")}
    for scope in SCOPES:
        cases[f"{scope} down"] = decide_everyone(people, f"{scope}={FAULT}")
    baseline = cases["every source answers"]
    share_rows, cost_rows = [], []
    for case, answers in cases.items():
        counts = Counter(a["status"] for a in answers.values())
        models = Counter(a["decision"]["model_version"] for a in answers.values()
                         if a["decision"] is not None)
        worse = sum(1 for nid, a in answers.items()
                    if baseline[nid]["status"] == "approved" and a["status"] == "declined")
        share_rows.append([case, *(f"{100 * counts[o] / n:.1f}%" for o in OUTCOMES), worse,
                           ", ".join(sorted(models)) or "none (deferred before scoring)"])
        scored = [ms for ms in map(model_ms, answers.values()) if ms is not None]
        whole = [a["elapsed_ms"] for a in answers.values()]
        cost_rows.append([
            case, len(scored),
            *((f"{pct(scored, 50):.3f}", f"{pct(scored, 99):.3f}") if scored else ("–", "–")),
            f"{pct(whole, 50):.2f}", f"{pct(whole, 99):.2f}"])
    return "\n".join([
        "## Decisions during a single-source outage",
        "",
        f"The same {n} stub-world applicants, each decided once in process (Flask test client, "
        f"SQLite, stub sources with no latency) with every source answering, then on a fresh "
        f"app with each source failing every call (`{FAULT}`: retried, then the breaker opens). "
        "With one income source unknown the model trained without it decides; without the "
        "credit report or the court records the application is deferred. \"approved → "
        "declined\" counts applicants approved with every source and declined in the outage.",
        "",
        table(["case", "approved", "declined", "deferred", "approved → declined",
               "models that decided"], share_rows),
        "",
        "The cost of a decision: the model's steps (scoring with TreeSHAP, policy, reasons) of "
        "each scored application, and the whole decision (consent to audited, the failing "
        "source's retries included). Milliseconds.",
        "",
        table(["case", "scored", "model p50 ms", "model p99 ms", "decision p50 ms",
               "decision p99 ms"], cost_rows),
    ])
