"""A COMMIT that fails: the client hears the decision if it was committed, and never a false "none".

The failures are real: on PostgreSQL a proxy cuts the connection at the COMMIT (after the
server answered it, or before it reached the server) and can make the database
unreachable; on SQLite the driver's commit fails after committing, or after rolling back.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from tests.connection_faults import CommitDroppingProxy, FailingSqliteCommit


def count(engine, table: str, where: str = "", **params) -> int:
    sql = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def faulty(request, make_client):
    """A client whose database connection fails at a COMMIT when armed; and the fault."""
    if request.param == "sqlite":
        client = make_client(request.getfixturevalue("sqlite_url"))
        fault = FailingSqliteCommit(client.app.extensions["flashloan"].store.engine)
        yield client, fault
        fault.remove()
    else:
        proxy = CommitDroppingProxy(request.getfixturevalue("postgres_url"))
        try:
            yield make_client(proxy.url), proxy
        finally:
            proxy.close()


def test_a_decision_committed_before_its_commit_raised_is_answered(faulty, people):
    client, fault = faulty
    engine = client.app.extensions["flashloan"].store.engine
    consent = client.consent(people[30])
    body = client.application(people[30], consent["consent_id"])

    fault.arm("after")
    response = client.post("/v1/applications", body, headers={"Idempotency-Key": "k-after"})

    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    application_id = answer["application_id"]
    assert answer["status"] in ("approved", "declined", "deferred")
    stored = client.get(f"/v1/applications/{application_id}")
    assert stored.status_code == 200 and stored.get_json() == answer
    assert count(engine, "audit_records", "application_id = :a AND kind = 'decision.made'",
                 a=application_id) == 1
    assert count(engine, "idempotency_keys", "idempotency_key = 'k-after' AND state = 'done' "
                 "AND application_id = :a", a=application_id) == 1
    again = client.post("/v1/applications", body, headers={"Idempotency-Key": "k-after"})
    assert again.status_code == 201 and again.get_json() == answer
    assert count(engine, "applications") == 1
    assert client.app.extensions["flashloan"].store.verify().ok


def test_a_commit_that_failed_before_it_was_durable_is_a_503_and_nothing_exists(faulty,
                                                                               people):
    client, fault = faulty
    engine = client.app.extensions["flashloan"].store.engine
    consent = client.consent(people[31])
    body = client.application(people[31], consent["consent_id"])
    records = count(engine, "audit_records")

    fault.arm("before")
    response = client.post("/v1/applications", body, headers={"Idempotency-Key": "k-before"})

    assert response.status_code == 503, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "audit_unavailable" and "none was issued" in error["message"]
    assert count(engine, "applications") == 0
    assert count(engine, "audit_records") == records
    assert count(engine, "idempotency_keys") == 0, "the claim is released for a retry"
    retry = client.post("/v1/applications", body, headers={"Idempotency-Key": "k-before"})
    assert retry.status_code == 201, retry.get_json()
    assert count(engine, "applications") == 1


def test_each_decision_of_a_group_whose_commit_raised_is_answered(faulty, people):
    """Several decisions share one COMMIT (group commit); it is durable but raises."""
    client, fault = faulty
    wired = client.app.extensions["flashloan"]
    committer, engine = wired.flow.committer, wired.store.engine
    group = 4
    bodies = [client.application(people[33 + i], client.consent(people[33 + i])["consent_id"])
              for i in range(group)]
    hold = threading.Event()

    class HolderDone(Exception):
        """Ends the holder's write without a COMMIT."""

    def holder(writer) -> None:  # keeps the writer busy while the group queues behind it
        hold.wait(30)
        raise HolderDone

    def post(body: dict):
        return client.app.test_client().post("/v1/applications", json=body,
                                             headers=client.headers("channel"))

    with ThreadPoolExecutor(group + 1) as pool:
        held = pool.submit(committer.submit, holder)
        posts = [pool.submit(post, body) for body in bodies]
        deadline = time.monotonic() + 30
        while committer._queue.qsize() < group:  # every decision waits for the next commit
            assert time.monotonic() < deadline, "the decisions did not reach the committer"
            time.sleep(0.01)
        fault.arm("after")  # the group's COMMIT: durable, but it raises
        hold.set()
        with pytest.raises(HolderDone):
            held.result(timeout=60)
        responses = [p.result(timeout=60) for p in posts]

    assert [r.status_code for r in responses] == [201] * group, [r.get_json() for r in responses]
    ids = {r.get_json()["application_id"] for r in responses}
    assert len(ids) == group
    for response in responses:
        application_id = response.get_json()["application_id"]
        stored = client.get(f"/v1/applications/{application_id}")
        assert stored.get_json() == response.get_json()
        assert count(engine, "audit_records", "application_id = :a AND kind = 'decision.made'",
                     a=application_id) == 1
    assert count(engine, "applications") == group
    assert fault.drops == 1 if isinstance(fault, CommitDroppingProxy) else fault.failures == 1
    assert wired.store.verify().ok


@pytest.mark.postgres
def test_when_the_database_cannot_say_the_503_says_the_outcome_is_unknown(make_client,
                                                                         postgres_url, people):
    proxy = CommitDroppingProxy(postgres_url)
    try:
        client = make_client(proxy.url)
        engine = client.app.extensions["flashloan"].store.engine
        consent = client.consent(people[32])
        body = client.application(people[32], consent["consent_id"])

        # The COMMIT is durable, then the database becomes unreachable.
        proxy.arm("after", refuse_after_drop=True)
        response = client.post("/v1/applications", body, headers={"Idempotency-Key": "k-lost"})

        assert response.status_code == 503, response.get_json()
        error = response.get_json()["error"]
        assert error["code"] == "outcome_unknown", error
        assert "none was issued" not in error["message"]
        assert "unknown" in error["message"] and "Idempotency-Key" in error["message"]

        proxy.restore()
        retry = client.post("/v1/applications", body, headers={"Idempotency-Key": "k-lost"})
        assert retry.status_code == 201, retry.get_json()
        application_id = retry.get_json()["application_id"]
        assert application_id in error["message"], "the decision that was made is returned"
        assert count(engine, "applications") == 1
    finally:
        proxy.close()
