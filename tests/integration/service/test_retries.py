"""Deferred applications decided again, and the notices that tell their applicants the truth."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from audit import AuditQuery
from service.persistence.tables import applications


def records(client, **filters):
    return list(client.app.extensions["flashloan"].store.iter_records(AuditQuery(**filters)))


def stored_row(client, application_id: str):
    with client.app.extensions["flashloan"].store.engine.connect() as conn:
        return conn.execute(select(applications).where(
            applications.c.application_id == application_id)).first()


def applicant(national_id: str) -> dict:
    return {"applicant": {"national_id": national_id, "name": "张三", "mobile": "13812348000"}}


@pytest.fixture
def deferred_then_recovered(make_client, database_url, people):
    """A court-records outage defers an application; a second worker on the same database
    sees the source answer again."""
    failing = make_client(database_url, stub_faults="court_records=error:1.0")
    answer = failing.apply(people[3]).get_json()
    assert answer["status"] == "deferred" and answer["missing_sources"] == ["court_records"]
    return failing, make_client(database_url), answer


def test_a_deferred_application_retried_after_the_source_recovers_is_decided(
        deferred_then_recovered, people):
    _, recovered, first = deferred_then_recovered
    aid = first["application_id"]
    r = recovered.post(f"/v1/applications/{aid}/retry", applicant(people[3]))
    assert r.status_code == 200, r.get_json()
    answer = r.get_json()
    assert answer["application_id"] == aid and answer["status"] in ("approved", "declined")
    assert answer["decision"] is not None and answer["missing_sources"] == []
    assert answer["created_at"] == first["created_at"]
    assert [(a["attempt"], a["status"]) for a in answer["attempts"]] == [
        (1, "deferred"), (2, answer["status"])]
    # The timeline shows the first attempt's steps, then the retry's.
    steps = [s["step"] for s in answer["timeline"]]
    assert steps[:len(first["timeline"])] == [s["step"] for s in first["timeline"]]
    assert steps[len(first["timeline"])] == "retried" and steps[-1] == "audited"
    assert steps.count("sources_gathered") == 2
    # The row and the read-back answer hold the new decision.
    row = stored_row(recovered, aid)
    assert (row.status, row.outcome, row.grade, row.model_version) == (
        answer["status"], answer["status"], answer["decision"]["grade"],
        answer["decision"]["model_version"])
    assert row.updated_at > row.created_at
    assert recovered.get(f"/v1/applications/{aid}").get_json() == answer
    # The audit log keeps both attempts, linked to the application and to each other.
    made = records(recovered, application_id=aid, kinds=("decision.made",))
    assert [m.payload["outcome"] for m in made] == ["deferred", answer["status"]]
    assert "attempt" not in made[0].payload
    assert made[1].payload["attempt"] == 2
    assert made[1].payload["previous_seq"] == made[0].seq
    assert made[1].payload["previous_record_hash"] == made[0].record_hash
    # One record per attempt: each holds its own gathering, the retry's all answered.
    assert [m.kind for m in records(recovered, application_id=aid)] == ["decision.made"] * 2
    assert made[0].payload["sources"]["court_records"]["status"] != "ok"
    assert {s["status"] for s in made[1].payload["sources"].values()} == {"ok"}
    assert row.decision_seq == made[1].seq
    verify = recovered.get("/v1/audit/verify?applications=true", who="auditor").get_json()
    assert verify["ok"], verify


def test_readers_use_the_newest_decision(deferred_then_recovered, people):
    _, recovered, first = deferred_then_recovered
    aid = first["application_id"]
    answer = recovered.post(f"/v1/applications/{aid}/retry", applicant(people[3])).get_json()
    replay = recovered.post(f"/v1/audit/replay/{aid}", None, who="auditor").get_json()
    assert replay["attempt"] == 2 and replay["match"], replay
    assert replay["recorded"]["outcome"] == answer["status"]
    explanation = recovered.get(f"/v1/applications/{aid}/explanation", who="risk_officer")
    assert explanation.status_code == 200
    assert explanation.get_json()["outcome"] == answer["status"]
    notice = recovered.get(f"/v1/applications/{aid}/notice").get_json()
    assert notice["status"] == answer["status"]
    assert [r["code"] for r in notice["reasons"]] == [
        r["code"] for r in answer["decision"]["reasons"]]
    page = recovered.http.get(f"/console/applications/{aid}")  # signed out: the sign-in page
    assert page.status_code in (302, 303)


def test_a_retry_is_idempotent_and_an_application_no_longer_deferred_is_answered_as_is(
        deferred_then_recovered, people):
    _, recovered, first = deferred_then_recovered
    aid = first["application_id"]
    headers = {"Idempotency-Key": "retry-1"}
    one = recovered.post(f"/v1/applications/{aid}/retry", applicant(people[3]), headers=headers)
    two = recovered.post(f"/v1/applications/{aid}/retry", applicant(people[3]), headers=headers)
    assert one.status_code == two.status_code == 200
    assert one.data == two.data
    # Another key: the application is no longer deferred, so nothing is decided again.
    three = recovered.post(f"/v1/applications/{aid}/retry", applicant(people[3]),
                           headers={"Idempotency-Key": "retry-2"})
    assert three.status_code == 200 and three.data == one.data
    assert len(records(recovered, application_id=aid, kinds=("decision.made",))) == 2
    # The same key with another body is a conflict.
    other = recovered.post(f"/v1/applications/{aid}/retry", applicant(people[4]),
                           headers=headers)
    assert other.status_code == 409


def test_a_retry_while_the_source_is_still_down_records_another_deferred_attempt(
        deferred_then_recovered, people):
    failing, _, first = deferred_then_recovered
    aid = first["application_id"]
    answer = failing.post(f"/v1/applications/{aid}/retry", applicant(people[3])).get_json()
    assert answer["status"] == "deferred"
    assert [a["attempt"] for a in answer["attempts"]] == [1, 2]
    made = records(failing, application_id=aid, kinds=("decision.made",))
    assert [m.payload.get("attempt", 1) for m in made] == [1, 2]


def test_another_channel_cannot_retry(deferred_then_recovered, people):
    _, recovered, first = deferred_then_recovered
    r = recovered.post(f"/v1/applications/{first['application_id']}/retry",
                       applicant(people[3]), who="other_channel")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"


def test_a_retry_must_name_the_applicant(deferred_then_recovered, people):
    _, recovered, first = deferred_then_recovered
    r = recovered.post(f"/v1/applications/{first['application_id']}/retry",
                       applicant(people[4]))
    assert r.status_code == 422
    error = r.get_json()["error"]
    assert error["code"] == "applicant_mismatch" and "applicant.national_id" in error["fields"]


def test_a_retry_under_a_withdrawn_consent_is_refused(deferred_then_recovered, people):
    _, recovered, first = deferred_then_recovered
    aid = first["application_id"]
    consent_id = stored_row(recovered, aid).consent_id
    assert recovered.delete(f"/v1/consents/{consent_id}").status_code == 200
    r = recovered.post(f"/v1/applications/{aid}/retry", applicant(people[3]))
    assert r.status_code == 422
    error = r.get_json()["error"]
    assert error["code"] == "consent_invalid" and "withdrawn" in error["message"]
    assert len(records(recovered, application_id=aid, kinds=("decision.made",))) == 1
    # The notice says so: this application will not be decided.
    notice = recovered.get(f"/v1/applications/{aid}/notice").get_json()
    assert "withdrawn" in notice["what_you_can_do"][0]["en"]
    assert "已撤回" in notice["what_you_can_do"][0]["zh"]


def test_a_deferred_notice_names_the_source_and_what_happens_next(deferred_then_recovered):
    failing, _, first = deferred_then_recovered
    notice = failing.get(f"/v1/applications/{first['application_id']}/notice").get_json()
    assert notice["status"] == "deferred" and notice["reasons"] == []
    assert "court enforcement records" in notice["summary"]["en"]
    assert "法院执行记录" in notice["summary"]["zh"]
    assert "nothing adverse is recorded" in notice["summary"]["en"]
    assert "不会对您产生任何不利记录" in notice["summary"]["zh"]
    [next_step] = notice["what_you_can_do"]
    assert "need not apply again" in next_step["en"] and "channel" in next_step["en"]
    assert "无需重新申请" in next_step["zh"]
    # No review is offered for a decision that does not exist.
    assert "no decision has been made yet" in notice["right_to_review"]["en"].lower()


def test_a_deferred_application_is_retried_not_reviewed(deferred_then_recovered):
    failing, _, first = deferred_then_recovered
    r = failing.post(f"/v1/applications/{first['application_id']}/review-requests",
                     {"reason": "请人工复核"})
    assert r.status_code == 409
    error = r.get_json()["error"]
    assert error["code"] == "deferred" and "retried, not reviewed" in error["message"]


def test_the_cli_lists_deferred_applications_due_for_a_retry(
        deferred_then_recovered, database_url, tmp_path, monkeypatch, people):
    from service.cli.main import main

    failing, recovered, first = deferred_then_recovered
    decided = recovered.apply(people[5]).get_json()
    other = failing.apply(people[6]).get_json()
    assert other["status"] == "deferred"
    withdrawn = stored_row(failing, other["application_id"]).consent_id
    assert failing.delete(f"/v1/consents/{withdrawn}").status_code == 200
    env = {"FLASHLOAN_DATABASE_URL": database_url, "FLASHLOAN_VAR_DIR": str(tmp_path)}
    result = CliRunner(env=env).invoke(main, ["applications", "retry-deferred", "--list",
                                              "--json"])
    assert result.exit_code == 0, result.output
    listed = [json.loads(line) for line in result.output.splitlines()]
    assert [item["application_id"] for item in listed] == [first["application_id"]]
    assert listed[0]["channel"] == "bank-app"
    assert listed[0]["missing_sources"] == ["court_records"]
    assert listed[0]["retry"] == f"POST /v1/applications/{first['application_id']}/retry"
    assert listed[0]["retried_by"] == "scheduler"
    assert decided["application_id"] not in result.output
    text = CliRunner(env=env).invoke(main, ["applications", "retry-deferred", "--dry-run"])
    assert text.exit_code == 0 and "bank-app: 1 deferred application" in text.output
    recovered.post(f"/v1/applications/{first['application_id']}/retry", applicant(people[3]))
    after = CliRunner(env=env).invoke(main, ["applications", "retry-deferred", "--list",
                                             "--json"])
    assert after.exit_code == 0 and after.output == ""
