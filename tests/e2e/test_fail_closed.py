"""Fail closed: while the audit store refuses writes, no decision is issued or recorded."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.applicants import UNRECORDED, application_body
from tests.e2e.conftest import Deployment, assert_envelope, count_rows, record_consent

pytestmark = pytest.mark.slow

# Added beside the audit package's own append-only guards, and dropped afterwards.
REFUSE = {
    "sqlite": (
        ["CREATE TRIGGER e2e_audit_refuses_writes BEFORE INSERT ON audit_records "
         "BEGIN SELECT RAISE(ABORT, 'audit store is read-only'); END"],
        ["DROP TRIGGER e2e_audit_refuses_writes"],
    ),
    "postgres": (
        ["CREATE FUNCTION e2e_audit_refuses_writes() RETURNS trigger LANGUAGE plpgsql AS $$ "
         "BEGIN RAISE EXCEPTION 'audit store is read-only'; END $$",
         "CREATE TRIGGER e2e_audit_refuses_writes BEFORE INSERT ON audit_records "
         "FOR EACH ROW EXECUTE FUNCTION e2e_audit_refuses_writes()"],
        ["DROP TRIGGER e2e_audit_refuses_writes ON audit_records",
         "DROP FUNCTION e2e_audit_refuses_writes()"],
    ),
}


@contextmanager
def audit_store_refusing_writes(deployment: Deployment) -> Iterator[None]:
    """Make every insert into audit_records fail, for real, while the servers run."""
    refuse, restore = REFUSE[deployment.backend]
    with deployment.store.engine.begin() as conn:
        for statement in refuse:
            conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with deployment.store.engine.begin() as conn:
            for statement in restore:
                conn.exec_driver_sql(statement)


def audit_failures(deployment: Deployment) -> float:
    """flashloan_audit_failures_total, summed over the main server's workers."""
    response = deployment.client("admin").get("/metrics")
    assert response.status_code == 200, response.text
    match = re.search(r"^flashloan_audit_failures_total (\S+)$", response.text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_unwritable_audit_store_means_no_decision(deployment: Deployment) -> None:
    channel = deployment.client("channel")
    consent_id = record_consent(channel, UNRECORDED)
    body = application_body(UNRECORDED, consent_id)
    key = f"e2e-{uuid.uuid4().hex}"
    before = {table: count_rows(deployment.store, table)
              for table in ("applications", "audit_records")}
    failures_before = audit_failures(deployment)

    with audit_store_refusing_writes(deployment):
        keyed = channel.post("/v1/applications", json=body, headers={"Idempotency-Key": key})
        unkeyed = channel.post("/v1/applications", json=body)
        for response in (keyed, unkeyed):
            error = assert_envelope(response, 503, "audit_unavailable")
            assert "read-only" not in error["message"], "no internal detail reaches a client"
        after = {table: count_rows(deployment.store, table)
                 for table in ("applications", "audit_records")}

    assert after == before, "nothing may be recorded for a decision that was not issued"
    assert count_rows(deployment.store, "applications", "consent_id = :c", c=consent_id) == 0
    assert count_rows(deployment.store, "idempotency_keys", "idempotency_key = :k", k=key) == 0
    assert audit_failures(deployment) >= failures_before + 2
    verdict = deployment.store.verify()
    assert verdict.ok, verdict
    assert "audit write failed; decision withheld" in deployment.main.log_text()

    retry = channel.post("/v1/applications", json=body, headers={"Idempotency-Key": key})
    assert retry.status_code == 201, retry.text
    application_id = retry.json()["application_id"]
    assert count_rows(deployment.store, "applications", "consent_id = :c", c=consent_id) == 1
    assert count_rows(deployment.store, "audit_records",
                      "application_id = :a AND kind = 'decision.made'", a=application_id) == 1


# How long the service waits for its audit commit (service/persistence/committer.py
# GroupCommitter), and for the chain's lock once its write has started (audit/engine.py
# BUSY_TIMEOUT_S): the lock's wait is no setting, so no deployment can make it shorter.
COMMIT_WAIT_S = 30.0
# How long the chain is held at most: well past both waits, should the service not answer.
HOLD_LIMIT_S = COMMIT_WAIT_S + 30


@contextmanager
def audit_chain_held(deployment: Deployment, seconds: float) -> Iterator[None]:
    """Hold the audit chain's write lock, as a stuck writer would, until the block ends (for
    ``seconds`` at most)."""
    from audit.engine import lock_chain, write_mode

    held = threading.Event()
    release = threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        try:
            with deployment.store.engine.connect() as conn:
                write_mode(conn)
                with conn.begin():
                    lock_chain(conn)  # PostgreSQL; SQLite's BEGIN IMMEDIATE took the lock
                    held.set()
                    release.wait(seconds)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failure.append(exc)
            held.set()

    holder = threading.Thread(target=hold, name="audit-lock-holder")
    holder.start()
    try:
        assert held.wait(timeout=30), "could not take the audit chain's lock"
        assert not failure, failure
        yield
    finally:
        release.set()
        holder.join()
    assert not failure, failure


def test_stalled_audit_store_means_no_decision(deployment: Deployment) -> None:
    channel = deployment.client("channel")
    consent_id = record_consent(channel, UNRECORDED)
    body = application_body(UNRECORDED, consent_id)

    # Held until the service has answered, and no longer.
    with audit_chain_held(deployment, HOLD_LIMIT_S):
        started = time.monotonic()
        response = channel.post("/v1/applications", json=body)
        waited = time.monotonic() - started
    assert_envelope(response, 503, "audit_unavailable")
    assert waited >= COMMIT_WAIT_S - 1, waited

    time.sleep(2)  # a write still queued in the service would commit now
    assert count_rows(deployment.store, "applications", "consent_id = :c", c=consent_id) == 0
    assert count_rows(deployment.store, "audit_records",
                      "kind = 'application.received' AND payload LIKE :c",
                      c=f"%{consent_id}%") == 0
    retry = channel.post("/v1/applications", json=body)
    assert retry.status_code == 201, retry.text
