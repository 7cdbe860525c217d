"""Deferred applications decided again by the scheduler, with the applicant kept encrypted
only while a retry may need it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from audit import AuditQuery
from service.cli.main import main
from service.domain.encoding import now_text
from service.persistence.tables import applications, consents

APPLICANT_NAME, APPLICANT_MOBILE = "张三", "13812348000"


def stored_row(client, application_id: str):
    with client.app.extensions["flashloan"].store.engine.connect() as conn:
        return conn.execute(select(applications).where(
            applications.c.application_id == application_id)).first()


def change_row(client, table, key, value, **values) -> None:
    with client.app.extensions["flashloan"].store.engine.begin() as conn:
        conn.execute(update(table).where(key == value).values(**values))


def every_payload(client) -> str:
    store = client.app.extensions["flashloan"].store
    return "\n".join(json.dumps(r.payload, ensure_ascii=False)
                     for r in store.iter_records(AuditQuery()))


def applicant(national_id: str) -> dict:
    return {"applicant": {"national_id": national_id, "name": APPLICANT_NAME,
                          "mobile": APPLICANT_MOBILE}}


@pytest.fixture
def scheduler(database_url, tmp_path):
    """Run ``flashloan applications retry-deferred`` on the tests' database."""
    env = {"FLASHLOAN_DATABASE_URL": database_url, "FLASHLOAN_VAR_DIR": str(tmp_path)}

    def run(*args: str):
        return CliRunner(env=env).invoke(main, ["applications", "retry-deferred", *args])

    return run


@pytest.fixture
def deferred(make_client, database_url, people):
    """A court-records outage defers two applications; a second worker on the same database
    sees the source answer again."""
    failing = make_client(database_url, stub_faults="court_records=error:1.0")
    answers = [failing.apply(people[i]).get_json() for i in (3, 4)]
    assert [a["status"] for a in answers] == ["deferred", "deferred"]
    return failing, make_client(database_url), answers


def test_the_scheduler_decides_a_deferred_application_once_the_source_recovers(
        deferred, scheduler, people):
    failing, recovered, (first, second) = deferred
    sealed = stored_row(failing, first["application_id"]).sealed_applicant
    assert sealed is not None
    for clear in (people[3], APPLICANT_NAME, APPLICANT_MOBILE):
        assert clear.encode() not in bytes(sealed)
    result = scheduler("--json")
    assert result.exit_code == 0, result.output
    report = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["application_id"] for r in report] == [first["application_id"],
                                                     second["application_id"]]
    for item, earlier in zip(report, (first, second), strict=True):
        aid = item["application_id"]
        assert item["channel"] == "bank-app" and item["error"] is None
        assert item["outcome"] in ("approved", "declined")
        row = stored_row(recovered, aid)
        assert row.status == item["outcome"] and row.sealed_applicant is None
        answer = recovered.get(f"/v1/applications/{aid}").get_json()
        assert answer["status"] == item["outcome"] and answer["missing_sources"] == []
        assert answer["created_at"] == earlier["created_at"]
        assert [(a["attempt"], a["status"]) for a in answer["attempts"]] == [
            (1, "deferred"), (2, item["outcome"])]
        # The same records as a channel's retry, by the scheduler.
        made = list(recovered.app.extensions["flashloan"].store.iter_records(
            AuditQuery(application_id=aid, kinds=("decision.made",))))
        assert [m.payload["outcome"] for m in made] == ["deferred", item["outcome"]]
        assert made[1].payload["attempt"] == 2
        assert made[1].payload["previous_seq"] == made[0].seq
        assert made[1].payload["previous_record_hash"] == made[0].record_hash
        assert made[1].actor == "system:scheduler"
        assert made[1].payload["channel"] == made[0].payload["channel"]
    # The national ID, name and mobile are in no record, answer or line of the run.
    payloads = every_payload(recovered)
    for nid in (people[3], people[4]):
        assert nid not in payloads and nid not in result.output
        assert nid not in recovered.get(f"/v1/applications/{first['application_id']}").text
    assert APPLICANT_MOBILE not in payloads and APPLICANT_NAME not in payloads
    verify = recovered.get("/v1/audit/verify?applications=true", who="auditor").get_json()
    assert verify["ok"], verify
    # Nothing is left to do; the next run says so.
    again = scheduler()
    assert again.exit_code == 0 and "no deferred application was due" in again.stdout


