"""Filters, keyset pagination, streaming and export of the audit trail."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from audit.canonical import sha256_hex
from audit.errors import InvalidCursor, InvalidRange
from audit.queries import encode_cursor
from audit.records import AuditQuery
from audit.store import AuditStore

T0 = datetime(2024, 5, 1, tzinfo=UTC)
SUBJECT_A, SUBJECT_B = "a" * 64, "b" * 64


@pytest.fixture
def filled(store: AuditStore) -> AuditStore:
    """Twelve records: one per hour, two applicants, three kinds, two model versions."""
    for i in range(12):
        kind = ("application.received", "source.fetched", "decision.made")[i % 3]
        payload = {"i": i, "subject": SUBJECT_A if i < 6 else SUBJECT_B}
        if kind == "decision.made":
            payload |= {
                "outcome": "approved" if i % 2 else "declined",
                "model_version": "v1" if i < 6 else "v2",
                "reason_codes": ["R_INCOME", "R_DEBT"] if i % 2 == 0 else ["R_DEBT"],
            }
        store.append(
            kind,
            payload,
            application_id=f"app-{i // 3}",
            actor="channel:key_a" if i < 9 else "risk_officer:key_r",
            recorded_at=T0 + timedelta(hours=i),
        )
    return store


def seqs(store: AuditStore, **filters) -> list[int]:
    return [record.seq for record in store.iter_records(AuditQuery(**filters))]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, list(range(1, 13))),
        ({"since": T0 + timedelta(hours=3), "until": T0 + timedelta(hours=5)}, [4, 5]),
        ({"kinds": ("decision.made",)}, [3, 6, 9, 12]),
        ({"kinds": ("decision.made", "source.fetched")}, [2, 3, 5, 6, 8, 9, 11, 12]),
        ({"application_id": "app-1"}, [4, 5, 6]),
        ({"actor": "risk_officer:key_r"}, [10, 11, 12]),
        ({"subject": SUBJECT_B}, [7, 8, 9, 10, 11, 12]),
        ({"outcome": "approved"}, [6, 12]),
        ({"model_version": "v1"}, [3, 6]),
        ({"reason_code": "R_INCOME"}, [3, 9]),
        ({"reason_code": "R_DEBT", "model_version": "v2"}, [9, 12]),
        ({"start_seq": 5, "end_seq": 7}, [5, 6, 7]),
        ({"outcome": "approved", "subject": SUBJECT_A}, [6]),
        ({"reason_code": "R_NONE"}, []),
    ],
)
def test_each_filter_selects_its_records(filled: AuditStore, filters, expected) -> None:
    assert seqs(filled, **filters) == expected


def test_pages_follow_each_other_without_overlap(filled: AuditStore) -> None:
    query = AuditQuery(kinds=("application.received", "source.fetched"))
    seen, cursor, pages = [], None, 0
    while True:
        page = filled.query(query, limit=3, cursor=cursor)
        seen += [record.seq for record in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [1, 2, 4, 5, 7, 8, 10, 11]
    assert pages == 3


def test_exactly_full_last_page_has_no_next_cursor(filled: AuditStore) -> None:
    page = filled.query(AuditQuery(kinds=("decision.made",)), limit=4)
    assert [r.seq for r in page.items] == [3, 6, 9, 12]
    assert page.next_cursor is None


def test_newest_first_pages_go_backwards(filled: AuditStore) -> None:
    first = filled.query(limit=5, newest_first=True)
    second = filled.query(limit=5, cursor=first.next_cursor, newest_first=True)
    assert [r.seq for r in first.items] == [12, 11, 10, 9, 8]
    assert [r.seq for r in second.items] == [7, 6, 5, 4, 3]
    with pytest.raises(InvalidCursor):
        filled.query(limit=5, cursor=first.next_cursor)


@pytest.mark.parametrize("cursor", ["garbage!", "", "eyJhZnRlciI6M30", "x" * 500])
def test_bad_cursor_is_refused_clearly(filled: AuditStore, cursor: str) -> None:
    with pytest.raises(InvalidCursor, match="cursor must be the next_cursor of a previous page"):
        filled.query(limit=2, cursor=cursor)


def test_cursor_of_another_query_is_refused(filled: AuditStore) -> None:
    page = filled.query(AuditQuery(outcome="declined"), limit=1)
    with pytest.raises(InvalidCursor):
        filled.query(AuditQuery(outcome="approved"), limit=1, cursor=page.next_cursor)


@pytest.mark.parametrize("limit", [0, 1001, "5"])
def test_page_size_is_bounded(filled: AuditStore, limit) -> None:
    with pytest.raises(ValueError, match="limit must be an integer from 1 to 1000"):
        filled.query(limit=limit)


@pytest.fixture
def reads(make_store):
    """A store of 95 records read in batches of 10, and the list of its record reads."""
    store = make_store(batch_size=10)
    with store.writer() as writer:
        for i in range(95):
            writer.append("source.fetched" if i % 2 else "decision.made", {"i": i})
    statements: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        if "FROM audit_records" in statement and "ORDER BY audit_records.seq" in statement:
            statements.append(statement)

    return store, statements


def test_iter_records_reads_in_batches_lazily(reads) -> None:
    store, statements = reads
    records = store.iter_records()
    assert next(records).seq == 1
    assert len(statements) == 1, "one batch is read before the first record is yielded"
    assert sum(1 for _ in records) == 94
    assert len(statements) == 10, "95 records in batches of 10 take 10 reads, not one"


def test_filtered_iteration_reads_in_batches(reads) -> None:
    store, statements = reads
    found = [r.seq for r in store.iter_records(AuditQuery(kinds=("decision.made",)))]
    assert found == list(range(1, 96, 2))
    assert len(statements) == 5, "48 matches in batches of 10 take 5 reads"


def test_verify_and_export_read_in_batches(reads) -> None:
    store, statements = reads
    assert store.verify().checked == 95
    assert len(statements) == 10
    statements.clear()
    assert sum(1 for _ in store.export("csv")) == 96
    assert len(statements) == 10


def test_every_batch_query_has_one_bound_per_side(reads) -> None:
    store, statements = reads
    list(store.iter_records(AuditQuery(start_seq=3, end_seq=90, kinds=("decision.made",))))
    for statement in statements:
        assert statement.count("audit_records.seq >=") == 1
        assert statement.count("audit_records.seq <=") == 1
        assert "audit_records.seq >" not in statement.replace("audit_records.seq >=", "")


def test_export_jsonl_round_trips_and_rehashes(filled: AuditStore) -> None:
    decisions = AuditQuery(kinds=("decision.made",))
    lines = list(filled.export("jsonl", decisions))
    assert len(lines) == 4 and all(line.endswith("\n") for line in lines)
    exported = [json.loads(line) for line in lines]
    assert exported == [record.to_dict() for record in filled.iter_records(decisions)]
    for item in exported:
        text = json.dumps(
            item["payload"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        assert sha256_hex(text.encode()) == item["payload_hash"]


def test_export_csv_has_header_and_one_line_per_record(filled: AuditStore) -> None:
    lines = list(filled.export("csv", AuditQuery(application_id="app-0")))
    assert len(lines) == 4
    rows = list(csv.DictReader(io.StringIO("".join(lines))))
    assert [int(row["seq"]) for row in rows] == [1, 2, 3]
    for row, record in zip(
        rows, filled.iter_records(AuditQuery(application_id="app-0")), strict=True
    ):
        assert sha256_hex(row["payload"].encode()) == row["payload_hash"] == record.payload_hash
        assert row["record_hash"] == record.record_hash


def test_export_of_unknown_format_is_refused_at_once(filled: AuditStore) -> None:
    with pytest.raises(ValueError, match="format must be one of jsonl, csv; got 'xml'"):
        filled.export("xml")


def test_export_writes_purged_payloads_as_null_and_empty(filled: AuditStore) -> None:
    filled.purge(T0 + timedelta(hours=2), "system:test", retention_years=0)
    first = json.loads(next(iter(filled.export("jsonl"))))
    assert first["payload"] is None
    rows = list(csv.DictReader(io.StringIO("".join(filled.export("csv")))))
    assert rows[0]["payload"] == "" and rows[2]["payload"] != ""


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"])
@pytest.mark.parametrize(
    "field", ["application_id", "actor", "subject", "outcome", "model_version", "reason_code"]
)
def test_filter_values_no_database_can_hold_match_nothing(filled: AuditStore, field, bad) -> None:
    query = AuditQuery(**{field: bad})
    assert filled.query(query).items == ()
    assert list(filled.export("jsonl", query)) == []


def test_kinds_no_database_can_hold_are_ignored(filled: AuditStore) -> None:
    assert seqs(filled, kinds=("a\x00b",)) == []
    assert seqs(filled, kinds=("a\x00b", "decision.made")) == [3, 6, 9, 12]


def test_sequence_numbers_beyond_64_bits_find_nothing(filled: AuditStore) -> None:
    huge = 2**64
    assert filled.get(huge) is None
    assert filled.get(0) is None
    assert seqs(filled, start_seq=huge) == []
    assert seqs(filled, end_seq=huge) == list(range(1, 13))
    assert seqs(filled, kinds=("decision.made",), end_seq=huge) == [3, 6, 9, 12]
    cursor = encode_cursor(AuditQuery(), huge, newest_first=False)
    assert filled.query(cursor=cursor).items == ()
    with pytest.raises(InvalidRange, match="beyond the last record, 12"):
        filled.verify(start_seq=huge)
    assert filled.verify(end_seq=huge).checked == 12
