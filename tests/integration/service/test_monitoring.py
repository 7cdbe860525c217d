"""The live book over HTTP: what the dashboard, drift and fairness reads count is exactly what
was decided through the API, a source outage shows in availability and deferrals, and a
decision that was not recorded is not counted."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from datasources.identity import parse_national_id
from service.persistence.committer import GroupCommitter
from service.persistence.tables import monitoring_cells
from service.usecases.monitoring.groups import groups_of
from service.usecases.monitoring.rollup import Rollup
from tests.databases import migrate
from tests.integration.service.conftest import Client


def monitoring(client: Client):
    return client.app.extensions["flashloan"].monitoring


def dashboard(client: Client, window: str = "day") -> dict:
    m = monitoring(client)
    return m.dashboard(m.window(window), with_fairness=True)


def test_every_panel_counts_what_the_api_decided(any_db_client: Client, people: list[str]):
    answers = [any_db_client.apply(nid).get_json() for nid in people[:16]]
    statuses = Counter(a["status"] for a in answers)
    assert statuses["approved"] and statuses["declined"], statuses
    view = dashboard(any_db_client)

    volume = view["volume"]
    assert (volume["applications"], volume["approved"], volume["declined"],
            volume["deferred"]) == (16, statuses["approved"], statuses["declined"],
                                    statuses["deferred"])
    assert volume["approval_rate"] == pytest.approx(statuses["approved"] / 16)
    approved = [a["decision"] for a in answers if a["status"] == "approved"]
    assert volume["amount_approved"] == pytest.approx(sum(d["credit_limit"] for d in approved))
    assert {g["grade"]: g["count"] for g in view["grades"]} == Counter(
        d["grade"] for d in approved)
    assert sum(p["applications"] for p in view["series"]) == 16
    assert len(view["series"]) == 25

    declined_codes = Counter(r["code"] for a in answers if a["status"] == "declined"
                             for r in a["decision"]["reasons"])
    assert {r["code"]: r["count"] for r in view["reasons"]} == dict(
        declined_codes.most_common(10))
    assert all(r["text_en"] != r["code"] for r in view["reasons"])

    assert {s["source"] for s in view["sources"]} == {
        "provident_fund", "social_security", "income_tax", "credit_report", "court_records"}
    for source in view["sources"]:
        assert (source["calls"], source["availability"], source["errors"]) == (16, 1.0, {})
        assert 0 < source["p50_ms"] <= source["p99_ms"]
    latency = view["latency"]
    assert latency["decisions"] == 16 and 0 < latency["p50_ms"] <= latency["p99_ms"]
    assert latency["slowest_step"] == latency["steps"][0]["step"]
    assert {s["step"] for s in latency["steps"]} >= {"sources_gathered", "scored", "audited"}

    (model,) = view["drift"]["models"]
    assert (model["model_version"], model["decisions"]) == ("v1", 16)
    assert {b["count"] for b in model["score"]["bins"]} and sum(
        b["count"] for b in model["score"]["bins"]) == 16
    # Sixteen decisions are too few to judge a population by.
    assert {f["level"] for f in model["features"]} == {"too_few"}

    # Fairness is counted by day: over the last 24 hours the page points to 7 or 30 days.
    assert view["fairness"] is None
    week = dashboard(any_db_client, "7d")["fairness"]
    (sex,) = [d for d in week["dimensions"] if d["dimension"] == "sex"]
    sexes = Counter(groups_of(parse_national_id(n), 30).sex for n in people[:16])
    assert {g["group"] for g in sex["groups"]} == set(sexes)
    # Sixteen applicants make no group large enough to judge: each is named, figures withheld.
    assert {(g["too_few"], g["applications"], g["approval_rate"])
            for g in sex["groups"]} == {(True, None, None)}
    store = any_db_client.app.extensions["flashloan"].store
    with store.engine.connect() as conn:
        grains = {r.grain for r in conn.execute(select(monitoring_cells.c.grain).where(
            monitoring_cells.c.metric.in_(("fair", "fair_pd"))))}
        counted: Counter[str] = Counter()
        for key, n in conn.execute(select(monitoring_cells.c.key, monitoring_cells.c.n).where(
                monitoring_cells.c.metric == "fair", monitoring_cells.c.key.like("sex|%"))):
            counted[key.split("|")[1]] += n
    assert grains == {"day"}, "an applicant's groups are counted by day only"
    assert counted == sexes


def test_a_source_outage_shows_in_availability_breakers_and_deferrals(make_client, people):
    client = make_client(stub_faults="provident_fund=error:1.0,social_security=error:1.0")
    answers = [client.apply(nid).get_json() for nid in people[:8]]
    assert {a["status"] for a in answers} == {"deferred"}
    view = dashboard(client, "hour")
    assert view["volume"]["deferral_rate"] == 1.0
    by_source = {s["source"]: s for s in view["sources"]}
    for scope in ("provident_fund", "social_security"):
        assert by_source[scope]["availability"] == 0.0
        assert set(by_source[scope]["errors"]) <= {"unavailable", "circuit_open"}
        assert by_source[scope]["breaker_openings"] >= 1
        # Once open, the breaker answers without a call.
        assert by_source[scope]["errors"].get("circuit_open", 0) >= 1
    assert by_source["credit_report"]["availability"] == 1.0
    # Deferred without a model: nothing scored, so nothing in the score or feature bins.
    assert view["drift"]["models"] == []
    assert view["series"][-1]["deferral_rate"] == 1.0


def test_a_decision_not_recorded_is_not_counted(database_url):
    migrate(database_url)
    from audit import AuditStore

    store = AuditStore.from_url(database_url)
    committer = GroupCommitter(store, after_batch=Rollup().add_batch)

    def fails(writer):
        writer.append("decision.made", {"application_id": "a_1"}, application_id="a_1")
        raise RuntimeError("the write failed after the record")

    try:
        with pytest.raises(RuntimeError):
            committer.submit(fails, {("outcome", "approved"): [1, 20000.0]})
        committer.submit(lambda w: w.append("decision.made", {"application_id": "a_2"},
                                            application_id="a_2"),
                         {("outcome", "declined"): [1, 0.0]})
        with store.engine.connect() as conn:
            keys = {(r.grain, r.key, r.n) for r in conn.execute(select(monitoring_cells))}
            assert conn.execute(select(func.count()).select_from(monitoring_cells)
                                ).scalar_one() == 1
        # In the five minutes' bucket, until the next five minutes compact it.
        assert keys == {("5m", "declined", 1)}
    finally:
        committer.close()
        store.dispose()


@pytest.mark.parametrize(("path", "query", "field"), [
    *((path, query, field) for path in ("/v1/monitoring/drift", "/v1/monitoring/fairness")
      for query, field in (("window=week", "window"), ("window=7d&by=5m", "by"),
                           ("end=2026-11-29T10:00:00", "end"), ("end=not-a-time", "end"),
                           ("end=0001-01-01T00:00:00%2B00:00", "end"), ("extra=1", "extra"))),
    ("/v1/monitoring/drift", "window=hour&by=day", "by"),
    ("/v1/monitoring/drift", "window=day&by=5m", "by"),
    # Fairness is counted by day.
    ("/v1/monitoring/fairness", "window=day", "window"),
    ("/v1/monitoring/fairness", "window=hour", "window")])
def test_a_bad_window_is_a_422_naming_its_field(client: Client, path: str, query: str,
                                               field: str):
    response = client.get(f"{path}?{query}", who="auditor")
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]


@pytest.mark.parametrize(("query", "ago"), [
    ({"window": "hour"}, timedelta(hours=4)), ({"window": "day"}, timedelta(days=40)),
    ({"window": "30d", "by": "hour"}, timedelta(days=5))])
def test_a_window_the_roll_up_no_longer_keeps_is_a_422(client: Client, query: dict, ago):
    end = (datetime.now(UTC) - ago).isoformat()
    response = client.get("/v1/monitoring/drift", who="risk_officer",
                          query_string={**query, "end": end})
    assert response.status_code == 422, response.get_json()
    (message,) = response.get_json()["error"]["fields"]["end"]
    assert message.startswith("must leave the window within what the roll-up keeps")
    # Days are kept for good.
    assert client.get("/v1/monitoring/drift", who="risk_officer", query_string={
        "window": "30d", "end": (datetime.now(UTC) - timedelta(days=400)).isoformat()}
    ).status_code == 200


def test_a_window_may_not_end_in_the_future(client: Client):
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = client.get("/v1/monitoring/drift", who="risk_officer",
                          query_string={"end": later})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["end"] == ["must not be in the future"]


def test_who_reads_drift_and_fairness(client: Client):
    for who, drift, fairness in (("risk_officer", 200, 200), ("auditor", 200, 200),
                                 ("admin", 200, 403), ("channel", 403, 403),
                                 ("servicing", 403, 403), (None, 401, 401)):
        assert client.get("/v1/monitoring/drift", who=who).status_code == drift, who
        assert client.get("/v1/monitoring/fairness", who=who).status_code == fairness, who
