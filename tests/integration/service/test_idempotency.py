"""Idempotency keys left claimed by a request that died: they expire, and a retry takes over."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text, update

from audit.engine import create_audit_engine
from service.db import idempotency_keys, now_text
from service.errors import ApiError
from service.idempotency import Claim, ClaimLost, IdempotencyKeys, Replay, body_hash
from service.migrations import upgrade
from service.schemas import ApplicationIn

_T = idempotency_keys
DIGEST = "d" * 64


def key_id_of(client, who: str = "channel") -> str:
    """The key id inside an API key (``fl_<key id>_<secret>``)."""
    return client.keys[who].split("_", 2)[1]


def age_claim(engine, key_id: str, key: str, seconds: float) -> None:
    """Date a claim ``seconds`` back, as if its request had started then."""
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


def test_a_claim_left_by_a_dead_worker_expires_and_the_next_retry_decides(make_client,
                                                                        database_url, people):
    client = make_client(database_url, deadline_s=1.0)
    wired = client.app.extensions["flashloan"]
    engine = wired.store.engine
    keys = wired.flow.idempotency
    keys.wait_s = 0.5  # a retry before the expiry gives up after half a second
    # A claim lives as long as a live request may take: the deadline plus the commit timeout.
    expiry_s = wired.settings.deadline_s + wired.flow.committer.timeout_s
    consent = client.consent(people[20])
    body = client.application(people[20], consent["consent_id"])
    kid = key_id_of(client)
    # The claim a worker makes before deciding; the worker is then killed, so no request
    # ever completes or releases it.
    keys.claim(kid, "order-dead-1", body_hash(ApplicationIn().load(body)))

    age_claim(engine, kid, "order-dead-1", expiry_s - 3)
    early = client.post("/v1/applications", body, headers={"Idempotency-Key": "order-dead-1"})
    assert early.status_code == 409, early.get_json()
    assert early.get_json()["error"]["code"] == "in_progress"
    assert count(engine, "applications") == 0

    age_claim(engine, kid, "order-dead-1", expiry_s + 1)
    late = client.post("/v1/applications", body, headers={"Idempotency-Key": "order-dead-1"})
    assert late.status_code == 201, late.get_json()
    application_id = late.get_json()["application_id"]
    row = key_row(engine, kid, "order-dead-1")
    assert (row.state, row.application_id) == ("done", application_id)
    assert count(engine, "applications") == 1

    again = client.post("/v1/applications", body, headers={"Idempotency-Key": "order-dead-1"})
    assert again.status_code == 201 and again.get_json() == late.get_json()
    assert count(engine, "applications") == 1


@pytest.fixture
def engines(database_url):
    """Two engines on one database, as two workers have."""
    upgrade(database_url)
    made = [create_audit_engine(database_url) for _ in range(2)]
    yield made
    for engine in made:
        engine.dispose()


def test_two_retries_racing_for_an_expired_claim_take_it_over_once(engines):
    workers = [IdempotencyKeys(engine, expiry_s=5, wait_s=0.3, poll_s=0.01)
               for engine in engines]
    for race in range(8):
        key = f"race-{race}"
        assert isinstance(workers[0].claim("k1", key, DIGEST), Claim)
        age_claim(engines[0], "k1", key, 60)
        start = threading.Barrier(2)
        outcomes: list[object] = []

        def retry(keys: IdempotencyKeys, key: str = key, start=start, outcomes=outcomes) -> None:
            start.wait(timeout=10)
            try:
                outcomes.append(keys.claim("k1", key, DIGEST))
            except ApiError as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=retry, args=(keys,)) for keys in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        claims = [o for o in outcomes if isinstance(o, Claim)]
        assert len(claims) == 1 and outcomes.count("in_progress") == 1, outcomes
        assert key_row(engines[0], "k1", key).created_at == claims[0].token


def test_a_claim_taken_over_can_no_longer_be_completed_nor_released_by_its_first_holder(
        engines):
    keys = IdempotencyKeys(engines[0], expiry_s=5, wait_s=0.3, poll_s=0.01)
    first = keys.claim("k1", "slow", DIGEST)
    assert isinstance(first, Claim)
    age_claim(engines[0], "k1", "slow", 60)
    stale = key_row(engines[0], "k1", "slow").created_at

    second = keys.take_over("k1", "slow", stale)
    assert isinstance(second, Claim)
    assert keys.take_over("k1", "slow", stale) is None, "one takeover per claim"

    # The first holder was only slow: its decision must not commit beside the second's.
    with pytest.raises(ClaimLost), engines[0].begin() as conn:
        keys.complete(conn, Claim("k1", "slow", stale), "a_first", 201, '{"first": 1}')
    keys.release(Claim("k1", "slow", stale))
    row = key_row(engines[0], "k1", "slow")
    assert (row.state, row.created_at) == ("in_progress", second.token)

    with engines[0].begin() as conn:
        keys.complete(conn, second, "a_second", 201, '{"second": 2}')
    assert keys.claim("k1", "slow", DIGEST) == Replay(201, '{"second": 2}')


def _add_key(engine, key: str, state: str, age: timedelta) -> None:
    with engine.begin() as conn:
        conn.execute(insert(_T).values(
            key_id="k1", idempotency_key=key, body_hash=DIGEST, state=state,
            application_id="a_1" if state == "done" else None,
            status_code=201 if state == "done" else None,
            response="{}" if state == "done" else None,
            created_at=now_text(datetime.now(UTC) - age)))


def _keys_left(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(_T.c.idempotency_key)).scalars())


def test_keys_are_purged_after_their_retention_period_and_claims_once_expired(engines):
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
    _add_key(engine, "old-1", "done", timedelta(hours=2))
    assert isinstance(keys.claim("k1", "new-1", DIGEST), Claim)
    assert _keys_left(engine) == {"new-1"}, "the first claim of a worker purges"

    _add_key(engine, "old-2", "done", timedelta(hours=2))
    assert isinstance(keys.claim("k1", "new-2", DIGEST), Claim)
    assert "old-2" in _keys_left(engine), "not again within the minute"

    keys.purge_every_s = 0.0
    assert isinstance(keys.claim("k1", "new-3", DIGEST), Claim)
    assert _keys_left(engine) == {"new-1", "new-2", "new-3"}


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
