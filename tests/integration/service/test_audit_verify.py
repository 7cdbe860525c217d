"""Verification as the service runs it: its own checkpoints, taken by itself and signed with
its key, and the answers kept in the applications table checked against their records."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from audit import AuditQuery, sign_checkpoint, write_checkpoint
from service.persistence.tables import applications
from tests.integration.audit import tampering


def records(client, **filters):
    return list(client.app.extensions["flashloan"].store.iter_records(AuditQuery(**filters)))


def edit_answer(client, application_id: str, **changes) -> None:
    """Change the stored answer of an application, as someone with database access could."""
    engine = client.app.extensions["flashloan"].store.engine
    with engine.begin() as conn:
        text = conn.execute(select(applications.c.answer).where(
            applications.c.application_id == application_id)).scalar_one()
        conn.execute(update(applications).where(
            applications.c.application_id == application_id).values(
            answer=json.dumps(json.loads(text) | changes)))


@pytest.fixture
def decided(client, people):
    """A client with six decisions."""
    return client, [client.apply(nid).get_json() for nid in people[:6]]


def test_the_decision_record_holds_the_hash_of_the_answer_sent(client, people):
    response = client.apply(people[0])
    assert response.status_code == 201
    made = records(client, application_id=response.get_json()["application_id"],
                   kinds=("decision.made",))[0].payload
    assert made["answer_sha256"] == hashlib.sha256(response.get_data()).hexdigest()


def test_an_edited_answer_is_caught_over_http(decided):
    client, answers = decided
    clean = client.get("/v1/audit/verify?applications=true", who="auditor")
    assert clean.status_code == 200, clean.get_json()
    body = clean.get_json()
    assert body["ok"] is True and body["applications"]["checked"] == 6
    target = next(a for a in answers if a["status"] == "declined")
    edit_answer(client, target["application_id"], status="approved")
    assert client.get("/v1/audit/verify", who="auditor").get_json()["ok"] is True, \
        "the chain itself is untouched"
    body = client.get("/v1/audit/verify?applications=true", who="auditor").get_json()
    assert (body["ok"], body["reason"]) == (False, "answer_altered")
    assert target["application_id"] in body["message"]
    assert body["applications"]["failed"] == 1


def test_answers_changed_by_a_review_still_match(decided):
    client, answers = decided
    target = next(a for a in answers if a["status"] == "declined")
    review = client.post(f"/v1/applications/{target['application_id']}/review-requests",
                         {"reason": "please look again"})
    assert review.status_code == 201, review.get_json()
    body = client.get("/v1/audit/verify?applications=true", who="auditor").get_json()
    assert body["ok"] is True, body
    resolved = client.post(f"/v1/reviews/{review.get_json()['review_id']}/resolution",
                           {"outcome": "overturned", "note": "income verified by phone"},
                           who="risk_officer")
    assert resolved.status_code == 200, resolved.get_json()
    body = client.get("/v1/audit/verify?applications=true", who="auditor").get_json()
    assert body["ok"] is True, body
    # Putting back the answer from before the review is caught too.
    edit_answer(client, target["application_id"], status="declined", decided_by="model")
    body = client.get("/v1/audit/verify?applications=true", who="auditor").get_json()
    assert (body["ok"], body["reason"]) == (False, "answer_altered")


@pytest.mark.parametrize(
    ("query", "field"),
    [("start=10&end=5", "end"), ("start=999999", "start"), ("start=999999&end=1000000", "start")],
)
def test_an_empty_or_inverted_range_is_a_422(decided, query, field):
    client, _ = decided
    r = client.get(f"/v1/audit/verify?{query}", who="auditor")
    assert r.status_code == 422, r.get_json()
    error = r.get_json()["error"]
    assert list(error["fields"]) == [field] and "OK" not in error["message"]


def test_http_verify_pins_the_service_key(decided, tmp_path: Path):
    client, _ = decided
    store = client.app.extensions["flashloan"].store
    write_checkpoint(sign_checkpoint(store, Ed25519PrivateKey.generate()),
                     tmp_path / "checkpoints")
    body = client.get("/v1/audit/verify", who="auditor").get_json()
    assert (body["ok"], body["reason"]) == (False, "checkpoint_invalid"), body


def test_the_service_takes_checkpoints_by_itself_and_they_catch_truncation(make_client, people,
                                                                        tmp_path: Path):
    client = make_client(checkpoint_every_records=20, checkpoint_every_s=3600)
    # A consent and a decision record each: 24 records.
    for nid in people[:12]:
        assert client.apply(nid).status_code == 201
    folder = tmp_path / "checkpoints"
    deadline = time.monotonic() + 20
    while not list(folder.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    taken = sorted(folder.glob("*.json"))
    assert taken, "no checkpoint was taken"
    seq = json.loads(taken[-1].read_text())["seq"]
    assert seq >= 20
    store = client.app.extensions["flashloan"].store
    assert [cp.seq for cp in store.recorded_checkpoints()][-1] == seq
    assert client.get("/v1/audit/verify", who="auditor").get_json()["ok"] is True
    tampering.drop_guards(store.engine)
    tampering.execute(store.engine, "DELETE FROM audit_reason_codes WHERE seq > :seq",
                      "DELETE FROM audit_records WHERE seq > :seq", seq=seq - 3)
    body = client.get("/v1/audit/verify", who="auditor").get_json()
    assert (body["ok"], body["reason"]) == (False, "records_missing"), body


def test_the_cli_checks_answers_with_applications(decided, tmp_path: Path):
    from service.cli.main import main

    client, answers = decided
    env = {"FLASHLOAN_DATABASE_URL": str(client.app.extensions["flashloan"].store.engine.url),
           "FLASHLOAN_VAR_DIR": str(tmp_path), "FLASHLOAN_ENV": "test",
           "FLASHLOAN_SIGNING_KEY": None}
    runner = CliRunner(env=env)
    ok = runner.invoke(main, ["audit", "verify", "--applications"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert "6 application answers match their records" in ok.output
    edit_answer(client, answers[0]["application_id"], elapsed_ms=1.0)
    caught = runner.invoke(main, ["audit", "verify", "--applications"], catch_exceptions=False)
    assert caught.exit_code == 1, caught.output
    assert "answer_altered" in caught.output and answers[0]["application_id"] in caught.output


def test_instances_of_one_database_sign_alike_with_no_key_configured(make_client, sqlite_url,
                                                                     tmp_path: Path):
    # Two hosts of one deployment in development: one database, a var/ folder each.
    clients = [make_client(sqlite_url, var_dir=tmp_path / host, signing_key=None)
               for host in ("a", "b")]
    for n, client in enumerate(clients):
        wired = client.app.extensions["flashloan"]
        wired.store.append("decision.made", {"n": n}, application_id=f"app-{n}")
        signed = wired.store.take_checkpoint(wired.checkpointer.key)
        write_checkpoint(signed, wired.checkpointer.folder)
    for client in clients:
        body = client.get("/v1/audit/verify", who="auditor").get_json()
        assert (body["ok"], body["checkpoints"]) == (True, 2), body
