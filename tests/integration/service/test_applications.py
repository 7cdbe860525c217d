"""Applications over HTTP: the whole flow on a real database with stub sources."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from audit import AuditQuery
from datasources import SCOPES
from service.persistence.tables import applications
from tests.databases import unavailable


def records(client, **filters):
    return list(client.app.extensions["flashloan"].store.iter_records(AuditQuery(**filters)))


def kinds_besides_keys(client) -> list[str]:
    """The kinds of the records, less the fixture's keys (recorded as they were made)."""
    return [rec.kind for rec in records(client) if not rec.kind.startswith("key.")]


def count_applications(client) -> int:
    with client.app.extensions["flashloan"].store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(applications)).scalar_one()


def test_an_application_is_decided_explained_and_audited(any_db_client, people):
    r = any_db_client.apply(people[0])
    assert r.status_code == 201, r.get_json()
    answer = r.get_json()
    assert answer["status"] in ("approved", "declined")
    decision = answer["decision"]
    assert decision["model_version"] == "v1" and decision["policy_version"] == "2026.11"
    # The reasons answered are the ones recorded, at most four, and there is at least one.
    made = records(any_db_client, application_id=answer["application_id"],
                   kinds=("decision.made",))[0].payload
    assert [r["code"] for r in decision["reasons"]] == made["reason_codes"]
    assert made["reason_codes"] and len(made["reason_codes"]) <= 4
    assert [s["step"] for s in answer["timeline"]] == [
        "received", "consent_checked", "sources_gathered", "features_built", "scored",
        "policy_applied", "explained", "recourse_sought", "audited"]
    assert answer["elapsed_ms"] >= sum(s["ms"] for s in answer["timeline"]) - 1
    aid = answer["application_id"]
    assert any_db_client.get(f"/v1/applications/{aid}").get_json() == answer
    # One record per decision: the application, every source's outcome and the decision.
    (only,) = records(any_db_client, application_id=aid)
    assert only.kind == "decision.made" and only.payload == made
    assert {k: made["facts"][k] for k in ("amount", "term_months", "purpose")} == {
        "amount": 20000, "term_months": 12, "purpose": "travel"}
    assert made["facts"]["age"] >= 18 and made["channel"] == "bank-app"
    assert set(made["sources"]) == {"provident_fund", "social_security", "income_tax",
                                    "credit_report", "court_records"}
    for outcome in made["sources"].values():
        assert outcome["status"] == "ok" and outcome["attempts"] == 1
        assert len(outcome["answer_digest"]) == 64
        assert outcome["consent_id"] == made["consent_id"]
        assert outcome["consent_digest"] == made["consent_digest"]
    # Every fact the policy read is recorded, not only the model's features.
    spec = any_db_client.app.extensions["flashloan"].engine.model.spec
    assert sorted(made["features"]) == sorted(spec.names)
    store = any_db_client.app.extensions["flashloan"].store
    assert store.verify().ok


def test_the_explanation_is_what_was_recorded_and_adds_up(client, people):
    aid = client.apply(people[2]).get_json()["application_id"]
    e = client.get(f"/v1/applications/{aid}/explanation", who="risk_officer").get_json()
    total = e["base_value"] + sum(f["contribution"] for f in e["features"])
    assert total == pytest.approx(e["margin"], abs=1e-4)
    made = records(client, application_id=aid, kinds=("decision.made",))[0].payload
    assert made["contributions"] == {f["name"]: f["contribution"] for f in e["features"]}
    assert {f["name"]: f["value"] for f in e["features"]}.items() <= made["features"].items()
    assert e["model_sha256"] == made["model_sha256"]


def test_the_audit_holds_no_personal_data_in_clear(client, people):
    aid = client.apply(people[3]).get_json()["application_id"]
    text = " ".join(str(r.payload) for r in records(client, application_id=aid))
    assert people[3] not in text and "张三" not in text and "13812348000" not in text
    assert "张*" in text and "138****8000" in text


def test_a_consent_that_misses_scopes_is_refused_before_any_query(client, people):
    consent = client.consent(people[4], scopes=["credit_report", "court_records"])
    r = client.post("/v1/applications", client.application(people[4], consent["consent_id"]))
    assert r.status_code == 422
    error = r.get_json()["error"]
    assert error["code"] == "consent_insufficient"
    for scope in ("provident_fund", "social_security", "income_tax"):
        assert scope in error["message"]
    assert records(client, kinds=("decision.made",)) == []
    assert count_applications(client) == 0


