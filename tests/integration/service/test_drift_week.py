"""A week of traffic in which one feature's distribution shifts on day 4: the drift API and
the dashboard's drift panel flag that feature at the act level from day 4 on, and no stable
feature reaches the watch level on any day.

Each day is a thousand fresh applicants of the synthetic world the shipped model was trained
on, decided by the service's own engine and counted into the roll-up as the service counts
a decision (:func:`service.usecases.monitoring.cells.decision_cells`, merged as a batch is), at a
time
of that day; from day 4 on, every applicant has three more credit inquiries in the last
three months.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from datasources.stub.world import generate, population_ids
from scoring.online.features import features_for_frame
from service.usecases.monitoring.cells import Cells, decision_cells, merge
from service.usecases.monitoring.rollup import Rollup
from tests.integration.service.conftest import Client

SHIFTED = "cr_inquiries_3m"
PER_DAY = 1000


def day_of_traffic(client: Client, day: int, shifted: bool) -> Cells:
    wired = client.app.extensions["flashloan"]
    engine = wired.engine
    history = pd_frame(day)
    features = features_for_frame(history)
    if shifted:
        features[SHIFTED] = features[SHIFTED] + 3
    matrix = features[list(engine.model.spec.names)].to_numpy(dtype=float)
    decisions = engine.decide(matrix, age=history["age"].to_numpy(),
                              purpose=history["purpose"].to_numpy(),
                              term_months=history["term_months"].to_numpy())
    merged: Cells = {}
    for i in range(len(history)):
        payload = {**decisions.record(i), "sources": {}, "decided_ms": 1.0}
        merge(merged, decision_cells(payload, groups=None, durations_ms={},
                                     opened_breakers=(), references=wired.flow.references))
    return merged


def pd_frame(day: int) -> pd.DataFrame:
    return pd.DataFrame(generate(population_ids(PER_DAY, 1000 + day)))


def test_a_shift_on_day_four_is_flagged_from_day_four(client: Client):
    wired = client.app.extensions["flashloan"]
    first = (datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
             - timedelta(days=7))
    rollup = Rollup()
    for day in range(1, 8):
        cells = day_of_traffic(client, day, shifted=day >= 4)
        with wired.store.engine.begin() as conn:
            rollup.add(conn, cells, first + timedelta(days=day - 1, hours=12))

    for day in range(1, 8):
        end = first + timedelta(days=day) - timedelta(seconds=1)
        response = client.get("/v1/monitoring/drift", who="risk_officer",
                              query_string={"window": "day", "end": end.isoformat()})
        assert response.status_code == 200
        (model,) = response.get_json()["models"]
        assert model["decisions"] == PER_DAY
        by_feature = {f["feature"]: f for f in model["features"]}
        others = {name: f["psi"] for name, f in by_feature.items() if name != SHIFTED}
        assert max(others.values()) < 0.1, (day, sorted(others.items(), key=lambda i: -i[1])[:3])
        if day >= 4:
            assert by_feature[SHIFTED]["psi"] >= 0.25 and by_feature[SHIFTED]["level"] == "act"
            assert model["moved_most"] == [SHIFTED]
        else:
            assert by_feature[SHIFTED]["level"] == "stable", (day, by_feature[SHIFTED])
            assert model["moved_most"] == []

        # The dashboard's drift panel reads the same figures.
        monitoring = wired.monitoring
        panel = monitoring.dashboard(monitoring.window("day", end=end), with_fairness=False)
        (shown,) = panel["drift"]["models"]
        assert shown["features"] == model["features"]

    # Over the whole week, the shift is still flagged.
    week = client.get("/v1/monitoring/drift", who="auditor", query_string={
        "window": "7d", "end": (first + timedelta(days=7, seconds=-1)).isoformat()})
    (model,) = week.get_json()["models"]
    assert model["decisions"] == 7 * PER_DAY
    assert model["moved_most"][0] == SHIFTED
