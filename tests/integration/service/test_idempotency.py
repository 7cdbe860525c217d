"""Idempotency keys: held while deciding, written once with the decision; one decision per key
across threads, workers and processes; rows an earlier release left claimed still expire."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, insert, select, text, update

from audit import AuditQuery, AuditStore
from audit.engine import create_audit_engine
from service.domain.encoding import now_text
from service.domain.errors import DomainError, IdempotencyConflict, InProgress
from service.persistence.committer import GroupCommitter
from service.persistence.idempotency import Claim, ClaimLost, IdempotencyKeys, Replay, body_hash
from service.persistence.tables import idempotency_keys, write_transaction
from service.web.schemas import ApplicationIn
from tests.databases import migrate

_T = idempotency_keys
DIGEST = "d" * 64
# No checkpoint is due while a test counts write transactions.
NO_CHECKPOINTS = {"checkpoint_every_records": 10**9, "checkpoint_every_s": 604800}


def key_id_of(client, who: str = "channel") -> str:
    """The key id inside an API key (``fl_<key id>_<secret>``)."""
    return client.keys[who].split("_", 2)[1]


def digest_of(body: dict) -> str:
    """The digest a request's body is claimed with: of the body as the schema loads it."""
    return body_hash(ApplicationIn().load(body))


def age_row(engine, key_id: str, key: str, seconds: float) -> None:
    """Date a key's row ``seconds`` back."""
    with engine.begin() as conn:
        conn.execute(update(_T).where(_T.c.key_id == key_id, _T.c.idempotency_key == key)
                     .values(created_at=now_text(datetime.now(UTC) - timedelta(seconds=seconds))))


def key_row(engine, key_id: str, key: str):
    with engine.connect() as conn:
        return conn.execute(select(_T).where(_T.c.key_id == key_id,
                                             _T.c.idempotency_key == key)).first()


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def decisions_citing(store: AuditStore, consent_id: str) -> list[str]:
    return [r.application_id for r in store.iter_records(AuditQuery(kinds=("decision.made",)))
            if r.payload["consent_id"] == consent_id]


def _add_key(engine, key: str, state: str, age: timedelta, digest: str = DIGEST,
             key_id: str = "k1") -> None:
    """A key's row: ``done``, or ``in_progress`` as an earlier release claimed keys."""
    with engine.begin() as conn:
        conn.execute(insert(_T).values(
            key_id=key_id, idempotency_key=key, body_hash=digest, state=state,
            application_id="a_1" if state == "done" else None,
            status_code=201 if state == "done" else None,
            response="{}" if state == "done" else None,
            created_at=now_text(datetime.now(UTC) - age)))


def _keys_left(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(_T.c.idempotency_key)).scalars())


def wait_until_held(engine, key_id: str, key: str, digest: str) -> None:
    """Return once a request holds ``key`` (a probe that finds it free lets it go at once)."""
    probe = IdempotencyKeys(engine, expiry_s=60, wait_s=0, purge_every_s=float("inf"))
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            try:
                claim = probe.claim(key_id, key, digest)
            except InProgress:
                return
            assert isinstance(claim, Claim), claim
            probe.release(claim)
            time.sleep(0.01)
        raise AssertionError("no request came to hold the key")
    finally:
        probe.close()


# -- one write transaction -------------------------------------------------------------------

def test_a_keyed_decision_writes_one_transaction_the_decisions_own(make_client, database_url,
                                                                  people):
    client = make_client(database_url, **NO_CHECKPOINTS)
    engine = client.app.extensions["flashloan"].store.engine
    kid = key_id_of(client)
    # The first claim of a worker purges old keys (a write, at most once a minute): done here.
    warm = client.consent(people[0])
    assert client.post("/v1/applications", client.application(people[0], warm["consent_id"]),
                       headers={"Idempotency-Key": "warm-up"}).status_code == 201

    commits: Counter[str] = Counter()
    immediate: Counter[str] = Counter()  # SQLite: the write lock, taken by BEGIN IMMEDIATE

    def on_commit(conn) -> None:
        commits[threading.current_thread().name] += 1

    def on_begin(conn) -> None:
        if conn.get_execution_options().get("flashloan_audit_write"):
            immediate[threading.current_thread().name] += 1

    results = {}
    for i, key in ((1, None), (2, "order-1")):
        consent = client.consent(people[i])
        body = client.application(people[i], consent["consent_id"])
        commits.clear()
        immediate.clear()
        event.listen(engine, "commit", on_commit)
        event.listen(engine, "begin", on_begin)
        try:
            response = client.post("/v1/applications", body,
                                   headers={"Idempotency-Key": key} if key else {})
        finally:
            event.remove(engine, "commit", on_commit)
            event.remove(engine, "begin", on_begin)
        assert response.status_code == 201, response.get_json()
        results[key] = (sum(commits.values()), sum(immediate.values()), response.get_json())

    writes, locks, answer = results["order-1"]
    assert writes == 1 and results[None][0] == 1, results
    if engine.dialect.name == "sqlite":
        assert locks == 1 == results[None][1], results
    row = key_row(engine, kid, "order-1")
    assert (row.state, row.application_id, row.status_code) == (
        "done", answer["application_id"], 201)