def test_a_consent_of_another_applicant_is_refused(client, people):
    consent = client.consent(people[5])
    r = client.post("/v1/applications", client.application(people[6], consent["consent_id"]))
    assert r.status_code == 422
    assert r.get_json()["error"]["fields"]["consent_id"] == [
        "consent belongs to another applicant"]


def test_another_channels_consent_is_not_found(client, people):
    consent = client.consent(people[7])
    r = client.post("/v1/applications", client.application(people[7], consent["consent_id"]),
                    who="other_channel")
    assert r.status_code == 422 and "consent_id" in r.get_json()["error"]["fields"]


def test_a_failing_source_defers_without_an_adverse_record(make_client, people):
    client = make_client(stub_faults="credit_report=error:1.0")
    r = client.apply(people[8])
    assert r.status_code == 201
    answer = r.get_json()
    assert answer["status"] == "deferred" and answer["decision"] is None
    assert answer["missing_sources"] == ["credit_report"]
    aid = answer["application_id"]
    made = records(client, application_id=aid, kinds=("decision.made",))[0].payload
    assert made["outcome"] == "deferred" and "reason_codes" not in made
    r = client.get(f"/v1/applications/{aid}/explanation", who="risk_officer")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_scored"
    notice = client.get(f"/v1/applications/{aid}/notice").get_json()
    assert notice["status"] == "deferred" and notice["reasons"] == []


@pytest.mark.parametrize(("change", "field"), [
    ({"request": {"amount": -5, "term_months": 12, "purpose": "travel"}}, "request.amount"),
    ({"request": {"amount": 5000, "term_months": 12.5, "purpose": "travel"}},
     "request.term_months"),
    ({"request": {"amount": 5000, "term_months": 12, "purpose": "gambling"}},
     "request.purpose"),
    ({"applicant": {"national_id": "110105194912310021", "name": "张三",
                    "mobile": "13812348000"}}, "applicant.national_id"),
    ({"applicant": {"national_id": "11010519491231002X", "name": "张三", "mobile": "12345"}},
     "applicant.mobile"),
    ({"consent_id": ""}, "consent_id"),
    ({"surprise": True}, "surprise"),
])
def test_bad_applications_name_the_field_and_leave_nothing(client, people, change, field):
    consent = client.consent(people[9])
    body = {**client.application(people[9], consent["consent_id"]), **change}
    r = client.post("/v1/applications", body)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]
    assert count_applications(client) == 0
    assert kinds_besides_keys(client) == ["consent.recorded"]


# What a front-end may get wrong, as a change to the request given the policy in force, with
# the field that must be named and what its message must offer instead.
OUTSIDE_THE_PRODUCT = {
    "amount as a string": lambda p: ({"amount": "30000"}, "request.amount", ["number"]),
    "amount as a boolean": lambda p: ({"amount": True}, "request.amount", ["number"]),
    "amount above the range": lambda p: ({"amount": p.amount_range[1] + 1}, "request.amount",
                                         [f"{v:g}" for v in p.amount_range]),
    "amount below the range": lambda p: ({"amount": p.amount_range[0] - 0.01},
                                         "request.amount", [f"{v:g}" for v in p.amount_range]),
    "term not offered": lambda p: ({"term_months": 7}, "request.term_months",
                                   [str(t) for t in p.terms_months]),
    "term as a string": lambda p: ({"term_months": "12"}, "request.term_months", ["integer"]),
}


@pytest.mark.parametrize("case", sorted(OUTSIDE_THE_PRODUCT))
def test_requests_outside_the_product_are_refused_and_leave_nothing(client, people, case):
    policy = client.app.extensions["flashloan"].engine.policy
    change, field, offered = OUTSIDE_THE_PRODUCT[case](policy)
    assert change.get("term_months") not in policy.terms_months
    consent = client.consent(people[9])
    body = client.application(people[9], consent["consent_id"], **change)
    r = client.post("/v1/applications", body, headers={"Idempotency-Key": "front-end-bug"})
    assert r.status_code == 422, r.get_json()
    error = r.get_json()["error"]
    assert list(error["fields"]) == [field], error
    message = " ".join(error["fields"][field])
    assert all(value in message for value in offered), (message, offered)
    # No decision, no audit record of one, and the key is free for the corrected request.
    assert count_applications(client) == 0
    assert kinds_besides_keys(client) == ["consent.recorded"]
    fixed = client.application(people[9], consent["consent_id"])
    r = client.post("/v1/applications", fixed, headers={"Idempotency-Key": "front-end-bug"})
    assert r.status_code == 201, r.get_json()


