"""Recourse: what finding and verifying "what would get you approved" adds to a decision."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from bench.common import pct, table
from datasources.stub.world import generate, population_ids
from scoring.online.engine import DecisionEngine
from scoring.online.features import features_for_frame
from scoring.online.model import load_fallbacks, load_model
from scoring.online.policy import load_policy
from scoring.recourse import CHANGEABLE, FIXED_RULES, Recourse


def run(quick: bool) -> str:
    model = load_model()
    policy = load_policy()
    engine = DecisionEngine(model, policy, load_fallbacks(
        model, ("provident_fund", "social_security", "income_tax")))
    # Bounded as the service bounds it: the reference's 1st and 99th percentiles.
    recourse = Recourse(engine, model.reference.bounds(sorted(CHANGEABLE)))
    n = 3000 if quick else 20_000
    people = pd.DataFrame(generate(population_ids(n, 2024)))
    x = features_for_frame(people).to_numpy()
    amount = people["amount"].to_numpy(dtype=float)
    age, purpose = people["age"].to_numpy(), people["purpose"].to_numpy()
    term = people["term_months"].to_numpy()
    low, high = policy.amount_range
    groups: dict[str, dict[str, list]] = {name: {"ms": [], "offered": []} for name in (
        "declined, actionable reasons", "declined, a knock-out the applicant cannot change",
        "approved below the amount asked")}
    decide_ms: list[float] = []
    for i in np.flatnonzero((amount >= low) & (amount <= high)):
        # One application at a time, as the service decides them.
        started = time.perf_counter()
        decisions = engine.decide(x[i:i + 1], age=age[i], purpose=purpose[i],
                                  term_months=term[i])
        decide_ms.append((time.perf_counter() - started) * 1000)
        outcome, fired = decisions.policy.outcome[0], decisions.policy.rules_fired[0]
        if outcome == "declined":
            group = ("declined, a knock-out the applicant cannot change"
                     if FIXED_RULES & set(fired) else "declined, actionable reasons")
        elif outcome == "approved" and decisions.policy.credit_limit[0] < amount[i]:
            group = "approved below the amount asked"
        else:
            continue
        started = time.perf_counter()
        result = recourse.suggest(decisions, 0, amount=float(amount[i]))
        found = groups[group]
        found["ms"].append((time.perf_counter() - started) * 1000)
        found["offered"].append(result.status == "offered")
    declines = [g for name, g in groups.items() if name.startswith("declined")]
    groups["**every decline**"] = {key: [v for g in declines for v in g[key]]
                                   for key in ("ms", "offered")}
    rows = [[name, len(g["ms"]), f"{100 * np.mean(g['offered']):.1f}%",
             f"{pct(g['ms'], 50):.2f}", f"{pct(g['ms'], 95):.2f}", f"{pct(g['ms'], 99):.2f}",
             f"{max(g['ms']):.2f}"] for name, g in groups.items()]
    return "\n".join([
        "## Recourse: what would get the applicant approved",
        "",
        f"{n:,} fresh synthetic applicants (seed 2024), those whose amount is within the "
        f"product's range, each decided alone by the shipped engine; for each decline and each "
        f"approval below the amount asked, `Recourse.suggest` is timed on its decision (the "
        f"search through the model and policy in batches, then the full engine's "
        f"verification). Bounds, as the service takes them: the 1st/99th percentiles of the "
        f"training split, from the model's reference. One thread; times in milliseconds. A "
        f"decision alone takes p50 {pct(decide_ms, 50):.2f} ms, p99 "
        f"{pct(decide_ms, 99):.2f} ms.",
        "",
        table(["decisions", "n", "with suggestions", "added p50 ms", "p95 ms", "p99 ms",
               "max ms"], rows),
    ])