# -- held, not written -----------------------------------------------------------------------

def test_a_held_key_writes_nothing_and_once_let_go_the_retry_decides_at_once(make_client,
                                                                            database_url,
                                                                            people):
    client = make_client(database_url)
    wired = client.app.extensions["flashloan"]
    engine, keys = wired.store.engine, wired.flow.idempotency
    keys.wait_s = 0.3
    consent = client.consent(people[3])
    body = client.application(people[3], consent["consent_id"])
    kid = key_id_of(client)
    # A worker holds the key and is deciding; then it dies, and its lock goes with it.
    held = keys.claim(kid, "order-dead-1", digest_of(body))
    assert isinstance(held, Claim) and held.left_at is None
    assert key_row(engine, kid, "order-dead-1") is None, "holding a key writes nothing"

    busy = client.post("/v1/applications", body, headers={"Idempotency-Key": "order-dead-1"})
    assert busy.status_code == 409, busy.get_json()
    assert busy.get_json()["error"]["code"] == "in_progress"
    assert count(engine, "applications") == 0

    keys.release(held)
    keys.release(held)  # once is enough; again does nothing
    retry = client.post("/v1/applications", body, headers={"Idempotency-Key": "order-dead-1"})
    assert retry.status_code == 201, retry.get_json()
    row = key_row(engine, kid, "order-dead-1")
    assert (row.state, row.application_id) == ("done", retry.get_json()["application_id"])
    again = client.post("/v1/applications", body, headers={"Idempotency-Key": "order-dead-1"})
    assert again.status_code == 201 and again.get_json() == retry.get_json()
    assert count(engine, "applications") == 1
    assert decisions_citing(wired.store, consent["consent_id"]) == [
        retry.get_json()["application_id"]]


def test_the_holder_reads_the_row_before_deciding_and_lets_the_key_go_after(database_url):
    migrate(database_url)
    engine = create_audit_engine(database_url)
    keys = IdempotencyKeys(engine, expiry_s=5, wait_s=0.2, poll_s=0.01)
    try:
        _add_key(engine, "decided", "done", timedelta(minutes=1))
        assert keys.claim("k1", "decided", DIGEST) == Replay(201, "{}")
        with pytest.raises(IdempotencyConflict) as conflict:
            keys.claim("k1", "decided", "e" * 64)
        assert "Idempotency-Key" in conflict.value.fields
        # Neither answer kept the key's lock: once the row is gone the key is free at once.
        with engine.begin() as conn:
            conn.execute(_T.delete())
        claim = keys.claim("k1", "decided", DIGEST)
        assert isinstance(claim, Claim)
        keys.release(claim)
    finally:
        engine.dispose()


# -- one decision per key --------------------------------------------------------------------