def test_the_ends_of_the_range_and_every_offered_term_are_decided(client, people):
    policy = client.app.extensions["flashloan"].engine.policy
    low, high = policy.amount_range
    requests = [{"amount": low, "term_months": policy.terms_months[0]},
                {"amount": int(high), "term_months": policy.terms_months[-1]},
                *({"term_months": t} for t in policy.terms_months[1:-1])]
    for nid, request in zip(people[30:], requests, strict=False):
        r = client.apply(nid, **request)
        assert r.status_code == 201, (request, r.get_json())
        codes = [reason["code"] for reason in r.get_json()["decision"]["reasons"]]
        assert policy.rule("term").code not in codes


def test_the_range_and_terms_come_from_the_policy_in_force(make_client, people, tmp_path):
    import json

    from scoring.online.policy import REGULATORY_MAX_LINE, load_policy

    doc = json.loads(json.dumps(load_policy().doc))
    doc.update(version="test-narrow", terms_months=[6, 12])
    doc["limit"].update(min_line=5000, max_line=50_000)
    assert doc["limit"]["max_line"] < REGULATORY_MAX_LINE
    path = tmp_path / "narrow.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    client = make_client(policy=str(path))

    spec = client.get("/openapi.json", who=None).get_json()
    properties = spec["components"]["schemas"]["LoanRequestIn"]["properties"]
    assert properties["amount"]["type"] == "number"
    assert (properties["amount"]["minimum"], properties["amount"]["maximum"]) == (5000, 50_000)
    assert properties["term_months"]["type"] == "integer"
    assert properties["term_months"]["enum"] == [6, 12]

    consent = client.consent(people[39])
    for change, field in (({"term_months": 3}, "request.term_months"),
                          ({"amount": 4999}, "request.amount"),
                          ({"amount": 50_001}, "request.amount")):
        r = client.post("/v1/applications",
                        client.application(people[39], consent["consent_id"], **change))
        assert r.status_code == 422 and list(r.get_json()["error"]["fields"]) == [field]
    r = client.post("/v1/applications", client.application(
        people[39], consent["consent_id"], amount=50_000, term_months=6))
    assert r.status_code == 201, r.get_json()


def test_the_shipped_policy_bounds_are_documented(client):
    policy = client.app.extensions["flashloan"].engine.policy
    spec = client.get("/openapi.json", who=None).get_json()
    properties = spec["components"]["schemas"]["LoanRequestIn"]["properties"]
    assert [properties["amount"]["minimum"], properties["amount"]["maximum"]] == list(
        policy.amount_range)
    assert properties["term_months"]["enum"] == list(policy.terms_months)