def test_a_channel_retry_erases_the_kept_applicant_and_a_deferred_one_keeps_it(
        deferred, people):
    failing, recovered, (first, _) = deferred
    aid = first["application_id"]
    still = failing.post(f"/v1/applications/{aid}/retry", applicant(people[3])).get_json()
    assert still["status"] == "deferred"
    assert stored_row(failing, aid).sealed_applicant is not None
    decided = recovered.post(f"/v1/applications/{aid}/retry", applicant(people[3])).get_json()
    assert decided["status"] in ("approved", "declined")
    assert stored_row(recovered, aid).sealed_applicant is None


def test_a_withdrawn_consent_erases_the_kept_applicant_and_is_not_retried(
        deferred, scheduler):
    failing, _, (first, second) = deferred
    consent_id = stored_row(failing, first["application_id"]).consent_id
    assert failing.delete(f"/v1/consents/{consent_id}").status_code == 200
    assert stored_row(failing, first["application_id"]).sealed_applicant is None
    assert stored_row(failing, second["application_id"]).sealed_applicant is not None
    result = scheduler()
    assert result.exit_code == 0, result.output
    assert first["application_id"] not in result.stdout
    assert second["application_id"] in result.stdout
    assert stored_row(failing, first["application_id"]).status == "deferred"


def test_an_expired_consent_has_its_kept_applicant_erased_by_the_run(deferred, scheduler):
    failing, _, (first, second) = deferred
    consent_id = stored_row(failing, first["application_id"]).consent_id
    change_row(failing, consents, consents.c.consent_id, consent_id,
               expires_at=now_text(datetime.now(UTC) - timedelta(minutes=1)))
    result = scheduler("--json", "--limit", "1")
    assert result.exit_code == 0, result.output
    report = {item["application_id"]: item
              for item in map(json.loads, result.stdout.splitlines())}
    assert report[first["application_id"]]["outcome"] == "erased"
    assert report[first["application_id"]]["reason"] == "consent_expired"
    assert report[second["application_id"]]["outcome"] in ("approved", "declined")
    first_row = stored_row(failing, first["application_id"])
    assert first_row.sealed_applicant is None and first_row.status == "deferred"
    assert stored_row(failing, second["application_id"]).sealed_applicant is None


def test_an_application_deferred_before_applicants_were_kept_is_left_to_its_channel(
        deferred, scheduler, people):
    failing, recovered, (first, second) = deferred
    for earlier in (first, second):
        change_row(failing, applications, applications.c.application_id,
                   earlier["application_id"], sealed_applicant=None)
    result = scheduler()
    assert result.exit_code == 0, result.output
    assert "no deferred application was due" in result.stdout
    assert stored_row(failing, first["application_id"]).status == "deferred"
    listed = [json.loads(line) for line in scheduler("--list", "--json").stdout.splitlines()]
    assert {item["retried_by"] for item in listed} == {"channel"}
    r = recovered.post(f"/v1/applications/{first['application_id']}/retry",
                       applicant(people[3]))
    assert r.status_code == 200 and r.get_json()["status"] in ("approved", "declined")


def test_a_kept_applicant_moved_to_another_application_does_not_open(deferred, scheduler):
    failing, _, (first, second) = deferred
    moved = stored_row(failing, first["application_id"]).sealed_applicant
    change_row(failing, applications, applications.c.application_id,
               second["application_id"], sealed_applicant=moved)
    result = scheduler("--json")
    assert result.exit_code == 1
    report = {item["application_id"]: item
              for item in map(json.loads, result.stdout.splitlines())}
    assert report[second["application_id"]]["outcome"] == "failed"
    assert report[second["application_id"]]["error"] == "sealed_applicant_unreadable"
    assert stored_row(failing, second["application_id"]).status == "deferred"
