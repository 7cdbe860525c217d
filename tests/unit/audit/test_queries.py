"""Query values, pagination cursors and engine URLs, without a database server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from audit.engine import create_audit_engine
from audit.errors import InvalidCursor, UnsupportedDatabase
from audit.privacy import Pseudonymiser
from audit.queries import decode_cursor, encode_cursor
from audit.records import AuditQuery
from audit.store import AuditStore


def test_query_takes_one_kind_or_many() -> None:
    assert AuditQuery(kinds="decision.made").kinds == ("decision.made",)
    assert AuditQuery(kinds=["a.b", "c.d"]).kinds == ("a.b", "c.d")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"since": datetime(2024, 1, 1)}, "since must be timezone-aware"),
        ({"until": "2024-01-01"}, "until must be a datetime"),
        ({"start_seq": 0}, "start_seq must be a positive integer; got 0"),
        ({"end_seq": True}, "end_seq must be a positive integer; got True"),
    ],
)
def test_bad_query_values_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AuditQuery(**fields)


def test_query_by_national_id_holds_only_its_hmac() -> None:
    pseudonymiser = Pseudonymiser("k")
    query = AuditQuery(outcome="declined").with_national_id("11010519491231002X", pseudonymiser)
    assert query.subject == pseudonymiser.national_id("11010519491231002X")
    assert "11010519491231002X" not in repr(query)
    assert query.outcome == "declined"


def test_cursor_round_trips_for_its_own_query_only() -> None:
    query = AuditQuery(kinds=("decision.made",), since=datetime(2024, 1, 1, tzinfo=UTC))
    cursor = encode_cursor(query, 1234, newest_first=False)
    assert decode_cursor(cursor, query, newest_first=False) == 1234
    assert (
        decode_cursor(
            cursor, AuditQuery(kinds="decision.made", since=datetime(2024, 1, 1, tzinfo=UTC)), False
        )
        == 1234
    )
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, AuditQuery(kinds=("decision.made",)), newest_first=False)
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, query, newest_first=True)


def test_invalid_cursor_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="got 'abc'"):
        decode_cursor("abc", AuditQuery(), newest_first=False)


@pytest.mark.parametrize("url", ["mysql://u@h/db", "oracle://u@h/db"])
def test_only_sqlite_and_postgresql_are_accepted(url: str) -> None:
    with pytest.raises(UnsupportedDatabase, match="database URL must be sqlite"):
        create_audit_engine(url)


def test_bare_postgresql_url_uses_psycopg_3() -> None:
    engine = create_audit_engine("postgresql://u@127.0.0.1:1/db")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_sqlite_file_folder_is_created(tmp_path) -> None:
    engine = create_audit_engine(f"sqlite:///{tmp_path / 'var' / 'deep' / 'audit.db'}")
    try:
        assert (tmp_path / "var" / "deep").is_dir()
    finally:
        engine.dispose()


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_store_refuses_a_bad_batch_size(tmp_path, batch_size) -> None:
    engine = create_audit_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            AuditStore(engine, batch_size=batch_size)
    finally:
        engine.dispose()
