"""Idempotency-Key across gunicorn workers: concurrent retries decide once, another body is 409,
and a key whose worker was killed mid-decision leaves nothing behind: a retry decides at once."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from service.domain.errors import InProgress
from service.persistence.idempotency import Claim, IdempotencyKeys, body_hash
from service.web.schemas import ApplicationIn
from tests.e2e.applicants import APPROVED, REPEATED, application_body
from tests.e2e.conftest import (
    CHANNEL,
    HTTP_TIMEOUT_S,
    OTHER_CHANNEL,
    Deployment,
    assert_envelope,
    count_rows,
    record_consent,
)
from tests.e2e.gunicorn_server import GunicornServer

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


# A server whose sources answer slowly, so that a decision is in flight long enough to kill
# its worker. Rows ``in_progress`` of an earlier release would expire after the deadline
# plus the commit timeout; a key held by a worker that died is free at once.
SLOW_SOURCES_MS = 2000
SLOW_DEADLINE_S = 4.0
CLAIM_EXPIRY_S = SLOW_DEADLINE_S + 30.0  # FLASHLOAN_COMMIT_TIMEOUT_S left at its default


def _children(parent: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[1]) == parent:
            pids.append(int(stat.parent.name))
    return pids


def _socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's end of the TCP connection from ``client_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port):
                return inode
    return None


def worker_serving(server: GunicornServer, client_port: int) -> int | None:
    """The pid of the gunicorn worker holding the connection from ``client_port``."""
    assert server.process is not None
    inode = _socket_inode(server.port, client_port)
    if inode is None:
        return None
    for pid in _children(server.process.pid):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def claim_state(deployment: Deployment, key: str) -> str | None:
    with deployment.store.engine.connect() as conn:
        return conn.execute(text("SELECT state FROM idempotency_keys WHERE idempotency_key = :k"),
                            {"k": key}).scalar_one_or_none()


def key_is_held(probe: IdempotencyKeys, key_id: str, key: str, digest: str) -> bool:
    """Whether a request holds ``key`` now; a probe that finds it free lets it go at once."""
    try:
        claim = probe.claim(key_id, key, digest)
    except InProgress:
        return True
    if isinstance(claim, Claim):
        probe.release(claim)
    return False


@pytest.fixture
def slow_server(deployment: Deployment, tmp_path: Path):
    """A third gunicorn on the deployment's database, with slow sources."""
    settings = {name: value for name, value in deployment.main.settings.items()
                if name != "FLASHLOAN_VAR_DIR"}
    server = GunicornServer("slow", tmp_path, {
        **settings,
        "FLASHLOAN_STUB_LATENCY_MS": str(SLOW_SOURCES_MS),
        "FLASHLOAN_DEADLINE_S": str(SLOW_DEADLINE_S),
    })
    server.spawn()
    try:
        server.wait_ready()
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"the slow server exited with {code}:\n{server.log_text()[-4000:]}"


def test_a_key_whose_worker_was_killed_mid_decision_is_decided_at_once_by_a_retry(
        deployment: Deployment, slow_server: GunicornServer) -> None:
    consent_id = record_consent(deployment.client("channel"), APPROVED)
    body = application_body(APPROVED, consent_id)
    key = f"e2e-killed-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {deployment.keys['channel']}",
               "Content-Type": "application/json", "Idempotency-Key": key}
    key_id = deployment.keys["channel"].split("_", 2)[1]
    digest = body_hash(ApplicationIn().load(body))
    probe = IdempotencyKeys(deployment.store.engine, expiry_s=CLAIM_EXPIRY_S, wait_s=0)

    first = http.client.HTTPConnection("127.0.0.1", slow_server.port, timeout=HTTP_TIMEOUT_S)
    try:
        first.connect()
        client_port = first.sock.getsockname()[1]
        first.request("POST", "/v1/applications", body=json.dumps(body), headers=headers)
        # Once the key is held the decision is in flight, waiting for the slow sources.
        deadline = time.monotonic() + 10
        pid = None
        while pid is None or not key_is_held(probe, key_id, key, digest):
            assert time.monotonic() < deadline, "the decision never started"
            time.sleep(0.02)
            pid = pid or worker_serving(slow_server, client_port)
        assert claim_state(deployment, key) is None, "holding a key writes nothing"
        os.kill(pid, signal.SIGKILL)
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            first.getresponse()
    finally:
        first.close()
    # The worker's lock died with it (its process, or its database session): nothing is left.
    assert claim_state(deployment, key) is None, "the dead worker left a row"
    assert count_rows(deployment.store, "applications", "consent_id = :c", c=consent_id) == 0

    # The retry takes the key at once and decides, without waiting for any expiry. (A
    # connection of its own: one kept alive by a shared session may have been the killed
    # worker's.)
    started = time.monotonic()
    retry = requests.post(slow_server.url("/v1/applications"), json=body, headers=headers,
                          timeout=HTTP_TIMEOUT_S)
    took = time.monotonic() - started
    assert retry.status_code == 201, retry.text
    assert took < SLOW_SOURCES_MS / 1000 + 10 < CLAIM_EXPIRY_S, took
    application_id = retry.json()["application_id"]
    assert retry.json()["status"] == "approved"
    with deployment.store.engine.connect() as conn:
        state = conn.execute(text("SELECT state, application_id FROM idempotency_keys "
                                  "WHERE idempotency_key = :k"), {"k": key}).all()
    assert [tuple(row) for row in state] == [("done", application_id)]
    assert count_rows(deployment.store, "applications", "consent_id = :c", c=consent_id) == 1
    assert decisions_citing(deployment, consent_id) == [application_id]
    again = deployment.client("channel").post("/v1/applications", json=body,
                                              headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.json() == retry.json()
    verdict = deployment.store.verify()
    assert verdict.ok, verdict
    probe.close()
