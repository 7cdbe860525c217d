"""Filters, keyset pagination cursors and row decoding for reading the chain."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    exists,
    false,
    func,
    select,
)

from audit.canonical import canonical_json, format_time, parse_time
from audit.errors import InvalidCursor
from audit.records import MAX_SEQ, AuditQuery, AuditRecord
from audit.schema import CHAINED_COLUMNS, audit_reason_codes, audit_records

__all__ = ["batches", "decode_cursor", "encode_cursor", "record_from_row", "select_records"]

_T = audit_records.c
_CHAINED = [_T[name] for name in CHAINED_COLUMNS]


def conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    """Return the WHERE conditions of ``query`` except its seq bounds; all use an index."""
    found: list[ColumnElement[bool]] = []
    if query.since is not None:
        found.append(_T.recorded_at >= format_time(query.since))
    if query.until is not None:
        found.append(_T.recorded_at < format_time(query.until))
    # A filter value that no stored value can equal matches nothing; sent to the driver it
    # would fail the whole query instead.
    if query.kinds:
        kinds = [kind for kind in query.kinds if storable(kind)]
        found.append(_T.kind.in_(kinds) if kinds else false())
    for name in ("application_id", "actor", "subject", "outcome", "model_version"):
        value = getattr(query, name)
        if value is not None:
            found.append(_T[name] == value if storable(value) else false())
    if query.reason_code is not None:
        codes = audit_reason_codes.c
        found.append(
            exists().where(and_(codes.seq == _T.seq, codes.code == query.reason_code))
            if storable(query.reason_code)
            else false()
        )
    return found


def storable(value: str) -> bool:
    """Return whether both databases can store ``value`` (no NUL, no lone surrogate)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def select_records(
    query: AuditQuery, *, after: int | None, limit: int, newest_first: bool = False
) -> Select[Any]:
    """Return the SELECT of one keyset page: records past ``after`` in seq order."""
    low, high = query.start_seq, query.end_seq
    # The cursor and the query's own bounds are merged into one bound per side: given
    # "seq >= 1 AND seq > 5000", SQLite starts its scan at 1, and every page would cost as
    # much as all the pages before it.
    if after is not None and newest_first:
        high = after - 1 if high is None else min(high, after - 1)
    elif after is not None:
        low = after + 1 if low is None else max(low, after + 1)
    return _select_between(query, low, high, newest_first).limit(limit)


def _select_between(
    query: AuditQuery, low: int | None, high: int | None, newest_first: bool = False
) -> Select[Any]:
    where = conditions(query)
    # Bounds past the 64-bit column would overflow the SQLite driver; none can match anyway.
    if low is not None:
        where.append(_T.seq >= low if low <= MAX_SEQ else false())
    if high is not None:
        where.append(_T.seq <= min(high, MAX_SEQ))
    order = _T.seq.desc() if newest_first else _T.seq.asc()
    return select(*_CHAINED).where(*where).order_by(order)


def record_from_row(row: Any) -> AuditRecord:
    """Decode a row of the chained columns into an AuditRecord."""
    seq, recorded_at, kind, application_id, actor, payload, *hashes = row
    return AuditRecord(
        seq,
        parse_time(recorded_at),
        kind,
        application_id,
        actor,
        None if payload is None else json.loads(payload),
        *hashes,
    )


def batches(engine: Engine, query: AuditQuery, batch_size: int) -> Iterator[list[Any]]:
    """Yield the raw rows matching ``query`` in seq order, at most ``batch_size`` at a time.

    Each batch is one short query, so memory stays flat however long the chain is and no
    transaction stays open while the caller works on a batch.
    """
    if not conditions(query):
        yield from _windows(engine, query, batch_size)
        return
    after: int | None = None
    while True:
        with engine.connect() as conn:
            rows = _fetch(conn, select_records(query, after=after, limit=batch_size))
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        after = rows[-1][0]


def _windows(engine: Engine, query: AuditQuery, batch_size: int) -> Iterator[list[Any]]:
    """Read a seq range as consecutive windows of ``batch_size`` sequence numbers.

    Sequence numbers are dense, so a window holds at most ``batch_size`` records, and a
    closed range keeps every database on a plain primary-key range scan (a bare
    "ORDER BY seq LIMIT n" over a table without statistics can make PostgreSQL sort the whole
    remaining range for every batch). The range ends at the head as it was when reading began.
    """
    with engine.connect() as conn:
        high = conn.execute(select(func.max(_T.seq))).scalar_one() or 0
    if query.end_seq is not None:
        high = min(high, query.end_seq)
    low = query.start_seq or 1
    while low <= high:
        top = min(high, low + batch_size - 1)
        with engine.connect() as conn:
            rows = _fetch(conn, _select_between(query, low, top))
        if rows:
            yield rows
        low = top + 1


def _fetch(conn: Connection, statement: Select[Any]) -> list[Any]:
    return list(conn.execute(statement).all())


def encode_cursor(query: AuditQuery, last_seq: int, newest_first: bool) -> str:
    """Return the opaque cursor of the page after the record ``last_seq``."""
    body = {"after": last_seq, "q": query.fingerprint(), "desc": newest_first}
    raw = canonical_json(body)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, query: AuditQuery, newest_first: bool) -> int:
    """Return the seq a cursor continues after, refusing one made for another query."""
    shown = cursor if isinstance(cursor, str) and len(cursor) <= 80 else "<unreadable>"
    problem = InvalidCursor(
        f"cursor must be the next_cursor of a previous page of the same query; got {shown!r}"
    )
    if not isinstance(cursor, str) or len(cursor) > 200:
        raise problem
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError):
        raise problem from None
    if (
        not isinstance(body, dict)
        or body.get("q") != query.fingerprint()
        or body.get("desc") is not newest_first
        or not isinstance(body.get("after"), int)
        or isinstance(body.get("after"), bool)
        or body["after"] < 0
    ):
        raise problem
    return body["after"]