def test_a_body_that_is_not_json_is_415_and_a_huge_one_413(client):
    r = client.http.post("/v1/applications", data="a=1",
                         headers={**client.headers("channel"),
                                  "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.get_json()["error"]["code"] == "unsupported_media_type"
    r = client.http.post("/v1/applications", data="{" + " " * 200_000 + "}",
                         headers={**client.headers("channel"),
                                  "Content-Type": "application/json"})
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large"
    r = client.http.post("/v1/applications", data="{not json",
                         headers={**client.headers("channel"),
                                  "Content-Type": "application/json"})
    assert r.status_code == 400 and "error" in r.get_json()


def test_a_retry_with_the_same_key_returns_the_first_answer(client, people):
    consent = client.consent(people[10])
    body = client.application(people[10], consent["consent_id"])
    first = client.post("/v1/applications", body, headers={"Idempotency-Key": "retry-1"})
    again = client.post("/v1/applications", body, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert count_applications(client) == 1
    other = {**body, "request": {**body["request"], "amount": 30000}}
    conflict = client.post("/v1/applications", other, headers={"Idempotency-Key": "retry-1"})
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "conflict"
    assert client.post("/v1/applications", body,
                       headers={"Idempotency-Key": "bad key"}).status_code == 422


def test_the_svg_waterfall_is_a_readable_chart(client, people):
    aid = client.apply(people[11]).get_json()["application_id"]
    r = client.get(f"/v1/applications/{aid}/explanation.svg", who="auditor")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    from xml.etree import ElementTree

    root = ElementTree.fromstring(r.data)
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    # Score points by default, ending at the application's score.
    assert any("base value" in t for t in texts) and any("score before rounding" in t
                                                         for t in texts)
    assert any("score points" in t for t in texts)
    assert any(aid in t for t in texts)
    r = client.get(f"/v1/applications/{aid}/explanation.svg?units=log_odds", who="auditor")
    texts = [t.text or "" for t in ElementTree.fromstring(r.data).iter(
        "{http://www.w3.org/2000/svg}text")]
    assert any("margin" in t for t in texts) and any("log-odds" in t for t in texts)
    r = client.get(f"/v1/applications/{aid}/explanation.svg?units=logit", who="auditor")
    assert r.status_code == 422 and "units" in r.get_json()["error"]["fields"]


def test_the_notice_speaks_to_the_applicant(client, people):
    for nid in people[12:20]:
        answer = client.apply(nid).get_json()
        notice = client.get(f"/v1/applications/{answer['application_id']}/notice").get_json()
        assert notice["status"] == answer["status"]
        assert "第二十四条" in notice["right_to_review"]["zh"]
        assert "Article 24" in notice["right_to_review"]["en"]
        if answer["status"] == "declined":
            assert notice["reasons"] == answer["decision"]["reasons"]
            assert notice["what_you_can_do"] or all(
                r["code"].startswith("K") for r in notice["reasons"])


def test_models_are_listed_with_their_cards(client):
    listed = client.get("/v1/models", who="risk_officer").get_json()["items"]
    assert [m["version"] for m in listed if m["active"]] == ["v1"]
    card = client.get("/v1/models/v1", who="auditor").get_json()
    assert card["card"]["model_sha256"] and card["active"] is True
    assert client.get("/v1/models/nope", who="auditor").status_code == 404


def test_readiness_and_metrics(client, people):
    assert client.get("/healthz", who=None).get_json()["status"] == "ok"
    assert client.get("/readyz", who=None).get_json()["checks"]["database"] == "ok"
    client.apply(people[21])
    text = client.get("/metrics", who="admin").get_data(as_text=True)
    assert "flashloan_decisions_total" in text and "flashloan_source_seconds" in text
    assert client.get("/metrics", who="channel").status_code == 403


def test_every_source_is_gathered_under_the_consent(client, people):
    aid = client.apply(people[22]).get_json()["application_id"]
    (made,) = records(client, application_id=aid, kinds=("decision.made",))
    fetched = made.payload["sources"]
    assert sorted(fetched) == sorted(SCOPES)
    consent_ids = {s["consent_id"] for s in fetched.values()}
    assert len(consent_ids) == 1 and None not in consent_ids
    assert all(len(s["answer_digest"]) == 64 for s in fetched.values())
    assert np.isfinite([s["latency_ms"] for s in fetched.values()]).all()


def test_rate_limits_count_per_key(make_client):
    client = make_client(rate_limit="3/minute")
    codes = [client.get("/v1/consents/c_none").status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    r = client.get("/v1/consents/c_none")
    assert r.get_json()["error"]["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) > 0
    # Another key has its own allowance.
    assert client.get("/v1/consents/c_none", who="other_channel").status_code == 404


def test_rate_limits_can_live_in_redis(make_client):
    """Several workers or hosts share one allowance per key when Redis is configured."""
    import redis

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {url} is not reachable: {exc}")
    first = make_client(redis_url=url, rate_limit="3/minute")
    codes = [first.get("/v1/consents/c_none").status_code for _ in range(2)]
    # A second app (another worker) on the same database and Redis shares the count.
    second = make_client(redis_url=url, rate_limit="3/minute")
    second.keys = first.keys
    codes += [second.get("/v1/consents/c_none").status_code for _ in range(2)]
    assert codes == [404, 404, 404, 429]


def test_the_answer_is_sent_in_the_shape_of_its_schema(make_client, people):
    """The decision is answered as built, without a dump: it must already be what
    ApplicationOut would make of it, to the value types (26000.0, not 26000)."""
    import json

    from service.web.schemas import ApplicationOut

    def canonical(value) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)

    client = make_client()
    deferring = make_client(stub_faults="credit_report=error:1.0")
    answered = [(client, client.apply(nid).get_json()) for nid in people[:16]]
    answered.append((deferring, deferring.apply(people[16]).get_json()))
    assert {a["status"] for _, a in answered} == {"approved", "declined", "deferred"}
    for by, answer in answered:
        assert canonical(ApplicationOut().dump(answer)) == canonical(answer)
        # Read back later, through the schema, it is the same to the byte of each value.
        read = by.get(f"/v1/applications/{answer['application_id']}").get_json()
        assert canonical(read) == canonical(answer)
