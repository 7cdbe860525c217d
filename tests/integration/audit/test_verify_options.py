"""Verify's ranges, the ledger of automatic checkpoints, and documents checked against the
hashes the records state, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.canonical import sha256_hex
from audit.errors import InvalidRange
from audit.store import AuditStore
from tests.integration.audit import tampering

NOW = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)


def fill(store: AuditStore, count: int) -> None:
    for i in range(count):
        store.append("source.fetched", {"i": i}, application_id=f"app-{i}")


@pytest.mark.parametrize(
    ("start", "end", "parameter", "words"),
    [
        (10, 5, "end", "end must not be before start; got start 10, end 5"),
        (99, None, "start", "start 99 is beyond the last record, 12"),
        (13, 20, "start", "start 13 is beyond the last record, 12"),
    ],
)
def test_an_empty_or_inverted_range_is_refused(store: AuditStore, start, end, parameter,
                                               words) -> None:
    fill(store, 12)
    with pytest.raises(InvalidRange, match=words) as caught:
        store.verify(start, end)
    assert caught.value.parameter == parameter
    assert store.verify(12, 99).checked == 1, "an end past the head stops at the head"


def test_a_range_of_an_empty_chain_is_refused(store: AuditStore) -> None:
    assert store.verify().ok
    with pytest.raises(InvalidRange, match="the chain holds no records"):
        store.verify(1)


def test_one_checkpoint_is_taken_per_trigger_however_many_workers_try(make_store) -> None:
    key = Ed25519PrivateKey.generate()
    stores = [make_store() for _ in range(4)]
    fill(stores[0], 12)
    assert stores[0].checkpoint_due(every_records=5, every_s=3600)
    taken: list = []
    barrier = threading.Barrier(len(stores))

    def worker(store: AuditStore) -> None:
        barrier.wait()
        taken.append(store.take_checkpoint(key, every_records=5, every_s=3600))

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = [cp for cp in taken if cp is not None]
    assert len(made) == 1 and made[0].seq == 12
    assert stores[1].recorded_checkpoints() == made
    assert not stores[2].checkpoint_due(every_records=5, every_s=3600)
    fill(stores[0], 4)
    assert stores[3].take_checkpoint(key, every_records=5, every_s=3600) is None
    fill(stores[0], 1)
    assert stores[3].take_checkpoint(key, every_records=5, every_s=3600).seq == 17
    assert [cp.seq for cp in stores[0].recorded_checkpoints()] == [12, 17]
    assert stores[0].verify(checkpoints=stores[0].recorded_checkpoints(),
                            public_key=key.public_key()).ok


def test_a_checkpoint_is_due_once_the_oldest_unsigned_record_is_old_enough(make_store) -> None:
    moments = iter([NOW, NOW + timedelta(seconds=30)])
    store = make_store(clock=lambda: next(moments))
    fill(store, 2)
    key = Ed25519PrivateKey.generate()
    later = make_store(clock=lambda: NOW + timedelta(seconds=299))
    assert later.take_checkpoint(key, every_records=100, every_s=300) is None
    later = make_store(clock=lambda: NOW + timedelta(seconds=300))
    signed = later.take_checkpoint(key, every_records=100, every_s=300)
    assert signed is not None and (signed.seq, signed.time) == (2, "2031-06-15T12:05:00.000000Z")
    assert later.take_checkpoint(key, every_records=100, every_s=300) is None, "nothing new"


def test_the_checkpoint_ledger_is_append_only(make_store) -> None:
    from sqlalchemy.exc import DBAPIError

    store = make_store()
    fill(store, 3)
    store.take_checkpoint(Ed25519PrivateKey.generate())
    for statement in ("DELETE FROM audit_checkpoints",
                      "UPDATE audit_checkpoints SET seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"):
            tampering.execute(store.engine, statement)
    assert [cp.seq for cp in store.recorded_checkpoints()] == [3]


def _answers(store: AuditStore) -> dict[str, str]:
    """Three applications: one decided, one decided then reviewed, one decided before
    answers were hashed; their answers as the service keeps them."""
    texts = {"a_1": '{"status":"approved"}', "a_2": '{"status":"declined"}',
             "a_3": '{"status":"approved","legacy":true}'}
    reviewed = '{"status":"declined","review":"open"}'
    store.append("application.received", {"x": 1}, application_id="a_1")
    store.append("decision.made", {"answer_sha256": sha256_hex(texts["a_1"].encode())},
                 application_id="a_1")
    store.append("decision.made", {"answer_sha256": sha256_hex(texts["a_2"].encode())},
                 application_id="a_2")
    store.append("decision.made", {"outcome": "approved"}, application_id="a_3")
    store.append("review.requested", {"answer_sha256": sha256_hex(reviewed.encode()),
                                      "nested": {"answer_sha256": "0" * 64}},
                 application_id="a_2")
    store.append("audit.queried", {"note": '"answer_sha256":"x"'}, application_id="a_2")
    return {**texts, "a_2": reviewed}


def test_documents_match_the_latest_hash_their_records_state(store: AuditStore) -> None:
    answers = _answers(store)
    result = store.check_documents(sorted(answers.items()), field="answer_sha256")
    assert (result.ok, result.checked, result.unhashed, result.failed) == (True, 2, 1, 0)


@pytest.mark.parametrize(
    ("application_id", "text", "reason", "seq"),
    [
        ("a_1", '{"status":"declined"}', "altered", 2),
        ("a_2", '{"status":"declined"}', "altered", 5),  # rolled back to the first answer
        ("a_9", '{"status":"approved"}', "unrecorded", None),
    ],
)
def test_an_edited_or_unrecorded_document_is_named(store: AuditStore, application_id, text,
                                                   reason, seq) -> None:
    answers = _answers(store) | {application_id: text}
    result = store.check_documents(sorted(answers.items()), field="answer_sha256",
                                   what="answer")
    assert (result.ok, result.failed, result.application_id, result.reason, result.seq) == (
        False, 1, application_id, reason, seq)
    assert application_id in result.message and "answer" in result.message


def test_documents_are_checked_in_batches(make_store) -> None:
    store = make_store(batch_size=3)
    answers = {f"a_{i:02d}": f'{{"n":{i}}}' for i in range(10)}
    for application_id, text in answers.items():
        store.append("decision.made", {"answer_sha256": sha256_hex(text.encode())},
                     application_id=application_id)
    result = store.check_documents(iter(sorted(answers.items())), field="answer_sha256")
    assert (result.ok, result.checked) == (True, 10)


def test_documents_whose_records_were_purged_are_counted_not_checked(make_store) -> None:
    store = make_store(clock=lambda: NOW)
    text = '{"status":"approved"}'
    store.append("decision.made", {"answer_sha256": sha256_hex(text.encode())},
                 application_id="a_1", recorded_at=datetime(2024, 1, 1, tzinfo=UTC))
    store.purge(datetime(2025, 1, 1, tzinfo=UTC), "system:cli")
    result = store.check_documents([("a_1", '{"status":"declined"}')], field="answer_sha256")
    assert (result.ok, result.checked, result.purged) == (True, 0, 1)
