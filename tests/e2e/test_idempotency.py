"""Idempotency-Key across gunicorn workers: concurrent retries decide once, another body is 409."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text

from tests.e2e.applicants import REPEATED, application_body
from tests.e2e.conftest import (
    CHANNEL,
    HTTP_TIMEOUT_S,
    OTHER_CHANNEL,
    Deployment,
    assert_envelope,
    count_rows,
    record_consent,
)

pytestmark = pytest.mark.slow

CONCURRENT = 8


def post_together(deployment: Deployment, body: dict, key: str) -> list[requests.Response]:
    """Post the same body with one Idempotency-Key from CONCURRENT threads at once.

    Each thread has its own connection. Half go to the main server (two workers) and half
    to the degraded one (another gunicorn on the same database, as a second host would be),
    so the duplicates race across processes for certain, not only across threads.
    """
    start = threading.Barrier(CONCURRENT)
    headers = {"Authorization": f"Bearer {deployment.keys['channel']}",
               "Idempotency-Key": key}

    def post(i: int) -> requests.Response:
        server = deployment.servers[i % len(deployment.servers)]
        with requests.Session() as session:
            start.wait(timeout=30)
            return session.post(server.url("/v1/applications"), json=body, headers=headers,
                                timeout=HTTP_TIMEOUT_S)

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        return list(pool.map(post, range(CONCURRENT)))


def decisions_citing(deployment: Deployment, consent_id: str) -> list[str]:
    """The application ids of every decision.made record that cites the consent."""
    from audit import AuditQuery

    return [r.application_id for r in deployment.store.iter_records(
        AuditQuery(kinds=("decision.made",))) if r.payload["consent_id"] == consent_id]


def test_concurrent_posts_with_one_key_decide_once(deployment: Deployment) -> None:
    consent_id = record_consent(deployment.client("channel"), REPEATED)
    body = application_body(REPEATED, consent_id)
    key = f"e2e-{uuid.uuid4().hex}"

    responses = post_together(deployment, body, key)

    assert [r.status_code for r in responses] == [201] * CONCURRENT, [
        (r.status_code, r.text) for r in responses]
    answers = [r.json() for r in responses]
    assert all(answer == answers[0] for answer in answers), "every answer must be the first"
    application_id = answers[0]["application_id"]
    # Whichever server won the claim decided: approved on the main one, deferred on the other.
    assert answers[0]["status"] in ("approved", "deferred")

    assert count_rows(deployment.store, "applications", "consent_id = :c", c=consent_id) == 1
    assert decisions_citing(deployment, consent_id) == [application_id]
    with deployment.store.engine.connect() as conn:
        state = conn.execute(text("SELECT state, application_id FROM idempotency_keys "
                                  "WHERE idempotency_key = :k"), {"k": key}).all()
    assert [tuple(row) for row in state] == [("done", application_id)]

    later = deployment.client("channel").post("/v1/applications", json=body,
                                              headers={"Idempotency-Key": key})
    assert later.status_code == 201
    assert later.json() == answers[0], "a later retry replays the stored answer"
    assert count_rows(deployment.store, "applications", "consent_id = :c", c=consent_id) == 1


def test_same_key_with_another_body_is_a_conflict(deployment: Deployment) -> None:
    channel = deployment.client("channel")
    consent_id = record_consent(channel, REPEATED)
    key = f"e2e-{uuid.uuid4().hex}"
    first = channel.post("/v1/applications", json=application_body(REPEATED, consent_id),
                         headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text

    other = application_body(REPEATED, consent_id, amount=45000.0)
    error = assert_envelope(channel.post("/v1/applications", json=other,
                                         headers={"Idempotency-Key": key}), 409, "conflict")
    assert "Idempotency-Key" in error["fields"], error
    assert count_rows(deployment.store, "applications", "consent_id = :c", c=consent_id) == 1
    assert len(decisions_citing(deployment, consent_id)) == 1


def test_keys_belong_to_their_api_key(deployment: Deployment) -> None:
    """Two channels using the same Idempotency-Key do not see each other's answers."""
    key = f"e2e-{uuid.uuid4().hex}"
    ids = set()
    for caller, channel_name in (("channel", CHANNEL), ("other_channel", OTHER_CHANNEL)):
        client = deployment.client(caller)
        consent_id = record_consent(client, REPEATED, channel_name)
        response = client.post("/v1/applications",
                               json=application_body(REPEATED, consent_id),
                               headers={"Idempotency-Key": key})
        assert response.status_code == 201, response.text
        ids.add(response.json()["application_id"])
    assert len(ids) == 2