def post_together(apps, key: str, body: dict, api_key: str, threads: int = 6) -> list:
    """Post ``body`` with one Idempotency-Key from ``threads`` threads at once, spread over
    ``apps``; return the responses."""
    start = threading.Barrier(threads)
    responses: list = [None] * threads

    def post(i: int) -> None:
        http = apps[i % len(apps)].test_client()
        start.wait(timeout=30)
        responses[i] = http.post("/v1/applications", json=body, headers={
            "Authorization": f"Bearer {api_key}", "Idempotency-Key": key})

    workers = [threading.Thread(target=post, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return responses


def assert_decided_once(responses, store: AuditStore, consent_id: str) -> None:
    assert [r.status_code for r in responses] == [201] * len(responses), [
        (r.status_code, r.get_json()) for r in responses]
    answers = [r.get_json() for r in responses]
    assert all(answer == answers[0] for answer in answers), "every answer must be the first"
    assert decisions_citing(store, consent_id) == [answers[0]["application_id"]]


def test_threads_of_one_worker_with_one_key_decide_once(make_client, database_url, people):
    client = make_client(database_url, stub_latency_ms="200")
    store = client.app.extensions["flashloan"].store
    consent = client.consent(people[4])
    body = client.application(people[4], consent["consent_id"])
    responses = post_together([client.app], "together-1", body, client.keys["channel"])
    assert_decided_once(responses, store, consent["consent_id"])
    assert count(store.engine, "applications") == 1


def test_two_workers_of_one_process_with_one_key_decide_once(make_client, database_url,
                                                             people):
    """Two apps on one database, as two workers: on SQLite their threads share the
    process's table of held keys, since the OS's lock is the process's."""
    first = make_client(database_url, stub_latency_ms="200")
    second = make_client(database_url, stub_latency_ms="200")
    store = first.app.extensions["flashloan"].store
    consent = first.consent(people[5])
    body = first.application(people[5], consent["consent_id"])
    responses = post_together([first.app, second.app], "together-2", body,
                              first.keys["channel"])
    assert_decided_once(responses, store, consent["consent_id"])


@pytest.fixture
def engines(database_url):
    """Two engines on one database, as two workers have."""
    migrate(database_url)
    made = [create_audit_engine(database_url) for _ in range(2)]
    yield made
    for engine in made:
        engine.dispose()


def test_two_workers_racing_for_a_key_hold_it_once_and_the_other_replays(engines):
    workers = [IdempotencyKeys(engine, expiry_s=5, wait_s=10, poll_s=0.005)
               for engine in engines]
    for race in range(8):
        key = f"race-{race}"
        start = threading.Barrier(2)
        outcomes: list[object] = []

        def decide(keys: IdempotencyKeys, key: str = key, start=start,
                   outcomes=outcomes) -> None:
            start.wait(timeout=10)
            try:
                claim = keys.claim("k1", key, DIGEST)
            except DomainError as exc:
                outcomes.append(exc.code)
                return
            outcomes.append(claim)
            if isinstance(claim, Claim):
                try:
                    with write_transaction(keys.engine) as conn:
                        keys.complete(conn, claim, f"a_{key}", 201, f'"{key}"')
                finally:
                    keys.release(claim)

        threads = [threading.Thread(target=decide, args=(keys,)) for keys in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(type(o).__name__ for o in outcomes) == ["Claim", "Replay"], outcomes
        assert Replay(201, f'"{key}"') in outcomes
        assert key_row(engines[0], "k1", key).application_id == f"a_{key}"


def hold_in_another_process(url: str, key: str, held, go) -> None:
    """Hold ``key`` in a process of its own; once told to go, complete it and let it go."""
    engine = create_audit_engine(url)
    keys = IdempotencyKeys(engine, expiry_s=5)
    try:
        claim = keys.claim("k1", key, DIGEST)
        assert isinstance(claim, Claim)
        held.set()
        if not go.wait(60):
            return
        with write_transaction(engine) as conn:
            keys.complete(conn, claim, "a_other_process", 201, '{"by": "the other process"}')
        keys.release(claim)
    finally:
        engine.dispose()


@contextmanager
def held_in_another_process(database_url: str, key: str, *, kill: bool):
    """Run :func:`hold_in_another_process` for ``key``; yield its go event once it holds the
    key. On leaving, wait for it to finish, or ``kill`` it mid-decision."""
    spawn = multiprocessing.get_context("spawn")
    held, go = spawn.Event(), spawn.Event()
    other = spawn.Process(target=hold_in_another_process, args=(database_url, key, held, go))
    other.start()
    try:
        assert held.wait(60), "the other process never held the key"
        yield go
        if not kill:
            other.join(timeout=30)
            assert other.exitcode == 0
    finally:
        if other.is_alive():
            other.kill()  # mid-decision: no completion, no release
            other.join()


def test_a_key_another_process_holds_is_waited_for_and_its_answer_replayed(database_url,
                                                                           engines):
    with held_in_another_process(database_url, "shared", kill=False) as go:
        keys = IdempotencyKeys(engines[0], expiry_s=5, wait_s=0.2, poll_s=0.01)
        with pytest.raises(InProgress):
            keys.claim("k1", "shared", DIGEST)
        assert key_row(engines[0], "k1", "shared") is None

        keys.wait_s = 30
        go.set()
        assert keys.claim("k1", "shared", DIGEST) == Replay(201, '{"by": "the other process"}')


def test_a_key_held_by_a_process_that_died_is_free_at_once(database_url, engines):
    with held_in_another_process(database_url, "orphan", kill=True):
        keys = IdempotencyKeys(engines[0], expiry_s=3600, wait_s=0.2, poll_s=0.01)
        with pytest.raises(InProgress):
            keys.claim("k1", "orphan", DIGEST)
    keys.wait_s = 10  # the server notices a dead session at once; no expiry to wait for
    claim = keys.claim("k1", "orphan", DIGEST)
    assert isinstance(claim, Claim) and claim.left_at is None
    assert key_row(engines[0], "k1", "orphan") is None, "a dead holder leaves no row"
    keys.release(claim)


# -- the row's primary key: the last guard -----------------------------------------------------

def test_a_decision_that_finds_another_row_for_its_key_is_not_recorded(make_client,
                                                                      database_url, people):
    """A row written while the holder decided (here: by a worker of an earlier release,
    which claimed keys by inserting them) withholds the holder's decision."""
    client = make_client(database_url, stub_latency_ms="300")
    wired = client.app.extensions["flashloan"]
    engine = wired.store.engine
    consent = client.consent(people[6])
    body = client.application(people[6], consent["consent_id"])
    kid = key_id_of(client)
    answered = []
    request = threading.Thread(target=lambda: answered.append(client.post(
        "/v1/applications", body, headers={"Idempotency-Key": "order-old-1"})))
    request.start()
    wait_until_held(engine, kid, "order-old-1", digest_of(body))
    _add_key(engine, "order-old-1", "in_progress", timedelta(0), digest_of(body), kid)
    request.join(timeout=30)

    (response,) = answered
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"]["code"] == "in_progress"
    assert count(engine, "applications") == 0
    assert decisions_citing(wired.store, consent["consent_id"]) == []
    assert key_row(engine, kid, "order-old-1").state == "in_progress"


def test_a_decision_whose_key_is_taken_does_not_withhold_the_others_of_its_batch(
        database_url):
    migrate(database_url)
    store = AuditStore.from_url(database_url)
    committer = GroupCommitter(store)
    keys = IdempotencyKeys(store.engine, expiry_s=5)
    taken, fresh = keys.claim("k1", "taken", DIGEST), keys.claim("k1", "fresh", DIGEST)
    assert isinstance(taken, Claim) and isinstance(fresh, Claim)
    _add_key(store.engine, "taken", "done", timedelta(0))  # another's, got there first
    started, gate = threading.Event(), threading.Event()
    results: dict[str, str] = {}

    def first(writer) -> None:
        started.set()
        gate.wait(10)
        writer.append("decision.made", {"i": "first"})

    def decision(claim: Claim):
        def work(writer) -> None:
            writer.append("decision.made", {"i": claim.key})
            keys.complete(writer.connection, claim, f"a_{claim.key}", 201, f'"{claim.key}"')
        return work

    def submit(name: str, work) -> None:
        try:
            committer.submit(work)
            results[name] = "committed"
        except ClaimLost:
            results[name] = "lost"

    try:
        threads = [threading.Thread(target=submit, args=("first", first))]
        threads[0].start()
        assert started.wait(10)
        threads += [threading.Thread(target=submit, args=(claim.key, decision(claim)))
                    for claim in (taken, fresh)]
        for thread in threads[1:]:
            thread.start()
        deadline = time.monotonic() + 10
        while committer._queue.qsize() < 2:  # both wait for the next batch
            assert time.monotonic() < deadline
            time.sleep(0.005)
        gate.set()
        for thread in threads:
            thread.join(timeout=30)

        assert results == {"first": "committed", "taken": "lost", "fresh": "committed"}
        # The batch of the two failed as a whole (no batch but the first succeeded), then
        # each was written alone: the other decision was not lost with it.
        assert committer.batches == 1
        assert sorted(r.payload["i"] for r in store.iter_records(AuditQuery())) == [
            "first", "fresh"]
        assert (key_row(store.engine, "k1", "taken").application_id,
                key_row(store.engine, "k1", "fresh").application_id) == ("a_1", "a_fresh")
        assert store.verify().ok
    finally:
        gate.set()
        keys.release(taken)
        keys.release(fresh)
        committer.close()
        store.dispose()


# -- rows an earlier release left in progress --------------------------------------------------

def test_a_row_an_earlier_release_left_in_progress_is_taken_over_once_expired(make_client,
                                                                              database_url,
                                                                              people):
    client = make_client(database_url, deadline_s=1.0)
    wired = client.app.extensions["flashloan"]
    engine = wired.store.engine
    keys = wired.flow.idempotency
    keys.wait_s = 0.5  # a retry before the expiry gives up after half a second
    # An earlier release's claim lives as long as a live request may take: the deadline plus
    # the commit timeout.
    expiry_s = wired.settings.deadline_s + wired.flow.committer.timeout_s
    consent = client.consent(people[20])
    body = client.application(people[20], consent["consent_id"])
    kid = key_id_of(client)
    # The row an earlier release's worker inserted before deciding; it was then killed.
    _add_key(engine, "order-dead-2", "in_progress", timedelta(seconds=expiry_s - 3),
             digest_of(body), kid)

    early = client.post("/v1/applications", body, headers={"Idempotency-Key": "order-dead-2"})
    assert early.status_code == 409, early.get_json()
    assert early.get_json()["error"]["code"] == "in_progress"
    assert count(engine, "applications") == 0

    age_row(engine, kid, "order-dead-2", expiry_s + 1)
    late = client.post("/v1/applications", body, headers={"Idempotency-Key": "order-dead-2"})
    assert late.status_code == 201, late.get_json()
    application_id = late.get_json()["application_id"]
    row = key_row(engine, kid, "order-dead-2")
    assert (row.state, row.application_id) == ("done", application_id)
    assert count(engine, "applications") == 1

    again = client.post("/v1/applications", body, headers={"Idempotency-Key": "order-dead-2"})
    assert again.status_code == 201 and again.get_json() == late.get_json()
    assert count(engine, "applications") == 1


def test_an_expired_row_of_an_earlier_release_is_taken_over_once(engines):
    keys = IdempotencyKeys(engines[0], expiry_s=5, wait_s=0.2, poll_s=0.01)
    primer = keys.claim("k1", "primer", DIGEST)  # the worker's first claim purges: done here
    assert isinstance(primer, Claim)
    keys.release(primer)
    _add_key(engines[0], "left", "in_progress", timedelta(seconds=60))
    left_at = key_row(engines[0], "k1", "left").created_at
    first = keys.claim("k1", "left", DIGEST)
    assert isinstance(first, Claim) and first.left_at == left_at
    keys.release(first)
    # Two requests that each read the expired row: only the first completion takes it over.
    second = keys.claim("k1", "left", DIGEST)
    assert isinstance(second, Claim) and second.left_at == left_at
    with engines[0].begin() as conn:
        keys.complete(conn, first, "a_first", 201, '{"first": 1}')
    with pytest.raises(ClaimLost), engines[0].begin() as conn:
        keys.complete(conn, second, "a_second", 201, '{"second": 2}')
    keys.release(second)
    assert keys.claim("k1", "left", DIGEST) == Replay(201, '{"first": 1}')


# -- retention -------------------------------------------------------------------------------

def test_keys_are_purged_after_their_retention_period_and_old_claims_once_expired(engines):
    engine = engines[0]
    keys = IdempotencyKeys(engine, expiry_s=5, retention_s=3600)
    _add_key(engine, "done-old", "done", timedelta(hours=2))
    _add_key(engine, "done-recent", "done", timedelta(minutes=50))
    _add_key(engine, "abandoned-old", "in_progress", timedelta(hours=2))
    _add_key(engine, "abandoned-expired", "in_progress", timedelta(seconds=10))
    _add_key(engine, "in-flight", "in_progress", timedelta(seconds=1))

    assert keys.purge() == 3
    assert _keys_left(engine) == {"done-recent", "in-flight"}
    assert keys.claim("k1", "done-recent", DIGEST) == Replay(201, "{}")


def test_each_worker_purges_on_a_claim_at_most_once_a_minute(engines):
    engine = engines[0]
    keys = IdempotencyKeys(engine, expiry_s=5, retention_s=3600)

    def claim_and_let_go(key: str) -> None:
        claim = keys.claim("k1", key, DIGEST)
        assert isinstance(claim, Claim)
        keys.release(claim)

    _add_key(engine, "old-1", "done", timedelta(hours=2))
    claim_and_let_go("new-1")
    assert _keys_left(engine) == set(), "the first claim of a worker purges"

    _add_key(engine, "old-2", "done", timedelta(hours=2))
    claim_and_let_go("new-2")
    assert _keys_left(engine) == {"old-2"}, "not again within the minute"

    keys.purge_every_s = 0.0
    claim_and_let_go("new-3")
    assert _keys_left(engine) == set()


def test_the_service_keeps_keys_for_the_configured_retention(make_client, database_url,
                                                              people):
    client = make_client(database_url, idempotency_retention_h=6.0)
    engine = client.app.extensions["flashloan"].store.engine
    _add_key(engine, "kept", "done", timedelta(hours=5))
    _add_key(engine, "expired", "done", timedelta(hours=7))
    consent = client.consent(people[21])
    body = client.application(people[21], consent["consent_id"])
    response = client.post("/v1/applications", body, headers={"Idempotency-Key": "fresh"})
    assert response.status_code == 201, response.get_json()
    assert _keys_left(engine) == {"kept", "fresh"}
