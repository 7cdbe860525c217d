"""Appending, reading and the schema of the audit store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from audit.canonical import canonical_json, sha256_hex
from audit.engine import create_audit_engine
from audit.records import GENESIS_HASH, AuditQuery, compute_record_hash
from audit.schema import metadata
from audit.store import AuditStore
from audit.writer import Entry
from tests.databases import migrate

SUBJECT = "ab" * 32


def test_records_are_chained_from_genesis(store: AuditStore) -> None:
    first = store.append("consent.recorded", {"scopes": ["income_tax"]}, actor="channel:key_1")
    second = store.append(
        "application.received",
        {"amount": Decimal("5000.00")},
        application_id="app-1",
        actor="channel:key_1",
    )
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.record_hash)
    assert second.payload == {"amount": "5000"}
    assert second.payload_hash == sha256_hex(canonical_json({"amount": "5000"}))
    assert second.record_hash == compute_record_hash(
        first.record_hash,
        2,
        "application.received",
        second.to_dict()["recorded_at"],
        "app-1",
        "channel:key_1",
        second.payload_hash,
    )
    assert store.get(2) == second
    assert store.head() == second
    assert store.get(3) is None


def test_empty_store_has_no_head_and_verifies(store: AuditStore) -> None:
    assert store.head() is None
    result = store.verify()
    assert (result.ok, result.checked) == (True, 0)


def test_recorded_at_is_stored_in_utc_with_microseconds(store: AuditStore) -> None:
    beijing = timezone(timedelta(hours=8))
    moment = datetime(2024, 3, 1, 8, 30, 0, 5, tzinfo=beijing)
    record = store.append("review.requested", {}, recorded_at=moment)
    assert record.recorded_at == moment
    assert record.recorded_at.tzinfo == UTC
    assert record.to_dict()["recorded_at"] == "2024-03-01T00:30:00.000005Z"
    assert store.get(record.seq).recorded_at == moment


def test_records_of_one_decision_commit_together(store: AuditStore) -> None:
    with store.writer() as writer:
        writer.append("application.received", {"n": 1}, application_id="app-9")
        writer.append("source.fetched", {"n": 2}, application_id="app-9")
        writer.append("decision.made", {"n": 3}, application_id="app-9")
        assert writer.head_seq == 3
    assert [r.kind for r in store.iter_records()] == [
        "application.received",
        "source.fetched",
        "decision.made",
    ]


def test_failed_decision_leaves_no_record_and_no_gap(store: AuditStore) -> None:
    store.append("consent.recorded", {})
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE side_effects (id VARCHAR(20) PRIMARY KEY)")
    with pytest.raises(RuntimeError, match="scoring failed"), store.writer() as writer:
        writer.connection.execute(text("INSERT INTO side_effects (id) VALUES ('app-1')"))
        writer.append("application.received", {}, application_id="app-1")
        raise RuntimeError("scoring failed")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM side_effects").scalar_one() == 0
    assert store.append("consent.recorded", {}).seq == 2
    assert store.verify().ok


def test_append_many_chains_in_order(store: AuditStore) -> None:
    with store.writer() as writer:
        records = writer.append_many(
            Entry("source.fetched", {"i": i}, f"app-{i}") for i in range(5)
        )
        assert writer.append_many([]) == []
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.record_hash for a, b in pairwise(records))
    assert store.verify().checked == 5


@pytest.mark.parametrize(
    ("kind", "payload", "fields", "message"),
    [
        ("Decision", {}, {}, "kind must be dotted lower-case"),
        ("decision", {}, {}, "kind must be dotted lower-case"),
        ("decision.made", [1], {}, "payload must be a mapping; got list"),
        ("decision.made", {"x": float("nan")}, {}, r"\$\.x must be a finite number"),
        ("decision.made", {}, {"actor": ""}, "actor must be a string of 1 to 128"),
        ("decision.made", {}, {"actor": "channel:\x00"}, "actor must be text without NUL"),
        ("decision.made", {"reason_codes": ["R\x00"]}, {}, "item must be text without NUL"),
        ("decision.made", {}, {"application_id": "a" * 65}, "application_id must be"),
        ("decision.made", {}, {"recorded_at": datetime(2024, 1, 1)}, "timezone-aware"),
        ("decision.made", {"subject": "11010519491231002X"}, {}, "pseudonymised national ID"),
        ("decision.made", {"reason_codes": "R1"}, {}, "reason_codes must be a list"),
        ("decision.made", {"outcome": 3}, {}, "payload outcome must be a string"),
    ],
)
def test_invalid_appends_are_refused_and_leave_nothing(
    store: AuditStore, kind, payload, fields, message
) -> None:
    with pytest.raises(ValueError, match=message):
        store.append(kind, payload, **fields)
    assert store.head() is None


def test_entries_prepared_before_the_lock_chain_like_plain_ones(store: AuditStore) -> None:
    from audit.writer import prepare

    payload = {"subject": "ab" * 32, "outcome": "declined", "reason_codes": ["K01", "R2"],
               "amount": Decimal("1200.50"), "scores": [1.5, 2]}
    ready = prepare(Entry("decision.made", payload, "app-1", "channel:web"))
    assert ready.payload_text == canonical_json(payload).decode()
    assert ready.payload_hash == sha256_hex(canonical_json(payload))
    with store.writer() as writer:
        first, second = writer.append_many(
            [ready, Entry("decision.made", payload, "app-1", "channel:web")])
    assert first.payload == second.payload and first.payload_hash == second.payload_hash
    # The time is stamped when the record is chained, so it never goes back along the chain.
    assert first.recorded_at <= second.recorded_at and second.prev_hash == first.record_hash
    assert [r.seq for r in store.query(AuditQuery(reason_code="R2")).items] == [1, 2]
    assert store.verify().checked == 2


@pytest.mark.parametrize("payload", [{"x": float("inf")}, {"subject": "11010519491231002X"}])
def test_a_bad_entry_is_refused_when_prepared(payload) -> None:
    from audit.writer import prepare

    with pytest.raises(ValueError):
        prepare(Entry("decision.made", payload))


def test_raw_national_id_in_subject_is_not_echoed(store: AuditStore) -> None:
    with pytest.raises(ValueError) as caught:
        store.append("decision.made", {"subject": "11010519491231002X"})
    assert "11010519491231002X" not in str(caught.value)


def test_index_columns_are_filled_from_the_payload(store: AuditStore) -> None:
    store.append(
        "decision.made",
        {
            "subject": SUBJECT,
            "outcome": "declined",
            "model_version": "2024.06",
            "reason_codes": ["R1", "R2", "R1"],
        },
    )
    with store.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT subject, outcome, model_version FROM audit_records WHERE seq = 1"
        ).one()
        codes = (
            conn.exec_driver_sql("SELECT code FROM audit_reason_codes WHERE seq = 1 ORDER BY code")
            .scalars()
            .all()
        )
    assert tuple(row) == (SUBJECT, "declined", "2024.06")
    assert codes == ["R1", "R2"]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM audit_records WHERE seq = 1",
        "UPDATE audit_records SET kind = 'decision.overturned' WHERE seq = 1",
        "UPDATE audit_records SET payload = '{}' WHERE seq = 1",
        "UPDATE audit_records SET payload = NULL, outcome = NULL WHERE seq = 1",
        "UPDATE audit_records SET record_hash = prev_hash WHERE seq = 1",
        "DELETE FROM audit_reason_codes",
        "UPDATE audit_reason_codes SET code = 'R9'",
    ],
)
def test_database_refuses_changes_other_than_a_purge(store: AuditStore, statement: str) -> None:
    store.append("decision.made", {"outcome": "approved", "reason_codes": ["R1"]})
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.exec_driver_sql(statement)
    assert store.verify().ok
    assert store.get(1).payload == {"outcome": "approved", "reason_codes": ["R1"]}


def test_database_sets_a_payload_to_null_only_under_a_purge_record_naming_it(
    store: AuditStore,
) -> None:
    store.append("decision.made", {"outcome": "approved"},
                 recorded_at=datetime(2020, 1, 1, tzinfo=UTC))
    erase = "UPDATE audit_records SET payload = NULL WHERE seq = 1"
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.exec_driver_sql(erase)
    with store.writer() as writer:
        writer.append("records.purged", {"before": "2021-01-01T00:00:00.000000Z", "purged": 1,
                                         "first_seq": 1, "last_seq": 1, "retention_years": 5})
        writer.connection.exec_driver_sql(erase)
    assert store.get(1).payload is None
    assert store.verify().ok


def test_database_refuses_a_second_record_with_the_same_seq(store: AuditStore) -> None:
    first = store.append("decision.made", {})
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_records (seq, recorded_at, kind, payload_hash, prev_hash, "
                "record_hash) VALUES (1, 'x', 'a.b', :h, :p, :r)"
            ),
            {"h": "1" * 64, "p": "2" * 64, "r": "3" * 64},
        )
    assert store.head() == first


def test_schema_matches_the_query_tables(store: AuditStore) -> None:
    inspector = inspect(store.engine)
    for table in metadata.sorted_tables:
        found = [column["name"] for column in inspector.get_columns(table.name)]
        assert found == [column.name for column in table.columns]
    indexed = {index["name"] for index in inspector.get_indexes("audit_records")}
    assert {
        "ix_audit_records_recorded_at",
        "ix_audit_records_kind",
        "ix_audit_records_subject",
        "ix_audit_records_application_id",
        "ix_audit_records_outcome",
    } <= indexed


def test_query_by_national_id_uses_the_pseudonymiser(store: AuditStore) -> None:
    from audit.privacy import Pseudonymiser

    pseudonymiser = Pseudonymiser("k" * 32)
    subject = pseudonymiser.national_id("11010519491231002X")
    store.append("decision.made", {"subject": subject})
    store.append("decision.made", {"subject": SUBJECT})
    query = AuditQuery().with_national_id("11010519491231002x", pseudonymiser)
    assert [r.seq for r in store.query(query).items] == [1]


@pytest.mark.postgres
def test_writer_sees_the_committed_head_under_repeatable_read(postgres_url: str) -> None:
    migrate(postgres_url)
    store = AuditStore(create_audit_engine(postgres_url, isolation_level="REPEATABLE READ"))
    inside, release, appended = threading.Event(), threading.Event(), []

    def first() -> None:
        with store.writer() as writer:
            writer.append("decision.made", {"n": 1})
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=first)
    holder.start()
    assert inside.wait(10)
    waiter = threading.Thread(target=lambda: appended.append(store.append("decision.made", {})))
    waiter.start()
    time.sleep(0.3)  # the second writer is now queued on the chain lock
    release.set()
    holder.join(10)
    waiter.join(10)
    try:
        assert [record.seq for record in appended] == [2]
        assert store.verify().ok
    finally:
        store.dispose()
